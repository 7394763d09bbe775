//! `bin/ddb/stream-worker [prod]`: pattern E locally. Reads the table's stream and keeps every
//! conversation's group rows on its newest message, as the messaging-stream Lambda does on AWS.
#![deny(clippy::print_stdout)]

use clap::Parser;
use ddb_core::cli::{self, DdbArgs};
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
    /// `prod` for real AWS; default: DynamoDB Local
    #[arg(value_name = "prod", value_parser = ["prod"])]
    prod: Option<String>,
    #[command(flatten)]
    ddb: DdbArgs,
    /// Where shards without a saved position start
    #[arg(long, value_enum, default_value_t)]
    from: StartAt,
    /// State file (default: $XDG_STATE_HOME/cruddur-ddb/stream-<endpoint>-<table>.json)
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
}

fn default_state(label: &str, table: &str) -> PathBuf {
    let base = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(|| PathBuf::from("."));
    let clean: String = label.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    base.join("cruddur-ddb").join(format!("stream-{clean}-{table}.json"))
}

async fn shutdown() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    cli::main(1, async move {
        let prod = args.prod.is_some();
        let (ddb, config) = args.ddb.connect_with_config(prod).await?;
        let streams = worker::streams_client(&config, &ddb.target);
        let opts = WorkerOptions {
            start_at: args.from,
            state: args.state.clone().unwrap_or_else(|| default_state(&ddb.target.label(), &ddb.table)),
            idle: Duration::from_millis(args.idle_ms),
            wait_for_table: args.wait_for_table,
        };
        eprintln!("stream-worker: following the stream of {} at {} (state: {})", ddb.table, ddb.target.label(), opts.state.display());
        let quiet = args.quiet;
        let report = move |e: worker::Event| match e {
            worker::Event::Batch(o) if !quiet && (o.messages > 0 || !o.failed.is_empty()) => {
                let retry = if o.failed.is_empty() { String::new() } else { format!(", {} record(s) to retry", o.failed.len()) };
                eprintln!("stream-worker: {} message(s), {} group row(s) moved{retry}", o.messages, o.moved);
            }
            worker::Event::Batch(_) => {}
            worker::Event::Note(n) => eprintln!("stream-worker: {n}"),
        };
        let totals = worker::run(&ddb, &streams, &opts, shutdown(), &report).await?;
        eprintln!(
            "stream-worker: stopped after {} record(s), {} group row(s) moved, {} retried batch(es)",
            totals.records, totals.moved, totals.retries
        );
        Ok(())
    })
}
