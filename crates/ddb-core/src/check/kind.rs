//! The kinds of violation of the data model, and one violation: kind, keys, expected, found.

use serde::Serialize;

/// A rule of the data model that an item or a conversation breaks. The snake_case names are
/// stable: they are `check`'s output (`--json` and text) and what scripts match on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A member has more than one group row of a conversation (repairable: the newest stays).
    DuplicateGroupRow,
    /// A group row is not on its conversation's newest message: another time or text
    /// (repairable: moved onto it).
    GroupRowBehind,
    /// A conversation has group rows of fewer than two members.
    MissingMember,
    /// A conversation has group rows of more than two members.
    ExtraMember,
    /// The two rows of a conversation disagree about who the other member is (uuid, handle or
    /// display name, as its newest message and the other row say).
    MemberMismatch,
    /// A group row's other user differs from Postgres `users` (with `--users`).
    UserMismatch,
    /// Messages of a conversation without any group row.
    OrphanMessage,
    /// Group rows of a conversation without any message.
    GroupWithoutMessages,
    /// A key of another form: `MSG#`/`GRP#` and a uuid, `sk` a timestamp in the one format.
    BadKey,
    /// A required attribute missing or of the wrong type.
    BadAttribute,
    /// An item over DynamoDB's item size limit.
    ItemTooLarge,
    /// A lock item whose lease ran out long ago (repairable: removed as read).
    LockExpired,
    /// A lock item that is not a lock's (repairable: removed as read).
    LockUnreadable,
    /// A lock item held by a process of this host that is gone (repairable: removed as read).
    LockHolderGone,
    /// An item of no known shape.
    UnknownItem,
}

impl Kind {
    /// Every kind, in the order of the summary.
    pub const ALL: [Kind; 15] = [
        Kind::DuplicateGroupRow,
        Kind::GroupRowBehind,
        Kind::MissingMember,
        Kind::ExtraMember,
        Kind::MemberMismatch,
        Kind::UserMismatch,
        Kind::OrphanMessage,
        Kind::GroupWithoutMessages,
        Kind::BadKey,
        Kind::BadAttribute,
        Kind::ItemTooLarge,
        Kind::LockExpired,
        Kind::LockUnreadable,
        Kind::LockHolderGone,
        Kind::UnknownItem,
    ];

    /// The stable snake_case name.
    pub fn name(self) -> &'static str {
        match self {
            Kind::DuplicateGroupRow => "duplicate_group_row",
            Kind::GroupRowBehind => "group_row_behind",
            Kind::MissingMember => "missing_member",
            Kind::ExtraMember => "extra_member",
            Kind::MemberMismatch => "member_mismatch",
            Kind::UserMismatch => "user_mismatch",
            Kind::OrphanMessage => "orphan_message",
            Kind::GroupWithoutMessages => "group_without_messages",
            Kind::BadKey => "bad_key",
            Kind::BadAttribute => "bad_attribute",
            Kind::ItemTooLarge => "item_too_large",
            Kind::LockExpired => "lock_expired",
            Kind::LockUnreadable => "lock_unreadable",
            Kind::LockHolderGone => "lock_holder_gone",
            Kind::UnknownItem => "unknown_item",
        }
    }

    /// True when `check --repair` mends it mechanically.
    pub fn repairable(self) -> bool {
        matches!(self, Kind::DuplicateGroupRow | Kind::GroupRowBehind | Kind::LockExpired | Kind::LockUnreadable | Kind::LockHolderGone)
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One violation: its kind, the keys of the items concerned (`(pk, sk)` as stored, or a
/// conversation's `MSG#` partition), what the rule expects and what was found. Text of the data
/// is as stored: printers escape it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// The rule broken.
    pub kind: Kind,
    /// The conversation, when the violation is about one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversation: Option<uuid::Uuid>,
    /// Keys of the items concerned, `(pk, sk)`.
    pub keys: Vec<String>,
    /// What the rule expects.
    pub expected: String,
    /// What was found.
    pub found: String,
}

impl Violation {
    /// The violation as one line of text (data not yet escaped).
    pub fn line(&self) -> String {
        format!("{}: {}: expected {}, found {}", self.kind, self.keys.join(" "), self.expected, self.found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_serde_names() {
        for k in Kind::ALL {
            assert_eq!(serde_json::to_value(k).unwrap(), serde_json::Value::String(k.name().to_string()));
        }
    }
}
