//! The local runner of pattern E (`bin/ddb/stream-worker`): reads the table's stream the way
//! Lambda's event source mapping does and feeds [`super::handle`].
//!
//! - Every shard of the stream, parents before children (a split's records stay in order).
//! - Where to start: the saved position of each shard; for a shard without one, TRIM_HORIZON or,
//!   on the first start only, LATEST when asked.
//! - A batch's position is saved (to a file, atomically: write and rename) only after the handler
//!   applied all of it; records that failed are retried, with backoff, before the shard moves on.
//!   A kill between the two re-delivers the batch, which the handler makes harmless.
//! - Stops cleanly when `shutdown` resolves (Ctrl-C): the batch in hand is finished and saved.

use super::{handle, EventKind, Record};
use crate::error::{input, Error, Result};
use crate::records::Item;
use crate::target::Target;
use crate::Ddb;
use aws_config::SdkConfig;
use aws_sdk_dynamodbstreams::types::{AttributeValue as StreamValue, OperationType, ShardIteratorType};
use aws_sdk_dynamodbstreams::Client;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

/// A DynamoDB Streams client for `target`, from the same configuration as the table's client.
pub fn streams_client(config: &SdkConfig, target: &Target) -> Client {
    let mut b = aws_sdk_dynamodbstreams::config::Builder::from(config);
    if let Target::Endpoint(url) = target {
        b = b.endpoint_url(url);
    }
    Client::from_conf(b.build())
}

/// Where a shard without a saved position starts on the first run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StartAt {
    /// The oldest record the stream still holds (24 hours on AWS).
    #[default]
    TrimHorizon,
    /// Only records written from now on.
    Latest,
}

/// How the worker runs.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Start position for shards that have none saved.
    pub start_at: StartAt,
    /// File that keeps the position of each shard.
    pub state: PathBuf,
    /// Pause between polls of a shard that had nothing new.
    pub idle: Duration,
    /// Wait for the table (and its stream) to appear instead of failing.
    pub wait_for_table: bool,
}

/// What the worker tells its caller as it goes (the library does not print).
#[derive(Debug)]
pub enum Event<'a> {
    /// A batch was applied (or partly failed and will be retried).
    Batch(&'a super::Outcome),
    /// Something worth a line in the log.
    Note(String),
}

/// What the worker did, for the last line it prints.
#[derive(Debug, Clone, Default)]
pub struct Totals {
    /// Stream records read.
    pub records: u64,
    /// Group rows moved.
    pub moved: u64,
    /// Batches retried after a failure.
    pub retries: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Saved {
    stream_arn: String,
    shards: BTreeMap<String, ShardPos>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct ShardPos {
    /// Sequence number of the last record applied.
    last: Option<String>,
    /// The shard is closed and fully read.
    done: bool,
}

impl Saved {
    fn load(path: &PathBuf, arn: &str) -> Result<Saved> {
        match std::fs::read(path) {
            Ok(bytes) => {
                let saved: Saved = serde_json::from_slice(&bytes)
                    .map_err(|e| input(format!("the worker's state file {} is not readable ({e}); delete it to start over", path.display())))?;
                // Another stream (the table was recreated, or DynamoDB Local restarted): start over.
                Ok(if saved.stream_arn == arn { saved } else { Saved { stream_arn: arn.into(), ..Saved::default() } })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Saved { stream_arn: arn.into(), ..Saved::default() }),
            Err(e) => Err(input(format!("cannot read the worker's state file {}: {e}", path.display()))),
        }
    }

    fn store(&self, path: &PathBuf) -> Result<()> {
        let fail = |e: std::io::Error| input(format!("cannot write the worker's state file {}: {e}", path.display()));
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(fail)?;
        }
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(self).expect("state serialises")).map_err(fail)?;
        std::fs::rename(&tmp, path).map_err(fail)
    }
}

/// A stream image as a table item (through serde_dynamo's conversions between the two SDKs).
fn convert_image(m: &HashMap<String, StreamValue>) -> Item {
    serde_dynamo::Item::from(m.clone()).into()
}

fn convert(r: &aws_sdk_dynamodbstreams::types::Record) -> Option<Record> {
    let kind = match r.event_name()? {
        OperationType::Insert => EventKind::Insert,
        OperationType::Modify => EventKind::Modify,
        OperationType::Remove => EventKind::Remove,
        _ => return None,
    };
    let d = r.dynamodb()?;
    Some(Record { sequence_number: d.sequence_number()?.to_string(), kind, new_image: d.new_image().map(convert_image) })
}

