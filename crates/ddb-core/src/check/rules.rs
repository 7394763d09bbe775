//! The rules, as pure functions: an item's shape, and a conversation's summary to violations.

use super::kind::{Kind, Violation};
use crate::conversation::Stored;
use crate::lock::{inspect, LockState, LOCK_PREFIX};
use crate::records::{format_ts, item_size, parse_ts, Item, Key, MessageGroupRow, MessageRow, User, MAX_ITEM_BYTES};
use crate::table::{GRP_PREFIX, MSG_PREFIX, PK, SK};
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

/// What an item is, as far as the conversations go.
#[derive(Debug, Clone, PartialEq)]
pub enum Row {
    /// A well-formed message.
    Message(MessageRow),
    /// A well-formed group row, with its key as stored.
    Group(Stored<MessageGroupRow>),
    /// Anything else: a lock, or an item already reported.
    Other,
}

/// An item classified: its row, and what is wrong with the item itself.
#[derive(Debug, Clone, PartialEq)]
pub struct Classified {
    /// The row, for the conversation's summary.
    pub row: Row,
    /// Violations of the item alone.
    pub violations: Vec<Violation>,
}

/// The one timestamp format of the table, as a pattern.
const TS_FORM: &str = "YYYY-MM-DDTHH:MM:SS.ffffff+00:00";

fn key_text(item: &Item) -> String {
    let get = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).map(String::as_str).unwrap_or("?");
    format!("({}, {})", get(PK), get(SK))
}

fn item_violation(kind: Kind, item: &Item, expected: &str, found: String) -> Violation {
    Violation { kind, conversation: None, keys: vec![key_text(item)], expected: expected.to_string(), found }
}

/// What is wrong with the key of a `MSG#`/`GRP#` item: `prefix` and a uuid, `sk` a timestamp in
/// the one format that sorts.
fn key_problem(item: &Item, prefix: &str) -> Option<String> {
    let Some(key) = Key::of(item) else {
        return Some(format!("{PK} or {SK} missing or not a string"));
    };
    if Uuid::parse_str(&key.pk[prefix.len()..]).is_err() {
        return Some(format!("{PK} {:?} is not {prefix} and a uuid", key.pk));
    }
    match parse_ts(&key.sk) {
        Err(_) => Some(format!("{SK} {:?} is not an RFC 3339 timestamp", key.sk)),
        Ok(t) if format_ts(t) != key.sk => Some(format!("{SK} {:?} is not in the one format that sorts ({})", key.sk, format_ts(t))),
        Ok(_) => None,
    }
}

/// Classifies one item: its row and the violations of its key, attributes, size, or lock.
pub fn classify(item: &Item) -> Classified {
    let mut violations = Vec::new();
    let size = item_size(item);
    if size > MAX_ITEM_BYTES {
        violations.push(item_violation(Kind::ItemTooLarge, item, &format!("at most {MAX_ITEM_BYTES} bytes"), format!("{size} bytes")));
    }
    let partition = item.get(PK).and_then(|v| v.as_s().ok()).map(String::as_str).unwrap_or("");
    let prefix = [MSG_PREFIX, GRP_PREFIX].into_iter().find(|p| partition.starts_with(p));
    let row = match prefix {
        Some(p) => match key_problem(item, p) {
            Some(problem) => {
                violations.push(item_violation(Kind::BadKey, item, &format!("{PK} = {p}UUID and {SK} = {TS_FORM}"), problem));
                Row::Other
            }
            None => typed(item, p, &mut violations),
        },
        None if partition.starts_with(LOCK_PREFIX) => {
            violations.extend(lock_violation(item));
            Row::Other
        }
        None => {
            let found = if partition.is_empty() { format!("no string {PK}") } else { format!("{PK} {partition:?}") };
            violations.push(item_violation(Kind::UnknownItem, item, &format!("a {MSG_PREFIX}, {GRP_PREFIX} or {LOCK_PREFIX} item"), found));
            Row::Other
        }
    };
    Classified { row, violations }
}

