//! `stream-lag`: pattern E's lag, for bench/stream. Writes messages into G seeded conversations
//! (one writer per conversation, one message at a time) and measures, for each, the time from
//! the end of its PutItem to both group rows carrying it; prints p50, p99 and max.
//! The stream is read by ddb-core's shard reader (`stream::shards`), as the stream worker reads it.
//!
//! It watches the table's stream, not the table: the group rows' moves arrive there as new
//! images, so the measurement adds no load to the server under test (polling the rows of ten
//! conversations every 20 ms had cost the server 500 queries a second). Each open shard is read
//! every 10 ms when idle; writers sleep until the reader has news.
//!
//! `--json` prints the figures as one JSON object instead: messages, groups, p50_ms, p95_ms,
//! p99_ms, max_ms (whole milliseconds), raw.
//!
//! `--raw` is the probe of the stream itself, with no consumer running: the time from the end of
//! each PutItem to its own record in the stream, what no consumer can go below.

#![deny(clippy::print_stdout)]

use clap::Parser;
use ddb_cli::{self as cli, DdbFlags, PgArgs};
use ddb_core::records::{Item, MessageGroupRow, MessageRow, User};
use ddb_core::stream::shards::{Positions, ShardReader};
use ddb_core::stream::worker::StartAt;
use ddb_core::{conversation, patterns, seed, Ddb};
use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use tokio::task::JoinHandle;
use uuid::Uuid;

/// Measure the lag of pattern E (a stream worker or Lambda must be running against the table), or
/// with --raw the lag of the stream itself (then nothing must consume it).
#[derive(Parser)]
struct Args {
    #[command(flatten)]
    ddb: DdbFlags,
    #[command(flatten)]
    pg: PgArgs,
    /// Messages in all
    #[arg(long, default_value_t = 1000)]
    messages: u64,
    /// Seeded conversations to spread them over (seed --groups G first)
    #[arg(long, default_value_t = 10)]
    groups: u64,
    /// Give up on a message after this many seconds
    #[arg(long, default_value_t = 30)]
    timeout: u64,
    /// Measure the stream itself: PutItem to its record in the stream (no consumer must run)
    #[arg(long)]
    raw: bool,
    /// Print the figures as one JSON object (messages, groups, p50_ms, p95_ms, p99_ms, max_ms, raw)
    #[arg(long)]
    json: bool,
}

/// What the stream has shown so far, and when it arrived.
#[derive(Default)]
struct Seen {
    /// Message rows, by message_uuid.
    messages: HashMap<Uuid, Instant>,
    /// Group rows, by owner and conversation: the newest message time and when it arrived.
    groups: HashMap<(Uuid, Uuid), (OffsetDateTime, Instant)>,
}

/// What the reader shares with the writers: what it has seen, and a wake-up after each batch (and
/// when it stops), so that writers wait without polling.
#[derive(Default)]
struct Shared {
    seen: Mutex<Seen>,
    changed: tokio::sync::Notify,
}

