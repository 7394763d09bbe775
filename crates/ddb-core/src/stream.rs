//! Pattern E: every group row of a conversation follows its newest message.
//!
//! The table's stream carries each new message row; [`handle`] moves the conversation's group
//! rows (found through `message-group-sk-index`) onto the message: its time as `sk`, its text.
//! The course's Lambda read only the first record of a batch and deleted before it put (a crash
//! in between lost the row); here:
//!
//! - every record of the batch counts; of several messages of one conversation only the newest
//!   matters, so each conversation is moved once per batch;
//! - each move is one conditioned transaction of [`crate::conversation`]: all or nothing, never
//!   a lost or doubled group row, and only while the message still exists (a re-seed may have
//!   deleted it; the rows then follow the newest message that exists);
//! - a row already at or past the message's time is left alone, so a redelivered batch, or an
//!   older message arriving after a newer one, changes nothing;
//! - only message INSERTs count ([`invokes`]); every other record is ignored;
//! - a member with two rows of one conversation (left by some writer without conditions) is
//!   converged in the same transaction: the newest row stays, the others are deleted, and the
//!   outcome says so ([`Outcome::notes`]);
//! - failures are sorted: a passing one (throttling, a timeout, an unreachable server, a race
//!   lost too often) reports its records as failed, to be delivered again (a Lambda partial batch
//!   response, a retry by the local worker); one that no retry can mend (a malformed message row,
//!   an item DynamoDB refuses) is [`Outcome::skipped`] with the record's keys, so that one poison
//!   record never holds up the records behind it.
//!
//! The same function serves the Lambda (`crates/messaging-stream`) and the local worker
//! ([`worker`], `bin/ddb/stream-worker`); they only convert their record types to [`Record`].

use crate::conversation::{self, group_rows, newest_message, Applied, Attempt, Change, Stored};
use crate::error::{Error, ErrorKind, Result};
use crate::records::{Item, Key, MessageGroupRow, MessageRow};
use crate::table::{MSG_PREFIX, PK, SK};
use crate::Ddb;
use std::collections::BTreeMap;
use std::sync::Mutex;
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

/// A record that cannot be applied however often it is tried: logged with its keys, counted,
/// and not delivered again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The record's sequence number.
    pub sequence_number: String,
    /// The row's keys, `(pk, sk)`, for finding it.
    pub keys: String,
    /// Why it cannot be applied.
    pub reason: String,
}

/// What a batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Group rows moved to a newer message.
    pub moved: u64,
    /// Message INSERTs seen (the records the handler acts on, see [`invokes`]).
    pub messages: u64,
    /// Records of other kinds: group rows, locks, REMOVE and MODIFY records.
    pub ignored: u64,
    /// Sequence numbers of the records that failed for a passing reason (throttling, a timeout,
    /// an unreachable server, a race lost too often): to be delivered again.
    pub failed: Vec<String>,
    /// Why, one line per failed conversation.
    pub errors: Vec<String>,
    /// One of the failures was a server that did not answer: the records are not at fault, and a
    /// runner that counts a record's attempts should wait for the server instead.
    pub unreachable: bool,
    /// Records that cannot succeed (a malformed message row, an item DynamoDB refuses): logged,
    /// never delivered again.
    pub skipped: Vec<Skipped>,
    /// Duplicate group rows removed (a member had more than one row of a conversation).
    pub removed: u64,
    /// Worth a line in the log: what was converged, one line per conversation.
    pub notes: Vec<String>,
}

/// The handler's own predicate: true exactly for an INSERT of a message row (`pk` beginning with
/// `MSG#`). Everything else (group rows moved by this very handler, the seed's lock, REMOVE and
/// MODIFY records) needs nothing; the deployed event source mapping's FilterCriteria says the same.
pub fn invokes(r: &Record) -> bool {
    r.kind == EventKind::Insert
        && r.new_image.as_ref().and_then(|i| i.get(PK)).and_then(|v| v.as_s().ok()).is_some_and(|pk| pk.starts_with(MSG_PREFIX))
}

/// `(pk, sk)` of an image, for logs.
fn keys_text(image: Option<&Item>) -> String {
    let get = |k| image.and_then(|i| i.get(k)).map_or_else(|| "?".to_string(), |v| v.as_s().map_or_else(|_| format!("{v:?}"), Clone::clone));
    format!("({}, {})", get(PK), get(SK))
}

/// The newest message of a conversation in a batch, and the records that name it.
#[derive(Debug, Clone)]
struct Newest {
    message: Stored<MessageRow>,
    records: Vec<String>,
}

/// True for errors that a later delivery may not meet: the record is reported as failed.
/// Everything else is the record's own (its item cannot be read or written): skipped.
fn is_passing(e: &Error) -> bool {
    match e.kind() {
        ErrorKind::Data | ErrorKind::Input => false,
        ErrorKind::Service => !matches!(e, Error::Service { code, .. } if code == "ValidationException"),
        _ => true,
    }
}

