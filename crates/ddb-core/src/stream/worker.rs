//! The local runner of pattern E (`bin/ddb/stream-worker`): reads the table's stream the way
//! Lambda's event source mapping does and feeds [`super::handle`].
//!
//! - Every shard of the stream, parents before children (a split's records stay in order), read
//!   by [`super::shards::ShardReader`].
//! - Where to start: the saved position of each shard; for a shard without one, TRIM_HORIZON or,
//!   on the first start only, LATEST when asked (for the shards there were then).
//! - A batch's position is saved (to a file, atomically: write and rename) only after the handler
//!   applied all of it; records that failed are retried, with backoff, before the shard moves on.
//!   A kill between the two re-delivers the batch, which the handler makes harmless.
//! - Stops cleanly when `shutdown` resolves (Ctrl-C): the batch in hand is finished and saved.

pub use super::shards::StartAt;
use super::shards::{Batch, Positions, ShardReader};
use super::{handle, EventKind, Record};
use crate::error::{input, Error, Result};
use crate::records::Item;
use crate::target::Target;
use crate::Ddb;
use aws_config::SdkConfig;
use aws_sdk_dynamodbstreams::types::{AttributeValue as StreamValue, OperationType};
use aws_sdk_dynamodbstreams::Client;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
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
    /// Records skipped: they can never be applied (a malformed message row, an item DynamoDB
    /// refuses); each was logged with its keys.
    pub skipped: u64,
    /// Records given up after [`BATCH_ATTEMPTS`] failed attempts (as Lambda's
    /// `MaximumRetryAttempts`); each batch was logged.
    pub given_up: u64,
}

/// How many times a batch whose records keep failing is tried before the worker gives up on
/// them and moves on: a record never holds up its shard for ever. With the backoff's cap of 2 s,
/// about 20 s of trying.
pub const BATCH_ATTEMPTS: u32 = 12;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Saved {
    stream_arn: String,
    shards: Positions,
}

impl Saved {
    /// The saved positions of stream `arn`: none when the file is missing or was another stream's.
    fn load(path: &PathBuf, arn: &str) -> Result<Positions> {
        match std::fs::read(path) {
            Ok(bytes) => {
                let saved: Saved = serde_json::from_slice(&bytes)
                    .map_err(|e| input(format!("the worker's state file {} is not readable ({e}); delete it to start over", path.display())))?;
                // Another stream (the table was recreated, or DynamoDB Local restarted): start over.
                Ok(if saved.stream_arn == arn { saved.shards } else { Positions::new() })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Positions::new()),
            Err(e) => Err(Error::io(format!("cannot read the worker's state file {}", path.display()), e)),
        }
    }

