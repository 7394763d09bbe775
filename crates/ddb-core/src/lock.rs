//! A lease in the table: one item that at most one holder owns at a time, taken and kept with
//! conditional writes only, so that it works the same on DynamoDB Local and on AWS.
//!
//! The seed holds one while it replaces its conversations: two seeds started at once (a
//! dev-environment start task and a person typing `./bin/ddb/seed`) would otherwise each clear
//! what the other had not written yet, and leave two copies.
//!
//! - Taking it: a PutItem on the lock's key, conditioned on the key being free or its lease
//!   having run out. A holder killed on this host (its pid gone) is taken over at once, by a
//!   PutItem conditioned on that holder's token, so that of two runs that both find it dead only
//!   one wins.
//! - Keeping it: the holder renews its lease every [`Lease::ttl`] / 3, conditioned on still
//!   holding it. The guarded work runs only while the lease is held: if a renewal finds it taken
//!   (the holder stalled past its lease and another took over), the work is dropped mid-way and
//!   the run fails, instead of writing beside the new holder.
//! - Giving it back: a DeleteItem conditioned on the token, also when the work failed. A lock
//!   left by a killed run on another host expires by itself after the ttl.
//!
//! The lease compares the holders' clocks: hosts whose clocks differ by more than the ttl could
//! both hold it. The seed's ttl is 30 s.

use crate::error::{Error, Result};
use crate::records::{format_ts, now, Item};
use crate::table::{PK, SK};
use crate::Ddb;
use aws_sdk_dynamodb::types::AttributeValue;
use std::future::Future;
use std::time::Duration;
use time::OffsetDateTime;
use uuid::Uuid;

/// Prefix of lock items' keys (pk and sk), apart from the `MSG#` and `GRP#` rows.
pub const LOCK_PREFIX: &str = "LOCK#";

/// A named lease in a table.
#[derive(Debug, Clone)]
pub struct Lease {
    /// The lock's name: its item is `pk = sk = LOCK#{name}`.
    pub name: &'static str,
    /// How long a lease lasts without renewal.
    pub ttl: Duration,
}

/// Who holds a lock, as stored in its item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// A token of the holder's own run.
    pub token: Uuid,
    /// The host it runs on.
    pub host: String,
    /// Its process id.
    pub pid: u32,
    /// When it took the lock.
    pub since: String,
    /// When its lease runs out unless renewed.
    pub expires: String,
}

impl Holder {
    fn me() -> Self {
        Holder { token: Uuid::new_v4(), host: hostname(), pid: std::process::id(), since: String::new(), expires: String::new() }
    }

    fn from_item(item: &Item) -> Option<Self> {
        let s = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
        Some(Holder {
            token: Uuid::parse_str(&s("lock_owner")?).ok()?,
            host: s("host").unwrap_or_default(),
            pid: s("pid").and_then(|p| p.parse().ok()).unwrap_or(0),
            since: s("since").unwrap_or_default(),
            expires: s("expires_at").unwrap_or_default(),
        })
    }

    /// True when the holder ran on this host and its process is gone.
    fn is_dead_here(&self) -> bool {
        self.host == hostname() && self.pid != 0 && !process_alive(self.pid)
    }
}

/// This host's name (the kernel's), for telling a user where the other holder runs.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown-host".to_string())
}

