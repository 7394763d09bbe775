//! The run's figures: items read, conversations, violations by kind, repairs, time.

use super::kind::{Kind, Violation};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// What `check --repair` changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Repaired {
    /// Conversations settled (their group rows re-read and mended).
    pub conversations: u64,
    /// Group rows moved onto their newest message.
    pub moved: u64,
    /// Duplicate group rows removed.
    pub removed: u64,
    /// Stale lock items removed.
    pub locks: u64,
    /// Stale lock items left because they changed since they were read (renewed or taken).
    pub locks_kept: u64,
}

/// The figures of one check.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// Items read.
    pub items: u64,
    /// Conversations seen (by their messages or group rows).
    pub conversations: u64,
    /// Violations by kind (kinds without any left out).
    pub violations: BTreeMap<Kind, u64>,
    /// What was repaired (with `--repair`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repaired: Option<Repaired>,
    /// Wall time of the scan and the rules, in seconds.
    pub seconds: f64,
}

impl Summary {
    /// Counts `violations` by kind.
    pub fn count(&mut self, violations: &[Violation]) {
        for v in violations {
            *self.violations.entry(v.kind).or_default() += 1;
        }
    }

    /// Sets the elapsed time.
    pub fn took(&mut self, d: Duration) {
        self.seconds = d.as_secs_f64();
    }

    /// The number of violations.
    pub fn total(&self) -> u64 {
        self.violations.values().sum()
    }

    /// Violations of kinds that `--repair` cannot mend.
    pub fn unrepairable(&self) -> u64 {
        self.violations.iter().filter(|(k, _)| !k.repairable()).map(|(_, n)| n).sum()
    }

    /// The summary line.
    pub fn line(&self) -> String {
        let kinds: Vec<String> = self.violations.iter().map(|(k, n)| format!("{k} {n}")).collect();
        let found = if kinds.is_empty() { "no violations".to_string() } else { format!("{} violations ({})", self.total(), kinds.join(", ")) };
        let mut line = format!("checked {} items, {} conversations: {found}", self.items, self.conversations);
        if let Some(r) = self.repaired {
            line.push_str(&format!(
                "; repaired {} conversations ({} rows moved, {} duplicates removed), {} locks removed",
                r.conversations, r.moved, r.removed, r.locks
            ));
            if r.locks_kept > 0 {
                line.push_str(&format!(" ({} kept: renewed meanwhile)", r.locks_kept));
            }
        }
        line.push_str(&format!(" in {:.1} s", self.seconds));
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_names_kinds_and_counts() {
        let v = Violation { kind: Kind::OrphanMessage, conversation: None, keys: vec![], expected: String::new(), found: String::new() };
        let mut s = Summary { items: 5, conversations: 2, ..Summary::default() };
        s.count(&[v.clone(), v]);
        assert_eq!(s.line(), "checked 5 items, 2 conversations: 2 violations (orphan_message 2) in 0.0 s");
        assert_eq!((s.total(), s.unrepairable()), (2, 2));
    }
}