/// The typed row of an item whose key is right; a missing or mistyped attribute is reported.
fn typed(item: &Item, prefix: &str, violations: &mut Vec<Violation>) -> Row {
    let read = if prefix == MSG_PREFIX {
        MessageRow::from_item(item).map(Row::Message)
    } else {
        MessageGroupRow::from_item(item).map(|row| Row::Group(Stored { key: Key::of(item).expect("checked"), row }))
    };
    read.unwrap_or_else(|e| {
        let problem = match e {
            crate::Error::BadItem { problem, .. } => problem,
            e => e.to_string(),
        };
        violations.push(item_violation(Kind::BadAttribute, item, "every attribute of the row, as strings", problem));
        Row::Other
    })
}

/// The violation of a lock item, if any.
fn lock_violation(item: &Item) -> Option<Violation> {
    let expected = "a lock held and renewed by a live process";
    match inspect(item) {
        LockState::Held(_) => None,
        LockState::Expired(h) => Some(item_violation(Kind::LockExpired, item, expected, format!("expired at {} (taken at {})", h.expires, h.since))),
        LockState::HolderGone(h) => {
            Some(item_violation(Kind::LockHolderGone, item, expected, format!("held by pid {} on this host ({}), which is gone", h.pid, h.host)))
        }
        LockState::Unreadable(why) => Some(item_violation(Kind::LockUnreadable, item, expected, format!("an unreadable lock item: {why}"))),
    }
}

/// What the scan keeps of one conversation: its newest message and message count, and its
/// group rows (a few). Never every message.
#[derive(Debug, Clone, Default)]
pub struct Conversation {
    /// The newest message.
    pub newest: Option<MessageRow>,
    /// How many messages it has.
    pub messages: u64,
    /// Its group rows, as stored.
    pub rows: Vec<Stored<MessageGroupRow>>,
}

impl Conversation {
    /// Counts message `m`, kept when it is the newest so far.
    pub fn add_message(&mut self, m: MessageRow) {
        self.messages += 1;
        if self.newest.as_ref().is_none_or(|n| m.created_at > n.created_at) {
            self.newest = Some(m);
        }
    }
}

fn keys(rows: &[&Stored<MessageGroupRow>]) -> Vec<String> {
    rows.iter().map(|r| r.key.to_string()).collect()
}

fn short(text: &str) -> String {
    let cut: String = text.chars().take(40).collect();
    if cut.len() < text.len() {
        format!("{cut:?}...")
    } else {
        format!("{cut:?}")
    }
}

/// Every violation of conversation `group` (see the module docs of [`super`]); `users` are
/// Postgres `users` by uuid, when given.
pub fn conversation_violations(group: Uuid, c: &Conversation, users: Option<&HashMap<Uuid, User>>) -> Vec<Violation> {
    let v = |kind, keys, expected: String, found: String| Violation { kind, conversation: Some(group), keys, expected, found };
    let all: Vec<&Stored<MessageGroupRow>> = c.rows.iter().collect();
    let Some(newest) = &c.newest else {
        return vec![v(
            Kind::GroupWithoutMessages,
            keys(&all),
            format!("messages in {}", MessageRow::pk_of(group)),
            format!("{} group rows and no message", all.len()),
        )];
    };
    if all.is_empty() {
        let expected = format!("group rows of conversation {group} for both members");
        return vec![v(Kind::OrphanMessage, vec![newest.key().to_string()], expected, format!("{} messages and no group row", c.messages))];
    }
    let mut by_owner: BTreeMap<Uuid, Vec<&Stored<MessageGroupRow>>> = BTreeMap::new();
    for r in &all {
        by_owner.entry(r.row.owner_uuid).or_default().push(r);
    }
    let mut out = Vec::new();
    let mut kept = Vec::new();
    for (owner, mut mine) in by_owner {
        // The row that stays, as conversation::settling keeps it.
        mine.sort_by_key(|r| (r.row.is_on(newest), r.row.last_message_at));
        let keep = *mine.last().expect("a member has a row");
        if mine.len() > 1 {
            let found = format!("{} rows; the one at {} stays", mine.len(), keep.key.sk);
            out.push(v(Kind::DuplicateGroupRow, keys(&mine), format!("one group row of member {owner}"), found));
        }
        if !keep.row.follows(Some(newest)) {
            let expected =
                format!("{} = {} and the text {} of the newest message", crate::table::SK, format_ts(newest.created_at), short(&newest.message));
            out.push(v(
                Kind::GroupRowBehind,
                vec![keep.key.to_string()],
                expected,
                format!("{} with text {}", keep.key.sk, short(&keep.row.message)),
            ));
        }
        kept.push(keep);
    }
    out.extend(members(group, &kept, newest));
    if let Some(users) = users {
        out.extend(kept.iter().filter_map(|r| user_violation(group, r, users)));
    }
    out
}

