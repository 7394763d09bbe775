//! Conversations: the reads of a conversation's partitions, and the one home of every write of
//! group rows.
//!
//! A conversation `G` between two users has its messages in partition `MSG#G` and one group row
//! per member, `GRP#{member}` with `sk` = the time of the newest message (found through
//! `message-group-sk-index`). Several writers change group rows: pattern D creates them, pattern
//! E moves them onto a new message, the seed replaces them, `check --repair` mends them; each
//! builds a list of [`Change`]s and hands it to [`apply`], one conditioned TransactWriteItems:
//!
//! - a row is deleted only if it is still there, and put only where its key is free (or, to
//!   overwrite, only where a row is): a writer that read an old state loses the race instead of
//!   leaving a second row per member or resurrecting a deleted one;
//! - a row moved onto a message carries a [`Change::OnMessage`] check that the message still
//!   exists, so that no group row ever points at a message that was deleted meanwhile (a re-seed
//!   clears messages while the stream still carries their INSERTs);
//! - a member's changes are never split over two transactions.
//!
//! A lost race comes back as [`Applied::Race`]: the writer re-reads and plans again, through the
//! one retry loop, [`retry`].

use crate::error::{Error, Result};
use crate::records::{Item, Key, MessageGroupRow, MessageRow};
use crate::table::{GSI_NAME, GSI_PK, PK, SK};
use crate::write::{backoff, MAX_TRANSACT_ACTIONS};
use crate::Ddb;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Delete, Put, Select, TransactWriteItem};
use futures::{Stream, StreamExt, TryStreamExt};
use std::future::Future;
use uuid::Uuid;

/// How many times a write that lost a race (or met a transient error) re-reads and tries again.
pub const ATTEMPTS: u32 = 8;

/// A query of partition `pk`, strongly consistent.
fn query_partition(ddb: &Ddb, pk: String) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder {
    ddb.client
        .query()
        .table_name(&ddb.table)
        .key_condition_expression("#pk = :pk")
        .expression_attribute_names("#pk", PK)
        .expression_attribute_values(":pk", AttributeValue::S(pk))
        .consistent_read(true)
}

/// The keys of every item of partition `pk`, page by page (strongly consistent).
pub fn keys_of_partition(ddb: &Ddb, pk: String) -> impl Stream<Item = Result<Item>> + '_ {
    let pages = query_partition(ddb, pk).projection_expression("#pk, #sk").expression_attribute_names("#sk", SK).into_paginator().items().send();
    crate::stream_of(pages).map(|r| r.map_err(|e| Error::from_sdk(e, &ddb.ctx("Query"))))
}

/// Every item of partition `pk`, page by page (strongly consistent).
pub fn items_of_partition(ddb: &Ddb, pk: String) -> impl Stream<Item = Result<Item>> + '_ {
    let pages = query_partition(ddb, pk).into_paginator().items().send();
    crate::stream_of(pages).map(|r| r.map_err(|e| Error::from_sdk(e, &ddb.ctx("Query"))))
}

/// How many items partition `pk` holds (count queries, all pages).
pub async fn count_partition(ddb: &Ddb, pk: String) -> Result<u64> {
    let pages = query_partition(ddb, pk).select(Select::Count).into_paginator().send();
    crate::stream_of(pages)
        .map(|p| p.map(|p| p.count() as u64).map_err(|e| Error::from_sdk(e, &ddb.ctx("Query"))))
        .try_fold(0, |n, c| async move { Ok(n + c) })
        .await
}

/// A row as read from the table: its typed form, and its key as stored (a row written by another
/// client may spell its time otherwise than [`crate::records::format_ts`]; deletes need the key
/// as it is).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored<T> {
    /// The key as stored.
    pub key: Key,
    /// The row.
    pub row: T,
}

/// Reads a stored row: its key and its typed form.
fn stored<T>(item: &Item, read: impl Fn(&Item) -> Result<T>) -> Result<Stored<T>> {
    let row = read(item)?;
    let key = Key::of(item).expect("a row that reads has string keys");
    Ok(Stored { key, row })
}

