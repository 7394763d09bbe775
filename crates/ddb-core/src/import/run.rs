//! The writing of an import that checked clean: items by the batch writer, group rows through
//! the conversations' home, then every conversation touched settled.

use super::{is_blank, read_line, Checked, Lines, Row, Source};
use crate::conversation::{self, Settled};
use crate::error::{Error, Result};
use crate::item_json::ItemFormat;
use crate::progress::{Counter, Progress};
use crate::records::{Key, MessageGroupRow};
use crate::write::{put, write_batch, WriteOptions, BATCH_SIZE};
use crate::Ddb;
use aws_sdk_dynamodb::types::WriteRequest;
use futures::{StreamExt, TryStreamExt};
use std::time::{Duration, Instant};

/// What an import did.
#[derive(Debug, Clone, Default)]
pub struct ImportReport {
    /// Items written by BatchWriteItem.
    pub items: u64,
    /// Group rows put back.
    pub group_rows: u64,
    /// Group rows left as they were: their member already had a row of the conversation.
    pub group_rows_kept: u64,
    /// Lock items skipped.
    pub locks_skipped: u64,
    /// Conversations settled at the end.
    pub conversations: u64,
    /// What settling them changed.
    pub settled: Settled,
    /// How long the writes took.
    pub writing: Duration,
    /// How long settling the conversations took.
    pub settling: Duration,
}

impl ImportReport {
    /// Items and group rows written per second of writing.
    pub fn rate(&self) -> f64 {
        (self.items + self.group_rows) as f64 / self.writing.as_secs_f64().max(1e-6)
    }

    /// The figures, for `--json`.
    pub fn figures(&self, checked: &Checked, ddb: &Ddb) -> serde_json::Value {
        serde_json::json!({
            "source": checked.name,
            "format": match checked.format { ItemFormat::Json => "json", ItemFormat::DynamodbJson => "dynamodb-json" },
            "items": self.items,
            "group_rows": self.group_rows,
            "group_rows_kept": self.group_rows_kept,
            "locks_skipped": self.locks_skipped,
            "conversations": self.conversations,
            "group_rows_moved": self.settled.moved,
            "group_rows_removed": self.settled.removed,
            "writing_seconds": self.writing.as_secs_f64(),
            "settling_seconds": self.settling.as_secs_f64(),
            "items_per_second": self.rate(),
            "table": ddb.table,
            "target": ddb.target.label(),
        })
    }

    /// The import's last line.
    pub fn summary(&self, checked: &Checked, ddb: &Ddb) -> String {
        let mut line = format!(
            "imported {} items and {} group rows from {} into {} at {} in {:.2} s ({:.0} items/s); {} conversation(s) settled",
            self.items,
            self.group_rows,
            checked.name,
            ddb.table,
            ddb.target.label(),
            self.writing.as_secs_f64(),
            self.rate(),
            self.conversations
        );
        if self.settled.moved + self.settled.removed > 0 {
            line += &format!(" ({} group rows moved onto their newest message, {} duplicates removed)", self.settled.moved, self.settled.removed);
        }
        if self.group_rows_kept > 0 {
            line += &format!("; {} group rows already there kept", self.group_rows_kept);
        }
        if self.locks_skipped > 0 {
            line += &format!("; {} lock item(s) skipped", self.locks_skipped);
        }
        line
    }
}

/// A unit of writing: a batch of puts, or a group row.
enum Job {
    Batch(Vec<WriteRequest>),
    Group(MessageGroupRow),
}

/// The jobs of a source's lines, read again as they are written: batches of at most 25 puts,
/// without two of one key (the later line replaces the earlier), and each group row.
struct Jobs {
    lines: Lines,
    format: ItemFormat,
    name: String,
    batch: Vec<(Key, WriteRequest)>,
}

impl Jobs {
    fn take_batch(&mut self) -> Job {
        Job::Batch(std::mem::take(&mut self.batch).into_iter().map(|(_, r)| r).collect())
    }

