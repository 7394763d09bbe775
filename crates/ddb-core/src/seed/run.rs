//! The run of a seed: under the table's seed lock, clear what earlier seeds left, replace each
//! conversation's group rows, write the messages (see the [module](super) docs for the order).

use super::plan::SeedPlan;
use super::report::{watch_local_rate, Phase, Phases, SeedReport, SLOW_LOCAL_WATCH_FROM};
use super::{group_uuid, is_seed_group, SEED_GROUP_PREFIX, SEED_LOCK};
use crate::conversation::{self, count_partition, group_items, items_of_partition, keys_of_partition, newest_message, Applied, Attempt, Change};
use crate::error::{input, Error, Result};
use crate::lock::Fence;
use crate::progress::Progress;
use crate::records::{Item, Key, MessageGroupRow, MessageRow};
use crate::table::{GSI_NAME, GSI_PK};
use crate::write::{delete, put, write_fenced, WriteOptions, MAX_TRANSACT_ACTIONS};
use crate::Ddb;
use aws_sdk_dynamodb::types::{AttributeValue, WriteRequest};
use futures::{FutureExt, StreamExt, TryStreamExt};
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use uuid::Uuid;

/// Writes the plan (see the module docs for the order), holding the table's seed lock: a
/// second seed started meanwhile fails, naming this one. `progress` is told of each phase
/// ("clearing the earlier seed", "writing") and of the items deleted and written, and of a
/// DynamoDB Local that has become too slow to finish a large seed in reasonable time.
///
/// `approve_replace` is asked before rows of an earlier seed are deleted (with their count); when
/// it says no, nothing is changed and the run fails (the prod guard). An error after the first
/// write is an [`Error::Stopped`] that says how far the run got.
pub async fn run(
    ddb: &Ddb,
    plan: &SeedPlan,
    opts: WriteOptions,
    progress: &dyn Progress,
    approve_replace: &dyn Fn(u64) -> bool,
) -> Result<SeedReport> {
    run_until(ddb, plan, opts, progress, approve_replace, std::future::pending()).await
}

/// [`run`] until `stop` resolves (Ctrl-C): no new write is started, the writes in flight are
/// finished (so that none lands after a re-run has cleared), the lock is given back, and the run
/// fails with an [`Error::Stopped`] around [`Error::Interrupted`] that says how far it got; a
/// re-run completes the seed.
pub async fn run_until(
    ddb: &Ddb,
    plan: &SeedPlan,
    opts: WriteOptions,
    progress: &dyn Progress,
    approve_replace: &dyn Fn(u64) -> bool,
    stop: impl Future<Output = ()>,
) -> Result<SeedReport> {
    let phases = Phases::new(progress);
    let signal = stop.boxed_local().shared();
    let phases = &phases;
    let work = SEED_LOCK.hold(ddb, phases, |fence| async move {
        let stop = Stop { signal, fence };
        let result = run_locked(ddb, plan, opts, phases, approve_replace, &stop).await;
        phases.end();
        result
    });
    let result = if ddb.target.is_local() && plan.total_items() >= SLOW_LOCAL_WATCH_FROM {
        tokio::select! {
            r = work => r,
            never = watch_local_rate(phases) => match never {},
        }
    } else {
        work.await
    };
    phases.finish(result)
}

/// The run's stop signal, shared by its phases, and the fence of its lease that every write
/// passes first.
struct Stop<'a> {
    signal: futures::future::Shared<futures::future::LocalBoxFuture<'a, ()>>,
    fence: Fence,
}

impl<'a> Stop<'a> {
    /// Ends `s` when the stop comes: what is in flight finishes, nothing new starts.
    fn bound<S: futures::Stream>(&self, s: S) -> futures::stream::TakeUntil<S, futures::future::Shared<futures::future::LocalBoxFuture<'a, ()>>> {
        s.take_until(self.signal.clone())
    }

    /// Writes `requests` until the stop comes, each batch past the fence.
    async fn write(
        &self,
        ddb: &Ddb,
        requests: impl futures::Stream<Item = Result<WriteRequest>>,
        opts: WriteOptions,
        phases: &Phases<'_>,
    ) -> Result<u64> {
        write_fenced(ddb, self.bound(requests), opts, phases, Some(&self.fence)).await
    }

    /// The stop came: the phase that just ended was cut short.
    fn check(&self) -> Result<()> {
        match self.signal.peek() {
            Some(()) => Err(Error::Interrupted),
            None => Ok(()),
        }
    }
}

