//! A lease in the table: one item that at most one holder owns at a time, taken and kept with
//! conditional writes only, so that it works the same on DynamoDB Local and on AWS.
//!
//! The seed holds one while it replaces its conversations: two seeds started at once (a
//! dev-environment start task and a person typing `./bin/ddb/seed`) would otherwise each clear
//! what the other had not written yet, and leave two copies.
//!
//! No decision compares two hosts' clocks (a host whose clock runs ahead would take over a live
//! lock). It follows Amazon's DynamoDB Lock Client instead:
//!
//! - Keeping it: the holder renews its lease every tenth of [`Lease::ttl`], conditioned on still
//!   holding it, and every renewal writes a new record `version`. The guarded work runs only
//!   while the lease is held: if a renewal finds it taken (the holder stalled past its lease and
//!   another took over), the work is dropped mid-way and the run fails, instead of writing beside
//!   the new holder. Each write of the work passes a [`Fence`] first, which renews the lease
//!   itself when the last renewal is half a lease old: a run stopped past its lease and woken up
//!   again learns that it lost the lease before it writes, not after.
//! - Taking it: a PutItem conditioned on the key being free. When it is not, the waiter watches
//!   the item: a new version means a live holder, refused at once (naming it); an item unchanged
//!   for a whole lease (the holder's `lease_ms`), measured on the waiter's own monotonic clock,
//!   is a dead holder's, taken over by a PutItem conditioned on the item being exactly what was
//!   watched, so that of two waiters only one wins. A live holder is therefore refused within
//!   about a tenth of its lease; a dead one on another host is taken over after one lease.
//! - Shortcuts: a holder that ran on this host and whose process is gone is taken over at once.
//!   The item's `process` says which process it was (boot id, pid namespace, start time), so
//!   that a pid since reused by another process, or by this very process (which then holds no
//!   lease of that token), counts as gone, and a host of the same name elsewhere (another
//!   container) does not count as this one; items of earlier versions, without it, are judged by
//!   host name and pid. An item that is not a lock's (no `lock_owner`, or an `expires_at` that
//!   is not a timestamp) is taken over at once too, with a note naming it. Both takeovers are
//!   conditioned on the item as read.
//! - Giving it back: a DeleteItem conditioned on the token, also when the work failed.
//!
//! `expires_at` (the holder's clock plus the ttl) and `since` stay in the item for people reading
//! it; nothing decides on them. The seed's ttl is 30 s.

use crate::call::conditioned;
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::records::{format_ts, now, Item};
use crate::table::{PK, SK};
use crate::Ddb;
use aws_sdk_dynamodb::types::AttributeValue;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;
use uuid::Uuid;

mod stale;
pub use stale::{inspect, remove_as_read, LockState};

/// Prefix of lock items' keys (pk and sk), apart from the `MSG#` and `GRP#` rows.
pub const LOCK_PREFIX: &str = "LOCK#";

/// The attributes a lock item carries besides its key; a takeover is conditioned on all of them.
const LOCK_ATTRS: [&str; 8] = ["lock_owner", "host", "pid", "since", "expires_at", "version", "lease_ms", "process"];

/// Times a contested [`Lease::acquire`] looks again (the item freed, or changed hands, while it
/// looked) before it gives up and names the holder.
const ROUNDS: usize = 4;

/// The longest a contested acquire waits before it says what it waits for.
const QUIET_WAIT: Duration = Duration::from_secs(5);

mod fence;
mod holder;
pub use fence::Fence;
use fence::Renewed;
pub use holder::Holder;
use holder::{hostname, process_id};

/// Tokens of the leases this process holds now: a lock item naming this process's pid but none
/// of these tokens is a dead run's (the pid was reused), not another run of ours.
static HELD_HERE: Mutex<Vec<Uuid>> = Mutex::new(Vec::new());

/// A named lease in a table.
#[derive(Debug, Clone)]
pub struct Lease {
    /// The lock's name: its item is `pk = sk = LOCK#{name}`.
    pub name: &'static str,
    /// How long a lease lasts without renewal.
    pub ttl: Duration,
}

/// The condition that a lock item is still exactly `old`, as far as a lock's attributes go
/// (every lock write changes one of them), with its names (`#pk` too) and values.
pub(crate) struct AsRead {
    condition: String,
    names: std::collections::HashMap<String, String>,
    values: Option<std::collections::HashMap<String, AttributeValue>>,
}