/// Reads every shard of the table's stream (ddb-core's shard reader) until the process ends,
/// noting each new image in `seen`. Shards open at the start are read from LATEST, later ones
/// from TRIM_HORIZON. Sends `()` on `ready` after the first pass that found nothing: then every
/// open shard has its iterator. Lists the shards again every second.
async fn read_stream(mut reader: ShardReader, shared: Arc<Shared>, ready: tokio::sync::oneshot::Sender<()>) -> anyhow::Result<()> {
    let mut ready = Some(ready);
    loop {
        let Some(batch) = reader.next().await? else {
            if let Some(r) = ready.take() {
                let _ = r.send(());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        note(&shared, &batch.records);
        reader.done(batch);
        shared.changed.notify_waiters();
    }
}

/// Notes the rows of `records`' new images in `shared.seen`, as arrived now. An image becomes a
/// table item through serde_dynamo (the two SDKs' attribute types), then a typed row.
fn note(shared: &Shared, records: &[aws_sdk_dynamodbstreams::types::Record]) {
    let now = Instant::now();
    let mut seen = shared.seen.lock().expect("not poisoned");
    for image in records.iter().filter_map(|r| r.dynamodb()?.new_image()) {
        let item: Item = serde_dynamo::Item::from(image.clone()).into();
        if let Ok(m) = MessageRow::from_item(&item) {
            seen.messages.entry(m.message_uuid).or_insert(now);
        } else if let Ok(g) = MessageGroupRow::from_item(&item) {
            let e = seen.groups.entry((g.owner_uuid, g.message_group_uuid)).or_insert((OffsetDateTime::UNIX_EPOCH, now));
            if g.last_message_at > e.0 {
                *e = (g.last_message_at, now);
            }
        }
    }
}

/// The figures, in milliseconds: nearest-rank percentiles of `lags`.
fn figures(mut lags: Vec<Duration>, raw: bool) -> serde_json::Value {
    lags.sort();
    let pct = |p: f64| lags[((lags.len() as f64 * p).ceil() as usize).clamp(1, lags.len()) - 1].as_secs_f64() * 1000.0;
    let ms = |p: f64| pct(p).round() as u64;
    serde_json::json!({
        "messages": lags.len(),
        "p50_ms": ms(0.5),
        "p95_ms": ms(0.95),
        "p99_ms": ms(0.99),
        "max_ms": ms(1.0),
        "raw": raw,
    })
}

/// What every writer shares: the table, the two speakers, the stream's news and its reader.
struct Writers<'a> {
    args: &'a Args,
    ddb: &'a Ddb,
    users: &'a [User],
    shared: &'a Shared,
    reader: &'a JoinHandle<anyhow::Result<()>>,
}

impl Writers<'_> {
    /// Conversation `k`'s writer: its messages one at a time, each awaited in the stream.
    async fn conversation(&self, k: u64) -> anyhow::Result<Vec<Duration>> {
        let args = self.args;
        let group = if args.groups == 1 { seed::COURSE_GROUP } else { seed::group_uuid(k) };
        let owners: Vec<(Uuid, Uuid)> = conversation::group_rows(self.ddb, group).await?.iter().map(|r| (r.row.owner_uuid, group)).collect();
        anyhow::ensure!(!owners.is_empty(), "conversation {group} has no group rows: run seed --groups {} first", args.groups);
        let mut lags = Vec::new();
        for i in 0..args.messages / args.groups {
            let m = patterns::create_message(self.ddb, group, &self.users[(i % 2) as usize], &format!("lag probe {k}/{i}")).await?;
            let start = Instant::now();
            let arrived = self.arrival(&m, &owners).await?;
            lags.push(arrived.saturating_duration_since(start));
        }
        Ok(lags)
    }

    /// When message `m` showed up: its own record (--raw), or the later of its group rows' moves.
    async fn arrival(&self, m: &MessageRow, owners: &[(Uuid, Uuid)]) -> anyhow::Result<Instant> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(self.args.timeout);
        loop {
            // Registered before looking, so that a batch noted in between still wakes us.
            let changed = self.shared.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let arrived = {
                let seen = self.shared.seen.lock().expect("not poisoned");
                if self.args.raw {
                    seen.messages.get(&m.message_uuid).copied()
                } else {
                    let moved = |o| seen.groups.get(o).filter(|(at, _)| *at >= m.created_at).map(|(_, when)| *when);
                    owners.iter().map(moved).collect::<Option<Vec<_>>>().and_then(|a| a.into_iter().max())
                }
            };
            if let Some(at) = arrived {
                return Ok(at);
            }
            anyhow::ensure!(!self.reader.is_finished(), "the stream reader stopped");
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                let timeout = self.args.timeout;
                anyhow::bail!(if self.args.raw {
                    format!("message {} did not show up in the stream within {timeout} s", m.message_uuid)
                } else {
                    format!("group rows of {} did not follow within {timeout} s: is the stream worker running?", m.message_group_uuid)
                });
            }
        }
    }
}

/// Starts the stream's reader and waits until it follows every open shard.
async fn start_reader(ddb: &Ddb, streams: &aws_sdk_dynamodbstreams::Client, shared: &Arc<Shared>) -> anyhow::Result<JoinHandle<anyhow::Result<()>>> {
    let table = ddb_core::table::describe(ddb).await?;
    let arn = table.latest_stream_arn().ok_or_else(|| anyhow::anyhow!("table {} has no stream", ddb.table))?.to_string();
    let stream = ShardReader::new(ddb, streams, &arn, StartAt::Latest, Positions::new()).relist_every(Duration::from_secs(1));
    let (tx, rx) = tokio::sync::oneshot::channel();
    let reader = tokio::spawn({
        let shared = shared.clone();
        async move {
            let end = read_stream(stream, shared.clone(), tx).await;
            shared.changed.notify_waiters();
            end
        }
    });
    if rx.await.is_err() {
        return Err(reader.await?.expect_err("the reader ends only on an error"));
    }
    Ok(reader)
}

async fn run(args: Args) -> anyhow::Result<()> {
    if args.groups == 0 || args.messages < args.groups {
        return Err(cli::usage("--messages must be at least --groups, and --groups at least 1"));
    }
    let (ddb, config) = args.ddb.connect_with_config(false).await?;
    let users = args.pg.users(&["yaya2devops", "bayko"]).await?;
    let shared: Arc<Shared> = Arc::default();
    let streams = ddb_core::stream::worker::streams_client(&config, &ddb.target);
    let reader = start_reader(&ddb, &streams, &shared).await?;
    let writers = Writers { args: &args, ddb: &ddb, users: &users, shared: &shared, reader: &reader };
    let lags = futures::future::try_join_all((0..args.groups).map(|k| writers.conversation(k))).await;
    // A writer that saw the reader stop says so; the reader's own error says why.
    let lags = match lags {
        Err(_) if reader.is_finished() => return Err(reader.await?.expect_err("the reader ends only on an error")),
        other => other?,
    };
    let mut figures = figures(lags.into_iter().flatten().collect(), args.raw);
    if args.json {
        figures["groups"] = args.groups.into();
        cli::print_json_line(&figures)?;
    } else {
        cli::outln!(
            "{} messages over {} conversations: lag p50 {} ms, p99 {} ms, max {} ms",
            figures["messages"],
            args.groups,
            figures["p50_ms"],
            figures["p99_ms"],
            figures["max_ms"]
        )?;
    }
    Ok(())
}

fn main() -> ExitCode {
    match cli::parse::<Args>() {
        Ok(args) => cli::main(4, run(args)),
        Err(code) => code,
    }
}