async fn run_locked(
    ddb: &Ddb,
    plan: &SeedPlan,
    opts: WriteOptions,
    phases: &Phases<'_>,
    approve: &dyn Fn(u64) -> bool,
    stop: &Stop<'_>,
) -> Result<SeedReport> {
    let found = find_seed_group_rows(ddb, [&plan.me, &plan.other]).await?;
    let mut report = SeedReport { deleted: clear_earlier(ddb, plan, &found, opts, phases, approve, stop).await?, ..SeedReport::default() };
    stop.check()?;
    let old_group_rows: u64 = found.values().map(|r| r.len() as u64).sum();
    phases.enter(Phase::Writing, plan.total_items() + old_group_rows);
    let removed: Vec<Uuid> = found.keys().filter(|g| seed_index(g).is_none_or(|k| k >= plan.groups)).copied().collect();
    let (deleted, written) = replace_group_rows(ddb, plan, found, opts, phases, stop).await?;
    report.deleted += deleted;
    report.written += written;
    stop.check()?;
    // A message written into a removed conversation between the clearing and the removal of
    // its rows (pattern C checks the sender's row in the same transaction, so none after it)
    // would be left without group rows: those conversations are swept once more.
    let sweep = futures::stream::iter(removed.iter()).flat_map(|g| keys_of_partition(ddb, MessageRow::pk_of(*g)));
    report.deleted += write_fenced(ddb, stop.bound(sweep.map_ok(delete)), opts, &(), Some(&stop.fence)).await?;
    stop.check()?;
    let messages = futures::stream::iter((0..plan.messages).map(|i| Ok(put(plan.message(i).to_item()))));
    report.written += stop.write(ddb, messages, opts, phases).await?;
    stop.check()?;
    Ok(report)
}

/// The index `k` of seed conversation `g` (`group_uuid(k) == g`), if it is one.
fn seed_index(g: &Uuid) -> Option<u64> {
    if *g == super::COURSE_GROUP {
        return Some(0);
    }
    let k = u64::from_str_radix(g.to_string().strip_prefix(SEED_GROUP_PREFIX)?, 16).ok()?;
    Some(k).filter(|k| *k > 0 && group_uuid(*k) == *g)
}

/// Deletes the messages of every earlier seed conversation (`found`) and of this plan's first
/// conversations, after asking `approve` (with their count and that of the group rows, which are
/// replaced next); returns how many were deleted.
async fn clear_earlier(
    ddb: &Ddb,
    plan: &SeedPlan,
    found: &Found,
    opts: WriteOptions,
    phases: &Phases<'_>,
    approve: &dyn Fn(u64) -> bool,
    stop: &Stop<'_>,
) -> Result<u64> {
    // Message rows of a seed group exist only while its group rows do (see the module docs), so
    // the groups found are enough; the first groups of this plan are checked as well, as a cheap
    // guard against rows left by other tools.
    let groups: BTreeSet<Uuid> = found.keys().copied().chain((0..plan.groups.min(1_000)).map(group_uuid)).collect();
    let old_group_rows: u64 = found.values().map(|r| r.len() as u64).sum();
    // Counted first (for the prod guard and the progress bar), then deleted page by page:
    // memory does not grow with the size of the earlier seed.
    let mut old_messages = 0u64;
    for g in &groups {
        old_messages += count_partition(ddb, MessageRow::pk_of(*g)).await?;
    }
    let n = old_messages + old_group_rows;
    if n == 0 {
        return Ok(0);
    }
    if !approve(n) {
        return Err(input(format!(
            "table {} at {} holds {n} rows of an earlier seed; not replacing them without confirmation: pass --yes, or run in a terminal and confirm",
            ddb.table,
            ddb.target.label()
        )));
    }
    phases.enter(Phase::Clearing, old_messages);
    let keys = futures::stream::iter(groups.iter()).flat_map(|g| keys_of_partition(ddb, MessageRow::pk_of(*g)));
    stop.write(ddb, keys.map_ok(delete), opts, phases).await
}

/// The keys of the group rows of seed conversations, by conversation.
type Found = BTreeMap<Uuid, Vec<Key>>;

fn add_found(found: &mut Found, item: &Item) {
    let group = item.get(GSI_PK).and_then(|v| v.as_s().ok()).and_then(|s| Uuid::parse_str(s).ok()).filter(is_seed_group);
    let (Some(group), Some(key)) = (group, Key::of(item)) else {
        return;
    };
    let keys = found.entry(group).or_default();
    if !keys.contains(&key) {
        keys.push(key);
    }
}