/// The member rules: two members, each row naming the other (uuid; handle and display name as
/// the newest message's sender says).
fn members(group: Uuid, kept: &[&Stored<MessageGroupRow>], newest: &MessageRow) -> Vec<Violation> {
    let v =
        |kind, expected: &str, found: String| Violation { kind, conversation: Some(group), keys: keys(kept), expected: expected.to_string(), found };
    let owners: Vec<Uuid> = kept.iter().map(|r| r.row.owner_uuid).collect();
    let [a, b] = kept else {
        let kind = if kept.len() < 2 { Kind::MissingMember } else { Kind::ExtraMember };
        let found = format!("rows of {} members ({})", owners.len(), owners.iter().map(Uuid::to_string).collect::<Vec<_>>().join(", "));
        return vec![v(kind, "group rows of exactly two members", found)];
    };
    if a.row.user_uuid != b.row.owner_uuid || b.row.user_uuid != a.row.owner_uuid {
        let found = format!("{} names {}, {} names {}", a.row.owner_uuid, a.row.user_uuid, b.row.owner_uuid, b.row.user_uuid);
        return vec![v(Kind::MemberMismatch, "each member's row naming the other member", found)];
    }
    let Some(about_sender) = kept.iter().find(|r| r.row.user_uuid == newest.user_uuid) else {
        return vec![v(Kind::MemberMismatch, "the newest message from a member", format!("a message from {}", newest.user_uuid))];
    };
    if about_sender.row.user_handle != newest.user_handle || about_sender.row.user_display_name != newest.user_display_name {
        let found = format!(
            "{:?} ({:?}) in {}, {:?} ({:?}) in the newest message",
            about_sender.row.user_handle, about_sender.row.user_display_name, about_sender.key, newest.user_handle, newest.user_display_name
        );
        return vec![v(Kind::MemberMismatch, "the other member's handle and display name as their messages say", found)];
    }
    Vec::new()
}

fn user_violation(group: Uuid, r: &Stored<MessageGroupRow>, users: &HashMap<Uuid, User>) -> Option<Violation> {
    let found = match users.get(&r.row.user_uuid) {
        None => format!("no user {} in users", r.row.user_uuid),
        Some(u) if u.handle != r.row.user_handle || u.display_name != r.row.user_display_name => {
            format!("{:?} ({:?}) in the row, {:?} ({:?}) in users", r.row.user_handle, r.row.user_display_name, u.handle, u.display_name)
        }
        Some(_) => return None,
    };
    Some(Violation {
        kind: Kind::UserMismatch,
        conversation: Some(group),
        keys: vec![r.key.to_string()],
        expected: "the other member as Postgres users has them".into(),
        found,
    })
}

