//! The local runner of pattern E (`bin/ddb/stream-worker`): reads the table's stream the way
//! Lambda's event source mapping does and feeds [`super::handle`].
//!
//! - Every shard of the stream, parents before children (a split's records stay in order), read
//!   by [`super::shards::ShardReader`].
//! - Where to start: the saved position of each shard; for a shard without one, TRIM_HORIZON or,
//!   on the first start only, LATEST when asked (for the shards there were then).
//! - One worker per state file: the file is locked at start (a second worker on it refuses,
//!   naming the first).
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
use std::fs::{File, OpenOptions, TryLockError};
use std::future::Future;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A DynamoDB Streams client for `target`, from the same configuration as the table's client.
pub fn streams_client(config: &SdkConfig, target: &Target) -> Client {
    crate::target::client(config, target)
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

/// The lock file of state file `state`: beside it, `.lock` in place of its extension (so that the
/// name is no longer than the state file's `.json` one). The state file itself cannot carry the
/// lock: every save replaces it (write, then rename), and a lock on the replaced file guards
/// nothing.
fn lock_path(state: &Path) -> PathBuf {
    match state.extension() {
        Some(e) if e == "lock" => state.with_extension("lock.lock"),
        _ => state.with_extension("lock"),
    }
}

/// The largest state file the worker reads: a saved position takes about 100 bytes a shard, so
/// this is far more than any stream's; a larger file is not one of ours, and reading it would take
/// as much memory.
pub const STATE_LIMIT: u64 = 16 * 1024 * 1024;

/// Refuses a state path that exists and is not a regular file, or is larger than
/// [`STATE_LIMIT`]: run before anything is created beside it (the lock file). A device such as
/// `/dev/zero` would be read without end, a FIFO would block the read for ever, a directory
/// would fail only at the first save. A path that does not exist is fine: the first save creates it.
/// [`run`] checks it first; a caller may check it before it says anything.
pub fn check_state(path: &Path) -> Result<()> {
    match std::fs::metadata(path) {
        Ok(m) => state_shape(path, &m),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(format!("cannot read the worker's state file {}", path.display()), e)),
    }
}

/// [`check_state`] of a file whose metadata is `m`.
fn state_shape(path: &Path, m: &std::fs::Metadata) -> Result<()> {
    use std::os::unix::fs::FileTypeExt;
    let t = m.file_type();
    if t.is_file() {
        return if m.len() > STATE_LIMIT { Err(too_large(path, m.len())) } else { Ok(()) };
    }
    let kind = if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a named pipe (FIFO)"
    } else if t.is_char_device() || t.is_block_device() {
        "a device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "a special file"
    };
    Err(input(format!(
        "the worker's state file {} is {kind}, not a regular file: give --state the path of a file (one that does not exist yet is created)",
        path.display()
    )))
}

fn too_large(path: &Path, len: u64) -> Error {
    input(format!(
        "the worker's state file {} is {len} bytes, more than a state file of ours holds (at most 16 MiB): give --state another file, or delete it to start over",
        path.display()
    ))
}

impl Saved {
    /// Takes the state file `path` for this process, for as long as the returned file is kept: a
    /// second worker on the same file would save its positions over the first's. The kernel's
    /// lock decides (released when the process ends, however it ends); the pid written into the
    /// lock file only names the holder in the second worker's error.
    fn lock(path: &Path) -> Result<File> {
        let lock = lock_path(path);
        let fail = |e: std::io::Error| Error::io(format!("cannot lock the worker's state file {} (lock file {})", path.display(), lock.display()), e);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(fail)?;
        }
        let mut file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&lock).map_err(fail)?;
        match file.try_lock() {
            Ok(()) => {
                file.set_len(0).and_then(|()| writeln!(file, "{}", std::process::id())).map_err(fail)?;
                Ok(file)
            }
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                let pid = text.trim().parse::<u32>().map(|p| format!(" (pid {p})")).unwrap_or_default();
                Err(Error::Conflict(format!(
                    "another stream worker{pid} is using the state file {}: stop it first, or give this one a state file of its own with --state FILE",
                    path.display()
                )))
            }
            Err(TryLockError::Error(e)) => Err(fail(e)),
        }
    }

    /// The saved positions of stream `arn`: none when the file is missing or was another stream's.
    /// The read is bounded by [`STATE_LIMIT`], and the file checked again first (it may have been
    /// replaced since the start: opening a FIFO would block).
    fn load(path: &Path, arn: &str) -> Result<Positions> {
        let fail = |e: std::io::Error| Error::io(format!("cannot read the worker's state file {}", path.display()), e);
        check_state(path)?;
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Positions::new()),
            Err(e) => return Err(fail(e)),
        };
        state_shape(path, &file.metadata().map_err(fail)?)?;
        let mut bytes = Vec::new();
        file.take(STATE_LIMIT + 1).read_to_end(&mut bytes).map_err(fail)?;
        if bytes.len() as u64 > STATE_LIMIT {
            return Err(too_large(path, bytes.len() as u64));
        }
        let saved: Saved = serde_json::from_slice(&bytes)
            .map_err(|e| input(format!("the worker's state file {} is not readable ({e}); delete it to start over", path.display())))?;
        // Another stream (the table was recreated, or DynamoDB Local restarted): start over.
        Ok(if saved.stream_arn == arn { saved.shards } else { Positions::new() })
    }

    /// Saves atomically: a temporary file beside `path`, renamed over it. The temporary file has a
    /// name of its own on every save, so that no two writers ever write into the same one.
    fn store(&self, path: &Path) -> Result<()> {
        let fail = |e: std::io::Error| Error::io(format!("cannot write the worker's state file {}", path.display()), e);
        let dir = path.parent().unwrap_or(Path::new(""));
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir).map_err(fail)?;
        }
        let tmp = dir.join(format!(".stream-worker-{}.tmp", uuid::Uuid::new_v4().simple()));
        let saved = std::fs::write(&tmp, serde_json::to_vec_pretty(self).expect("state serialises")).and_then(|()| std::fs::rename(&tmp, path));
        if saved.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        saved.map_err(fail)
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