/// Every group row of every seed conversation, whoever its members are: the index holds only
/// group rows (one per member of each conversation), so a filtered scan of it reads a few rows
/// per conversation, never the messages. The index is eventually consistent; the current members'
/// own partitions are read strongly as well, and every change below is conditioned anyway.
async fn find_seed_group_rows(ddb: &Ddb, members: [&crate::records::User; 2]) -> Result<Found> {
    let mut found = Found::new();
    let pages = ddb
        .client
        .scan()
        .table_name(&ddb.table)
        .index_name(GSI_NAME)
        .filter_expression("begins_with(#g, :p)")
        .expression_attribute_names("#g", GSI_PK)
        .expression_attribute_values(":p", AttributeValue::S(SEED_GROUP_PREFIX.to_string()))
        .into_paginator()
        .items()
        .send();
    let mut index = crate::stream_of(pages).map(|r| r.map_err(|e| Error::from_sdk(e, &ddb.ctx("Scan"))));
    while let Some(item) = index.next().await {
        add_found(&mut found, &item?);
    }
    for user in members {
        let mut own = std::pin::pin!(items_of_partition(ddb, MessageGroupRow::pk_of(user.uuid)));
        while let Some(item) = own.next().await {
            add_found(&mut found, &item?);
        }
    }
    Ok(found)
}

