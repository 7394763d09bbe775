//! `bin/ddb/scan [prod]`: every item of the table, all pages, one JSON object a line. Streams: memory
//! stays flat whatever the table's size.
#![deny(clippy::print_stdout)]

use clap::Parser;
use ddb_cli::{self as cli, errln, DdbArgs};
use ddb_core::item_json::{item_to_json, ItemFormat};
use ddb_core::scan;
use futures::StreamExt;
use std::process::ExitCode;

/// Print every item of the table (all pages, not only the first 1 MB), one JSON object a line;
/// the item count goes to stderr at the end.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// How items are printed
    #[arg(long, value_enum, default_value_t)]
    output: Output,
    /// Stop after this many items
    #[arg(long, value_name = "N")]
    limit: Option<u64>,
    /// Read with this many parallel scan segments
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    segments: u32,
    #[command(flatten)]
    ddb: DdbArgs,
}

#[derive(Clone, Copy, Default, clap::ValueEnum)]
enum Output {
    /// Attribute values unwrapped: {"pk": "MSG#..."}
    #[default]
    Json,
    /// Typed values, as DynamoDB's API and the AWS CLI write them: {"pk": {"S": "MSG#..."}}
    DynamodbJson,
}

fn main() -> ExitCode {
    cli::run(1, |Args { output, limit, segments, ddb }: Args| async move {
        let format = match output {
            Output::Json => ItemFormat::Json,
            Output::DynamodbJson => ItemFormat::DynamodbJson,
        };
        let ddb = ddb.connect().await?;
        let mut out = cli::JsonLines::new();
        let mut items = scan::items(&ddb, segments);
        let mut count = 0u64;
        while limit.is_none_or(|l| count < l) {
            let Some(item) = items.next().await else {
                break;
            };
            out.write(&item_to_json(&item?, format))?;
            count += 1;
        }
        out.flush()?;
        errln!("{count} items");
        Ok(())
    })
}
