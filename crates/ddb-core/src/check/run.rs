//! The scan: every segment read by a task of its own, its items folded into per-conversation
//! summaries (the newest message and a count, the group rows), merged, then judged.

use super::kind::{Kind, Violation};
use super::rules::{classify, conversation_violations, Conversation, Row};
use super::summary::Summary;
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::records::{Item, User};
use crate::{scan, Ddb};
use futures::StreamExt;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// What a check found.
#[derive(Debug, Clone, Default)]
pub struct Checked {
    /// Every violation, sorted (by kind, then keys).
    pub violations: Vec<Violation>,
    /// The lock items found stale, as read (for `--repair`).
    pub stale_locks: Vec<Item>,
    /// The figures.
    pub summary: Summary,
}

impl Checked {
    /// The conversations that `--repair` settles: those with a duplicate or a row behind.
    pub fn to_settle(&self) -> Vec<Uuid> {
        let mut groups: Vec<Uuid> = self
            .violations
            .iter()
            .filter(|v| matches!(v.kind, Kind::DuplicateGroupRow | Kind::GroupRowBehind))
            .filter_map(|v| v.conversation)
            .collect();
        groups.sort();
        groups.dedup();
        groups
    }
}

/// What one segment's items came to.
#[derive(Debug, Default)]
struct Folded {
    conversations: HashMap<Uuid, Conversation>,
    violations: Vec<Violation>,
    stale_locks: Vec<Item>,
    items: u64,
}

impl Folded {
    fn add(&mut self, item: Item) {
        self.items += 1;
        let c = classify(&item);
        if c.violations.iter().any(|v| matches!(v.kind, Kind::LockExpired | Kind::LockUnreadable | Kind::LockHolderGone)) {
            self.stale_locks.push(item);
        }
        self.violations.extend(c.violations);
        match c.row {
            Row::Message(m) => self.conversations.entry(m.message_group_uuid).or_default().add_message(m),
            Row::Group(g) => self.conversations.entry(g.row.message_group_uuid).or_default().rows.push(g),
            Row::Other => {}
        }
    }

    fn merge(&mut self, other: Folded) {
        self.items += other.items;
        self.violations.extend(other.violations);
        self.stale_locks.extend(other.stale_locks);
        for (g, c) in other.conversations {
            let mine = self.conversations.entry(g).or_default();
            mine.rows.extend(c.rows);
            let messages = mine.messages + c.messages;
            if let Some(m) = c.newest {
                mine.add_message(m);
            }
            mine.messages = messages;
        }
    }
}

async fn fold_segment(ddb: Ddb, seg: u32, total: u32, read: Arc<AtomicU64>) -> Result<Folded> {
    let mut folded = Folded::default();
    let mut items = std::pin::pin!(scan::segment(&ddb, seg, total));
    while let Some(item) = items.next().await {
        folded.add(item?);
        read.fetch_add(1, Ordering::Relaxed);
    }
    Ok(folded)
}

/// Reads the whole table with `segments` parallel scan segments (a task each) and judges every
/// item and conversation; `users` (Postgres `users` by uuid) adds the users rule. `progress`
/// is told of the items read as they come. Memory holds a summary per conversation, never
/// every item.
pub async fn run(ddb: &Ddb, segments: u32, users: Option<&HashMap<Uuid, User>>, progress: &dyn Progress) -> Result<Checked> {
    let started = std::time::Instant::now();
    let segments = segments.max(1);
    let read = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for seg in 0..segments {
        tasks.spawn(fold_segment(ddb.clone(), seg, segments, read.clone()));
    }
    progress.phase("reading the table", 0);
    let (mut all, mut shown) = (Folded::default(), 0);
    loop {
        tokio::select! {
            done = tasks.join_next() => match done {
                None => break,
                Some(joined) => all.merge(joined.map_err(|e| Error::Protocol(format!("a scan segment stopped: {e}")))??),
            },
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
        }
        let n = read.load(Ordering::Relaxed);
        progress.inc(n - shown);
        shown = n;
    }
    Ok(judge(all, users, started))
}

fn judge(mut all: Folded, users: Option<&HashMap<Uuid, User>>, started: std::time::Instant) -> Checked {
    for (g, c) in &all.conversations {
        all.violations.extend(conversation_violations(*g, c, users));
    }
    all.violations.sort_by(|a, b| (a.kind, &a.keys).cmp(&(b.kind, &b.keys)));
    let mut summary = Summary { items: all.items, conversations: all.conversations.len() as u64, ..Summary::default() };
    summary.count(&all.violations);
    summary.took(started.elapsed());
    Checked { violations: all.violations, stale_locks: all.stale_locks, summary }
}