impl AsRead {
    fn of(old: &Item) -> Self {
        let mut c = AsRead { condition: String::new(), names: [("#pk".to_string(), PK.to_string())].into(), values: None };
        let mut cond = vec!["attribute_exists(#pk)".to_string()];
        for (i, name) in LOCK_ATTRS.iter().enumerate() {
            c.names.insert(format!("#a{i}"), name.to_string());
            match old.get(*name) {
                Some(v) => {
                    cond.push(format!("#a{i} = :a{i}"));
                    c.values.get_or_insert_with(Default::default).insert(format!(":a{i}"), v.clone());
                }
                None => cond.push(format!("attribute_not_exists(#a{i})")),
            }
        }
        c.condition = cond.join(" AND ");
        c
    }
}

/// What a contested acquire saw in the lock's item.
struct Seen {
    item: Item,
    /// The holder, or why the item is not a lock's.
    holder: std::result::Result<Holder, String>,
}

impl Seen {
    fn new(item: Item) -> Self {
        Seen { holder: Holder::from_item(&item), item }
    }

    /// The holder's lease (its `lease_ms`), or `default` when the item has none that makes sense.
    fn lease(&self, default: Duration) -> Duration {
        let ms = self.item.get("lease_ms").and_then(|v| v.as_n().ok()).and_then(|n| n.parse::<u64>().ok());
        ms.map(Duration::from_millis).filter(|d| (Duration::from_millis(100)..=Duration::from_secs(600)).contains(d)).unwrap_or(default)
    }

    fn process(&self) -> Option<&str> {
        self.item.get("process").and_then(|v| v.as_s().ok()).map(String::as_str)
    }
}

/// How a watched lock item ended.
enum Watched {
    /// Unchanged for a whole lease: its holder is gone.
    Lapsed(Seen),
    /// Changed: renewed, or taken by another run.
    Changed(Seen),
    /// Given back.
    Gone,
}

impl Lease {
    fn key(&self) -> Item {
        let k = format!("{LOCK_PREFIX}{}", self.name);
        Item::from([(PK.to_string(), AttributeValue::S(k.clone())), (SK.to_string(), AttributeValue::S(k))])
    }

    /// How often the holder writes a new version.
    fn renew_every(&self) -> Duration {
        self.ttl / 10
    }

    /// Runs `work` while holding the lease; fails without running it when another run holds it
    /// (the error names the holder), and drops it mid-way when the lease is lost. `work` gets a
    /// [`Fence`] to pass before each write: it lets a write through only while the lease is
    /// proven held, so that a run that was stopped (SIGSTOP, a suspended laptop) past its lease
    /// writes nothing more once it wakes up. `progress` is told of a wait for a holder that may
    /// be gone and of an unreadable lock item taken over.
    ///
    /// The lease is renewed by a task of its own, so that it stays renewed on a multi-threaded
    /// runtime while `work` blocks its thread (a confirmation prompt waiting for the user).
    pub async fn hold<T, W, F>(&self, ddb: &Ddb, progress: &dyn Progress, work: W) -> Result<T>
    where
        W: FnOnce(Fence) -> F,
        F: Future<Output = Result<T>>,
    {
        let renewed = Renewed::now();
        let me = self.acquire(ddb, progress).await?;
        let fence = Fence::new(self, ddb, me.token, renewed.clone());
        let mut keeper = tokio::spawn({
            let (lease, ddb, me) = (self.clone(), ddb.clone(), me.clone());
            async move { lease.keep(&ddb, &me, &renewed).await }
        });
        let result = tokio::select! {
            r = work(fence) => r,
            lost = &mut keeper => Err(lost.unwrap_or_else(|e| Error::Conflict(format!("the renewal of the {} lock stopped: {e}", self.name)))),
        };
        keeper.abort();
        // Given back also after a failure; if this fails too, the lease lapses by itself.
        let _ = self.release(ddb, &me).await;
        HELD_HERE.lock().expect("not poisoned").retain(|t| *t != me.token);
        result
    }

