//! A reader of every shard of one DynamoDB stream, shared by the local worker of pattern E
//! ([`super::worker`]) and bench-tools' `stream-lag`.
//!
//! - Every shard: all pages of DescribeStream, listed again every few seconds
//!   ([`ShardReader::relist_every`]) and as soon as a shard has been read to its end.
//! - Parents before children: a shard whose parent is still listed and not read to its end waits,
//!   so that the records of a split stay in order.
//! - Where a shard starts: after its position ([`Positions`], what the caller saved); without
//!   one, TRIM_HORIZON, or with [`StartAt::Latest`] LATEST for the shards of the first listing
//!   (a shard that appears later holds only records written after the reader started).
//! - An expired iterator is opened again from the position on the next pass.
//! - The caller decides when a batch counts: [`ShardReader::done`] moves the shard's position and
//!   iterator past it; a batch that is not done comes again, from the same iterator (valid for 15
//!   minutes, it returns the same records), on the next pass.
//!
//! The reader neither prints nor sleeps: [`ShardReader::next`] says when a whole pass found
//! nothing, and the caller decides how long to wait.

use crate::error::{Error, Result};
use crate::Ddb;
use aws_sdk_dynamodbstreams::error::ProvideErrorMetadata;
use aws_sdk_dynamodbstreams::operation::get_shard_iterator::{GetShardIteratorError, GetShardIteratorOutput};
use aws_sdk_dynamodbstreams::types::{Record, ShardIteratorType};
use aws_sdk_dynamodbstreams::Client;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

/// Where a shard without a saved position starts on the first run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StartAt {
    /// The oldest record the stream still holds (24 hours on AWS).
    #[default]
    TrimHorizon,
    /// Only records written from now on.
    Latest,
}

/// How far a shard has been read: what the caller keeps to go on after a restart.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardPos {
    /// Sequence number of the last record done.
    pub last: Option<String>,
    /// The shard is closed and read to its end.
    pub done: bool,
}

/// Positions by shard id.
pub type Positions = BTreeMap<String, ShardPos>;

/// Records of one shard, from one GetRecords. Either it has records, or it is the end of a
/// closed shard (or both).
#[derive(Debug)]
pub struct Batch {
    /// The shard's id.
    pub shard_id: String,
    /// The records, in the shard's order.
    pub records: Vec<Record>,
    /// The iterator after this batch; `None` when the shard is closed and this is its end.
    next: Option<String>,
}

impl Batch {
    /// This batch is the end of a closed shard.
    pub fn ends_shard(&self) -> bool {
        self.next.is_none()
    }
}

/// A shard as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Listed {
    id: String,
    parent: Option<String>,
}

/// Reads every shard of one stream; see the [module](self).
#[derive(Debug)]
pub struct ShardReader {
    ddb: Ddb,
    client: Client,
    arn: String,
    start_at: StartAt,
    relist_every: Duration,
    positions: Positions,
    shards: Vec<Listed>,
    /// Ids of the shards listed.
    known: HashSet<String>,
    /// Ids of the first listing's shards: the ones that start at `start_at` without a position.
    first: Option<HashSet<String>>,
    listed: Option<Instant>,
    /// Open iterators, by shard.
    iters: HashMap<String, String>,
    /// Index in `shards` of the next shard to read in this pass.
    cursor: usize,
    /// This pass handed out a batch or renewed an iterator.
    busy: bool,
    /// The file the positions came from, for the error about one that cannot be used.
    saved_in: Option<std::path::PathBuf>,
}

impl ShardReader {
    /// A reader of stream `arn` that goes on from `positions`; shards without a position start at
    /// `start_at` (see the [module](self)). `ddb` names the table and target in errors.
    pub fn new(ddb: &Ddb, client: &Client, arn: &str, start_at: StartAt, positions: Positions) -> Self {
        ShardReader {
            ddb: ddb.clone(),
            client: client.clone(),
            arn: arn.to_string(),
            start_at,
            relist_every: Duration::from_secs(5),
            positions,
            shards: Vec::new(),
            known: HashSet::new(),
            first: None,
            listed: None,
            iters: HashMap::new(),
            cursor: 0,
            busy: false,
            saved_in: None,
        }
    }