/// The rules on hand-made items and summaries.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::FILLER_MESSAGE;
    use aws_sdk_dynamodb::types::AttributeValue;
    use uuid::Uuid;

    const T1: &str = "2026-01-01T00:00:01.000000+00:00";
    const T2: &str = "2026-01-01T00:00:02.000000+00:00";
    const T3: &str = "2026-01-01T00:00:03.000000+00:00";

    struct Pair {
        group: Uuid,
        a: Uuid,
        b: Uuid,
    }

    impl Pair {
        fn new() -> Self {
            Pair { group: Uuid::new_v4(), a: Uuid::new_v4(), b: Uuid::new_v4() }
        }
        fn message(&self, at: &str, text: &str) -> MessageRow {
            MessageRow {
                message_group_uuid: self.group,
                created_at: parse_ts(at).unwrap(),
                message_uuid: Uuid::new_v4(),
                message: text.into(),
                user_uuid: self.a,
                user_display_name: "A".into(),
                user_handle: "a".into(),
            }
        }
        fn row(&self, owner: Uuid, at: &str, text: &str) -> Stored<MessageGroupRow> {
            let (other, name) = if owner == self.a { (self.b, "b") } else { (self.a, "a") };
            let row = MessageGroupRow {
                owner_uuid: owner,
                last_message_at: parse_ts(at).unwrap(),
                message_group_uuid: self.group,
                message: text.into(),
                user_uuid: other,
                user_display_name: name.to_uppercase(),
                user_handle: name.into(),
            };
            Stored { key: row.key(), row }
        }
        fn kinds(&self, newest: Option<MessageRow>, rows: Vec<Stored<MessageGroupRow>>) -> Vec<Kind> {
            let c = Conversation { messages: newest.is_some() as u64, newest, rows };
            conversation_violations(self.group, &c, None).into_iter().map(|v| v.kind).collect()
        }
    }

    #[test]
    fn a_settled_conversation_and_a_seeded_one_are_clean() {
        let p = Pair::new();
        assert_eq!(p.kinds(Some(p.message(T2, "two")), vec![p.row(p.a, T2, "two"), p.row(p.b, T2, "two")]), []);
        assert_eq!(p.kinds(Some(p.message(T2, "two")), vec![p.row(p.a, T3, FILLER_MESSAGE), p.row(p.b, T3, FILLER_MESSAGE)]), []);
    }

    #[test]
    fn each_conversation_rule_has_its_kind() {
        let p = Pair::new();
        let m = || Some(p.message(T2, "two"));
        let dup = vec![p.row(p.a, T1, "one"), p.row(p.a, T2, "two"), p.row(p.b, T2, "two")];
        assert_eq!(p.kinds(m(), dup), [Kind::DuplicateGroupRow]);
        assert_eq!(p.kinds(m(), vec![p.row(p.a, T1, "one"), p.row(p.b, T2, "two")]), [Kind::GroupRowBehind]);
        assert_eq!(p.kinds(m(), vec![p.row(p.a, T2, "two")]), [Kind::MissingMember]);
        assert_eq!(p.kinds(m(), vec![]), [Kind::OrphanMessage]);
        assert_eq!(p.kinds(None, vec![p.row(p.a, T2, "two"), p.row(p.b, T2, "two")]), [Kind::GroupWithoutMessages]);
        let mut renamed = p.row(p.b, T2, "two");
        renamed.row.user_handle = "someone-else".into();
        assert_eq!(p.kinds(m(), vec![p.row(p.a, T2, "two"), renamed]), [Kind::MemberMismatch]);
        let stranger = Stored { key: p.row(p.a, T2, "two").key, row: MessageGroupRow { owner_uuid: Uuid::new_v4(), ..p.row(p.a, T2, "two").row } };
        let three = vec![p.row(p.a, T2, "two"), p.row(p.b, T2, "two"), Stored { key: stranger.row.key(), ..stranger }];
        assert_eq!(p.kinds(m(), three), [Kind::ExtraMember]);
    }

    fn item(pairs: &[(&str, &str)]) -> Item {
        pairs.iter().map(|(k, v)| (k.to_string(), AttributeValue::S(v.to_string()))).collect()
    }

    #[test]
    fn items_are_classified_by_their_shape() {
        let p = Pair::new();
        let m = p.message(T1, "hi").to_item();
        assert!(matches!(classify(&m).row, Row::Message(_)) && classify(&m).violations.is_empty());
        let kind = |i: &Item| classify(i).violations.iter().map(|v| v.kind).collect::<Vec<_>>();
        let mut odd_sk = m.clone();
        odd_sk.insert("sk".into(), AttributeValue::S("2026-01-01T00:00:01Z".into()));
        assert_eq!(kind(&odd_sk), [Kind::BadKey]);
        let mut no_text = m.clone();
        no_text.remove("message");
        assert_eq!(kind(&no_text), [Kind::BadAttribute]);
        let mut typed = m.clone();
        typed.insert("user_uuid".into(), AttributeValue::N("1".into()));
        assert_eq!(kind(&typed), [Kind::BadAttribute]);
        assert_eq!(kind(&item(&[("pk", "MSG#nope"), ("sk", T1)])), [Kind::BadKey]);
        assert_eq!(kind(&item(&[("pk", "USER#x"), ("sk", T1)])), [Kind::UnknownItem]);
        assert_eq!(kind(&item(&[("pk", "LOCK#seed"), ("sk", "LOCK#seed")])), [Kind::LockUnreadable]);
        let mut big = m;
        big.insert("message".into(), AttributeValue::S("x".repeat(crate::records::MAX_ITEM_BYTES)));
        assert_eq!(kind(&big), [Kind::ItemTooLarge]);
    }
}
