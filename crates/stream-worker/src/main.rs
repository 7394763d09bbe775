//! `bin/ddb/stream-worker [prod]`: pattern E locally. Reads the table's stream and keeps every
//! conversation's group rows on its newest message, as the messaging-stream Lambda does on AWS.
#![deny(clippy::print_stdout)]

use clap::Parser;
use ddb_cli::{self as cli, errln, DdbArgs};
use ddb_core::stream::worker::{self, StartAt, WorkerOptions};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Follow the table's stream and move each conversation's group rows to its newest message
/// (pattern E). Keeps its position in a state file, so a restart goes on where it stopped; stops
/// cleanly on Ctrl-C or SIGTERM. ./bin/local/up starts it in the background.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Where shards without a saved position start
    #[arg(long, value_enum, default_value_t)]
    from: From,
    /// State file (default: $XDG_STATE_HOME/cruddur-ddb/stream-<endpoint>-<table>.json; a name
    /// over 120 bytes keeps its start and a hash of the whole)
    #[arg(long, value_name = "FILE")]
    state: Option<PathBuf>,
    /// Pause between polls when there is nothing new, in milliseconds
    #[arg(long, value_name = "MS", default_value_t = 50, value_parser = clap::value_parser!(u64).range(10..=60_000))]
    idle_ms: u64,
    /// Wait for the table to be created instead of failing
    #[arg(long)]
    wait_for_table: bool,
    /// No line per batch
    #[arg(long, short)]
    quiet: bool,
    #[command(flatten)]
    ddb: DdbArgs,
}

#[derive(Clone, Copy, Default, clap::ValueEnum)]
enum From {
    /// The oldest record the stream still holds (24 hours on AWS)
    #[default]
    TrimHorizon,
    /// Only records written from now on
    Latest,
}

fn main() -> ExitCode {
    cli::run(1, |Args { from, state, idle_ms, wait_for_table, quiet, ddb }: Args| async move {
        let (ddb, config) = ddb.connect_with_config().await?;
        let streams = worker::streams_client(&config, &ddb.target);
        let opts = WorkerOptions {
            start_at: match from {
                From::TrimHorizon => StartAt::TrimHorizon,
                From::Latest => StartAt::Latest,
            },
            state: state.unwrap_or_else(|| cli::state_file(&format!("stream-{}-{}.json", ddb.target.label(), ddb.table))),
            idle: Duration::from_millis(idle_ms),
            wait_for_table,
        };
        // Before the line that names the file: a path that is no state file is the only line.
        worker::check_state(&opts.state)?;
        let (label, state) = (cli::escape(&ddb.target.label()).into_owned(), cli::escape(&opts.state.to_string_lossy()).into_owned());
        errln!("stream-worker: following the stream of {} at {label} (state: {state})", ddb.table);
        let report = move |e: worker::Event| match e {
            worker::Event::Batch(o) if !quiet && (o.messages > 0 || !o.failed.is_empty()) => {
                let retry = if o.failed.is_empty() { String::new() } else { format!(", {} record(s) to retry", o.failed.len()) };
                errln!("stream-worker: {} message(s), {} group row(s) moved{retry}", o.messages, o.moved);
            }
            worker::Event::Batch(_) => {}
            worker::Event::Note(n) => errln!("stream-worker: {}", cli::escape(&n)),
        };
        let t = worker::run(&ddb, &streams, &opts, cli::shutdown_signal(), &report).await?;
        errln!("stream-worker: stopped after {} record(s), {} group row(s) moved, {} retried batch(es)", t.records, t.moved, t.retries);
        Ok(())
    })
}
