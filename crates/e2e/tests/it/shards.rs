//! `ddb_core::stream::shards::ShardReader` against DynamoDB Local's real stream: a batch that is
//! not done comes again, a reader made from saved positions goes on after them, and LATEST skips
//! what was there before. (A split or closed shard does not happen on DynamoDB Local; the order
//! of parents and children is tested in ddb-core's unit tests.)

use aws_sdk_dynamodb::types::AttributeValue;
use ddb_core::stream::shards::{Positions, ShardReader};
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

fn stream() -> Stream {
    let (t, server) = TestTable::on_own_server("shards");
    let arn = block_on(ddb_core::table::describe(&t.ddb)).unwrap().latest_stream_arn().expect("a stream").to_string();
    Stream { streams: t.streams(), t, arn, _server: server }
}

async fn put(s: &Stream, keys: std::ops::Range<u32>) {
    for k in keys {
        let item = [("pk", format!("TEST#{k}")), ("sk", "0".to_string())].map(|(n, v)| (n.to_string(), AttributeValue::S(v)));
        s.t.ddb.client.put_item().table_name(&s.t.ddb.table).set_item(Some(item.into())).send().await.unwrap();
    }
}

/// The pk of each record.
fn keys(batch: &ddb_core::stream::shards::Batch) -> Vec<String> {
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

/// Reads until `want` records have come (in one or more batches, each done).
async fn read(reader: &mut ShardReader, want: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut got = Vec::new();
    while got.len() < want {
        assert!(Instant::now() < deadline, "only {got:?} of {want} records within 20 s");
        match reader.next().await.unwrap() {
            Some(batch) => {
                got.extend(keys(&batch));
                reader.done(batch);
            }
            None => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    got
}

fn pks(range: std::ops::Range<u32>) -> Vec<String> {
    range.map(|k| format!("TEST#{k}")).collect()
}

#[test]
fn a_batch_not_done_comes_again_and_saved_positions_go_on_after_it() {
    let s = stream();
    block_on(async {
        put(&s, 0..3).await;
        let mut reader = ShardReader::new(&s.t.ddb, &s.streams, &s.arn, StartAt::TrimHorizon, Positions::new());
        // The first batch with records, not done (a handler that failed) ...
        let deadline = Instant::now() + Duration::from_secs(20);
        let first = loop {
            assert!(Instant::now() < deadline, "no records within 20 s");
            match reader.next().await.unwrap() {
                Some(b) => break b,
                None => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        };
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
        let mut restarted = ShardReader::new(&s.t.ddb, &s.streams, &s.arn, StartAt::TrimHorizon, saved);
        assert_eq!(read(&mut restarted, 2).await, pks(3..5));
        // And nothing more: a pass that finds nothing says so.
        assert!(restarted.next().await.unwrap().is_none());
    });
}

#[test]
fn latest_reads_only_what_is_written_after_the_first_pass() {
    let s = stream();
    block_on(async {
        put(&s, 0..3).await;
        // Let the three reach the stream, so that LATEST comes after them.
        let mut all = ShardReader::new(&s.t.ddb, &s.streams, &s.arn, StartAt::TrimHorizon, Positions::new());
        assert_eq!(read(&mut all, 3).await, pks(0..3));
        let mut latest = ShardReader::new(&s.t.ddb, &s.streams, &s.arn, StartAt::Latest, Positions::new());
        assert!(latest.next().await.unwrap().is_none(), "nothing after LATEST yet");
        put(&s, 3..4).await;
        assert_eq!(read(&mut latest, 1).await, pks(3..4));
    });
}
