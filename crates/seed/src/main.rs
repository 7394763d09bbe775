//! `bin/ddb/seed [prod]`: the course's conversation between two users of Postgres, written into
//! the table; validated completely before the first write, idempotent, and fast at any size.
#![deny(clippy::print_stdout)]

use clap::Parser;
use ddb_core::cli::{self, DdbArgs, PgArgs};
use ddb_core::outln;
use ddb_core::seed::{self, Conversation, SeedPlan, SpeakerMap};
use ddb_core::write::WriteOptions;
use ddb_core::{pg, records, table};
use std::cell::RefCell;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Seed the table with the course's conversation between yaya2devops and bayko: two
/// message-group rows and one message row per line. Everything is checked before the first write;
/// a re-run replaces the earlier seed instead of adding to it.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// `prod` for real AWS (as in the course: ./bin/ddb/seed prod); default: DynamoDB Local
    #[arg(value_name = "prod", value_parser = ["prod"])]
    prod: Option<String>,
    #[command(flatten)]
    ddb: DdbArgs,
    /// Conversation file of `Speaker: message` lines (default: the course's 24 lines)
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
    /// BatchWriteItem calls in flight
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=256))]
    concurrency: u64,
    /// No progress bar
    #[arg(long, short)]
    quiet: bool,
    /// With prod: replace an earlier seed without asking
    #[arg(long, short = 'y')]
    yes: bool,
    #[command(flatten)]
    pg: PgArgs,
    /// Seed as if the clock said this (RFC 3339, e.g. 2026-01-01T00:10:00Z): for reproducible
    /// output and for trying dates such as New Year
    #[arg(long, value_name = "TIMESTAMP", value_parser = parse_now)]
    now: Option<time::OffsetDateTime>,
}

fn parse_now(s: &str) -> Result<time::OffsetDateTime, String> {
    records::parse_ts(s).map_err(|e| format!("not an RFC 3339 timestamp with an offset ({e})"))
}

fn main() -> ExitCode {
    let args = Args::parse();
    cli::main(2, run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    // 1. Everything that needs no server: the conversation and the speakers.
    let mut speakers = SpeakerMap::parse(seed::COURSE_SPEAKERS, "course-speakers.txt")?;
    for s in &args.speaker {
        speakers.add(s)?;
    }
    let (bytes, source) = match &args.conversation {
        Some(path) => {
            (std::fs::read(path).map_err(|e| anyhow::anyhow!("cannot read conversation file {}: {e}", path.display()))?, path.display().to_string())
        }
        None => (seed::COURSE_CONVERSATION.as_bytes().to_vec(), "course-conversation.txt".to_string()),
    };
    let conv = Conversation::parse(&bytes, &source, &speakers)?;
    let [me, other] = conv.participants()?;

    // 2. The users, from Postgres.
    let url = &args.pg.connection_url;
    let db = pg::connect(url).await?;
    let mut users = pg::users_by_handle(&db, url, &[me.clone(), other.clone()]).await?;
    let mut take = |h: &str| {
        users.remove(h).ok_or_else(|| {
            let line = conv.lines.iter().find(|l| l.handle == h).map_or(0, |l| l.lineno);
            anyhow::anyhow!(
                "no user with handle {h} in database {} ({source}:{line}); add the user, or map the speaker to another handle with --speaker",
                pg::redact(url)
            )
        })
    };
    let (me, other) = (take(&me)?, take(&other)?);
    let plan = SeedPlan::new(&conv, me, other, args.messages, args.groups, args.now.map_or_else(records::now, truncate_us))?;

    // 3. The table must exist.
    let ddb = args.ddb.connect(args.prod.is_some()).await?;
    table::describe(&ddb).await?;

    // 4. Write. The phases are remembered with their start: the last line's rate counts the
    // writing time only, and an error says how far the run got.
    let bar = cli::progress_bar(plan.total_items(), args.quiet);
    let phases: RefCell<Vec<(String, u64, Instant)>> = RefCell::new(Vec::new());
    let phase = |name: &str, n: u64| {
        phases.borrow_mut().push((name.to_string(), n, Instant::now()));
        bar.set_message(name.to_string());
        bar.set_length(n);
        bar.set_position(0);
    };
    let opts = WriteOptions { concurrency: args.concurrency as usize, ..WriteOptions::default() };
    let watch = (!ddb.target.is_aws() && plan.total_items() >= 20_000).then(|| tokio::spawn(watch_rate(bar.clone())));
    // The prod guard: replacing an earlier seed in AWS deletes rows; ask first.
    let prod_guard = ddb.target.is_aws() && !args.yes;
    let approve = |n: u64| {
        !prod_guard || {
            bar.suspend(|| cli::confirm(&format!("This deletes {n} rows of an earlier seed from {} in AWS. Type yes to go on: ", ddb.table), "yes"))
                .unwrap_or(false)
        }
    };
    let result = seed::run(&ddb, &plan, opts, &bar, &phase, &approve).await;
    let ended = Instant::now();
    if let Some(w) = watch {
        w.abort();
    }
    // Read before finishing: finishing moves the bar to its end.
    let done = bar.position();
    bar.finish_and_clear();
    let phases = phases.into_inner();
    let report = match (result, phases.last()) {
        (Ok(report), _) => report,
        (Err(e), None) => return Err(e.into()),
        (Err(e), Some((name, n, _))) => {
            anyhow::bail!("{e}; the seed stopped while {name} ({done} of {n} items done); run it again to finish (it replaces the partial seed)")
        }
    };
    let writing_from = phases.iter().rev().find(|(name, ..)| name.starts_with("writing")).or(phases.last()).map_or(ended, |p| p.2);
    let secs = (ended - writing_from).as_secs_f64();
    let cleared = match phases.iter().find(|(name, ..)| name.starts_with("clearing")).or(phases.first()) {
        Some((_, _, from)) if report.deleted > 0 => {
            format!("; replaced the earlier seed ({} items), cleared in {:.2} s", report.deleted, (writing_from - *from).as_secs_f64())
        }
        _ => String::new(),
    };
    outln!(
        "seeded {} messages in {} conversation(s) between {} and {} into {} at {}: {} items written in {secs:.2} s ({:.0} items/s){cleared}",
        plan.messages,
        plan.groups,
        plan.me.handle,
        plan.other.handle,
        ddb.table,
        ddb.target.label(),
        report.written,
        report.written as f64 / secs.max(1e-6)
    )?;
    Ok(())
}

/// The table keeps microseconds.
fn truncate_us(t: time::OffsetDateTime) -> time::OffsetDateTime {
    t.replace_nanosecond(t.nanosecond() / 1000 * 1000).expect("valid nanosecond")
}

/// DynamoDB Local slows down for good once it holds many stream records (SPEC.md): say so, and
/// how to reset it, when the rate collapses.
async fn watch_rate(bar: indicatif::ProgressBar) {
    let mut last = bar.position();
    loop {
        tokio::time::sleep(Duration::from_secs(10)).await;
        let now = bar.position();
        let rate = (now.saturating_sub(last)) / 10;
        if now > 0 && rate < 300 {
            eprintln!(
                "note: DynamoDB Local is writing only {rate} items/s; it slows down for good once it holds many stream records. \
                 ./bin/local/reset restarts it empty (then ./bin/ddb/schema-load and seed again)"
            );
            return;
        }
        last = now;
    }
}