    /// Names the file that `positions` were read from, so that a position the stream cannot
    /// start from is said with it and what to do (see [`ShardReader::next`]).
    pub fn saved_in(mut self, file: &std::path::Path) -> Self {
        self.saved_in = Some(file.to_path_buf());
        self
    }

    /// How often the shards are listed again (default 5 s); also after a shard was read to its end.
    pub fn relist_every(mut self, every: Duration) -> Self {
        self.relist_every = every;
        self
    }

    /// The stream's ARN.
    pub fn arn(&self) -> &str {
        &self.arn
    }

    /// The position of every shard read so far: what to save after [`done`](Self::done).
    pub fn positions(&self) -> &Positions {
        &self.positions
    }

    /// The next batch of some shard, in passes over every shard that may be read. `None` when a
    /// whole pass found nothing new: every shard that may be read has an open iterator, and the
    /// caller waits before asking again. A batch that is not [`done`](Self::done) comes again on
    /// the next pass. A saved position that the stream cannot start from (not a sequence number,
    /// one the shard never had, or one older than the stream holds) is an [`Error::Input`] that
    /// names the file, the shard and the position: no retry can mend it.
    pub async fn next(&mut self) -> Result<Option<Batch>> {
        loop {
            if self.cursor == 0 && self.listed.is_none_or(|t| t.elapsed() > self.relist_every) {
                self.list().await?;
            }
            let Some(shard) = self.shards.get(self.cursor).cloned() else {
                self.cursor = 0;
                if std::mem::take(&mut self.busy) {
                    continue;
                }
                return Ok(None);
            };
            self.cursor += 1;
            if let Some(batch) = self.read(&shard).await? {
                self.busy = true;
                return Ok(Some(batch));
            }
        }
    }

    /// Counts `batch` as done: its shard's position moves to its last record and the shard is read
    /// on from after it. At the end of a closed shard, the shard is done and the shards are listed
    /// again (its children may be new).
    pub fn done(&mut self, batch: Batch) {
        let pos = self.positions.entry(batch.shard_id.clone()).or_default();
        if let Some(seq) = batch.records.last().and_then(|r| r.dynamodb()?.sequence_number()) {
            pos.last = Some(seq.to_string());
        }
        match batch.next {
            Some(next) => {
                self.iters.insert(batch.shard_id, next);
            }
            None => {
                pos.done = true;
                self.iters.remove(&batch.shard_id);
                self.listed = None;
            }
        }
    }

    /// Lists every shard: all pages of DescribeStream.
    async fn list(&mut self) -> Result<()> {
        let mut shards = Vec::new();
        let mut start: Option<String> = None;
        loop {
            let d = self
                .client
                .describe_stream()
                .stream_arn(&self.arn)
                .set_exclusive_start_shard_id(start.take())
                .send()
                .await
                .map_err(sdk(&self.ddb, "DescribeStream"))?;
            let desc = d.stream_description.ok_or_else(|| Error::Protocol("DescribeStream returned no description".into()))?;
            shards.extend(desc.shards.unwrap_or_default().into_iter().filter_map(|s| Some(Listed { id: s.shard_id?, parent: s.parent_shard_id })));
            match desc.last_evaluated_shard_id {
                Some(id) => start = Some(id),
                None => break,
            }
        }
        self.known = shards.iter().map(|s| s.id.clone()).collect();
        self.first.get_or_insert_with(|| self.known.clone());
        self.shards = shards;
        self.listed = Some(Instant::now());
        Ok(())
    }