    fn store(&self, path: &PathBuf) -> Result<()> {
        let fail = |e: std::io::Error| Error::io(format!("cannot write the worker's state file {}", path.display()), e);
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
                    _ => {
                        Err(Error::NotFound(format!("table {} has no stream; recreate it with ./bin/ddb/schema-load, which enables one", ddb.table)))
                    }
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
    let mut worker = Worker { ddb, opts, report, totals: Totals::default(), attempt: 0 };
    let mut start_at = opts.start_at;
    loop {
        let Some(arn) = stream_arn(ddb, opts, &mut shutdown, report).await? else {
            return Ok(worker.totals);
        };
        let positions = Saved::load(&opts.state, &arn)?;
        // LATEST only on the first start: later, a shard without a position is one to read whole.
        let from = if positions.is_empty() { start_at } else { StartAt::TrimHorizon };
        let reader = ShardReader::new(ddb, streams, &arn, from, positions).relist_every(RELIST);
        match worker.follow(reader, &mut shutdown).await {
            Ok(Flow::Stopped) => return Ok(worker.totals),
            // In the background (--wait-for-table), a server that went away or throttles is
            // waited for; the saved position makes the restart cheap.
            Err(e) if opts.wait_for_table && e.is_transient() => {
                report(Event::Note(format!("{e}; trying again in 2 s")));
                tokio::select! {
                    _ = shutdown.as_mut() => return Ok(worker.totals),
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

/// How often the shards are listed again, and the table checked for a new stream.
const RELIST: Duration = Duration::from_secs(5);

/// Why [`Worker::follow`] returned.
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

/// What stays the same over the streams the worker follows.
struct Worker<'a> {
    ddb: &'a Ddb,
    opts: &'a WorkerOptions,
    report: &'a dyn Fn(Event),
    totals: Totals,
    /// Failed attempts in a row, for the backoff.
    attempt: u32,
}

impl Worker<'_> {
    /// Hands out `reader`'s batches to the handler until `shutdown` resolves or the table gets
    /// another stream. A batch's position is saved once all of it was applied; a batch that failed
    /// comes again after a backoff.
    async fn follow<S: Future>(&mut self, mut reader: ShardReader, shutdown: &mut std::pin::Pin<&mut S>) -> Result<Flow> {
        let mut checked = std::time::Instant::now();
        loop {
            if checked.elapsed() > RELIST {
                if !same_stream(self.ddb, reader.arn()).await? {
                    return Ok(Flow::StreamChanged);
                }
                checked = std::time::Instant::now();
            }
            match reader.next().await? {
                Some(batch) => {
                    if self.apply(&batch).await? {
                        reader.done(batch);
                        self.store(&reader)?;
                    }
                    if futures::poll!(shutdown.as_mut()).is_ready() {
                        break;
                    }
                }
                None => tokio::select! {
                    _ = shutdown.as_mut() => break,
                    _ = tokio::time::sleep(self.opts.idle) => {}
                },
            }
        }
        self.store(&reader)?;
        Ok(Flow::Stopped)
    }

    /// Applies `batch`; true when it is done with: applied, or given up after
    /// [`BATCH_ATTEMPTS`]. After a failure, waits the backoff first. A server that does not
    /// answer is the server's fault, not the records': its failures count no attempt.
    async fn apply(&mut self, batch: &Batch) -> Result<bool> {
        let records: Vec<Record> = batch.records.iter().filter_map(convert).collect();
        if records.is_empty() {
            return Ok(true);
        }
        let outcome = handle(self.ddb, &records).await;
        (self.report)(Event::Batch(&outcome));
        for note in &outcome.notes {
            (self.report)(Event::Note(note.clone()));
        }
        for s in &outcome.skipped {
            (self.report)(Event::Note(format!("skipped record {} of item {}: {}", s.sequence_number, s.keys, s.reason)));
        }
        self.totals.records += records.len() as u64;
        self.totals.moved += outcome.moved;
        self.totals.skipped += outcome.skipped.len() as u64;
        if outcome.failed.is_empty() {
            self.attempt = 0;
            return Ok(true);
        }
        self.totals.retries += 1;
        // The next read of the stream meets the same server: it waits for it (--wait-for-table)
        // or ends the worker with its error.
        if !outcome.unreachable {
            self.attempt += 1;
        }
        if self.attempt >= BATCH_ATTEMPTS {
            self.attempt = 0;
            self.totals.given_up += outcome.failed.len() as u64;
            (self.report)(Event::Note(format!(
                "gave up on {} record(s) after {BATCH_ATTEMPTS} attempts ({}); their conversations' group rows may be behind their newest message: ./bin/ddb/check --repair moves them",
                outcome.failed.len(),
                outcome.errors.join("; ")
            )));
            return Ok(true);
        }
        // The same iterator again after a pause; the handler makes the repeat harmless.
        for e in &outcome.errors {
            (self.report)(Event::Note(format!("{e}; retrying")));
        }
        tokio::time::sleep(crate::write::backoff(self.attempt)).await;
        Ok(false)
    }

    fn store(&self, reader: &ShardReader) -> Result<()> {
        Saved { stream_arn: reader.arn().to_string(), shards: reader.positions().clone() }.store(&self.opts.state)
    }
}