/// The table's stream ARN; waits for the table when asked (`--wait-for-table`), saying so once.
/// Once the worker has `started`, a server that does not answer is its caller's to wait for,
/// with a line each time.
async fn stream_arn<S: Future>(
    ddb: &Ddb,
    opts: &WorkerOptions,
    started: bool,
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
            Err(e @ (Error::TableMissing { .. } | Error::Unreachable { .. }))
                if opts.wait_for_table && !(started && matches!(e, Error::Unreachable { .. })) =>
            {
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
///
/// At start, a table that is missing or a server that does not answer is an error, unless
/// `wait_for_table`. Once the worker has found its stream, a server that goes away (killed,
/// restarted, hung) or throttles is waited for, with or without `wait_for_table`: a line each
/// time, another try every 2 s, until it answers again or `shutdown` resolves. A long-running
/// worker rides out a restart of its server; the saved position makes going on cheap.
pub async fn run<S: Future>(ddb: &Ddb, streams: &Client, opts: &WorkerOptions, shutdown: S, report: &dyn Fn(Event)) -> Result<Totals> {
    check_state(&opts.state)?;
    let _state_lock = Saved::lock(&opts.state)?;
    let mut shutdown = std::pin::pin!(shutdown);
    let mut worker = Worker { ddb, opts, report, totals: Totals::default(), attempt: 0 };
    let mut start_at = opts.start_at;
    let mut started = false;
    loop {
        let flow = match stream_arn(ddb, opts, started, &mut shutdown, report).await {
            Ok(None) => return Ok(worker.totals),
            Ok(Some(arn)) => {
                started = true;
                let positions = Saved::load(&opts.state, &arn)?;
                // LATEST only on the first start: later, a shard without a position is one to read whole.
                let from = if positions.is_empty() { start_at } else { StartAt::TrimHorizon };
                let reader = ShardReader::new(ddb, streams, &arn, from, positions).relist_every(RELIST).saved_in(&opts.state);
                worker.follow(reader, &mut shutdown).await
            }
            Err(e) => Err(e),
        };
        match flow {
            Ok(Flow::Stopped) => return Ok(worker.totals),
            Ok(Flow::StreamChanged) => {
                report(Event::Note(format!("table {} was dropped or created again; following its new stream", ddb.table)));
                // Everything of a new table's stream is new.
                start_at = StartAt::TrimHorizon;
            }
            Err(e) if started && e.is_transient() => {
                report(Event::Note(format!("{e}; trying again in 2 s (Ctrl-C stops the worker)")));
                tokio::select! {
                    _ = shutdown.as_mut() => return Ok(worker.totals),
                    _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                }
            }
            Err(e) => return Err(e),
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
        // The next read of the stream meets the same server: the worker waits for it (see [`run`]).
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

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        std::env::temp_dir().join(format!("worker-{tag}-{}", uuid::Uuid::new_v4().simple()))
    }

    /// Saves into one state file from several threads at once all succeed and leave a whole file
    /// and no temporary one: each save writes a temporary file of its own (they shared one, and a
    /// rename then found it gone: "cannot write the worker's state file").
    #[test]
    fn saves_at_once_never_share_a_temporary_file() {
        let dir = temp_dir("saves");
        let path = dir.join("state.json");
        std::thread::scope(|s| {
            for i in 0..4 {
                let path = &path;
                s.spawn(move || {
                    for _ in 0..200 {
                        Saved { stream_arn: format!("arn-{i}"), shards: Positions::new() }.store(path).unwrap();
                    }
                });
            }
        });
        let saved: Saved = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert!(saved.stream_arn.starts_with("arn-"));
        let names: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["state.json"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The state file's lock is the kernel's: a second taker is refused, naming the first's pid,
    /// until the first lets go. Its file is `.lock` in place of `.json` (no longer a name).
    #[test]
    fn a_state_file_is_locked_by_one_taker_at_a_time() {
        let dir = temp_dir("lock");
        let path = dir.join("state.json");
        let first = Saved::lock(&path).unwrap();
        assert_eq!(std::fs::read_to_string(dir.join("state.lock")).unwrap(), format!("{}\n", std::process::id()));
        match Saved::lock(&path) {
            Err(Error::Conflict(m)) => {
                assert!(m.contains(&format!("another stream worker (pid {}) is using the state file", std::process::id())), "{m}")
            }
            other => panic!("{other:?}"),
        }
        drop(first);
        Saved::lock(&path).unwrap();
        assert_eq!(lock_path(Path::new("a/b.lock")), Path::new("a/b.lock.lock"));
        assert_eq!(lock_path(Path::new("state")), Path::new("state.lock"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
