//! Settling a conversation: its group rows onto its newest message that exists.

use super::{apply, group_rows, newest_message, retry, Applied, Attempt, Change, Stored};
use crate::error::Result;
use crate::records::{MessageGroupRow, MessageRow};
use crate::Ddb;
use uuid::Uuid;

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
    use crate::records::{parse_ts, Key, FILLER_MESSAGE};

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
}
