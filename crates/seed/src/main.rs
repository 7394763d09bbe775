//! `bin/ddb/seed [prod]`: the course's conversation between two users of Postgres, written into
//! the table; validated completely before the first write, idempotent, and fast at any size.
#![deny(clippy::print_stdout)]

use anyhow::Context as _;
use clap::Parser;
use ddb_cli::{self as cli, outln, Bar, DdbArgs, PgArgs, WriteArgs};
use ddb_core::seed::{self, SeedRequest};
use ddb_core::{records, table};
use std::path::PathBuf;
use std::process::ExitCode;

/// Seed the table with the course's conversation between yaya2devops and bayko: two
/// message-group rows and one message row per line. Everything is checked before the first write;
/// a re-run replaces the earlier seed instead of adding to it.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Conversation file of `Speaker: message` lines, `-` for standard input (default: the course's 24 lines)
    #[arg(long, value_name = "FILE")]
    conversation: Option<PathBuf>,
    /// Map a speaker to a handle of the users table; repeatable; adds to or replaces the course's
    /// map (Yaya2DevOps=yaya2devops, Fan123=bayko, Fan=bayko)
    #[arg(long, value_name = "NAME=HANDLE")]
    speaker: Vec<String>,
    /// Write this many messages, cycling the conversation (scale mode)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    messages: Option<u64>,
    /// Spread the messages over this many conversations between the two users
    #[arg(long, value_name = "G", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    groups: u64,
    #[command(flatten)]
    write: WriteArgs,
    /// With prod: replace an earlier seed without asking
    #[arg(long, short = 'y')]
    yes: bool,
    #[command(flatten)]
    pg: PgArgs,
    /// Seed as if the clock said this (RFC 3339, e.g. 2026-01-01T00:10:00Z): for reproducible
    /// output and for trying dates such as New Year; from 0001-01-02 to a year from now
    #[arg(long, value_name = "TIMESTAMP", value_parser = |s: &str| records::parse_ts(s).map_err(|e| format!("not an RFC 3339 timestamp with an offset ({e})")))]
    now: Option<time::OffsetDateTime>,
    #[command(flatten)]
    ddb: DdbArgs,
}

fn main() -> ExitCode {
    cli::run(2, |Args { conversation, speaker, messages, groups, write, yes, pg, now, ddb }: Args| async move {
        let request = SeedRequest { conversation, speakers: speaker, messages, groups, now };
        let plan = request.plan(&pg.connection_url).await?;
        let ddb = ddb.connect().await?;
        table::describe(&ddb).await?;
        let bar = Bar::new(plan.total_items(), write.quiet);
        // Replacing an earlier seed in AWS deletes rows: ask first.
        let ask = ddb.target.is_aws() && !yes;
        let prompt = |n| format!("This deletes {n} rows of an earlier seed from {} in AWS. Type yes to go on: ", ddb.table);
        let approve = |n: u64| !ask || bar.suspend(|| cli::confirm(&prompt(n), "yes")).unwrap_or(false);
        // Ctrl-C or SIGTERM stops the run cleanly: the lock is given back, the error says how far
        // it got, and the exit code is 130.
        let result = seed::run_until(&ddb, &plan, write.options(), &bar, &approve, cli::shutdown_signal()).await;
        bar.clear();
        let report = result?;
        // The seed is written by now: a report that cannot be printed says so.
        let done = || format!("the seed of table {} is done ({} items written)", ddb.table, report.written);
        if write.json {
            return cli::print_json_line(&report.figures(&plan, &ddb)).with_context(done);
        }
        outln!("{}", cli::escape(&report.summary(&plan, &ddb))).with_context(done)?;
        Ok(())
    })
}