/// The items of conversation `group`'s group rows (one per member), through
/// `message-group-sk-index`, all pages. The index is eventually consistent: writes conditioned on
/// what it shows stay safe, and a lost race reads it again.
pub async fn group_items(ddb: &Ddb, group: Uuid) -> Result<Vec<Item>> {
    ddb.client
        .query()
        .table_name(&ddb.table)
        .index_name(GSI_NAME)
        .key_condition_expression("#g = :g")
        .expression_attribute_names("#g", GSI_PK)
        .expression_attribute_values(":g", AttributeValue::S(group.to_string()))
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| Error::from_sdk(e, &ddb.ctx("Query")))
}

/// Every group row of conversation `group` (see [`group_items`]), typed. Empty when the
/// conversation does not exist; a row of another shape is an [`Error::BadItem`].
pub async fn group_rows(ddb: &Ddb, group: Uuid) -> Result<Vec<Stored<MessageGroupRow>>> {
    group_items(ddb, group).await?.iter().map(|i| stored(i, MessageGroupRow::from_item)).collect()
}

/// True when `user` has a group row of `group`. A strongly consistent query of the user's own
/// partition, not the index: a move deletes a member's row and puts a later one in one
/// transaction, and a consistent read sees the old row, the new one or both, never neither; the
/// index, updated after the table, may show neither for a moment.
pub async fn is_member(ddb: &Ddb, group: Uuid, user: Uuid) -> Result<bool> {
    let mut rows = query_partition(ddb, MessageGroupRow::pk_of(user))
        .filter_expression("#g = :g")
        .expression_attribute_names("#g", GSI_PK)
        .expression_attribute_values(":g", AttributeValue::S(group.to_string()))
        .projection_expression("#pk")
        .into_paginator()
        .items()
        .send();
    match rows.next().await {
        Some(row) => row.map(|_| true).map_err(|e| Error::from_sdk(e, &ddb.ctx("Query"))),
        None => Ok(false),
    }
}

/// The newest message of `group` that exists now (a strongly consistent read), with its key as
/// stored. `None` when the conversation has no message; a newest row of another shape is an
/// [`Error::BadItem`].
pub async fn newest_message(ddb: &Ddb, group: Uuid) -> Result<Option<Stored<MessageRow>>> {
    let out = query_partition(ddb, MessageRow::pk_of(group))
        .scan_index_forward(false)
        .limit(1)
        .send()
        .await
        .map_err(|e| Error::from_sdk(e, &ddb.ctx("Query")))?;
    match out.items().first() {
        Some(item) => stored(item, MessageRow::from_item).map(Some),
        None => Ok(None),
    }
}

/// One conditioned change of a conversation's rows (see the [module](self)).
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Put a group row where its key is free.
    Create(MessageGroupRow),
    /// Put a group row over the row that holds its key now.
    Overwrite(MessageGroupRow),
    /// Delete the row of this key if it is still there.
    Remove(Key),
    /// Delete the row of key `from` if it is still there and put `to` where its key is free: a
    /// member's row moved to another time.
    Move {
        /// The row's key as stored.
        from: Key,
        /// The row as it is to be.
        to: MessageGroupRow,
    },
    /// Put a message row where its key is free (pattern D's first message).
    CreateMessage(MessageRow),
    /// Only if the message of this key exists: the message the rows are moved onto.
    OnMessage(Key),
}

impl Change {
    /// How many TransactWriteItems actions the change takes.
    fn actions(&self) -> usize {
        match self {
            Change::Move { .. } => 2,
            _ => 1,
        }
    }
}

/// How [`apply`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Every change was made.
    Done,
    /// Nothing was made: another writer changed a row first (a condition failed, or a concurrent
    /// transaction): read again and plan again.
    Race,
    /// Nothing was made: the message of a [`Change::OnMessage`] is gone. Reading again will not
    /// bring it back.
    MessageGone,
}

/// Conditions on a row's existence, with the key's name bound as `#pk`.
const EXISTS: &str = "attribute_exists(#pk)";
const FREE: &str = "attribute_not_exists(#pk)";

