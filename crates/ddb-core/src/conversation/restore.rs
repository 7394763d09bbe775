//! Restoring a group row from a backup (the import).

use super::{apply, is_member, retry, Applied, Attempt, Change};
use crate::error::{Error, Result};
use crate::records::MessageGroupRow;
use crate::Ddb;

/// Puts `row` back where its member has no row of its conversation, conditioned on its key being
/// free; a member who has one (a re-run, a table restored into twice, a row the stream worker
/// has moved meanwhile) keeps it. Returns true when the row was put. Either way the row may be
/// behind its conversation's newest message: the import settles every conversation it touched
/// afterwards ([`super::settle`]), which moves it and removes a duplicate that two writers at
/// once may have left.
pub async fn restore(ddb: &Ddb, row: &MessageGroupRow) -> Result<bool> {
    let what = format!("the group row of {} in conversation {}", row.owner_uuid, row.message_group_uuid);
    retry(&what, |_| async move {
        if is_member(ddb, row.message_group_uuid, row.owner_uuid).await? {
            return Ok(Attempt::Done(false));
        }
        Ok(match apply(ddb, &[Change::Create(row.clone())]).await? {
            Applied::Done => Attempt::Done(true),
            Applied::Race | Applied::MessageGone => Attempt::Again,
        })
    })
    .await
    .map_err(|e| match e {
        // The member has no row of the conversation, and yet the key is never free.
        Error::Conflict(_) => Error::Conflict(format!(
            "cannot restore group row {} of conversation {}: its key stays taken by another row (a conversation of the same member whose newest message has the same time?), or something keeps rewriting it",
            row.key(),
            row.message_group_uuid
        )),
        e => e,
    })
}