    /// One GetRecords of `shard`, if it may be read now; `None` when it may not, or brought nothing.
    async fn read(&mut self, shard: &Listed) -> Result<Option<Batch>> {
        if !may_read(shard, &self.known, &self.positions) {
            return Ok(None);
        }
        let iterator = match self.iters.get(&shard.id) {
            Some(i) => i.clone(),
            None => match self.open(&shard.id).await? {
                Some(i) => i,
                None => return Ok(None),
            },
        };
        let got = match self.client.get_records().shard_iterator(iterator).limit(1000).send().await {
            Ok(g) => g,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_expired_iterator_exception()) => {
                // Opened again from the position on the next pass, which comes without a pause.
                self.iters.remove(&shard.id);
                self.busy = true;
                return Ok(None);
            }
            Err(e) => return Err(sdk(&self.ddb, "GetRecords")(e)),
        };
        let records = got.records.unwrap_or_default();
        match got.next_shard_iterator {
            Some(next) if records.is_empty() => {
                self.iters.insert(shard.id.clone(), next);
                Ok(None)
            }
            next => Ok(Some(Batch { shard_id: shard.id.clone(), records, next })),
        }
    }

    /// Opens an iterator of shard `id` where it starts (see [`start_of`]).
    async fn open(&mut self, id: &str) -> Result<Option<String>> {
        let first = self.first.as_ref().is_some_and(|f| f.contains(id));
        let (kind, after) = start_of(self.positions.get(id), self.start_at, first);
        let after = after.map(str::to_string);
        let it = match self.iterator(id, kind.clone(), after.as_deref()).await {
            Ok(it) => it,
            Err(e) => return Err(self.open_failed(id, after.as_deref(), e).await),
        };
        let it = it.shard_iterator;
        if let Some(i) = &it {
            self.iters.insert(id.to_string(), i.clone());
        }
        Ok(it)
    }

    /// One GetShardIterator of shard `id`.
    async fn iterator(&self, id: &str, kind: ShardIteratorType, after: Option<&str>) -> Result<GetShardIteratorOutput, IteratorError> {
        let request = self.client.get_shard_iterator().stream_arn(&self.arn).shard_id(id).shard_iterator_type(kind);
        request.set_sequence_number(after.map(str::to_string)).send().await
    }

    /// The error of a GetShardIterator of shard `id` that failed, opened after position `after`
    /// if any. There, the answer may be about the saved position rather than the server: a
    /// ValidationException (not a sequence number) or a TrimmedDataAccessException (older than
    /// the stream holds) always is; an InternalFailure (DynamoDB Local's answer to a number that
    /// the shard never had) is when the shard opens at TRIM_HORIZON and after the position fails
    /// again the same way. Anything else is the server's, transient or not as it says.
    async fn open_failed(&self, id: &str, after: Option<&str>, e: IteratorError) -> Error {
        let code = e.as_service_error().and_then(|s| s.code()).unwrap_or_default().to_string();
        let about_position = match (after, code.as_str()) {
            (Some(_), "ValidationException" | "TrimmedDataAccessException") => true,
            (Some(seq), "InternalFailure") => {
                self.iterator(id, ShardIteratorType::TrimHorizon, None).await.is_ok()
                    && self
                        .iterator(id, ShardIteratorType::AfterSequenceNumber, Some(seq))
                        .await
                        .is_err_and(|again| again.as_service_error().and_then(|s| s.code()) == Some("InternalFailure"))
            }
            _ => false,
        };
        let (Some(seq), true) = (after, about_position) else {
            return sdk(&self.ddb, "GetShardIterator")(e);
        };
        let answer = e.as_service_error().and_then(|s| s.message()).map_or(code.clone(), |m| format!("{code}: {}", bounded(m, 200)));
        let position = format!("shard {id}, after sequence number {}", bounded(&format!("{seq:?}"), 60));
        match &self.saved_in {
            Some(file) => Error::Input(format!(
                "the state file {} saves a position that the stream cannot start from ({position}; GetShardIterator answered {answer}): \
                 delete it to start over (the stream is then read from its oldest record, as --from trim-horizon does; records already applied change nothing)",
                file.display()
            )),
            None => Error::Input(format!("a saved position that the stream cannot start from ({position}; GetShardIterator answered {answer})")),
        }
    }
}

type IteratorError = aws_sdk_dynamodbstreams::error::SdkError<GetShardIteratorError>;

/// `text` cut to at most `max` characters, with `...` when cut: text from a file or a server in
/// one line of an error.
fn bounded(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text.to_string(),
    }
}

/// Whether `shard` may be read now: it is not read to its end, and its parent, if still listed
/// (`known`), is.
fn may_read(shard: &Listed, known: &HashSet<String>, positions: &Positions) -> bool {
    let done = |id: &str| positions.get(id).is_some_and(|p| p.done);
    !done(&shard.id) && shard.parent.as_deref().is_none_or(|p| !known.contains(p) || done(p))
}

