//! `bin/ddb/import [FILE|-] [prod]`: items, one JSON object a line as `bin/ddb/scan` writes them,
//! checked whole first (nothing is written when a line is bad), then written with the seed's
//! batch writer; group rows through their conversations, which end settled.
#![deny(clippy::print_stdout)]

use anyhow::Context as _;
use clap::Parser;
use ddb_cli::{self as cli, errln, outln, Bar, DdbFlags, WriteArgs};
use ddb_core::item_json::ItemFormat;
use ddb_core::target::Service;
use ddb_core::{import, table};
use std::process::ExitCode;

/// Import items into the table: one JSON object a line, as ./bin/ddb/scan writes them (--output
/// dynamodb-json, lossless; or --output json). Every line is checked first: one bad line and
/// nothing is written. Into AWS (prod) it asks first.
#[derive(Parser)]
#[command(version, after_help = "Example, prod's items into DynamoDB Local:\n  ./bin/ddb/scan prod --output dynamodb-json | ./bin/ddb/import -")]
struct Args {
    /// FILE of items (`-` or nothing: standard input), then `prod` for AWS
    #[arg(value_name = "FILE|-")]
    words: Vec<String>,
    /// The lines' format (default: told from the first item's pk)
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// Into AWS: write without asking
    #[arg(long, short = 'y')]
    yes: bool,
    #[command(flatten)]
    write: WriteArgs,
    #[command(flatten)]
    ddb: DdbFlags,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Format {
    /// Typed values, as scan --output dynamodb-json and the AWS CLI write them: {"pk": {"S": "..."}}
    DynamodbJson,
    /// Plain values, as scan --output json writes them: {"pk": "..."}
    Json,
}

fn main() -> ExitCode {
    cli::run(2, |Args { words, format, yes, write, ddb }: Args| async move {
        let (file, prod) = cli::word_and_prod(&words, "FILE")?;
        let source = cli::import_source(file.as_deref())?;
        let format = format.map(|f| match f {
            Format::DynamodbJson => ItemFormat::DynamodbJson,
            Format::Json => ItemFormat::Json,
        });
        let bar = Bar::new(0, write.quiet);
        let checked = import::check(&source, format, &bar)?;
        if let Some(refusal) = checked.refusal() {
            bar.clear();
            checked.bad.iter().for_each(|line| errln!("error: {}", cli::escape(line)));
            return Err(refusal.into());
        }
        // Asked first, and wherever the table really is: `prod` with --endpoint-url is not AWS.
        let (table_name, n) = (&ddb.table, checked.items + checked.group_rows);
        if ddb.target.settings(prod).resolve(Service::DynamoDb)?.target.is_aws() && !yes {
            let prompt = format!("This writes {n} items into table {table_name} in AWS. Type its name to go on: ");
            if !bar.suspend(|| cli::confirm(&prompt, table_name))? {
                anyhow::bail!(
                    "not importing into {table_name} in AWS: pass --yes, or run in a terminal with a FILE and type the table name when asked"
                );
            }
        }
        let ddb = ddb.connect(prod).await?;
        table::describe(&ddb).await?;
        let result = import::run(&ddb, &source, &checked, write.options(), &bar).await;
        bar.clear();
        let report = result?;
        let done = || format!("the import into table {} is done ({} items written)", ddb.table, report.items + report.group_rows);
        if write.json {
            return cli::print_json_line(&report.figures(&checked, &ddb)).with_context(done);
        }
        outln!("{}", cli::escape(&report.summary(&checked, &ddb))).with_context(done)?;
        Ok(())
    })
}