fn put(ddb: &Ddb, item: Item, condition: &str) -> TransactWriteItem {
    let p = Put::builder()
        .table_name(&ddb.table)
        .set_item(Some(item))
        .condition_expression(condition)
        .expression_attribute_names("#pk", PK)
        .build()
        .expect("table and item set");
    TransactWriteItem::builder().put(p).build()
}

fn delete(ddb: &Ddb, key: &Key) -> TransactWriteItem {
    let d = Delete::builder()
        .table_name(&ddb.table)
        .set_key(Some(key.to_item()))
        .condition_expression(EXISTS)
        .expression_attribute_names("#pk", PK)
        .build()
        .expect("table and key set");
    TransactWriteItem::builder().delete(d).build()
}

fn check(ddb: &Ddb, key: &Key) -> TransactWriteItem {
    let c = ConditionCheck::builder()
        .table_name(&ddb.table)
        .set_key(Some(key.to_item()))
        .condition_expression(EXISTS)
        .expression_attribute_names("#pk", PK)
        .build()
        .expect("table, key and condition set");
    TransactWriteItem::builder().condition_check(c).build()
}

/// The actions of `changes`, and the index of each [`Change::OnMessage`] check among them.
fn actions(ddb: &Ddb, changes: &[Change]) -> (Vec<TransactWriteItem>, Vec<usize>) {
    let mut out = Vec::new();
    let mut checks = Vec::new();
    for c in changes {
        match c {
            Change::Create(row) => out.push(put(ddb, row.to_item(), FREE)),
            Change::Overwrite(row) => out.push(put(ddb, row.to_item(), EXISTS)),
            Change::Remove(key) => out.push(delete(ddb, key)),
            Change::Move { from, to } => {
                out.push(delete(ddb, from));
                out.push(put(ddb, to.to_item(), FREE));
            }
            Change::CreateMessage(m) => out.push(put(ddb, m.to_item(), FREE)),
            Change::OnMessage(key) => {
                checks.push(out.len());
                out.push(check(ddb, key));
            }
        }
    }
    (out, checks)
}

/// Makes `changes` in one TransactWriteItems (at most [`MAX_TRANSACT_ACTIONS`] actions: a
/// conversation has a few rows; callers that group several conversations keep under the limit).
/// Errors are those of the request itself (a missing table, an item too large, throttling, an
/// unreachable server: [`Error::is_transient`] tells which to retry).
pub async fn apply(ddb: &Ddb, changes: &[Change]) -> Result<Applied> {
    let (actions, checks) = actions(ddb, changes);
    debug_assert!(actions.len() <= MAX_TRANSACT_ACTIONS, "{} actions", actions.len());
    match ddb.client.transact_write_items().set_transact_items(Some(actions)).send().await {
        Ok(_) => Ok(Applied::Done),
        Err(e) => match e.as_service_error() {
            Some(TransactWriteItemsError::TransactionCanceledException(t)) => {
                let reasons = t.cancellation_reasons();
                let failed = |i: &usize| reasons.get(*i).and_then(|r| r.code()) == Some("ConditionalCheckFailed");
                if checks.iter().any(failed) {
                    return Ok(Applied::MessageGone);
                }
                // A reason other than a lost condition or a concurrent transaction (a throttled
                // action, a validation error) is the request's own: said as such.
                let other = reasons.iter().filter_map(|r| r.code()).find(|c| !matches!(*c, "None" | "ConditionalCheckFailed" | "TransactionConflict"));
                match other {
                    Some(code) => Err(Error::Service {
                        service: "DynamoDB",
                        op: "TransactWriteItems",
                        code: code.to_string(),
                        message: t.message().unwrap_or("transaction cancelled").to_string(),
                    }),
                    None => Ok(Applied::Race),
                }
            }
            Some(TransactWriteItemsError::TransactionInProgressException(_)) => Ok(Applied::Race),
            _ => Err(Error::from_sdk(e, &ddb.ctx("TransactWriteItems"))),
        },
    }
}

/// The size in actions of `changes`.
pub fn action_count(changes: &[Change]) -> usize {
    changes.iter().map(Change::actions).sum()
}

/// What one attempt of a [`retry`] loop came to.
#[derive(Debug)]
pub enum Attempt<T> {
    /// Finished with this result.
    Done(T),
    /// Lost a race: read again and try again.
    Again,
}

