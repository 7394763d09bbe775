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
//! - a member with two rows of one conversation (left by some writer without conditions) is
//!   converged in the same transaction: the newest row stays, the others are deleted, and the
//!   outcome says so ([`Outcome::notes`]);
//! - a conversation that cannot be moved reports its records as failed (a Lambda partial batch
//!   response, or a retry by the local worker), never dropped.
//!
//! The same function serves the Lambda (`crates/messaging-stream`) and the local worker
//! ([`worker`], `bin/ddb/stream-worker`); they only convert their record types to [`Record`].

use crate::error::{Error, Result};
use crate::patterns::group_rows;
use crate::records::{format_ts, key_of, parse_ts, Item, MessageGroupRow};
use crate::table::{MSG_PREFIX, PK, SK};
use crate::write::{delete_if_exists, put_conditioned, transact, TransactError, MAX_TRANSACT_ACTIONS};
use crate::Ddb;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};
use std::collections::BTreeMap;
use std::time::Duration;
use uuid::Uuid;

#[cfg(feature = "streams")]
pub mod shards;
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
    /// Duplicate group rows removed (a member had more than one row of a conversation).
    pub removed: u64,
    /// Worth a line in the log: what was converged, one line per conversation.
    pub notes: Vec<String>,
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
            Ok(f) => {
                out.moved += f.moved;
                out.removed += f.removed;
                if f.removed > 0 {
                    out.notes.push(format!(
                        "conversation {group}: a member had more than one group row; kept the newest, on the newest message, and removed {} duplicate(s)",
                        f.removed
                    ));
                }
            }
            Err(e) => {
                out.errors.push(format!("conversation {group}: {e}"));
                out.failed.extend(n.records);
            }
        }
    }
    out
}

/// What following one message did.
#[derive(Debug, Default)]
struct Followed {
    moved: u64,
    removed: u64,
}

/// What one conversation's rows need: for each member, the newest row moved to the message if
/// it is behind, and any further row of that member deleted.
#[derive(Debug, Default)]
struct Plan<'a> {
    /// One member's changes each, kept together in one transaction: `(move, duplicates)`.
    members: Vec<(Option<&'a MessageGroupRow>, Vec<&'a MessageGroupRow>)>,
}

impl Plan<'_> {
    fn is_empty(&self) -> bool {
        self.members.is_empty()
    }
}

/// Decides what [`follow`] writes. A member should have one row per conversation; if two writers
/// ever left two (a seed racing the worker before the seed replaced rows in transactions, or
/// anything writing group rows without conditions), the rows converge here instead of making
/// every later move fail: the newest stays, the others go.
fn plan_for<'a>(rows: &'a [MessageGroupRow], sk: &str) -> Plan<'a> {
    let mut by_owner: BTreeMap<Uuid, Vec<&MessageGroupRow>> = BTreeMap::new();
    for r in rows {
        by_owner.entry(r.owner_uuid).or_default().push(r);
    }
    let mut plan = Plan::default();
    for (_, mut mine) in by_owner {
        mine.sort_by_key(|r| std::cmp::Reverse(r.last_message_at));
        let keep = mine[0];
        let behind = (format_ts(keep.last_message_at).as_str() < sk).then_some(keep);
        let extra = mine[1..].to_vec();
        if behind.is_some() || !extra.is_empty() {
            plan.members.push((behind, extra));
        }
    }
    plan
}

/// Brings every group row of `group` to `n` (see [`plan_for`]).
async fn follow(ddb: &Ddb, group: Uuid, n: &Newest) -> Result<Followed> {
    for attempt in 0..ATTEMPTS {
        let rows = group_rows(ddb, group).await?;
        let plan = plan_for(&rows, &n.sk);
        if plan.is_empty() {
            return Ok(Followed::default());
        }
        match apply(ddb, &plan, n).await {
            Ok(()) => {
                let moved = plan.members.iter().filter(|(m, _)| m.is_some()).count() as u64;
                let removed = plan.members.iter().map(|(_, d)| d.len() as u64).sum();
                return Ok(Followed { moved, removed });
            }
            Err(TransactError::Race) => {}
            Err(TransactError::Failed(e)) => return Err(e),
        }
        tokio::time::sleep(crate::write::backoff(attempt).min(Duration::from_millis(500))).await;
    }
    Err(Error::Conflict(format!("group rows kept changing under {ATTEMPTS} attempts to move them")))
}

