//! `bin/ddb/schema-load [prod]`: creates the cruddur-messages table of SPEC.md and waits until it
//! is ACTIVE. An existing table is left as it is, and compared with ours: one of another shape
//! is an error that says what differs.
#![deny(clippy::print_stdout)]

use clap::{Parser, ValueEnum};
use ddb_cli::{self as cli, outln, DdbArgs};
use ddb_core::table::{self, Billing};
use std::process::ExitCode;
use std::time::Duration;

#[derive(Clone, Copy, Default, ValueEnum)]
enum Output {
    /// A few lines: keys, index, billing, stream
    #[default]
    Summary,
    /// The table description as JSON, with `existed` (true: it was there, nothing changed) and
    /// `differences` (how an existing table differs from ours)
    Json,
}

/// Create the cruddur-messages table (keys pk/sk, index message-group-sk-index, stream
/// NEW_IMAGE, 5/5 provisioned) and wait until it is ACTIVE. If it exists, nothing is changed; a
/// table of another shape (keys, index, stream) is an error that says what differs.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Pay per request instead of 5 RCU / 5 WCU provisioned capacity
    #[arg(long)]
    on_demand: bool,
    /// What to print once the table is ACTIVE
    #[arg(long, value_enum, default_value_t)]
    output: Output,
    /// How long to wait for the table to become ACTIVE, in seconds
    #[arg(long, default_value_t = 300, value_name = "SECS")]
    wait: u64,
    #[command(flatten)]
    ddb: DdbArgs,
}

fn main() -> ExitCode {
    cli::run(1, |Args { on_demand, output, wait, ddb }: Args| async move {
        let ddb = ddb.connect().await?;
        let billing = if on_demand { Billing::OnDemand } else { Billing::default() };
        let found = table::ensure(&ddb, billing, Duration::from_secs(wait)).await?;
        match output {
            Output::Json => outln!("{:#}", found.json())?,
            Output::Summary if !found.existed => outln!("created {}", table::summary(&found.description))?,
            Output::Summary if found.differences.is_empty() => outln!("table {} already exists at {}; left as it is", ddb.table, ddb.target)?,
            Output::Summary => {}
        }
        found.check(&ddb)?;
        Ok(())
    })
}
