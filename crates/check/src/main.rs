//! `bin/ddb/check [prod]`: each violation of the data model in the table, one line (or JSON object)
//! each, then a summary; `--repair` mends the mechanical ones. Exit 0 clean, 1 violations left.
#![deny(clippy::print_stdout)]

use clap::Parser;
use ddb_cli::{self as cli, errln, outln, Bar, DdbArgs, PgArgs};
use ddb_core::{check, pg};
use std::process::ExitCode;

/// Check the table's rules over every item (group rows, members, messages, keys, attributes, sizes,
/// locks, unknown items): one line per violation and a summary; exit 1 when any is left.
#[derive(Parser)]
#[command(version, after_help = "Example: ./bin/ddb/check --repair")]
struct Args {
    /// One JSON object per violation on stdout (kind, conversation, keys, expected, found); the summary goes to stderr
    #[arg(long)]
    json: bool,
    /// Mend what is mechanical: duplicate group rows, rows behind their newest message, stale lock items
    #[arg(long)]
    repair: bool,
    /// With prod: repair without asking
    #[arg(long, short = 'y')]
    yes: bool,
    /// Also check each group row's other user against Postgres users (CONNECTION_URL)
    #[arg(long)]
    users: bool,
    #[command(flatten)]
    pg: PgArgs,
    /// Read with this many parallel scan segments
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=1000))]
    segments: u32,
    /// No progress bar
    #[arg(long, short)]
    quiet: bool,
    #[command(flatten)]
    ddb: DdbArgs,
}

fn main() -> ExitCode {
    cli::run(2, |a: Args| async move {
        let users = if a.users { Some(pg::users_by_uuid(&a.pg.connection_url).await?) } else { None };
        let ddb = a.ddb.connect().await?;
        let bar = Bar::new(0, a.quiet);
        let checked = check::run(&ddb, a.segments, users.as_ref(), &bar).await;
        bar.clear();
        let mut checked = checked?;
        for v in &checked.violations {
            if a.json {
                cli::print_json_line(v)?;
            } else {
                outln!("{}", cli::escape(&v.line()))?;
            }
        }
        let mut left = checked.summary.total();
        if a.repair && left > 0 {
            let prompt = format!("This repairs {left} violations in table {} in AWS. Type yes to go on: ", ddb.table);
            if ddb.target.is_aws() && !a.yes && !cli::confirm(&prompt, "yes")? {
                anyhow::bail!("not repairing table {} in AWS: pass --yes, or run in a terminal and type yes when asked", ddb.table);
            }
            let bar = Bar::new(0, a.quiet);
            let repaired = check::repair(&ddb, &checked, &bar).await;
            bar.clear();
            checked.summary.repaired = Some(repaired?);
            left = checked.summary.unrepairable();
        }
        let line = cli::escape(&checked.summary.line()).into_owned();
        if a.json {
            errln!("{line}");
        } else {
            outln!("{line}")?;
        }
        if left == 0 {
            return Ok(());
        }
        let what = if a.repair { "were left: not mechanical, mend them by hand" } else { "found: --repair mends the mechanical ones" };
        anyhow::bail!("{left} violations in table {} {what}", ddb.table)
    })
}