/// Applies a batch of stream records (see the module docs). Errors are per conversation and come
/// back in [`Outcome::failed`] or [`Outcome::skipped`]; the function itself does not fail.
pub async fn handle(ddb: &Ddb, records: &[Record]) -> Outcome {
    let mut out = Outcome::default();
    let mut newest: BTreeMap<Uuid, Newest> = BTreeMap::new();
    for r in records {
        if !invokes(r) {
            out.ignored += 1;
            continue;
        }
        let image = r.new_image.as_ref().expect("invokes: an image");
        let message = match MessageRow::from_item(image) {
            Ok(row) => Stored { key: Key::of(image).expect("a row that reads has string keys"), row },
            Err(e) => {
                out.skipped.push(Skipped { sequence_number: r.sequence_number.clone(), keys: keys_text(Some(image)), reason: e.to_string() });
                continue;
            }
        };
        out.messages += 1;
        let seq = r.sequence_number.clone();
        let n = newest.entry(message.row.message_group_uuid).or_insert_with(|| Newest { message: message.clone(), records: Vec::new() });
        n.records.push(seq);
        if message.row.created_at >= n.message.row.created_at {
            n.message = message;
        }
    }
    let results = futures::future::join_all(newest.values().map(|n| follow(ddb, n))).await;
    for ((group, n), res) in newest.into_iter().zip(results) {
        match res {
            Ok(f) => {
                out.moved += f.moved;
                out.removed += f.removed;
                out.notes.extend(f.notes(group));
            }
            Err(e) if is_passing(&e) => {
                out.unreachable |= e.kind() == ErrorKind::Unreachable;
                out.errors.push(format!("conversation {group}: {e}"));
                out.failed.extend(n.records);
            }
            Err(e) => {
                let keys = n.message.key.to_string();
                out.skipped.extend(n.records.into_iter().map(|s| Skipped { sequence_number: s, keys: keys.clone(), reason: e.to_string() }));
            }
        }
    }
    out
}

/// What following one conversation's newest message did.
#[derive(Debug, Default)]
struct Followed {
    moved: u64,
    removed: u64,
    /// The message was deleted before its rows moved; they went to the newest that exists.
    gone: bool,
}

impl Followed {
    fn notes(&self, group: Uuid) -> Vec<String> {
        let mut notes = Vec::new();
        if self.removed > 0 {
            notes.push(format!(
                "conversation {group}: a member had more than one group row; kept the newest, on the newest message, and removed {} duplicate(s)",
                self.removed
            ));
        }
        if self.gone {
            notes.push(format!("conversation {group}: its new message was deleted before its group rows moved; they follow the newest message that exists"));
        }
        notes
    }
}

/// The changes that bring `rows` onto message `m`: for each member, the newest row moved onto
/// `m` if it is behind, and any further row of that member removed. A member should have one row
/// per conversation; if some writer ever left two, they converge here instead of making every
/// later move fail. A row already at or past `m` stays (a redelivered or older record).
fn plan(rows: &[Stored<MessageGroupRow>], m: &Stored<MessageRow>) -> Vec<Change> {
    let mut by_owner: BTreeMap<Uuid, Vec<&Stored<MessageGroupRow>>> = BTreeMap::new();
    for r in rows {
        by_owner.entry(r.row.owner_uuid).or_default().push(r);
    }
    let mut changes = Vec::new();
    for (_, mut mine) in by_owner {
        mine.sort_by_key(|r| std::cmp::Reverse(r.row.last_message_at));
        if mine[0].row.last_message_at < m.row.created_at {
            changes.push(Change::Move { from: mine[0].key.clone(), to: mine[0].row.onto(&m.row) });
        }
        changes.extend(mine[1..].iter().map(|r| Change::Remove(r.key.clone())));
    }
    if changes.iter().any(|c| matches!(c, Change::Move { .. })) {
        changes.push(Change::OnMessage(m.key.clone()));
    }
    changes
}