/// Whether process `pid` exists. Where /proc is missing (not Linux), every holder counts as alive
/// and its lock is left to expire.
fn process_alive(pid: u32) -> bool {
    if !std::path::Path::new("/proc/self").exists() {
        return true;
    }
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

impl Lease {
    fn key(&self) -> Item {
        let k = format!("{LOCK_PREFIX}{}", self.name);
        Item::from([(PK.to_string(), AttributeValue::S(k.clone())), (SK.to_string(), AttributeValue::S(k))])
    }

    fn expiry(&self, from: OffsetDateTime) -> String {
        format_ts(from + self.ttl)
    }

    /// Runs `work` while holding the lease; fails without running it when another run holds it
    /// (the error names the holder), and drops it mid-way when the lease is lost.
    ///
    /// The lease is renewed by a task of its own, so that it stays renewed on a multi-threaded
    /// runtime while `work` blocks its thread (a confirmation prompt waiting for the user).
    pub async fn hold<T, F>(&self, ddb: &Ddb, work: F) -> Result<T>
    where
        F: Future<Output = Result<T>>,
    {
        let me = self.acquire(ddb).await?;
        let mut keeper = tokio::spawn({
            let (lease, ddb, me) = (self.clone(), ddb.clone(), me.clone());
            async move { lease.keep(&ddb, &me).await }
        });
        let result = tokio::select! {
            r = work => r,
            lost = &mut keeper => Err(lost.unwrap_or_else(|e| Error::Conflict(format!("the renewal of the {} lock stopped: {e}", self.name)))),
        };
        keeper.abort();
        // Given back also after a failure; if this fails too, the lease expires by itself.
        let _ = self.release(ddb, &me).await;
        result
    }

    /// Takes the lock, or says who has it.
    pub async fn acquire(&self, ddb: &Ddb) -> Result<Holder> {
        let mut me = Holder::me();
        let at = now();
        me.since = format_ts(at);
        me.expires = self.expiry(at);
        let mut item = self.key();
        item.extend([
            ("lock_owner".to_string(), AttributeValue::S(me.token.to_string())),
            ("host".to_string(), AttributeValue::S(me.host.clone())),
            ("pid".to_string(), AttributeValue::S(me.pid.to_string())),
            ("since".to_string(), AttributeValue::S(me.since.clone())),
            ("expires_at".to_string(), AttributeValue::S(me.expires.clone())),
        ]);
        let put = |condition: &str, values: Vec<(&str, String)>| {
            let mut req = ddb.client.put_item().table_name(&ddb.table).set_item(Some(item.clone())).condition_expression(condition);
            for (k, v) in values {
                req = req.expression_attribute_values(k, AttributeValue::S(v));
            }
            req.send()
        };
        let lost = |e: &aws_sdk_dynamodb::error::SdkError<_, _>| {
            e.as_service_error().is_some_and(aws_sdk_dynamodb::operation::put_item::PutItemError::is_conditional_check_failed_exception)
        };
        match put("attribute_not_exists(pk) OR expires_at < :now", vec![(":now", me.since.clone())]).await {
            Ok(_) => return Ok(me),
            Err(e) if lost(&e) => {}
            Err(e) => return Err(Error::from_sdk(e, &ddb.ctx("PutItem"))),
        }
        let holder = self.holder(ddb).await?;
        match holder {
            Some(h) if h.is_dead_here() => match put("lock_owner = :old", vec![(":old", h.token.to_string())]).await {
                Ok(_) => Ok(me),
                Err(e) if lost(&e) => Err(self.held(ddb, self.holder(ddb).await?)),
                Err(e) => Err(Error::from_sdk(e, &ddb.ctx("PutItem"))),
            },
            other => Err(self.held(ddb, other)),
        }
    }

    /// The current holder, if any (a strongly consistent read).
    pub async fn holder(&self, ddb: &Ddb) -> Result<Option<Holder>> {
        let out = ddb
            .client
            .get_item()
            .table_name(&ddb.table)
            .set_key(Some(self.key()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| Error::from_sdk(e, &ddb.ctx("GetItem")))?;
        Ok(out.item().and_then(Holder::from_item))
    }

    fn held(&self, ddb: &Ddb, holder: Option<Holder>) -> Error {
        let who = match holder {
            Some(h) => format!("since {} by pid {} on host {}; its lease runs out at {} unless renewed", h.since, h.pid, h.host, h.expires),
            None => "a moment ago (it has just been released: try again)".to_string(),
        };
        Error::Conflict(format!(
            "another {} is running on table {} at {}: it holds the table's {} lock, taken {who}; wait for it to finish, then run again",
            self.name,
            ddb.table,
            ddb.target.label(),
            self.name
        ))
    }

    /// Renews the lease until it is lost; returns why it was lost. Never returns while the lease
    /// is held.
    async fn keep(&self, ddb: &Ddb, me: &Holder) -> Error {
        let every = self.ttl / 3;
        loop {
            tokio::time::sleep(every).await;
            let res = ddb
                .client
                .update_item()
                .table_name(&ddb.table)
                .set_key(Some(self.key()))
                .update_expression("SET expires_at = :e")
                .condition_expression("lock_owner = :me")
                .expression_attribute_values(":e", AttributeValue::S(self.expiry(now())))
                .expression_attribute_values(":me", AttributeValue::S(me.token.to_string()))
                .send()
                .await;
            match res {
                Ok(_) => {}
                Err(e) if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) => {
                    return Error::Conflict(format!(
                        "lost the {} lock of table {}: this run stalled past its lease and another run took over; stopped writing. Run it again when the other one has finished",
                        self.name, ddb.table
                    ));
                }
                Err(e) => {
                    let err = Error::from_sdk(e, &ddb.ctx("UpdateItem"));
                    // A short outage is survivable while the lease lasts; the next renewal retries.
                    if !err.is_transient() {
                        return err;
                    }
                }
            }
        }
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
