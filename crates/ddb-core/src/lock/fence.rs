//! The fence of a held lease: writes under the lease pass it first, and it lets them through only
//! while the lease is proven held.
//!
//! A waiter takes a lease over after it saw the lock's item unchanged for a whole lease on its
//! own clock; the item changed last at a renewal that this run sent at some moment `t`, so no
//! one takes over before `t + ttl`. The fence lets a write go only while the last renewal that
//! went through was sent less than half a lease ago; past that (the run was stopped by SIGSTOP
//! or a suspended machine, or its renewals failed), it renews first, conditioned on still
//! holding the lease, and a renewal that finds the lease taken fails the write. So a run that
//! wakes up after another took over writes nothing more. What a fence cannot stop is a request
//! already handed to the network when the process stopped (the server applies it during the
//! stop, before any takeover) or one that the SDK itself resends: a window of one request.

use super::Lease;
use crate::error::{Error, Result};
use crate::write::backoff;
use crate::Ddb;
use std::sync::{Arc, Mutex};
use tokio::time::Instant;
use uuid::Uuid;

/// When the last renewal that went through (or the acquisition) was sent, shared by the lease's
/// keeper and its fences.
#[derive(Debug, Clone)]
pub(super) struct Renewed(Arc<Mutex<Instant>>);

impl Renewed {
    /// Taken before the acquisition is sent: earlier than the item's write, so on the safe side.
    pub(super) fn now() -> Self {
        Renewed(Arc::new(Mutex::new(Instant::now())))
    }

    pub(super) fn set(&self, sent: Instant) {
        let mut at = self.0.lock().expect("not poisoned");
        *at = (*at).max(sent);
    }

    fn age(&self) -> std::time::Duration {
        self.0.lock().expect("not poisoned").elapsed()
    }
}

/// Lets writes through only while the lease is proven held (see the [module](self)).
#[derive(Debug, Clone)]
pub struct Fence {
    lease: Lease,
    ddb: Ddb,
    token: Uuid,
    renewed: Renewed,
    /// One renewal at a time when several writes find the lease stale at once.
    renewing: Arc<tokio::sync::Mutex<()>>,
}

impl Fence {
    pub(super) fn new(lease: &Lease, ddb: &Ddb, token: Uuid, renewed: Renewed) -> Self {
        Fence { lease: lease.clone(), ddb: ddb.clone(), token, renewed, renewing: Arc::default() }
    }

    /// Ok when the lease is held now: at once while its last renewal is fresh, else after a
    /// renewal of its own. Fails when the lease was taken over, or when it could not be renewed
    /// for a whole lease (another run may have taken it over meanwhile).
    pub async fn pass(&self) -> Result<()> {
        let fresh = self.lease.ttl / 2;
        if self.renewed.age() < fresh {
            return Ok(());
        }
        let _one = self.renewing.lock().await;
        let mut attempt = 0;
        while self.renewed.age() >= fresh {
            let sent = Instant::now();
            match self.lease.renew(&self.ddb, self.token).await {
                Ok(true) => self.renewed.set(sent),
                Ok(false) => return Err(self.lease.lost(&self.ddb)),
                Err(e) if e.is_transient() && self.renewed.age() < self.lease.ttl => {
                    tokio::time::sleep(backoff(attempt)).await;
                    attempt += 1;
                }
                Err(e) => {
                    return Err(Error::Conflict(format!(
                        "could not renew the {} lock of table {} for {} s ({e}); stopped writing, as another run may have taken it over: run again",
                        self.lease.name,
                        self.ddb.table,
                        self.renewed.age().as_secs()
                    )))
                }
            }
        }
        Ok(())
    }
}