/// Brings every group row of `n`'s conversation onto its newest message (see [`plan`]), through
/// the retry loop of [`conversation::retry`]. When the message was deleted meanwhile, the rows
/// follow the newest message that exists instead.
async fn follow(ddb: &Ddb, n: &Newest) -> Result<Followed> {
    let group = n.message.row.message_group_uuid;
    let target = Mutex::new((n.message.clone(), false));
    conversation::retry(&format!("the group rows of conversation {group}"), |_| async {
        let (m, gone) = target.lock().expect("not poisoned").clone();
        let rows = group_rows(ddb, group).await?;
        let changes = plan(&rows, &m);
        if changes.is_empty() {
            return Ok(Attempt::Done(Followed { gone, ..Followed::default() }));
        }
        match conversation::apply(ddb, &changes).await? {
            Applied::Done => {
                let moved = changes.iter().filter(|c| matches!(c, Change::Move { .. })).count() as u64;
                let removed = changes.iter().filter(|c| matches!(c, Change::Remove(_))).count() as u64;
                Ok(Attempt::Done(Followed { moved, removed, gone }))
            }
            Applied::Race => Ok(Attempt::Again),
            Applied::MessageGone => match newest_message(ddb, group).await? {
                Some(m) => {
                    *target.lock().expect("not poisoned") = (m, true);
                    Ok(Attempt::Again)
                }
                None => Ok(Attempt::Done(Followed { gone: true, ..Followed::default() })),
            },
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::parse_ts;
    use aws_sdk_dynamodb::types::AttributeValue;

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

    fn row(owner: Uuid, at: &str) -> Stored<MessageGroupRow> {
        let row = MessageGroupRow {
            owner_uuid: owner,
            last_message_at: parse_ts(at).unwrap(),
            message_group_uuid: Uuid::nil(),
            message: "m".into(),
            user_uuid: Uuid::nil(),
            user_display_name: "d".into(),
            user_handle: "h".into(),
        };
        Stored { key: row.key(), row }
    }

    fn message(at: &str) -> Stored<MessageRow> {
        let row = MessageRow {
            message_group_uuid: Uuid::nil(),
            created_at: parse_ts(at).unwrap(),
            message_uuid: Uuid::nil(),
            message: "new".into(),
            user_uuid: Uuid::nil(),
            user_display_name: "d".into(),
            user_handle: "h".into(),
        };
        Stored { key: row.key(), row }
    }

    fn moves(changes: &[Change]) -> Vec<(&Key, &MessageGroupRow)> {
        changes.iter().filter_map(|c| if let Change::Move { from, to } = c { Some((from, to)) } else { None }).collect()
    }

    fn removes(changes: &[Change]) -> Vec<&Key> {
        changes.iter().filter_map(|c| if let Change::Remove(r) = c { Some(r) } else { None }).collect()
    }

    #[test]
    fn the_plan_moves_the_newest_row_of_each_member_and_drops_duplicates() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let (t1, t2, t3) = ("2026-01-01T00:00:01.000000+00:00", "2026-01-01T00:00:02.000000+00:00", "2026-01-01T00:00:03.000000+00:00");
        // One row each, both behind: two moves onto the message, checked to exist.
        let rows = [row(a, t1), row(b, t1)];
        let changes = plan(&rows, &message(t2));
        assert_eq!(moves(&changes).len(), 2);
        assert!(moves(&changes).iter().all(|(_, to)| to.is_on(&message(t2).row)));
        assert!(changes.contains(&Change::OnMessage(message(t2).key)));
        // Already current: nothing to do.
        assert!(plan(&rows, &message(t1)).is_empty());
        // a has two rows: the newer (t2) moves to t3, the older goes; b only moves.
        let rows = [row(a, t1), row(a, t2), row(b, t1)];
        let changes = plan(&rows, &message(t3));
        let (from, to) = moves(&changes).into_iter().find(|(_, to)| to.owner_uuid == a).unwrap();
        assert_eq!(from, &row(a, t2).key);
        assert_eq!(to.last_message_at, parse_ts(t3).unwrap());
        assert_eq!(removes(&changes), [&row(a, t1).key]);
        // Duplicates are removed even when no row is behind (an older message redelivered), with
        // no need for the message.
        let changes = plan(&rows, &message(t1));
        assert_eq!((moves(&changes).len(), removes(&changes).len()), (0, 1));
        assert!(!changes.iter().any(|c| matches!(c, Change::OnMessage(_))));
    }

    #[test]
    fn only_message_inserts_count() {
        let g = Uuid::new_v4();
        let ts = "2026-01-01T00:00:00.000000+00:00";
        assert!(invokes(&rec("1", EventKind::Insert, &format!("MSG#{g}"), ts)));
        assert!(!invokes(&rec("1", EventKind::Modify, &format!("MSG#{g}"), ts)));
        assert!(!invokes(&rec("1", EventKind::Remove, &format!("MSG#{g}"), ts)));
        assert!(!invokes(&rec("1", EventKind::Insert, &format!("GRP#{g}"), ts)));
        assert!(!invokes(&rec("1", EventKind::Insert, "LOCK#seed", "LOCK#seed")));
        assert!(!invokes(&Record { new_image: None, ..rec("1", EventKind::Insert, "", "") }));
    }

    #[test]
    fn passing_and_permanent_failures() {
        let service = |code: &str| Error::Service { service: "DynamoDB", op: "TransactWriteItems", code: code.into(), message: "m".into() };
        assert!(is_passing(&service("ThrottlingException")));
        assert!(is_passing(&service("AccessDeniedException")), "a role without rights is mended by its owner: retried, not dropped");
        assert!(is_passing(&Error::Conflict("raced".into())));
        assert!(!is_passing(&service("ValidationException")));
        assert!(!is_passing(&Error::BadItem { key: "k".into(), problem: "p".into() }));
    }
}