    /// Takes the lock, or says who has it: at once when it is free, its holder dead on this host
    /// or its item unreadable; after watching it for at most one lease otherwise (see the module
    /// docs).
    pub async fn acquire(&self, ddb: &Ddb, progress: &dyn Progress) -> Result<Holder> {
        let mut me = Holder {
            token: Uuid::new_v4(),
            host: hostname(),
            pid: std::process::id(),
            since: String::new(),
            expires: String::new(),
            version: Uuid::new_v4().to_string(),
        };
        let mut last = None;
        for _ in 0..ROUNDS {
            if self.put(ddb, &mut me, None).await? {
                return Ok(self.took(me));
            }
            let Some(seen) = self.read(ddb).await? else { continue };
            let seen = match &seen.holder {
                // Our own put went through, and its answer was lost (the SDK then retried it).
                Ok(h) if h.token == me.token => return Ok(self.took(me)),
                Err(why) => {
                    progress.note(&format!(
                        "the {} lock's item ({PK} = {SK} = {LOCK_PREFIX}{}) in table {} is unreadable ({why}); taking it over as expired",
                        self.name, self.name, ddb.table
                    ));
                    seen
                }
                Ok(h) if h.is_dead_here(seen.process()) => seen,
                Ok(_) => match self.watch(ddb, seen, progress).await? {
                    Watched::Lapsed(seen) => seen,
                    Watched::Changed(now) => match now.holder {
                        Ok(h) => return Err(self.held(ddb, Some(h))),
                        Err(_) => continue,
                    },
                    Watched::Gone => continue,
                },
            };
            if self.put(ddb, &mut me, Some(&seen.item)).await? {
                return Ok(self.took(me));
            }
            last = seen.holder.ok();
        }
        Err(self.held(ddb, self.holder(ddb).await?.or(last)))
    }

    fn took(&self, me: Holder) -> Holder {
        HELD_HERE.lock().expect("not poisoned").push(me.token);
        me
    }

    /// Puts `me` as the lock's item, taken now, on condition that the key is free (`over` none)
    /// or that the item is still exactly `over`, as far as a lock's attributes go (every lock
    /// write changes one of them). False when the condition failed.
    async fn put(&self, ddb: &Ddb, me: &mut Holder, over: Option<&Item>) -> Result<bool> {
        let at = now();
        (me.since, me.expires) = (format_ts(at), format_ts(at + self.ttl));
        let mut item = self.key();
        let s = |v: &str| AttributeValue::S(v.to_string());
        item.extend([
            ("lock_owner".to_string(), s(&me.token.to_string())),
            ("host".to_string(), s(&me.host)),
            ("pid".to_string(), s(&me.pid.to_string())),
            ("since".to_string(), s(&me.since)),
            ("expires_at".to_string(), s(&me.expires)),
            ("version".to_string(), s(&me.version)),
            ("lease_ms".to_string(), AttributeValue::N(self.ttl.as_millis().to_string())),
        ]);
        if let Some(p) = process_id() {
            item.insert("process".to_string(), s(&p));
        }
        let mut req = ddb.client.put_item().table_name(&ddb.table).set_item(Some(item));
        req = req.expression_attribute_names("#pk", PK);
        req = match over {
            None => req.condition_expression("attribute_not_exists(#pk)"),
            Some(old) => {
                let c = AsRead::of(old);
                req.condition_expression(c.condition).set_expression_attribute_names(Some(c.names)).set_expression_attribute_values(c.values)
            }
        };
        conditioned(req.send().await, &ddb.ctx("PutItem"))
    }

    /// Watches `seen` until it changes or stays the same for a whole lease of its holder,
    /// measured on this process's monotonic clock. Tells `progress` once the holder has missed
    /// two renewals, or after [`QUIET_WAIT`] when its lease is long (a lock item with a lease of
    /// minutes would otherwise keep the run silent for minutes).
    async fn watch(&self, ddb: &Ddb, seen: Seen, progress: &dyn Progress) -> Result<Watched> {
        let lease = seen.lease(self.ttl);
        let poll = (lease / 30).clamp(Duration::from_millis(20), Duration::from_secs(1));
        let from = Instant::now();
        let mut told = false;
        loop {
            tokio::time::sleep(poll).await;
            let now = match self.read(ddb).await? {
                None => return Ok(Watched::Gone),
                Some(now) if now.item != seen.item => return Ok(Watched::Changed(now)),
                Some(now) => now,
            };
            if from.elapsed() >= lease {
                return Ok(Watched::Lapsed(now));
            }
            if !told && from.elapsed() >= (lease / 5).min(QUIET_WAIT) {
                told = true;
                if let Ok(h) = &seen.holder {
                    progress.note(&format!(
                        "the {} lock of table {} (taken at {} by {}) is not being renewed (not for {} s, on a lease of {} s); its holder may be gone: taking it over unless it is renewed within {} s",
                        self.name,
                        ddb.table,
                        h.since,
                        h.who(),
                        from.elapsed().as_secs(),
                        lease.as_secs(),
                        (lease - from.elapsed()).as_secs() + 1
                    ));
                }
            }
        }
    }