    fn next_job(&mut self) -> Result<Option<Job>> {
        loop {
            let Some((n, line)) = self.lines.next_line()? else {
                return Ok((!self.batch.is_empty()).then(|| self.take_batch()));
            };
            let changed = |what: String| Error::Input(format!("{}:{n}: {what} (the file changed after it was checked?)", self.name));
            let line = line.map_err(changed)?;
            if is_blank(&line) {
                continue;
            }
            match read_line(&line, self.format).map_err(changed)? {
                Row::Lock => {}
                Row::Group(row) => return Ok(Some(Job::Group(row))),
                Row::Item(item, _) => {
                    let key = Key::of(&item).expect("a checked item has string keys");
                    match self.batch.iter_mut().find(|(k, _)| *k == key) {
                        Some(slot) => slot.1 = put(item),
                        None => self.batch.push((key, put(item))),
                    }
                    if self.batch.len() == BATCH_SIZE {
                        return Ok(Some(self.take_batch()));
                    }
                }
            }
        }
    }
}

/// What one job wrote: items, group rows put, group rows kept.
type Wrote = (u64, u64, u64);

/// Writes a source that [`super::check`] found clean (see the [module](super)); `progress` is
/// told of the phases ("writing", "settling conversations") and of each item. An error after
/// the first write is an [`Error::ImportStopped`] that says how far it got: run it again.
pub async fn run(ddb: &Ddb, source: &Source, checked: &Checked, opts: WriteOptions, progress: &dyn Progress) -> Result<ImportReport> {
    if let Some(refusal) = checked.refusal() {
        return Err(refusal);
    }
    let total = checked.items + checked.group_rows;
    progress.phase("writing", total);
    let counter = Counter::new(progress);
    let started = Instant::now();
    let stopped = |e: Error, phase: &str, done: u64, total: u64| Error::ImportStopped { source: Box::new(e), phase: phase.into(), done, total };
    let (items, group_rows, group_rows_kept) =
        write_jobs(ddb, source, checked, opts, &counter).await.map_err(|e| stopped(e, "writing", counter.done(), total))?;
    let writing = started.elapsed();
    let n = checked.conversations.len() as u64;
    progress.phase("settling conversations", n);
    let settled = futures::stream::iter(checked.conversations.iter().map(|g| conversation::settle(ddb, *g)))
        .buffer_unordered(opts.concurrency.max(1))
        .try_fold(Settled::default(), |acc, s| {
            progress.inc(1);
            async move { Ok(Settled { moved: acc.moved + s.moved, removed: acc.removed + s.removed }) }
        })
        .await
        .map_err(|e| stopped(e, "settling conversations", 0, n))?;
    Ok(ImportReport {
        items,
        group_rows,
        group_rows_kept,
        locks_skipped: checked.locks,
        conversations: n,
        settled,
        writing,
        settling: started.elapsed() - writing,
    })
}

async fn write_jobs(ddb: &Ddb, source: &Source, checked: &Checked, opts: WriteOptions, counter: &Counter<&dyn Progress>) -> Result<Wrote> {
    let mut jobs = Jobs { lines: source.lines()?, format: checked.format, name: checked.name.clone(), batch: Vec::new() };
    let jobs = futures::stream::iter(std::iter::from_fn(move || jobs.next_job().transpose()));
    jobs.map_ok(|job| async move {
        match job {
            Job::Batch(batch) => write_batch(ddb, batch, opts, counter, None).await.map(|n| (n, 0, 0)),
            Job::Group(row) => {
                let put = conversation::restore(ddb, &row).await?;
                counter.inc(1);
                Ok(if put { (0, 1, 0) } else { (0, 0, 1) })
            }
        }
    })
    .try_buffer_unordered(opts.concurrency.max(1))
    .try_fold((0, 0, 0), |(a, b, c), (x, y, z)| async move { Ok((a + x, b + y, c + z)) })
    .await
}
