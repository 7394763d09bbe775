//! What a seed run reports: its phases and their timers as it goes, and its figures at the end.

use super::plan::SeedPlan;
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::Ddb;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What a seed run did.
#[derive(Debug, Clone, Default)]
pub struct SeedReport {
    /// Earlier seed rows removed first.
    pub deleted: u64,
    /// Rows written.
    pub written: u64,
    /// How long clearing the earlier seed took (zero when there was none).
    pub clearing: Duration,
    /// How long writing took (from the first write of this run's rows to the last).
    pub writing: Duration,
}

impl SeedReport {
    /// Rows written per second of writing.
    pub fn rate(&self) -> f64 {
        self.written as f64 / self.writing.as_secs_f64().max(1e-6)
    }

    /// The run's figures, for `--json`: what was written where, and how long each phase took.
    pub fn figures(&self, plan: &SeedPlan, ddb: &Ddb) -> serde_json::Value {
        serde_json::json!({
            "messages": plan.messages,
            "conversations": plan.groups,
            "written": self.written,
            "deleted": self.deleted,
            "writing_seconds": self.writing.as_secs_f64(),
            "clearing_seconds": self.clearing.as_secs_f64(),
            "items_per_second": self.rate(),
            "table": ddb.table,
            "target": ddb.target.label(),
        })
    }

    /// The seed's last line: what was written where, how fast, and what it replaced.
    pub fn summary(&self, plan: &SeedPlan, ddb: &Ddb) -> String {
        let cleared = if self.deleted > 0 {
            format!("; replaced the earlier seed ({} items), cleared in {:.2} s", self.deleted, self.clearing.as_secs_f64())
        } else {
            String::new()
        };
        format!(
            "seeded {} messages in {} conversation(s) between {} and {} into {} at {}: {} items written in {:.2} s ({:.0} items/s){cleared}",
            plan.messages,
            plan.groups,
            plan.me.handle,
            plan.other.handle,
            ddb.table,
            ddb.target.label(),
            self.written,
            self.writing.as_secs_f64(),
            self.rate()
        )
    }
}

/// The phases of a seed run, each with a timer of its own in [`SeedReport`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Deleting the messages of an earlier seed.
    Clearing,
    /// Replacing the group rows and writing the messages.
    Writing,
}

impl Phase {
    /// The phase as the progress bar and errors name it.
    pub fn label(self) -> &'static str {
        match self {
            Phase::Clearing => "clearing the earlier seed",
            Phase::Writing => "writing",
        }
    }
}

/// The progress of one run: the phase it is in, when each phase started, items done.
pub(super) struct Phases<'a> {
    outer: &'a dyn Progress,
    /// The phase it is in, with its items.
    current: Mutex<Option<(Phase, u64)>>,
    /// Items done in the current phase, and in all.
    in_phase: AtomicU64,
    in_all: AtomicU64,
    started: Instant,
    /// When each phase started.
    clearing_from: Mutex<Option<Instant>>,
    writing_from: Mutex<Option<Instant>>,
    /// When the writing ended (before the lock is given back).
    ended: Mutex<Option<Instant>>,
}

impl<'a> Phases<'a> {
    pub(super) fn new(outer: &'a dyn Progress) -> Self {
        Phases {
            outer,
            current: Mutex::new(None),
            in_phase: AtomicU64::new(0),
            in_all: AtomicU64::new(0),
            started: Instant::now(),
            clearing_from: Mutex::new(None),
            writing_from: Mutex::new(None),
            ended: Mutex::new(None),
        }
    }

    /// Phase `phase` of `total` items starts.
    pub(super) fn enter(&self, phase: Phase, total: u64) {
        let slot = match phase {
            Phase::Clearing => &self.clearing_from,
            Phase::Writing => &self.writing_from,
        };
        slot.lock().expect("not poisoned").get_or_insert_with(Instant::now);
        *self.current.lock().expect("not poisoned") = Some((phase, total));
        self.in_phase.store(0, Ordering::Relaxed);
        self.outer.phase(phase.label(), total);
    }

    /// The writing has ended: its timer stops.
    pub(super) fn end(&self) {
        *self.ended.lock().expect("not poisoned") = Some(Instant::now());
    }

    /// Items written so far, over all phases.
    pub(super) fn done(&self) -> u64 {
        self.in_all.load(Ordering::Relaxed)
    }

    /// The run's report with its timings, or its error with how far it got.
    pub(super) fn finish(&self, result: Result<SeedReport>) -> Result<SeedReport> {
        let ended = self.ended.lock().expect("not poisoned").unwrap_or_else(Instant::now);
        let writing_from = self.writing_from.lock().expect("not poisoned").unwrap_or(self.started);
        let clearing_from = *self.clearing_from.lock().expect("not poisoned");
        match (result, self.current.lock().expect("not poisoned").take()) {
            (Ok(mut report), _) => {
                report.writing = ended - writing_from;
                report.clearing = clearing_from.map_or(Duration::ZERO, |c| writing_from - c);
                Ok(report)
            }
            (Err(e), None) => Err(e),
            (Err(e), Some((phase, total))) => {
                Err(Error::Stopped { source: Box::new(e), phase: phase.label().to_string(), done: self.in_phase.load(Ordering::Relaxed), total })
            }
        }
    }
}

/// Items are counted through the plain [`Progress`] calls of the batch writer; phases are
/// entered through [`Phases::enter`] only.
impl Progress for Phases<'_> {
    fn inc(&self, n: u64) {
        self.in_phase.fetch_add(n, Ordering::Relaxed);
        self.in_all.fetch_add(n, Ordering::Relaxed);
        self.outer.inc(n);
    }
    fn note(&self, text: &str) {
        self.outer.note(text);
    }
}

/// Seeds of this many items on DynamoDB Local get their rate watched: a rate that collapses is
/// reported through [`Progress::note`], with how to reset the server.
pub const SLOW_LOCAL_WATCH_FROM: u64 = 20_000;

/// DynamoDB Local slows down for good once it holds many stream records (SPEC.md): says so, and
/// how to reset it, when the rate collapses. Never ends; the run it watches does.
pub(super) async fn watch_local_rate(phases: &Phases<'_>) -> std::convert::Infallible {
    let mut last = phases.done();
    loop {
        tokio::time::sleep(Duration::from_secs(10)).await;
        let now = phases.done();
        // Nothing at all written is a server that does not answer, which the run itself reports.
        let rate = now.saturating_sub(last) / 10;
        if now > last && rate < 300 {
            phases.note(&format!(
                "DynamoDB Local is writing only {rate} items/s; it slows down for good once it holds many stream records. \
                 ./bin/local/reset restarts it empty (then ./bin/ddb/schema-load and seed again)"
            ));
            return std::future::pending().await;
        }
        last = now;
    }
}