    /// The lock's item, as read (strongly consistent); none when there is none.
    async fn read(&self, ddb: &Ddb) -> Result<Option<Seen>> {
        let out = ddb
            .client
            .get_item()
            .table_name(&ddb.table)
            .set_key(Some(self.key()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| Error::from_sdk(e, &ddb.ctx("GetItem")))?;
        Ok(out.item.map(Seen::new))
    }

    /// The current holder, if any (a strongly consistent read); none also when the item is not
    /// a lock's.
    pub async fn holder(&self, ddb: &Ddb) -> Result<Option<Holder>> {
        Ok(self.read(ddb).await?.and_then(|s| s.holder.ok()))
    }

    fn held(&self, ddb: &Ddb, holder: Option<Holder>) -> Error {
        let who = match holder {
            Some(h) => format!("at {} by {}, and renewed since", h.since, h.who()),
            None => "a moment ago (it keeps changing hands: try again)".to_string(),
        };
        Error::Conflict(format!(
            "another {} is running on table {} at {}: it holds the table's {} lock, taken {who}; wait for it to finish, then run again",
            self.name,
            ddb.table,
            ddb.target.label(),
            self.name
        ))
    }

    /// Renews the lease, with a new version each time, until it is lost; returns why it was
    /// lost. Never returns while the lease is held. Each renewal that went through moves
    /// `renewed` to the moment it was sent.
    async fn keep(&self, ddb: &Ddb, me: &Holder, renewed: &Renewed) -> Error {
        loop {
            tokio::time::sleep(self.renew_every()).await;
            let sent = Instant::now();
            match self.renew(ddb, me.token).await {
                Ok(true) => renewed.set(sent),
                Ok(false) => return self.lost(ddb),
                // A short outage is survivable while the lease lasts; the next renewal retries.
                Err(e) if e.is_transient() => {}
                Err(e) => return e,
            }
        }
    }

    /// Writes a new version and expiry into the lock's item, on condition that `token` still
    /// holds it; false when it does not.
    async fn renew(&self, ddb: &Ddb, token: Uuid) -> Result<bool> {
        let res = ddb
            .client
            .update_item()
            .table_name(&ddb.table)
            .set_key(Some(self.key()))
            .update_expression("SET #v = :v, #e = :e")
            .condition_expression("#o = :me")
            .expression_attribute_names("#v", "version")
            .expression_attribute_names("#e", "expires_at")
            .expression_attribute_names("#o", "lock_owner")
            .expression_attribute_values(":v", AttributeValue::S(Uuid::new_v4().to_string()))
            .expression_attribute_values(":e", AttributeValue::S(format_ts(now() + self.ttl)))
            .expression_attribute_values(":me", AttributeValue::S(token.to_string()))
            .send()
            .await;
        conditioned(res, &ddb.ctx("UpdateItem"))
    }

    fn lost(&self, ddb: &Ddb) -> Error {
        Error::Conflict(format!(
            "lost the {} lock of table {}: this run stalled past its lease and another run took over; stopped writing. Run it again when the other one has finished",
            self.name, ddb.table
        ))
    }

    async fn release(&self, ddb: &Ddb, me: &Holder) -> Result<()> {
        ddb.client
            .delete_item()
            .table_name(&ddb.table)
            .set_key(Some(self.key()))
            .condition_expression("lock_owner = :me")
            .expression_attribute_values(":me", AttributeValue::S(me.token.to_string()))
            .send()
            .await
            .map_err(|e| Error::from_sdk(e, &ddb.ctx("DeleteItem")))?;
        Ok(())
    }
}
