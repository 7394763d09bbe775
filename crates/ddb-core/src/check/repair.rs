//! `--repair`: the mechanical repairs only, each through the writers that every other writer
//! races safely: a conversation's rows through [`conversation::settle`] (which reads the
//! conversation again rather than trusting the scan, and writes conditioned transactions), a
//! stale lock through [`lock::remove_as_read`] (kept when it changed since it was read).

use super::run::Checked;
use super::summary::Repaired;
use crate::error::Result;
use crate::progress::Progress;
use crate::{conversation, lock, Ddb};
use futures::{StreamExt, TryStreamExt};

/// Conversations settled at a time.
const CONCURRENCY: usize = 8;

/// Repairs what `checked` found that is mechanical: duplicate group rows and rows behind their
/// newest message (settled), and stale lock items (removed as read). What it cannot fix is
/// left. `progress` is told of each conversation and lock done.
pub async fn repair(ddb: &Ddb, checked: &Checked, progress: &dyn Progress) -> Result<Repaired> {
    let groups = checked.to_settle();
    progress.phase("repairing", (groups.len() + checked.stale_locks.len()) as u64);
    let mut out = futures::stream::iter(groups)
        .map(|g| conversation::settle(ddb, g))
        .buffer_unordered(CONCURRENCY)
        .try_fold(Repaired::default(), |mut r, s| {
            progress.inc(1);
            r.conversations += 1;
            r.moved += s.moved;
            r.removed += s.removed;
            async move { Ok(r) }
        })
        .await?;
    for item in &checked.stale_locks {
        if lock::remove_as_read(ddb, item).await? {
            out.locks += 1;
        } else {
            out.locks_kept += 1;
        }
        progress.inc(1);
    }
    Ok(out)
}
