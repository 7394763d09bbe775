//! Bulk writes: BatchWriteItem, 25 requests a call, several calls in flight, every
//! UnprocessedItems retried with backoff and jitter until it is written or we give up with an
//! error that says how far we got. (Group rows are never written here: see
//! [`crate::conversation`].)

use crate::error::{Error, Result};
use crate::lock::Fence;
use crate::progress::{Counter, Progress};
use crate::Ddb;
use aws_sdk_dynamodb::types::{DeleteRequest, PutRequest, WriteRequest};
use futures::TryStreamExt;
use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::records::Item;

/// How long a bulk write keeps trying an endpoint that does not answer at all.
pub const UNREACHABLE_GRACE: Duration = Duration::from_secs(10);

/// BatchWriteItem's limit.
pub const BATCH_SIZE: usize = 25;

/// How a bulk write behaves.
#[derive(Debug, Clone, Copy)]
pub struct WriteOptions {
    /// BatchWriteItem calls in flight at once.
    pub concurrency: usize,
    /// Give up when one batch makes no progress for this long (throttling, server gone).
    pub give_up_after: Duration,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions { concurrency: 8, give_up_after: Duration::from_secs(60) }
    }
}

/// A put of `item`.
pub fn put(item: Item) -> WriteRequest {
    WriteRequest::builder().put_request(PutRequest::builder().set_item(Some(item)).build().expect("item set")).build()
}

/// A delete of the item with primary key `key`.
pub fn delete(key: Item) -> WriteRequest {
    WriteRequest::builder().delete_request(DeleteRequest::builder().set_key(Some(key)).build().expect("key set")).build()
}

/// TransactWriteItems' limit on actions.
pub const MAX_TRANSACT_ACTIONS: usize = 100;

/// Pause before retry number `attempt` (0-based): exponential, capped, with full jitter so that
/// concurrent writers do not retry in step.
pub fn backoff(attempt: u32) -> Duration {
    let cap_ms = (25u64 << attempt.min(8)).min(2_000);
    Duration::from_millis(cap_ms / 2 + fastrand::u64(0..=cap_ms / 2))
}

/// Writes every request of `requests` to the table; returns how many were written. `progress`
/// is told of each item written. Keys must be unique within each run of 25 (DynamoDB
/// refuses a batch with a duplicate key).
pub async fn write_all(ddb: &Ddb, requests: impl Iterator<Item = WriteRequest>, opts: WriteOptions, progress: &dyn Progress) -> Result<u64> {
    write_stream(ddb, futures::stream::iter(requests.map(Ok)), opts, progress).await
}

/// [`write_all`] for requests that come from a fallible stream (for example the keys of a query,
/// page by page): memory holds only the batches in flight. The first error of the stream ends the
/// write.
pub async fn write_stream(
    ddb: &Ddb,
    requests: impl futures::Stream<Item = Result<WriteRequest>>,
    opts: WriteOptions,
    progress: &dyn Progress,
) -> Result<u64> {
    write_fenced(ddb, requests, opts, progress, None).await
}

/// [`write_stream`] under a lease: every call (and every retry of one) passes `fence` first, so
/// that nothing is sent once the lease is lost.
pub async fn write_fenced(
    ddb: &Ddb,
    requests: impl futures::Stream<Item = Result<WriteRequest>>,
    opts: WriteOptions,
    progress: &dyn Progress,
    fence: Option<&Fence>,
) -> Result<u64> {
    let counter = Counter::new(progress);
    let counter = &counter;
    requests
        .try_chunks(BATCH_SIZE)
        .map_err(|e| e.1)
        .map_ok(|batch| write_batch(ddb, batch, opts, counter, fence))
        .try_buffer_unordered(opts.concurrency.max(1))
        .try_fold(0u64, |acc, n| async move { Ok(acc + n) })
        .await
}

/// One batch (at most [`BATCH_SIZE`] requests, no two of one key) until every request of it is
/// written; returns how many. `progress` is told of each item written, and says how far a run got
/// when it gives up. Each call, retries included, passes `fence` first when there is one.
pub async fn write_batch(
    ddb: &Ddb,
    batch: Vec<WriteRequest>,
    opts: WriteOptions,
    progress: &Counter<&dyn Progress>,
    fence: Option<&Fence>,
) -> Result<u64> {
    let total = batch.len() as u64;
    let mut pending = HashMap::from([(ddb.table.clone(), batch)]);
    let mut attempt = 0u32;
    let mut last_progress = Instant::now();
    loop {
        if let Some(fence) = fence {
            fence.pass().await?;
        }
        let before = pending.get(&ddb.table).map_or(0, Vec::len) as u64;
        let result = ddb.client.batch_write_item().set_request_items(Some(pending.clone())).send().await;
        match result {
            Ok(out) => {
                let left = out.unprocessed_items.unwrap_or_default();
                let left_n = left.get(&ddb.table).map_or(0, Vec::len) as u64;
                progress.inc(before - left_n);
                if left_n == 0 {
                    return Ok(total);
                }
                if left_n < before {
                    last_progress = Instant::now();
                    attempt = 0;
                }
                pending = left;
            }
            Err(e) => {
                let err = Error::from_sdk(e, &ddb.ctx("BatchWriteItem"));
                // A server that is gone rarely comes back: report it after a short while.
                let unreachable = matches!(err, Error::Unreachable { .. });
                if !err.is_transient() || (unreachable && last_progress.elapsed() >= UNREACHABLE_GRACE) {
                    return Err(err);
                }
            }
        }
        if last_progress.elapsed() >= opts.give_up_after {
            return Err(Error::GaveUp { service: "DynamoDB", op: "BatchWriteItem", secs: opts.give_up_after.as_secs(), done: progress.done() });
        }
        tokio::time::sleep(backoff(attempt)).await;
        attempt += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        for attempt in 0..20 {
            let d = backoff(attempt).as_millis() as u64;
            let cap = (25u64 << attempt.min(8)).min(2_000);
            assert!(d >= cap / 2 && d <= cap, "attempt {attempt}: {d} ms outside [{}, {cap}]", cap / 2);
        }
        let spread: std::collections::HashSet<_> = (0..50).map(|_| backoff(6)).collect();
        assert!(spread.len() > 5, "no jitter");
    }
}