/// The one retry loop of conditioned writes: runs `step(attempt)` until it is done, at most
/// [`ATTEMPTS`] times, with jittered backoff between attempts. A transient error (throttling, a
/// server that did not answer) counts as an attempt too; after the last attempt it is returned as
/// it is, a race that never ended as an [`Error::Conflict`] naming `what`.
pub async fn retry<T, F, Fut>(what: &str, mut step: F) -> Result<T>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<Attempt<T>>>,
{
    let mut last = None;
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(backoff(attempt - 1)).await;
        }
        match step(attempt).await {
            Ok(Attempt::Done(t)) => return Ok(t),
            Ok(Attempt::Again) => last = None,
            Err(e) if e.is_transient() => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| Error::Conflict(format!("{what} kept changing under {ATTEMPTS} attempts (is something else rewriting them?)"))))
}

/// What [`settle`] changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Settled {
    /// Group rows moved onto the newest message.
    pub moved: u64,
    /// Duplicate group rows removed (a member had more than one row of the conversation).
    pub removed: u64,
}

/// The changes that settle a conversation's `rows` on its `newest` message (see [`settle`]).
pub fn settling(rows: &[Stored<MessageGroupRow>], newest: Option<&Stored<MessageRow>>) -> Vec<Change> {
    let mut by_owner: std::collections::BTreeMap<Uuid, Vec<&Stored<MessageGroupRow>>> = Default::default();
    for r in rows {
        by_owner.entry(r.row.owner_uuid).or_default().push(r);
    }
    let mut changes = Vec::new();
    let mut moves = false;
    for (_, mut mine) in by_owner {
        // The row to keep: one already on the newest message, else the newest row.
        mine.sort_by_key(|r| (newest.is_some_and(|m| r.row.is_on(&m.row)), r.row.last_message_at));
        let keep = mine.pop().expect("a member has a row");
        changes.extend(mine.iter().map(|r| Change::Remove(r.key.clone())));
        let Some(m) = newest.filter(|m| !keep.row.follows(Some(&m.row))) else {
            continue;
        };
        let to = keep.row.onto(&m.row);
        changes.push(if to.key() == keep.key { Change::Overwrite(to) } else { Change::Move { from: keep.key.clone(), to } });
        moves = true;
    }
    if let Some(m) = newest.filter(|_| moves) {
        changes.push(Change::OnMessage(m.key.clone()));
    }
    changes
}

