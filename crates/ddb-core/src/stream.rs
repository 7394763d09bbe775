//! Pattern E: every group row of a conversation follows its newest message.
//!
//! The table's stream carries each new message row; [`handle`] moves the conversation's group
//! rows (found through `message-group-sk-index`) to `sk = message.sk` with the message's text.
//! The course's Lambda read only the first record of a batch and deleted before it put (a crash
//! in between lost the row); here:
//!
//! - every record of the batch counts; of several messages of one conversation only the newest
//!   matters, so each conversation is moved once per batch;
//! - each move is one TransactWriteItems (for every group row of the conversation: delete the old
//!   key if it is still there, put the new key if it is free): all or nothing, never a lost or
//!   doubled group row;
//! - a row already at or past the message's time is left alone, so a redelivered batch, or an
//!   older message arriving after a newer one, changes nothing;
//! - REMOVE records and records of other rows (group rows) are ignored;
//! - a conversation that cannot be moved reports its records as failed (a Lambda partial batch
//!   response, or a retry by the local worker), never dropped.
//!
//! The same function serves the Lambda (`crates/messaging-stream`) and the local worker
//! ([`worker`], `bin/ddb/stream-worker`); they only convert their record types to [`Record`].

use crate::error::{Error, Result};
use crate::patterns::group_rows;
use crate::records::{format_ts, parse_ts, Item, MessageGroupRow};
use crate::table::{MSG_PREFIX, PK, SK};
use crate::Ddb;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem};
use std::collections::BTreeMap;
use std::time::Duration;
use uuid::Uuid;

#[cfg(feature = "streams")]
pub mod worker;

/// What happened to the row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// A new row.
    Insert,
    /// A changed row.
    Modify,
    /// A deleted row.
    Remove,
}

/// A stream record, in the form the handler needs.
#[derive(Debug, Clone)]
pub struct Record {
    /// The record's sequence number: what a partial batch response names.
    pub sequence_number: String,
    /// INSERT, MODIFY or REMOVE.
    pub kind: EventKind,
    /// The row's new image (`None` for REMOVE, or a stream without images).
    pub new_image: Option<Item>,
}

/// What a batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Group rows moved to a newer message.
    pub moved: u64,
    /// Message rows seen (INSERT or MODIFY of `MSG#` rows).
    pub messages: u64,
    /// Sequence numbers of the records that could not be applied (to be delivered again).
    pub failed: Vec<String>,
    /// Why, one line per failed conversation.
    pub errors: Vec<String>,
}

/// The newest message of a conversation in a batch.
#[derive(Debug, Clone)]
struct Newest {
    sk: String,
    text: String,
    records: Vec<String>,
}

fn message_of(r: &Record) -> Option<(Uuid, String, String)> {
    if r.kind == EventKind::Remove {
        return None;
    }
    let image = r.new_image.as_ref()?;
    let s = |k: &str| image.get(k).and_then(|v| v.as_s().ok());
    let group = Uuid::parse_str(s(PK)?.strip_prefix(MSG_PREFIX)?).ok()?;
    let sk = s(SK)?;
    parse_ts(sk).ok()?;
    Some((group, sk.clone(), s("message")?.clone()))
}

/// How many times one conversation is re-read and retried when a move loses a race (the index
/// is eventually consistent, and another writer may move the same row).
const ATTEMPTS: u32 = 8;

/// Applies a batch of stream records (see the module docs). Errors are per conversation and come
/// back in [`Outcome::failed`]; the function itself does not fail.
pub async fn handle(ddb: &Ddb, records: &[Record]) -> Outcome {
    let mut out = Outcome::default();
    let mut newest: BTreeMap<Uuid, Newest> = BTreeMap::new();
    for r in records {
        let Some((group, sk, text)) = message_of(r) else {
            continue;
        };
        out.messages += 1;
        let e = newest.entry(group).or_insert_with(|| Newest { sk: String::new(), text: String::new(), records: Vec::new() });
        e.records.push(r.sequence_number.clone());
        if sk >= e.sk {
            e.sk = sk;
            e.text = text;
        }
    }
    let results = futures::future::join_all(newest.iter().map(|(g, n)| follow(ddb, *g, n))).await;
    for ((group, n), res) in newest.into_iter().zip(results) {
        match res {
            Ok(moved) => out.moved += moved,
            Err(e) => {
                out.errors.push(format!("conversation {group}: {e}"));
                out.failed.extend(n.records);
            }
        }
    }
    out
}

