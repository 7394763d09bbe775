//! Conversations: the reads of a conversation's partitions, and the one home of every write of
//! group rows.
//!
//! A conversation `G` between two users has its messages in partition `MSG#G` and one group row
//! per member, `GRP#{member}` with `sk` = the time of the newest message (found through
//! `message-group-sk-index`). Several writers change group rows: pattern D creates them, pattern
//! E moves them onto a new message, the seed replaces them, the import restores them, `check
//! --repair` mends them; each builds a list of [`Change`]s and hands it to [`apply`], one
//! conditioned TransactWriteItems:
//!
//! - a row is deleted only if it is still there, and put only where its key is free (or, to
//!   overwrite, only where a row is): a writer that read an old state loses the race instead of
//!   leaving a second row per member or resurrecting a deleted one;
//! - a row moved onto a message carries a [`Change::OnMessage`] check that the message still
//!   exists, so that no group row ever points at a message that was deleted meanwhile (a re-seed
//!   clears messages while the stream still carries their INSERTs);
//! - a message written into a conversation carries a [`Change::OnRow`] check that its sender's
//!   group row still exists (pattern C), so that a re-seed removing the conversation meanwhile
//!   makes the write fail instead of leaving a message without group rows;
//! - a member's changes are never split over two transactions.
//!
//! A lost race comes back as [`Applied::Race`]: the writer re-reads and plans again, through the
//! one retry loop, [`retry`].

use crate::error::{Error, Result};
use crate::records::{Item, Key, MessageGroupRow, MessageRow};
use crate::table::PK;
use crate::write::{backoff, MAX_TRANSACT_ACTIONS};
use crate::Ddb;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{ConditionCheck, Delete, Put, TransactWriteItem};
use std::future::Future;

mod read;
mod restore;
mod settle;

pub use read::{count_partition, group_items, group_rows, is_member, items_of_partition, keys_of_partition, member_row, newest_message, Stored};
pub use restore::restore;
pub use settle::{settle, settling, Settled};

/// How many times a write that lost a race (or met a transient error) re-reads and tries again.
pub const ATTEMPTS: u32 = 8;

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
    /// Only if the row of this key exists (a sender's group row, pattern C); a failed check is
    /// a [`Applied::Race`]: the caller reads the row again.
    OnRow(Key),
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
            Change::OnRow(key) => out.push(check(ddb, key)),
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
                let other =
                    reasons.iter().filter_map(|r| r.code()).find(|c| !matches!(*c, "None" | "ConditionalCheckFailed" | "TransactionConflict"));
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

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    #[test]
    fn moves_take_two_actions_and_a_conversation_fits_one_transaction() {
        let row = MessageGroupRow {
            owner_uuid: Uuid::nil(),
            last_message_at: crate::records::now(),
            message_group_uuid: Uuid::nil(),
            message: "m".into(),
            user_uuid: Uuid::nil(),
            user_display_name: "d".into(),
            user_handle: "h".into(),
        };
        let changes = [Change::Move { from: row.key(), to: row.clone() }, Change::Remove(row.key()), Change::OnMessage(row.key())];
        assert_eq!(action_count(&changes), 4);
    }
}
