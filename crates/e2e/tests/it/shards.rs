//! `ddb_core::stream::shards::ShardReader` against DynamoDB Local's real stream: a batch that is
//! not done comes again, a reader made from saved positions goes on after them, and LATEST skips
//! what was there before. (A split or closed shard does not happen on DynamoDB Local; the order
//! of parents and children is tested in ddb-core's unit tests.)

use aws_sdk_dynamodb::types::AttributeValue;
use ddb_core::stream::shards::{Batch, Positions, ShardReader};
use ddb_core::stream::worker::StartAt;
use e2e::{block_on, DynamoLocal, TestTable};
use std::time::{Duration, Instant};

/// A table with a stream on a DynamoDB Local of its own (stream tables created late on a busy
/// server crawl: SPEC.md). Fields drop in order: the table before its server.
struct Stream {
    t: TestTable,
    streams: aws_sdk_dynamodbstreams::Client,
    arn: String,
    _server: DynamoLocal,
}

impl Stream {
    fn reader(&self, start_at: StartAt, positions: Positions) -> ShardReader {
        ShardReader::new(&self.t.ddb, &self.streams, &self.arn, start_at, positions)
    }
}

/// A new table with a stream, and items `TEST#k` for `first` written into it.
fn stream_with(first: std::ops::Range<u32>) -> Stream {
    let (t, server) = TestTable::on_own_server("shards");
    let arn = block_on(ddb_core::table::describe(&t.ddb)).unwrap().latest_stream_arn().expect("a stream").to_string();
    let s = Stream { streams: t.streams(), t, arn, _server: server };
    block_on(put(&s, first));
    s
}

async fn put(s: &Stream, keys: std::ops::Range<u32>) {
    for k in keys {
        let item = [("pk", format!("TEST#{k}")), ("sk", "0".to_string())].map(|(n, v)| (n.to_string(), AttributeValue::S(v)));
        s.t.ddb.client.put_item().table_name(&s.t.ddb.table).set_item(Some(item.into())).send().await.unwrap();
    }
}

/// The pk of each record.
fn keys(batch: &Batch) -> Vec<String> {
    use aws_sdk_dynamodbstreams::types::AttributeValue as S;
    batch
        .records
        .iter()
        .map(|r| match r.dynamodb().and_then(|d| d.keys()).and_then(|k| k.get("pk")) {
            Some(S::S(pk)) => pk.clone(),
            other => panic!("no pk: {other:?}"),
        })
        .collect()
}

/// The next batch that has records (or ends its shard), waiting up to 20 s for one.
async fn next_batch(reader: &mut ShardReader) -> Batch {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(batch) = reader.next().await.unwrap() {
            return batch;
        }
        assert!(Instant::now() < deadline, "no records within 20 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Reads until `want` records have come (in one or more batches, each done).
async fn read(reader: &mut ShardReader, want: usize) -> Vec<String> {
    let mut got = Vec::new();
    while got.len() < want {
        let batch = next_batch(reader).await;
        got.extend(keys(&batch));
        reader.done(batch);
    }
    got
}

fn pks(range: std::ops::Range<u32>) -> Vec<String> {
    range.map(|k| format!("TEST#{k}")).collect()
}

#[test]
fn a_batch_not_done_comes_again_and_saved_positions_go_on_after_it() {
    let s = stream_with(0..3);
    block_on(async {
        let mut reader = s.reader(StartAt::TrimHorizon, Positions::new());
        // The first batch with records, not done (a handler that failed) ...
        let first = next_batch(&mut reader).await;
        let first_keys = keys(&first);
        assert!(!first_keys.is_empty() && !first.ends_shard());
        drop(first);
        assert!(reader.positions().is_empty(), "nothing done, no position: {:?}", reader.positions());
        // ... comes again from the same iterator: the same records (and any that reached the
        // stream since).
        let again = reader.next().await.unwrap().expect("the batch again, with no pause");
        let mut got = keys(&again);
        assert!(got.starts_with(&first_keys), "{got:?} after {first_keys:?}");
        reader.done(again);
        got.extend(read(&mut reader, 3 - got.len()).await);
        assert_eq!(got, pks(0..3));
        let saved = reader.positions().clone();
        assert!(saved.values().any(|p| p.last.is_some() && !p.done), "{saved:?}");

        // A new reader from the saved positions reads only what came after them.
        put(&s, 3..5).await;
        let mut restarted = s.reader(StartAt::TrimHorizon, saved);
        assert_eq!(read(&mut restarted, 2).await, pks(3..5));
        // And nothing more: a pass that finds nothing says so.
        assert!(restarted.next().await.unwrap().is_none());
    });
}

#[test]
fn latest_reads_only_what_is_written_after_the_first_pass() {
    let s = stream_with(0..3);
    block_on(async {
        // Let the three reach the stream, so that LATEST comes after them.
        let mut all = s.reader(StartAt::TrimHorizon, Positions::new());
        assert_eq!(read(&mut all, 3).await, pks(0..3));
        let mut latest = s.reader(StartAt::Latest, Positions::new());
        assert!(latest.next().await.unwrap().is_none(), "nothing after LATEST yet");
        put(&s, 3..4).await;
        assert_eq!(read(&mut latest, 1).await, pks(3..4));
    });
}
