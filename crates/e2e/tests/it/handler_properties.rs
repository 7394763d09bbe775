//! Property test of pattern E's handler on DynamoDB Local: batches of stream records of every kind
//! and shape (message INSERTs of messages that exist or are gone, malformed message rows, group
//! rows, the seed's lock, REMOVE and MODIFY, records without an image). Never a panic; every
//! record is counted once (a message, ignored, or skipped); every reported failure is a record of
//! the batch; with the server up nothing is reported for another delivery (a record that cannot
//! succeed is skipped, never failed for ever); and the conversation's rows follow its newest
//! message afterwards.

use aws_sdk_dynamodb::types::AttributeValue;
use ddb_core::records::{format_ts, Item, MessageRow};
use ddb_core::stream::{handle, EventKind, Record};
use e2e::*;
use proptest::prelude::*;
use std::collections::HashSet;
use uuid::Uuid;

/// What a record of the generated batch carries.
#[derive(Debug, Clone)]
enum Shape {
    /// A message that exists in the table (index into the table's messages).
    Existing(usize),
    /// A message row that was never written (or was deleted).
    Gone(i64),
    /// A message row whose attribute `message` is a number.
    WrongType,
    /// A message row of another conversation's partition, with a pk that is not a uuid.
    BadPk,
    /// A group row, as pattern E's own moves put them on the stream.
    GroupRow,
    /// The seed's lock item.
    Lock,
    /// No image at all.
    NoImage,
}

fn shape() -> impl Strategy<Value = Shape> {
    prop_oneof![
        4 => (0usize..6).prop_map(Shape::Existing),
        2 => (1i64..1000).prop_map(Shape::Gone),
        1 => Just(Shape::WrongType),
        1 => Just(Shape::BadPk),
        1 => Just(Shape::GroupRow),
        1 => Just(Shape::Lock),
        1 => Just(Shape::NoImage),
    ]
}

fn kind() -> impl Strategy<Value = EventKind> {
    prop_oneof![6 => Just(EventKind::Insert), 1 => Just(EventKind::Modify), 1 => Just(EventKind::Remove)]
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

#[test]
fn the_handler_counts_every_record_once_and_fails_none_for_ever() {
    let db = TestDb::create();
    let u = db.users(&COURSE_HANDLES);
    let t = TestTable::create(DynamoLocal::shared(), "hprop");
    let g = block_on(ddb_core::patterns::create_message_group(&t.ddb, &u["bayko"], &u["yaya2devops"], "first")).unwrap();
    let mut existing: Vec<MessageRow> = vec![g.message.clone()];
    for i in 0..5 {
        existing.push(block_on(ddb_core::patterns::create_message(&t.ddb, g.uuid, &u["yaya2devops"], &format!("m{i}"))).unwrap());
    }
    let image = |shape: &Shape| -> Option<Item> {
        match shape {
            Shape::Existing(i) => Some(existing[*i].to_item()),
            Shape::Gone(us) => Some(MessageRow { created_at: g.message.created_at + time::Duration::microseconds(*us), message: "gone".into(), ..g.message.clone() }.to_item()),
            Shape::WrongType => {
                let mut i = existing[0].to_item();
                i.insert("message".into(), AttributeValue::N("7".into()));
                Some(i)
            }
            Shape::BadPk => {
                let mut i = existing[0].to_item();
                i.insert("pk".into(), s("MSG#not-a-uuid"));
                Some(i)
            }
            Shape::GroupRow => Some(g.rows[0].to_item()),
            Shape::Lock => Some(Item::from([("pk".into(), s("LOCK#seed")), ("sk".into(), s("LOCK#seed")), ("expires_at".into(), s(format_ts(g.message.created_at)))])),
            Shape::NoImage => None,
        }
    };
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig { cases: 64, ..ProptestConfig::default() });
    runner
        .run(&proptest::collection::vec((kind(), shape()), 1..10), |batch| {
            let records: Vec<Record> = batch
                .iter()
                .enumerate()
                .map(|(i, (kind, shape))| Record { sequence_number: format!("{i}-{}", Uuid::new_v4().simple()), kind: *kind, new_image: image(shape) })
                .collect();
            let out = block_on(handle(&t.ddb, &records));
            let seqs: HashSet<&str> = records.iter().map(|r| r.sequence_number.as_str()).collect();
            prop_assert!(out.failed.is_empty(), "nothing fails while the server answers: {:?}", out);
            prop_assert!(out.skipped.iter().all(|s| seqs.contains(s.sequence_number.as_str())));
            prop_assert_eq!(out.messages + out.ignored + out.skipped.len() as u64, records.len() as u64, "{:?}", out);
            let wanted = |(k, s): &(EventKind, Shape)| *k == EventKind::Insert && !matches!(s, Shape::GroupRow | Shape::Lock | Shape::NoImage);
            prop_assert_eq!(out.ignored, batch.iter().filter(|r| !wanted(r)).count() as u64);
            let malformed = batch.iter().filter(|r| wanted(r) && matches!(r.1, Shape::WrongType | Shape::BadPk)).count();
            prop_assert_eq!(out.skipped.len(), malformed, "only the malformed message rows are skipped: {:?}", out.skipped);
            let newest = t.messages().into_iter().filter(|m| m.message_group_uuid == g.uuid).max_by_key(|m| m.created_at);
            if out.messages > 0 {
                let rows = t.rows_of(g.uuid);
                prop_assert_eq!(rows.len(), 2);
                prop_assert!(rows.iter().all(|r| r.follows(newest.as_ref())), "{:?}", rows);
            }
            Ok(())
        })
        .unwrap();
}