/// Applies `plan`: each move is a delete of the old key if it is still there and a put of the new
/// key if it is free; each duplicate a delete if it is still there. All of a conversation's
/// changes go into one TransactWriteItems (one transaction per conversation, not per row:
/// DynamoDB Local answers concurrent transactions one after another, and in bench/stream runs
/// this took the lag's p99 from about 310 to 264 ms); a member's changes are never split.
async fn apply(ddb: &Ddb, plan: &Plan<'_>, n: &Newest) -> std::result::Result<(), TransactError> {
    let mut chunks: Vec<Vec<TransactWriteItem>> = vec![Vec::new()];
    for (behind, extra) in &plan.members {
        let mut actions: Vec<TransactWriteItem> = extra.iter().map(|r| delete_if_exists(ddb, key_of(&r.to_item()))).collect();
        if let Some(row) = behind {
            let mut new_item = row.to_item();
            actions.push(delete_if_exists(ddb, key_of(&new_item)));
            new_item.insert(SK.into(), AttributeValue::S(n.sk.clone()));
            new_item.insert("message".into(), AttributeValue::S(n.text.clone()));
            actions.push(put_conditioned(ddb, new_item, false));
        }
        let last = chunks.last_mut().expect("one chunk");
        if !last.is_empty() && last.len() + actions.len() > MAX_TRANSACT_ACTIONS {
            chunks.push(actions);
        } else {
            last.extend(actions);
        }
    }
    for chunk in chunks {
        transact(ddb, chunk).await?;
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

    fn row(owner: Uuid, at: &str) -> MessageGroupRow {
        MessageGroupRow {
            owner_uuid: owner,
            last_message_at: parse_ts(at).unwrap(),
            message_group_uuid: Uuid::nil(),
            message: "m".into(),
            user_uuid: Uuid::nil(),
            user_display_name: "d".into(),
            user_handle: "h".into(),
        }
    }

    #[test]
    fn the_plan_moves_the_newest_row_of_each_member_and_drops_duplicates() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let (t1, t2, t3) = ("2026-01-01T00:00:01.000000+00:00", "2026-01-01T00:00:02.000000+00:00", "2026-01-01T00:00:03.000000+00:00");
        // One row each, both behind: two moves, nothing removed.
        let rows = [row(a, t1), row(b, t1)];
        let plan = plan_for(&rows, t2);
        assert_eq!(plan.members.len(), 2);
        assert!(plan.members.iter().all(|(m, d)| m.is_some() && d.is_empty()));
        // Already current: nothing to do.
        assert!(plan_for(&rows, t1).is_empty());
        // a has two rows: the newer (t2) moves to t3, the older goes; b only moves.
        let rows = [row(a, t1), row(a, t2), row(b, t1)];
        let plan = plan_for(&rows, t3);
        let (moved, dup) = plan.members.iter().find(|(m, _)| m.is_some_and(|r| r.owner_uuid == a)).unwrap();
        assert_eq!(format_ts(moved.unwrap().last_message_at), t2);
        assert_eq!(dup.iter().map(|r| format_ts(r.last_message_at)).collect::<Vec<_>>(), [t1]);
        // Duplicates are removed even when no row is behind (an older message redelivered).
        let plan = plan_for(&rows, t1);
        assert_eq!(plan.members.len(), 1);
        assert!(plan.members[0].0.is_none() && plan.members[0].1.len() == 1);
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
