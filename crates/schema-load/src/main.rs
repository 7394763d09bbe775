//! `bin/ddb/schema-load [prod]`: creates the cruddur-messages table of SPEC.md and waits until it
//! is ACTIVE. An existing table is left as it is.
#![deny(clippy::print_stdout)]

use clap::{Parser, ValueEnum};
use ddb_cli::{self as cli, outln, DdbArgs};
use ddb_core::table::{self, Billing};
use ddb_core::Error;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Clone, Copy, Default, ValueEnum)]
enum Output {
    /// A few lines: keys, index, billing, stream
    #[default]
    Summary,
    /// The table description as JSON
    Json,
}

/// Create the cruddur-messages table (keys pk/sk, index message-group-sk-index, stream
/// NEW_IMAGE, 5/5 provisioned) and wait until it is ACTIVE. If it exists, nothing is changed.
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
        match table::create(&ddb, billing, Duration::from_secs(wait)).await {
            Ok(t) => match output {
                Output::Summary => outln!("created {}", table::summary(&t))?,
                Output::Json => outln!("{:#}", table::description_json(&t))?,
            },
            Err(Error::TableExists { table, target }) => outln!("table {table} already exists at {target}; left as it is")?,
            Err(e) => return Err(e.into()),
        }
        Ok(())
    })
}
