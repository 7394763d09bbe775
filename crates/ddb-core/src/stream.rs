//! Pattern E: every group row of a conversation follows its newest message.
//!
//! The table's stream carries each new message row; [`handle`] settles its conversation
//! ([`conversation::settle`]): the group rows (found through `message-group-sk-index`) go onto the
//! newest message that exists (read strongly consistently), its time as `sk`, its text.
//! The course's Lambda read only the first record of a batch and deleted before it put (a crash
//! in between lost the row); here:
//!
//! - every record of the batch counts; each conversation is settled once per batch, onto its
//!   newest message, whichever record of the batch (or none) that is;
//! - each move is one conditioned transaction of [`crate::conversation`]: all or nothing, never
//!   a lost or doubled group row, and only while the message still exists (a re-seed may have
//!   deleted it meanwhile: the rows are read again and follow the newest message that exists);
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

use crate::conversation;
use crate::error::{Error, ErrorKind};
use crate::records::{Item, Key, MessageRow};
use crate::table::{MSG_PREFIX, PK, SK};
use crate::Ddb;
use std::collections::BTreeMap;
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
    // The records of each conversation: one settling per conversation and batch.
    let mut by_group: BTreeMap<Uuid, (Key, Vec<String>)> = BTreeMap::new();
    for r in records {
        if !invokes(r) {
            out.ignored += 1;
            continue;
        }
        let image = r.new_image.as_ref().expect("invokes: an image");
        match MessageRow::from_item(image) {
            Ok(row) => {
                out.messages += 1;
                let key = Key::of(image).expect("a row that reads has string keys");
                by_group.entry(row.message_group_uuid).or_insert_with(|| (key, Vec::new())).1.push(r.sequence_number.clone());
            }
            Err(e) => out.skipped.push(Skipped { sequence_number: r.sequence_number.clone(), keys: keys_text(Some(image)), reason: e.to_string() }),
        }
    }
    let results = futures::future::join_all(by_group.keys().map(|g| conversation::settle(ddb, *g))).await;
    for ((group, (key, seqs)), res) in by_group.into_iter().zip(results) {
        match res {
            Ok(s) => {
                out.moved += s.moved;
                out.removed += s.removed;
                if s.removed > 0 {
                    out.notes.push(format!(
                        "conversation {group}: a member had more than one group row; kept the newest, on the newest message, and removed {} duplicate(s)",
                        s.removed
                    ));
                }
            }
            Err(e) if is_passing(&e) => {
                out.unreachable |= e.kind() == ErrorKind::Unreachable;
                out.errors.push(format!("conversation {group}: {e}"));
                out.failed.extend(seqs);
            }
            Err(e) => {
                out.skipped.extend(seqs.into_iter().map(|s| Skipped { sequence_number: s, keys: key.to_string(), reason: e.to_string() }));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
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