/// Moves every group row of `group` that is older than `n` to `n`; the number moved.
async fn follow(ddb: &Ddb, group: Uuid, n: &Newest) -> Result<u64> {
    for attempt in 0..ATTEMPTS {
        let rows = group_rows(ddb, group).await?;
        let behind: Vec<&MessageGroupRow> = rows.iter().filter(|r| format_ts(r.last_message_at) < n.sk).collect();
        if behind.is_empty() {
            return Ok(0);
        }
        match move_rows(ddb, &behind, n).await {
            Ok(()) => return Ok(behind.len() as u64),
            Err(Move::Race) => {}
            Err(Move::Failed(e)) => return Err(e),
        }
        tokio::time::sleep(crate::write::backoff(attempt).min(Duration::from_millis(500))).await;
    }
    Err(crate::error::input(format!("group rows kept changing under {ATTEMPTS} attempts to move them")))
}

/// Why a move did not happen.
enum Move {
    /// A row was gone or a new key taken (a cancelled transaction), or the service asked us to
    /// slow down: re-read and try again.
    Race,
    /// Anything else (a missing table, bad credentials): give up on this conversation.
    Failed(Error),
}

/// Most group rows one transaction moves: two actions each, and TransactWriteItems takes 100.
const ROWS_PER_TRANSACTION: usize = 50;

/// Moves `rows` (one conversation's, two in the course) to `n`: for each row, delete the old key
/// if it is still there and put the new key if it is free, all rows in one TransactWriteItems
/// (one transaction per conversation, not per row: DynamoDB Local answers concurrent transactions
/// one after another, and in bench/stream runs this took the lag's p99 from about 310 to 264 ms).
async fn move_rows(ddb: &Ddb, rows: &[&MessageGroupRow], n: &Newest) -> std::result::Result<(), Move> {
    for chunk in rows.chunks(ROWS_PER_TRANSACTION) {
        let mut actions = Vec::with_capacity(chunk.len() * 2);
        for row in chunk {
            let old_key = Item::from([
                (PK.to_string(), AttributeValue::S(MessageGroupRow::pk_of(row.owner_uuid))),
                (SK.to_string(), AttributeValue::S(format_ts(row.last_message_at))),
            ]);
            let mut new_item = row.to_item();
            new_item.insert(SK.into(), AttributeValue::S(n.sk.clone()));
            new_item.insert("message".into(), AttributeValue::S(n.text.clone()));
            let delete = Delete::builder()
                .table_name(&ddb.table)
                .set_key(Some(old_key))
                .condition_expression("attribute_exists(pk)")
                .build()
                .expect("table and key set");
            let put = Put::builder()
                .table_name(&ddb.table)
                .set_item(Some(new_item))
                .condition_expression("attribute_not_exists(pk)")
                .build()
                .expect("table and item set");
            actions.push(TransactWriteItem::builder().delete(delete).build());
            actions.push(TransactWriteItem::builder().put(put).build());
        }
        let res = ddb.client.transact_write_items().set_transact_items(Some(actions)).send().await;
        match res {
            Ok(_) => {}
            Err(e) if e.as_service_error().is_some_and(|s| s.is_transaction_canceled_exception()) => return Err(Move::Race),
            Err(e) => {
                let err = Error::from_sdk(e, &ddb.ctx("TransactWriteItems"));
                return Err(if err.is_transient() { Move::Race } else { Move::Failed(err) });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(seq: &str, kind: EventKind, pk: &str, sk: &str) -> Record {
        Record {
            sequence_number: seq.into(),
            kind,
            new_image: Some(Item::from([
                (PK.into(), AttributeValue::S(pk.into())),
                (SK.into(), AttributeValue::S(sk.into())),
                ("message".into(), AttributeValue::S("hi".into())),
            ])),
        }
    }

    #[test]
    fn only_message_inserts_and_modifies_count() {
        let g = Uuid::new_v4();
        let ts = "2026-01-01T00:00:00.000000+00:00";
        assert!(message_of(&rec("1", EventKind::Insert, &format!("MSG#{g}"), ts)).is_some());
        assert!(message_of(&rec("1", EventKind::Modify, &format!("MSG#{g}"), ts)).is_some());
        assert!(message_of(&rec("1", EventKind::Remove, &format!("MSG#{g}"), ts)).is_none());
        assert!(message_of(&rec("1", EventKind::Insert, &format!("GRP#{g}"), ts)).is_none());
        assert!(message_of(&rec("1", EventKind::Insert, "MSG#not-a-uuid", ts)).is_none());
        assert!(message_of(&Record { new_image: None, ..rec("1", EventKind::Insert, "", "") }).is_none());
    }
}
