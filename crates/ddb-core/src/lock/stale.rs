//! Lock items as `check` judges them (held, expired, unreadable, or held by a process that is
//! gone from this host), and the removal of a stale one exactly as it was read: a lock renewed or
//! taken meanwhile has another version and is kept.

use super::{AsRead, Holder, Seen};
use crate::error::Result;
use crate::records::{key_of, now, parse_ts, Item};
use crate::Ddb;
use std::time::Duration;

/// The lease assumed for a lock item that does not say its own (the seed's).
const DEFAULT_LEASE: Duration = Duration::from_secs(30);

/// What a lock item is, by its attributes and this host's view of its holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockState {
    /// Held, as far as can be told.
    Held(Holder),
    /// Its `expires_at` is more than a whole lease behind this host's clock: a holder that renews
    /// would have moved it on, whatever the skew between the two clocks within a lease.
    Expired(Holder),
    /// Its holder ran on this host and its process is gone.
    HolderGone(Holder),
    /// Not a lock's item: why.
    Unreadable(String),
}

/// Judges a lock item (see [`LockState`]).
pub fn inspect(item: &Item) -> LockState {
    let seen = Seen::new(item.clone());
    match &seen.holder {
        Err(why) => LockState::Unreadable(why.to_string()),
        Ok(h) if h.is_dead_here(seen.process()) => LockState::HolderGone(h.clone()),
        Ok(h) => {
            let lease = seen.lease(DEFAULT_LEASE);
            let lapsed = parse_ts(&h.expires).is_ok_and(|e| e + lease < now());
            if lapsed {
                LockState::Expired(h.clone())
            } else {
                LockState::Held(h.clone())
            }
        }
    }
}

/// Deletes lock item `item` on condition that it is still exactly as read (its holder, version,
/// times). False when it changed meanwhile (renewed, taken over, given back): it is left.
pub async fn remove_as_read(ddb: &Ddb, item: &Item) -> Result<bool> {
    let c = AsRead::of(item);
    let res = ddb
        .client
        .delete_item()
        .table_name(&ddb.table)
        .set_key(Some(key_of(item)))
        .condition_expression(c.condition)
        .set_expression_attribute_names(Some(c.names))
        .set_expression_attribute_values(c.values)
        .send()
        .await;
    crate::call::conditioned(res, &ddb.ctx("DeleteItem"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::types::AttributeValue;

    fn item(pairs: &[(&str, &str)]) -> Item {
        pairs.iter().map(|(k, v)| (k.to_string(), AttributeValue::S(v.to_string()))).collect()
    }

    #[test]
    fn lock_items_are_judged_by_their_attributes() {
        let token = uuid::Uuid::new_v4().to_string();
        let base = vec![("pk", "LOCK#seed"), ("sk", "LOCK#seed"), ("lock_owner", token.as_str()), ("host", "elsewhere"), ("pid", "1")];
        let far = crate::records::format_ts(now() + Duration::from_secs(60));
        let with = |e: &str| item(&[base.clone(), vec![("expires_at", e)]].concat());
        assert!(matches!(inspect(&with(&far)), LockState::Held(_)));
        assert!(matches!(inspect(&with("2020-01-01T00:00:00.000000+00:00")), LockState::Expired(_)));
        assert!(matches!(inspect(&item(&base)), LockState::Unreadable(_)));
        assert!(matches!(inspect(&item(&[("pk", "LOCK#seed"), ("sk", "LOCK#seed")])), LockState::Unreadable(_)));
    }
}