fn sdk<'a, E, R>(ddb: &'a Ddb, op: &'static str) -> impl Fn(aws_sdk_dynamodb::error::SdkError<E, R>) -> Error + 'a
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    move |e| {
        let mut ctx = ddb.ctx(op);
        ctx.service = "DynamoDB Streams";
        Error::from_sdk(e, &ctx)
    }
}

/// The table's stream ARN; waits for the table when asked.
async fn stream_arn<S: Future>(
    ddb: &Ddb,
    opts: &WorkerOptions,
    shutdown: &mut std::pin::Pin<&mut S>,
    report: &dyn Fn(Event),
) -> Result<Option<String>> {
    let mut said = false;
    loop {
        match crate::table::describe(ddb).await {
            Ok(t) => {
                return match t.latest_stream_arn() {
                    Some(arn) if t.stream_specification().is_some_and(|s| s.stream_enabled()) => Ok(Some(arn.to_string())),
                    _ => Err(input(format!("table {} has no stream; recreate it with ./bin/ddb/schema-load, which enables one", ddb.table))),
                };
            }
            Err(e @ (Error::TableMissing { .. } | Error::Unreachable { .. })) if opts.wait_for_table => {
                if !said {
                    report(Event::Note(format!("waiting for table {} ({e})", ddb.table)));
                    said = true;
                }
            }
            Err(e) => return Err(e),
        }
        tokio::select! {
            _ = shutdown.as_mut() => return Ok(None),
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// Reads the stream until `shutdown` resolves. `report` is told about each batch and about waits. When
/// the table is dropped and created again (a new stream), the worker follows the new stream.
pub async fn run<S: Future>(ddb: &Ddb, streams: &Client, opts: &WorkerOptions, shutdown: S, report: &dyn Fn(Event)) -> Result<Totals> {
    let mut shutdown = std::pin::pin!(shutdown);
    let mut totals = Totals::default();
    let mut start_at = opts.start_at;
    loop {
        let Some(arn) = stream_arn(ddb, opts, &mut shutdown, report).await? else {
            return Ok(totals);
        };
        match follow(ddb, streams, opts, start_at, &arn, &mut shutdown, report, &mut totals).await {
            Ok(Flow::Stopped) => return Ok(totals),
            // In the background (--wait-for-table), a server that went away or throttles is
            // waited for; the saved position makes the restart cheap.
            Err(e) if opts.wait_for_table && e.is_transient() => {
                report(Event::Note(format!("{e}; trying again in 2 s")));
                tokio::select! {
                    _ = shutdown.as_mut() => return Ok(totals),
                    _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                }
            }
            Err(e) => return Err(e),
            Ok(Flow::StreamChanged) => {
                report(Event::Note(format!("table {} was dropped or created again; following its new stream", ddb.table)));
                // Everything of a new table's stream is new.
                start_at = StartAt::TrimHorizon;
            }
        }
    }
}

/// Why [`follow`] returned.
enum Flow {
    Stopped,
    StreamChanged,
}

/// True when the table's current stream is still `arn`.
async fn same_stream(ddb: &Ddb, arn: &str) -> Result<bool> {
    match crate::table::describe(ddb).await {
        Ok(t) => Ok(t.latest_stream_arn() == Some(arn)),
        Err(Error::TableMissing { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

#[allow(clippy::too_many_arguments)]
async fn follow<S: Future>(
    ddb: &Ddb,
    streams: &Client,
    opts: &WorkerOptions,
    start_at: StartAt,
    arn: &str,
    shutdown: &mut std::pin::Pin<&mut S>,
    report: &dyn Fn(Event),
    totals: &mut Totals,
) -> Result<Flow> {
    let mut saved = Saved::load(&opts.state, arn)?;
    let first_run = saved.shards.is_empty();
    // Open iterators, by shard.
    let mut iters: BTreeMap<String, String> = BTreeMap::new();
    let mut backoff_attempt = 0u32;
    let mut shards = Vec::new();
    let mut described: Option<std::time::Instant> = None;
    loop {
        // Shards: all pages of DescribeStream, again every few seconds and when a shard closed.
        if described.is_none_or(|t| t.elapsed() > Duration::from_secs(5)) {
            if described.is_some() && !same_stream(ddb, arn).await? {
                return Ok(Flow::StreamChanged);
            }
            shards.clear();
            described = Some(std::time::Instant::now());
            let mut start: Option<String> = None;
            loop {
                let d = streams
                    .describe_stream()
                    .stream_arn(arn)
                    .set_exclusive_start_shard_id(start.clone())
                    .send()
                    .await
                    .map_err(sdk(ddb, "DescribeStream"))?;
                let desc = d.stream_description().ok_or_else(|| input("DescribeStream returned no description"))?;
                shards.extend(desc.shards().iter().cloned());
                match desc.last_evaluated_shard_id() {
                    Some(id) => start = Some(id.to_string()),
                    None => break,
                }
            }
        }
        let known: std::collections::HashSet<String> = shards.iter().filter_map(|s| s.shard_id().map(str::to_string)).collect();
        let mut busy = false;
        for shard in &shards {
            let Some(id) = shard.shard_id() else { continue };
            let pos = saved.shards.get(id).cloned().unwrap_or_default();
            if pos.done {
                continue;
            }
            // A child waits until its parent is read to the end.
            if let Some(parent) = shard.parent_shard_id() {
                if known.contains(parent) && !saved.shards.get(parent).is_some_and(|p| p.done) {
                    continue;
                }
            }
            if !iters.contains_key(id) {
                let mut req = streams.get_shard_iterator().stream_arn(arn).shard_id(id);
                req = match (&pos.last, start_at) {
                    (Some(seq), _) => req.shard_iterator_type(ShardIteratorType::AfterSequenceNumber).sequence_number(seq),
                    (None, StartAt::Latest) if first_run => req.shard_iterator_type(ShardIteratorType::Latest),
                    (None, _) => req.shard_iterator_type(ShardIteratorType::TrimHorizon),
                };
                let it = req.send().await.map_err(sdk(ddb, "GetShardIterator"))?;
                match it.shard_iterator() {
                    Some(i) => iters.insert(id.to_string(), i.to_string()),
                    None => continue,
                };
            }
            let iterator = iters[id].clone();
            let got = match streams.get_records().shard_iterator(&iterator).limit(1000).send().await {
                Ok(g) => g,
                Err(e) if e.as_service_error().is_some_and(|s| s.is_expired_iterator_exception()) => {
                    iters.remove(id);
                    busy = true;
                    continue;
                }
                Err(e) => return Err(sdk(ddb, "GetRecords")(e)),
            };
            let records: Vec<Record> = got.records().iter().filter_map(convert).collect();
            if !records.is_empty() {
                busy = true;
                let outcome = handle(ddb, &records).await;
                report(Event::Batch(&outcome));
                for note in &outcome.notes {
                    report(Event::Note(note.clone()));
                }
                totals.records += records.len() as u64;
                totals.moved += outcome.moved;
                if !outcome.failed.is_empty() {
                    // The same iterator again after a pause (it stays valid for 15 minutes and
                    // returns the same records); the handler makes the repeat harmless.
                    totals.retries += 1;
                    for e in &outcome.errors {
                        report(Event::Note(format!("{e}; retrying")));
                    }
                    tokio::time::sleep(crate::write::backoff(backoff_attempt)).await;
                    backoff_attempt += 1;
                    continue;
                }
                backoff_attempt = 0;
                let entry = saved.shards.entry(id.to_string()).or_default();
                entry.last = records.last().map(|r| r.sequence_number.clone());
            }
            match got.next_shard_iterator() {
                Some(next) => {
                    iters.insert(id.to_string(), next.to_string());
                }
                None => {
                    saved.shards.entry(id.to_string()).or_default().done = true;
                    iters.remove(id);
                    described = None;
                }
            }
            if !records.is_empty() || got.next_shard_iterator().is_none() {
                saved.store(&opts.state)?;
            }
        }
        if !busy {
            tokio::select! {
                _ = shutdown.as_mut() => break,
                _ = tokio::time::sleep(opts.idle) => {}
            }
        } else if futures::poll!(shutdown.as_mut()).is_ready() {
            break;
        }
    }
    saved.store(&opts.state)?;
    Ok(Flow::Stopped)
}
