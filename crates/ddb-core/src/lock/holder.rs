//! Who holds a lock: the holder as its item stores it, and how this host tells whether that
//! holder's process is still the one that took the lock.

use crate::records::{parse_ts, Item};
use uuid::Uuid;

/// Who holds a lock, as stored in its item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// A token of the holder's own run.
    pub token: Uuid,
    /// The host it runs on (empty when the item does not say).
    pub host: String,
    /// Its process id (0 when the item does not say).
    pub pid: u32,
    /// When it took the lock, by its clock.
    pub since: String,
    /// When its lease runs out unless renewed, by its clock (for people: nothing decides on it).
    pub expires: String,
    /// The item's record version, new at every renewal (empty in items of earlier versions).
    pub version: String,
}

impl Holder {
    /// The holder in `item`, or why the item is not a lock's.
    pub(super) fn from_item(item: &Item) -> std::result::Result<Self, String> {
        let s = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
        let token = match item.get("lock_owner") {
            None => return Err("it has no lock_owner".into()),
            Some(v) => v.as_s().ok().and_then(|t| Uuid::parse_str(t).ok()).ok_or("its lock_owner is not a run's token")?,
        };
        let expires = s("expires_at").filter(|e| parse_ts(e).is_ok()).ok_or("its expires_at is not a timestamp string")?;
        // A pid written as a number (N) by hand or by another tool is still a pid.
        let pid = item.get("pid").and_then(|v| v.as_s().or(v.as_n()).ok()).and_then(|p| p.parse().ok()).unwrap_or(0);
        Ok(Holder {
            token,
            host: s("host").unwrap_or_default(),
            pid,
            since: s("since").unwrap_or_default(),
            expires,
            version: s("version").unwrap_or_default(),
        })
    }

    /// True when the holder ran on this host and its process is gone. `process` is the item's
    /// identity of that process (see [`process_id`]); items of earlier versions have none, and
    /// then the host's name and the pid decide.
    pub(super) fn is_dead_here(&self, process: Option<&str>) -> bool {
        if self.host != hostname() || self.pid == 0 {
            return false;
        }
        let stored = process.and_then(|p| p.rsplit_once(' '));
        // Another boot or another pid namespace: its pids are not ours to look up.
        if stored.is_some_and(|(space, _)| Some(space) != pid_space().as_deref()) {
            return false;
        }
        if self.pid == std::process::id() {
            return !super::HELD_HERE.lock().expect("not poisoned").contains(&self.token);
        }
        match stored {
            Some((_, start)) => process_start(self.pid).as_deref() != Some(start),
            None => !process_alive(self.pid),
        }
    }

    /// "pid N on host H", with what the item leaves out said so.
    pub(super) fn who(&self) -> String {
        let pid = if self.pid == 0 { "an unknown pid".to_string() } else { format!("pid {}", self.pid) };
        let host = if self.host.is_empty() { "an unknown host" } else { &self.host };
        format!("{pid} on host {host}")
    }
}

/// This host's name (the kernel's), for telling a user where the other holder runs.
pub(super) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown-host".to_string())
}

/// Whether process `pid` exists. Where /proc is missing (not Linux), every holder counts as alive
/// and its lock is left to the watch.
pub(super) fn process_alive(pid: u32) -> bool {
    if !std::path::Path::new("/proc/self").exists() {
        return true;
    }
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Where pids mean the same processes as ours: this boot of the kernel and this pid namespace
/// (`{boot_id}/{namespace}`); none without /proc.
pub(super) fn pid_space() -> Option<String> {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let ns = std::fs::read_link("/proc/self/ns/pid").ok()?;
    Some(format!("{}/{}", boot.trim(), ns.display()).replace(' ', "_"))
}

/// When process `pid` started, in clock ticks after boot (field 22 of /proc/PID/stat, counted
/// after the command name, which may hold spaces and parentheses); none when it is gone.
pub(super) fn process_start(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.split_whitespace().nth(19).map(str::to_string)
}

/// This process as a lock item stores it: `{pid space} {start time}`, so that a later run on
/// this host tells it from another process that got the same pid.
pub(super) fn process_id() -> Option<String> {
    Some(format!("{} {}", pid_space()?, process_start(std::process::id())?))
}