/// Where a shard starts: after its position, else at `start_at` if it was in the first listing,
/// else at TRIM_HORIZON.
fn start_of(pos: Option<&ShardPos>, start_at: StartAt, first: bool) -> (ShardIteratorType, Option<&str>) {
    match pos.and_then(|p| p.last.as_deref()) {
        Some(seq) => (ShardIteratorType::AfterSequenceNumber, Some(seq)),
        None if first && start_at == StartAt::Latest => (ShardIteratorType::Latest, None),
        None => (ShardIteratorType::TrimHorizon, None),
    }
}

/// Maps an SDK error of DynamoDB Streams operation `op`.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::Target;

    fn listed(id: &str, parent: Option<&str>) -> Listed {
        Listed { id: id.into(), parent: parent.map(str::to_string) }
    }

    fn pos(last: Option<&str>, done: bool) -> ShardPos {
        ShardPos { last: last.map(str::to_string), done }
    }

    /// A reader that never sends a request (nothing listens on port 9).
    fn reader(positions: Positions) -> ShardReader {
        let target = Target::Endpoint("http://127.0.0.1:9".into());
        let config = aws_config::SdkConfig::builder().behavior_version(aws_config::BehaviorVersion::latest()).build();
        let ddb = Ddb::new(&config, &target, "t");
        let client = super::super::worker::streams_client(&config, &target);
        ShardReader::new(&ddb, &client, "arn:stream", StartAt::TrimHorizon, positions)
    }

    fn record(seq: &str) -> Record {
        Record::builder().dynamodb(aws_sdk_dynamodbstreams::types::StreamRecord::builder().sequence_number(seq).build()).build()
    }

    #[test]
    fn a_child_waits_until_its_listed_parent_is_read_to_its_end() {
        let known: HashSet<String> = ["p", "c"].map(String::from).into();
        let child = listed("c", Some("p"));
        assert!(!may_read(&child, &known, &Positions::new()));
        let mut positions = Positions::from([("p".to_string(), pos(Some("9"), false))]);
        assert!(!may_read(&child, &known, &positions), "a parent read in part holds its child back");
        positions.insert("p".into(), pos(Some("9"), true));
        assert!(may_read(&child, &known, &positions));
        assert!(may_read(&listed("p", None), &known, &Positions::new()));
        // A parent no longer listed (trimmed) holds nothing back; a shard read to its end is not read again.
        assert!(may_read(&listed("d", Some("gone")), &known, &Positions::new()));
        assert!(!may_read(&listed("p", None), &known, &positions));
    }

    #[test]
    fn a_shard_starts_after_its_position_else_latest_only_if_listed_first() {
        let at = pos(Some("42"), false);
        assert_eq!(start_of(Some(&at), StartAt::Latest, true), (ShardIteratorType::AfterSequenceNumber, Some("42")));
        assert_eq!(start_of(None, StartAt::Latest, true), (ShardIteratorType::Latest, None));
        assert_eq!(start_of(Some(&pos(None, false)), StartAt::Latest, true), (ShardIteratorType::Latest, None));
        assert_eq!(start_of(None, StartAt::Latest, false), (ShardIteratorType::TrimHorizon, None), "a shard that appeared later");
        assert_eq!(start_of(None, StartAt::TrimHorizon, true), (ShardIteratorType::TrimHorizon, None));
    }

    #[test]
    fn done_moves_the_position_and_the_iterator_and_the_end_of_a_shard_marks_it_done() {
        let mut r = reader(Positions::from([("s".to_string(), pos(Some("1"), false))]));
        r.iters.insert("s".into(), "it-1".into());
        r.listed = Some(Instant::now());
        r.done(Batch { shard_id: "s".into(), records: vec![record("2"), record("3")], next: Some("it-2".into()) });
        assert_eq!(r.iters["s"], "it-2");
        assert_eq!(r.positions()["s"], pos(Some("3"), false));
        assert!(r.listed.is_some());
        // The end of a closed shard, with no records: done, no iterator, listed again next.
        let end = Batch { shard_id: "s".into(), records: vec![], next: None };
        assert!(end.ends_shard());
        r.done(end);
        assert_eq!(r.positions()["s"], pos(Some("3"), true));
        assert!(!r.iters.contains_key("s"));
        assert!(r.listed.is_none(), "the shards are listed again after one closed");
    }
}
