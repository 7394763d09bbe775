//! `bin/db/update_cognito_user_ids` (also `bin/cognito/db/update_cognito_user_ids`): copies each
//! Cognito user's `sub` into `users.cognito_user_id`, matched by handle, for the whole pool in
//! one transaction.
#![deny(clippy::print_stdout)]

use clap::Parser;
use ddb_cli::{self as cli, outln, PgArgs, TargetArgs};
use ddb_core::{cognito, pg};
use std::process::ExitCode;

/// Set users.cognito_user_id in Postgres from the Cognito pool (preferred_username = handle),
/// for every user of the pool, in one transaction: all rows or none. Reports what changed, the
/// Cognito handles with no row, and the rows still holding MOCK.
#[derive(Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    target: TargetArgs,
    #[command(flatten)]
    pg: PgArgs,
    /// The pool (default: $AWS_COGNITO_USER_POOL_ID)
    #[arg(long, value_name = "ID")]
    user_pool_id: Option<String>,
    /// Change nothing; print what would change
    #[arg(long)]
    dry_run: bool,
    /// Print only one JSON object on stdout: {"changed": N, "unchanged": N, "unmatched": [..],
    /// "still_mock": [..], "cognito_seconds": S, "postgres_seconds": S, "dry_run": B}
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let args: Args = cli::parse_cognito_args();
    cli::main(1, async move {
        if !args.json {
            outln!("== db-update-cognito-user-ids")?;
        }
        let pool = cognito::pool_id(args.user_pool_id.as_deref())?;
        let url = &args.pg.connection_url;
        // Postgres first: a database that is not there fails before anything is read or changed.
        let mut db = pg::connect(url).await?;
        let (client, label) = args.target.cognito().await?;
        let started = std::time::Instant::now();
        let users = cognito::list_users(&client, &pool, &label).await?;
        let cognito_secs = started.elapsed().as_secs_f64();
        let (map, skipped) = cognito::handle_map(&users);
        if args.json {
            // stdout holds the JSON alone; what was skipped still gets said, on stderr.
            skipped.iter().for_each(|(name, why)| eprintln!("skipped {name}: {why}"));
        } else {
            for (handle, sub) in &map {
                outln!("---- {handle} {sub}")?;
            }
            for (name, why) in &skipped {
                outln!("skipped {name}: {why}")?;
            }
        }
        let started = std::time::Instant::now();
        let report = cognito::sync(&mut db, url, &map, args.dry_run).await?;
        let pg_secs = started.elapsed().as_secs_f64();
        if args.json {
            outln!("{}", json_report(&report, cognito_secs, pg_secs, args.dry_run))?;
            return Ok(());
        }
        let verb = if args.dry_run { "would change" } else { "changed" };
        for (handle, before, after) in &report.changed {
            outln!("{verb} {handle}: {before} -> {after}")?;
        }
        outln!(
            "{} row(s) {verb}, {} already up to date, in database {}{} (cognito {cognito_secs:.3} s, postgres {pg_secs:.3} s)",
            report.changed.len(),
            report.unchanged,
            pg::redact(url),
            if args.dry_run { " (dry run: nothing was written)" } else { "" }
        )?;
        if !report.unmatched.is_empty() {
            outln!("{} Cognito handle(s) with no row in users: {}", report.unmatched.len(), report.unmatched.join(", "))?;
        }
        if !report.still_mock.is_empty() {
            outln!("{} row(s) still hold MOCK: {}", report.still_mock.len(), report.still_mock.join(", "))?;
        }
        Ok(())
    })
}

/// The report of `--json`, one line (written here: this crate has no JSON library of its own).
fn json_report(report: &cognito::SyncReport, cognito_secs: f64, pg_secs: f64, dry_run: bool) -> String {
    let list = |v: &[String]| v.iter().map(|s| json_string(s)).collect::<Vec<_>>().join(",");
    format!(
        r#"{{"changed":{},"unchanged":{},"unmatched":[{}],"still_mock":[{}],"cognito_seconds":{cognito_secs:.6},"postgres_seconds":{pg_secs:.6},"dry_run":{dry_run}}}"#,
        report.changed.len(),
        report.unchanged,
        list(&report.unmatched),
        list(&report.still_mock)
    )
}

/// `s` as a JSON string literal.
fn json_string(s: &str) -> String {
    let mut out = String::from('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