/// Replaces the group rows of every conversation with rows (found ones, of this plan or earlier
/// ones) one conversation at a time, and puts those of the plan's other conversations many to a
/// transaction. Returns the rows deleted and written.
async fn replace_group_rows(
    ddb: &Ddb,
    plan: &SeedPlan,
    mut found: Found,
    opts: WriteOptions,
    phases: &Phases<'_>,
    stop: &Stop<'_>,
) -> Result<(u64, u64)> {
    let mut replacements: Vec<(Uuid, Vec<Key>, Option<[MessageGroupRow; 2]>)> = Vec::new();
    let mut fresh: Vec<u64> = Vec::new();
    for k in 0..plan.groups {
        match found.remove(&group_uuid(k)) {
            Some(keys) => replacements.push((group_uuid(k), keys, Some(plan.group_rows(k)))),
            None => fresh.push(k),
        }
    }
    replacements.extend(found.into_iter().map(|(g, keys)| (g, keys, None)));
    type Job<'a> = futures::future::BoxFuture<'a, Result<(u64, u64)>>;
    let replace =
        futures::stream::iter(replacements).map(|(g, keys, new)| -> Job<'_> { Box::pin(replace_conversation(ddb, &stop.fence, g, keys, new)) });
    let create = futures::stream::iter(fresh.chunks(NEW_CONVERSATIONS_PER_TRANSACTION))
        .map(|ks| -> Job<'_> { Box::pin(put_new_conversations(ddb, &stop.fence, plan, ks)) });
    stop.bound(replace.chain(create))
        .buffer_unordered(opts.concurrency.max(1))
        .try_fold((0u64, 0u64), |(d, w), (dn, wn)| {
            phases.inc(dn + wn);
            async move { Ok((d + dn, w + wn)) }
        })
        .await
}

/// The changes that replace a conversation's rows (keys `found`) by `new`: the found rows go, the
/// new ones come, a new row on the key of a found one overwrites it. Rows that a message written
/// during the seed (one the clearing did not delete) is newer than are put onto that message,
/// conditioned on it still existing: a group row never goes back before its conversation's newest
/// message, and never stays on a message that is gone.
fn replacement(found: &[Key], new: Option<&[MessageGroupRow; 2]>, newest: Option<&conversation::Stored<MessageRow>>) -> Vec<Change> {
    let mut rows: Vec<MessageGroupRow> = new.map(|n| n.to_vec()).unwrap_or_default();
    let mut changes = Vec::new();
    if let Some(m) = newest.filter(|m| rows.first().is_some_and(|r| m.row.created_at > r.last_message_at)) {
        rows = rows.iter().map(|r| r.onto(&m.row)).collect();
        changes.push(Change::OnMessage(m.key.clone()));
    }
    changes.extend(found.iter().filter(|k| !rows.iter().any(|r| r.key() == **k)).map(|k| Change::Remove(k.clone())));
    changes.extend(rows.into_iter().map(|r| if found.contains(&r.key()) { Change::Overwrite(r) } else { Change::Create(r) }));
    changes
}

/// Replaces the group rows of one conversation (see [`replacement`]) in one transaction, so that
/// a stream worker moving the same rows at the same moment makes it fail instead of leaving a
/// second row per member; a lost race reads the rows (and the newest message) again and retries.
/// Returns the rows deleted and written.
async fn replace_conversation(ddb: &Ddb, fence: &Fence, group: Uuid, found: Vec<Key>, new: Option<[MessageGroupRow; 2]>) -> Result<(u64, u64)> {
    let found = std::sync::Mutex::new(found);
    let what = format!("the group rows of seed conversation {group}");
    let (found, new) = (&found, &new);
    let result = conversation::retry(&what, |attempt| async move {
        if attempt > 0 {
            let mut again = Found::new();
            for item in group_items(ddb, group).await? {
                add_found(&mut again, &item);
            }
            *found.lock().expect("not poisoned") = again.remove(&group).unwrap_or_default();
        }
        let newest = match new {
            Some(_) => newest_message(ddb, group).await?,
            None => None,
        };
        let changes = replacement(&found.lock().expect("not poisoned"), new.as_ref(), newest.as_ref());
        let counts = (
            changes.iter().filter(|c| matches!(c, Change::Remove(_))).count() as u64,
            changes.iter().filter(|c| matches!(c, Change::Create(_) | Change::Overwrite(_))).count() as u64,
        );
        fence.pass().await?;
        Ok(match conversation::apply(ddb, &changes).await? {
            Applied::Done => Attempt::Done(counts),
            Applied::Race | Applied::MessageGone => Attempt::Again,
        })
    })
    .await;
    result.map_err(|e| match e {
        Error::Conflict(m) => Error::Conflict(format!("{m}; run the seed again")),
        e => e,
    })
}

/// Conversations whose group rows go into one transaction when none of them has rows yet.
const NEW_CONVERSATIONS_PER_TRANSACTION: usize = MAX_TRANSACT_ACTIONS / 2;

/// Puts the group rows of conversations that had none, many per transaction, each put
/// conditioned on its key being free; a chunk that loses a race falls back to one conversation
/// at a time (which reads first).
async fn put_new_conversations(ddb: &Ddb, fence: &Fence, plan: &SeedPlan, ks: &[u64]) -> Result<(u64, u64)> {
    let changes: Vec<Change> = ks.iter().flat_map(|k| plan.group_rows(*k)).map(Change::Create).collect();
    fence.pass().await?;
    if conversation::apply(ddb, &changes).await? == Applied::Done {
        return Ok((0, changes.len() as u64));
    }
    let mut total = (0, 0);
    for k in ks {
        let (d, w) = replace_conversation(ddb, fence, group_uuid(*k), Vec::new(), Some(plan.group_rows(*k))).await?;
        total = (total.0 + d, total.1 + w);
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{now, User};

    fn plan_rows() -> [MessageGroupRow; 2] {
        let (a, b) = (
            User { uuid: Uuid::new_v4(), display_name: "A".into(), handle: "a".into() },
            User { uuid: Uuid::new_v4(), display_name: "B".into(), handle: "b".into() },
        );
        let row = |o: &User, m: &User| MessageGroupRow {
            owner_uuid: o.uuid,
            last_message_at: now(),
            message_group_uuid: group_uuid(0),
            message: super::super::FILLER_MESSAGE.into(),
            user_uuid: m.uuid,
            user_display_name: m.display_name.clone(),
            user_handle: m.handle.clone(),
        };
        [row(&a, &b), row(&b, &a)]
    }

    #[test]
    fn seed_groups_have_their_index() {
        for k in [0, 1, 7, 4096] {
            assert_eq!(seed_index(&group_uuid(k)), Some(k));
        }
        assert_eq!(seed_index(&Uuid::new_v4()), None);
    }

    #[test]
    fn a_replacement_removes_found_rows_and_overwrites_rows_on_their_keys() {
        let new = plan_rows();
        let old = Key { pk: new[0].key().pk, sk: "2020-01-01T00:00:00.000000+00:00".into() };
        let changes = replacement(&[old.clone(), new[1].key()], Some(&new), None);
        assert_eq!(changes, vec![Change::Remove(old), Change::Create(new[0].clone()), Change::Overwrite(new[1].clone())]);
        // Conversations of earlier seeds only lose their rows.
        assert_eq!(replacement(&[new[0].key()], None, None), vec![Change::Remove(new[0].key())]);
    }

    #[test]
    fn rows_go_onto_a_message_written_after_the_seeds_clock_and_only_while_it_exists() {
        let new = plan_rows();
        let message = |at| MessageRow {
            message_group_uuid: group_uuid(0),
            created_at: at,
            message_uuid: Uuid::new_v4(),
            message: "written during the seed".into(),
            user_uuid: new[0].owner_uuid,
            user_display_name: "A".into(),
            user_handle: "a".into(),
        };
        let later = message(new[0].last_message_at + time::Duration::seconds(1));
        let later = conversation::Stored { key: later.key(), row: later };
        let changes = replacement(&[], Some(&new), Some(&later));
        assert_eq!(changes[0], Change::OnMessage(later.key.clone()));
        assert!(changes[1..].iter().all(|c| matches!(c, Change::Create(r) if r.is_on(&later.row))), "{changes:?}");
        // The seed's own messages are older than its rows: the rows keep the seed's clock.
        let older = message(new[0].last_message_at - time::Duration::days(1));
        let older = conversation::Stored { key: older.key(), row: older };
        assert_eq!(replacement(&[], Some(&new), Some(&older)), new.iter().cloned().map(Change::Create).collect::<Vec<_>>());
    }
}
