//! How long work reports as it goes. The library never prints: the command line draws a progress
//! bar from these calls (`ddb-cli`), a test or a Lambda counts them or ignores them.

use std::sync::atomic::{AtomicU64, Ordering};

/// Told about phases and items done by long work (the seed, bulk writes).
pub trait Progress: Sync {
    /// A phase of `total` items starts ("clearing the earlier seed", "writing").
    fn phase(&self, name: &str, total: u64) {
        let _ = (name, total);
    }
    /// `n` more items are done.
    fn inc(&self, n: u64);
    /// Something the person waiting should know (a server slowing down).
    fn note(&self, text: &str) {
        let _ = text;
    }
}

/// Progress that nobody watches.
impl Progress for () {
    fn inc(&self, _: u64) {}
}

/// Counts items done, and tells another [`Progress`] too: what a caller keeps to say how far a
/// run got.
#[derive(Debug, Default)]
pub struct Counter<P = ()> {
    done: AtomicU64,
    /// Also told.
    pub inner: P,
}

impl<P: Progress> Counter<P> {
    /// A counter at 0 that also tells `inner`.
    pub fn new(inner: P) -> Self {
        Counter { done: AtomicU64::new(0), inner }
    }

    /// Items done so far, over all phases.
    pub fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }
}

impl<P: Progress> Progress for Counter<P> {
    fn phase(&self, name: &str, total: u64) {
        self.inner.phase(name, total);
    }
    fn inc(&self, n: u64) {
        self.done.fetch_add(n, Ordering::Relaxed);
        self.inner.inc(n);
    }
    fn note(&self, text: &str) {
        self.inner.note(text);
    }
}

impl<P: Progress + ?Sized> Progress for &P {
    fn phase(&self, name: &str, total: u64) {
        (**self).phase(name, total);
    }
    fn inc(&self, n: u64) {
        (**self).inc(n);
    }
    fn note(&self, text: &str) {
        (**self).note(text);
    }
}