/// Brings conversation `group`'s group rows where the data model wants them: one row per member,
/// each on the newest message that exists (its time, its text), or left ahead of every message
/// when it carries the seed's filler text. A member's duplicate rows go (the one on the newest
/// message, else the newest, stays); a row behind the newest message, or on a message that is
/// gone, moves onto the newest one. Every change is conditioned ([`apply`]); a lost race reads
/// again ([`retry`]). Pattern E calls it for each conversation of a batch, `check --repair` and
/// the import for the conversations they mend.
pub async fn settle(ddb: &Ddb, group: Uuid) -> Result<Settled> {
    retry(&format!("the group rows of conversation {group}"), |_| async move {
        let rows = group_rows(ddb, group).await?;
        let newest = newest_message(ddb, group).await?;
        let changes = settling(&rows, newest.as_ref());
        if changes.is_empty() {
            return Ok(Attempt::Done(Settled::default()));
        }
        Ok(match apply(ddb, &changes).await? {
            Applied::Done => Attempt::Done(Settled {
                moved: changes.iter().filter(|c| matches!(c, Change::Move { .. } | Change::Overwrite(_))).count() as u64,
                removed: changes.iter().filter(|c| matches!(c, Change::Remove(_))).count() as u64,
            }),
            Applied::Race | Applied::MessageGone => Attempt::Again,
        })
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{parse_ts, FILLER_MESSAGE};

    fn row(owner: Uuid, at: &str, text: &str) -> Stored<MessageGroupRow> {
        let row = MessageGroupRow {
            owner_uuid: owner,
            last_message_at: parse_ts(at).unwrap(),
            message_group_uuid: Uuid::nil(),
            message: text.into(),
            user_uuid: Uuid::nil(),
            user_display_name: "d".into(),
            user_handle: "h".into(),
        };
        Stored { key: row.key(), row }
    }

    fn message(at: &str, text: &str) -> Stored<MessageRow> {
        let row = MessageRow {
            message_group_uuid: Uuid::nil(),
            created_at: parse_ts(at).unwrap(),
            message_uuid: Uuid::nil(),
            message: text.into(),
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
        changes.iter().filter_map(|c| if let Change::Remove(k) = c { Some(k) } else { None }).collect()
    }

    const T1: &str = "2026-01-01T00:00:01.000000+00:00";
    const T2: &str = "2026-01-01T00:00:02.000000+00:00";
    const T3: &str = "2026-01-01T00:00:03.000000+00:00";

    #[test]
    fn settling_moves_rows_behind_onto_the_newest_message_and_drops_duplicates() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        // One row each, both behind: two moves onto the message, checked to exist.
        let rows = [row(a, T1, "one"), row(b, T1, "one")];
        let changes = settling(&rows, Some(&message(T2, "two")));
        assert_eq!(moves(&changes).len(), 2);
        assert!(moves(&changes).iter().all(|(_, to)| to.is_on(&message(T2, "two").row)));
        assert!(changes.contains(&Change::OnMessage(message(T2, "two").key)));
        // Already on it: nothing to do.
        let on = [row(a, T2, "two"), row(b, T2, "two")];
        assert!(settling(&on, Some(&message(T2, "two"))).is_empty());
        // a has two rows: the newer (T2) moves to T3, the older goes; b only moves.
        let rows = [row(a, T1, "one"), row(a, T2, "two"), row(b, T1, "one")];
        let changes = settling(&rows, Some(&message(T3, "three")));
        let (from, to) = moves(&changes).into_iter().find(|(_, to)| to.owner_uuid == a).unwrap();
        assert_eq!((from, to.last_message_at), (&row(a, T2, "").key, parse_ts(T3).unwrap()));
        assert_eq!(removes(&changes), [&row(a, T1, "").key]);
        // Duplicates go even when the kept row is on the newest message, without a check of it.
        let rows = [row(a, T1, "one"), row(a, T2, "two"), row(b, T2, "two")];
        let changes = settling(&rows, Some(&message(T2, "two")));
        assert_eq!((moves(&changes).len(), removes(&changes), changes.len()), (0, vec![&row(a, T1, "").key], 1));
    }

    #[test]
    fn settling_keeps_the_seeds_filler_ahead_and_mends_rows_on_a_message_that_is_gone() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        // The seed's rows: ahead of every message, filler text. Left alone, also with no message.
        let seeded = [row(a, T3, FILLER_MESSAGE), row(b, T3, FILLER_MESSAGE)];
        assert!(settling(&seeded, Some(&message(T2, "two"))).is_empty());
        assert!(settling(&seeded, None).is_empty());
        // Rows ahead of the newest message with another text: on a message that is gone; they
        // go back onto the newest one that exists.
        let ghost = [row(a, T3, "deleted"), row(b, T3, "deleted")];
        let changes = settling(&ghost, Some(&message(T2, "two")));
        assert_eq!(moves(&changes).len(), 2);
        assert!(moves(&changes).iter().all(|(_, to)| to.is_on(&message(T2, "two").row)));
        // On the newest message's time with another text: overwritten in place (same key).
        let stale = [row(a, T2, "old text"), row(b, T2, "two")];
        assert_eq!(settling(&stale, Some(&message(T2, "two")))[0], Change::Overwrite(row(a, T2, "two").row));
        // No message and no filler: nothing it could move the rows onto.
        assert!(settling(&ghost, None).is_empty());
    }

    #[test]
    fn moves_take_two_actions_and_a_conversation_fits_one_transaction() {
        let r = row(Uuid::nil(), T1, "m");
        let changes = [Change::Move { from: r.key.clone(), to: r.row.clone() }, Change::Remove(r.key.clone()), Change::OnMessage(r.key)];
        assert_eq!(action_count(&changes), 4);
    }
}
