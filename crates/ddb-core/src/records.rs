//! Typed rows of the table and their conversions to and from DynamoDB items.
//!
//! All attributes are strings. Timestamps have one fixed format everywhere, ISO 8601 in UTC
//! with microseconds and an explicit offset (`2026-11-24T08:27:06.123456+00:00`), so that string
//! order is time order and every reader can parse what any writer wrote.

use crate::error::{quoted, Error, Result};
use crate::table::{GRP_PREFIX, MSG_PREFIX, PK, SK};
use aws_sdk_dynamodb::types::AttributeValue;
use serde::Serialize;
use std::collections::HashMap;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};
use uuid::Uuid;

/// A DynamoDB item.
pub type Item = HashMap<String, AttributeValue>;

/// DynamoDB's maximum item size.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;

/// Formats a timestamp the one way the table stores it.
pub fn format_ts(t: OffsetDateTime) -> String {
    let fmt = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]+00:00");
    t.to_offset(UtcOffset::UTC).format(&fmt).expect("a UTC timestamp formats")
}

/// Parses a stored timestamp (any RFC 3339 text with an offset).
pub fn parse_ts(s: &str) -> Result<OffsetDateTime, time::error::Parse> {
    OffsetDateTime::parse(s, &Rfc3339)
}

/// The current time, truncated to the microseconds that the table keeps.
pub fn now() -> OffsetDateTime {
    truncate_us(OffsetDateTime::now_utc())
}

/// `t` truncated to the microseconds that the table keeps.
pub fn truncate_us(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(t.nanosecond() / 1000 * 1000).expect("valid nanosecond")
}

/// The text of the group rows that the seed writes ahead of its conversation's messages (the
/// course's): until the next message, a seeded conversation's rows carry it, dated at the seed's
/// clock, after every message.
pub const FILLER_MESSAGE: &str = "this is a filler message";

/// A row of `users`, as the DynamoDB records need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// `users.uuid`.
    pub uuid: Uuid,
    /// `users.display_name`.
    pub display_name: String,
    /// `users.handle`.
    pub handle: String,
}

/// One message: `pk = MSG#{message_group_uuid}`, `sk = created_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MessageRow {
    /// The conversation it belongs to.
    pub message_group_uuid: Uuid,
    /// When it was sent (the sort key).
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Its own id.
    pub message_uuid: Uuid,
    /// The text.
    pub message: String,
    /// The sender.
    pub user_uuid: Uuid,
    /// The sender's display name.
    pub user_display_name: String,
    /// The sender's handle.
    pub user_handle: String,
}

/// One member's view of a conversation: `pk = GRP#{owner_uuid}`, `sk = last_message_at`; the
/// `user_*` attributes describe the OTHER member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MessageGroupRow {
    /// The member whose inbox this row is in.
    pub owner_uuid: Uuid,
    /// Time of the newest message (the sort key).
    #[serde(with = "time::serde::rfc3339")]
    pub last_message_at: OffsetDateTime,
    /// The conversation.
    pub message_group_uuid: Uuid,
    /// Text of the newest message.
    pub message: String,
    /// The other member.
    pub user_uuid: Uuid,
    /// The other member's display name.
    pub user_display_name: String,
    /// The other member's handle.
    pub user_handle: String,
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

/// Reads string attributes of an item, naming the item in errors.
struct Reader<'a> {
    item: &'a Item,
}

impl Reader<'_> {
    fn key(&self) -> String {
        let get = |k| self.item.get(k).and_then(|v| v.as_s().ok()).map(String::as_str).unwrap_or("?");
        format!("({}, {})", get(PK), get(SK))
    }
    fn bad(&self, problem: String) -> Error {
        Error::BadItem { key: self.key(), problem }
    }
    fn str(&self, name: &str) -> Result<&str> {
        match self.item.get(name) {
            Some(AttributeValue::S(v)) => Ok(v),
            Some(_) => Err(self.bad(format!("attribute {name} is not a string"))),
            None => Err(self.bad(format!("attribute {name} is missing"))),
        }
    }
    fn uuid(&self, name: &str) -> Result<Uuid> {
        self.uuid_in(name, self.str(name)?)
    }
    fn uuid_in(&self, name: &str, v: &str) -> Result<Uuid> {
        Uuid::parse_str(v).map_err(|e| self.bad(format!("{name} {} is not a uuid: {e}", quoted(v))))
    }
    fn ts(&self, name: &str) -> Result<OffsetDateTime> {
        let v = self.str(name)?;
        parse_ts(v).map_err(|e| self.bad(format!("{name} {} is not an RFC 3339 timestamp: {e}", quoted(v))))
    }
    fn prefixed(&self, prefix: &str) -> Result<Uuid> {
        let pk = self.str(PK)?;
        let rest = pk.strip_prefix(prefix).ok_or_else(|| self.bad(format!("{PK} does not start with {prefix}")))?;
        self.uuid_in(PK, rest)
    }
}

/// `to_item` and `from_item` of a row type: the item layout of both row types, written once.
/// The partition key is `$prefix` and the row's `$pk` uuid, the sort key its `$sk` time; the
/// row's other uuid `$id` and who said what are plain string attributes.
macro_rules! item_layout {
    ($row:ident, $prefix:ident, $pk:ident, $sk:ident, $id:ident) => {
        impl $row {
            /// The item as stored.
            pub fn to_item(&self) -> Item {
                HashMap::from([
                    (PK.into(), s(format!("{}{}", $prefix, self.$pk))),
                    (SK.into(), s(format_ts(self.$sk))),
                    (stringify!($id).into(), s(self.$id.to_string())),
                    ("message".into(), s(self.message.clone())),
                    ("user_uuid".into(), s(self.user_uuid.to_string())),
                    ("user_display_name".into(), s(self.user_display_name.clone())),
                    ("user_handle".into(), s(self.user_handle.clone())),
                ])
            }

            /// Reads a stored row, naming the item and the attribute when it has another shape.
            pub fn from_item(item: &Item) -> Result<Self> {
                let r = Reader { item };
                Ok($row {
                    $pk: r.prefixed($prefix)?,
                    $sk: r.ts(SK)?,
                    $id: r.uuid(stringify!($id))?,
                    message: r.str("message")?.to_string(),
                    user_uuid: r.uuid("user_uuid")?,
                    user_display_name: r.str("user_display_name")?.to_string(),
                    user_handle: r.str("user_handle")?.to_string(),
                })
            }
        }
    };
}

item_layout!(MessageRow, MSG_PREFIX, message_group_uuid, created_at, message_uuid);
item_layout!(MessageGroupRow, GRP_PREFIX, owner_uuid, last_message_at, message_group_uuid);

impl MessageRow {
    /// The partition key of a conversation's messages.
    pub fn pk_of(group: Uuid) -> String {
        format!("{MSG_PREFIX}{group}")
    }
}

impl MessageGroupRow {
    /// The partition key of a user's conversations.
    pub fn pk_of(owner: Uuid) -> String {
        format!("{GRP_PREFIX}{owner}")
    }
}

impl MessageGroupRow {
    /// This row moved onto message `m`: its time and text, the rest (owner, conversation, the
    /// other member) kept. The text is `m`'s, cut where the row would pass DynamoDB's item
    /// limit: a group row carries a few more bytes than its message row, and any client (the
    /// course's app too) may write a message near the limit, whose group rows must still fit
    /// (a row that cannot be written would stop pattern E). Readers show 40 characters of it.
    pub fn onto(&self, m: &MessageRow) -> MessageGroupRow {
        let mut row = MessageGroupRow { last_message_at: m.created_at, message: String::new(), ..self.clone() };
        let room = MAX_ITEM_BYTES.saturating_sub(item_size(&row.to_item()));
        row.message = preview(&m.message, room).to_string();
        row
    }

    /// True when this row is on message `m`: its time, and its text as [`MessageGroupRow::onto`]
    /// writes it.
    pub fn is_on(&self, m: &MessageRow) -> bool {
        self.last_message_at == m.created_at && self.message == self.onto(m).message
    }

    /// True when this row is where its conversation's newest message `newest` says: on it, or,
    /// as the seed leaves a conversation, after it (or with no message at all) with the
    /// [`FILLER_MESSAGE`].
    pub fn follows(&self, newest: Option<&MessageRow>) -> bool {
        match newest {
            Some(m) => self.is_on(m) || (self.last_message_at > m.created_at && self.message == FILLER_MESSAGE),
            None => self.message == FILLER_MESSAGE,
        }
    }
}

/// The longest prefix of `text` of at most `max` bytes that ends on a character boundary.
pub fn preview(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Checks the text of a message as every writer of this toolkit does: not blank, and no control
/// character but tab (a message is one line of a conversation; an escape sequence in it would
/// reach every terminal that prints it). Says what is wrong.
pub fn check_text(text: &str) -> std::result::Result<(), String> {
    if text.trim().is_empty() {
        return Err("the message is empty".to_string());
    }
    match text.chars().find(|c| is_forbidden_char(*c)) {
        Some(c) => Err(format!("the message holds the control character U+{:04X}; messages are one line of text", c as u32)),
        None => Ok(()),
    }
}

/// The primary key of an item, as stored.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    /// The partition key.
    pub pk: String,
    /// The sort key.
    pub sk: String,
}

impl Key {
    /// The key of `item`; `None` when either attribute is missing or not a string.
    pub fn of(item: &Item) -> Option<Key> {
        let get = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
        Some(Key { pk: get(PK)?, sk: get(SK)? })
    }

    /// The key as a DynamoDB key map.
    pub fn to_item(&self) -> Item {
        HashMap::from([(PK.into(), s(self.pk.clone())), (SK.into(), s(self.sk.clone()))])
    }
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "({}, {})", self.pk, self.sk)
    }
}

impl MessageRow {
    /// The row's key.
    pub fn key(&self) -> Key {
        Key { pk: Self::pk_of(self.message_group_uuid), sk: format_ts(self.created_at) }
    }
}

impl MessageGroupRow {
    /// The row's key.
    pub fn key(&self) -> Key {
        Key { pk: Self::pk_of(self.owner_uuid), sk: format_ts(self.last_message_at) }
    }
}

/// True for the characters no message may hold: control characters but tab.
pub fn is_forbidden_char(c: char) -> bool {
    c.is_control() && c != '\t'
}

/// DynamoDB's size of an item, by its rules: each attribute's name (UTF-8 bytes) plus its value.
pub fn item_size(item: &Item) -> usize {
    item.iter().map(|(k, v)| k.len() + value_size(v)).sum()
}

/// DynamoDB's size of a value: a string's UTF-8 bytes, a binary's bytes, a number's 1 byte per
/// two significant digits plus 1, 1 for a boolean or null, a set the sum of its elements, a list
/// or map 3 bytes plus 1 per element and the elements (a map's names included).
pub fn value_size(v: &AttributeValue) -> usize {
    match v {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => number_size(n),
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::Ss(v) => v.iter().map(String::len).sum(),
        AttributeValue::Ns(v) => v.iter().map(|n| number_size(n)).sum(),
        AttributeValue::Bs(v) => v.iter().map(|b| b.as_ref().len()).sum(),
        AttributeValue::L(v) => 3 + v.iter().map(|e| 1 + value_size(e)).sum::<usize>(),
        AttributeValue::M(m) => 3 + m.iter().map(|(k, e)| 1 + k.len() + value_size(e)).sum::<usize>(),
        _ => 0,
    }
}

fn number_size(n: &str) -> usize {
    let mantissa = n.split(['e', 'E']).next().unwrap_or("");
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let significant = digits.trim_start_matches('0').trim_end_matches('0').len();
    significant.div_ceil(2) + 1
}

/// The primary key of an item, for deletes.
pub fn key_of(item: &Item) -> Item {
    item.iter().filter(|(k, _)| *k == PK || *k == SK).map(|(k, v)| (k.clone(), v.clone())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn timestamps_have_one_format_and_sort_as_time() {
        let a = datetime!(2026-01-01 00:00:00 UTC);
        assert_eq!(format_ts(a), "2026-01-01T00:00:00.000000+00:00");
        let b = datetime!(2026-01-01 00:00:00.5 +02:00);
        assert_eq!(format_ts(b), "2025-12-31T22:00:00.500000+00:00");
        assert!(format_ts(b) < format_ts(a));
        assert_eq!(parse_ts(&format_ts(b)).unwrap(), b);
    }

    #[test]
    fn rows_round_trip() {
        let m = MessageRow {
            message_group_uuid: Uuid::new_v4(),
            created_at: now(),
            message_uuid: Uuid::new_v4(),
            message: "hi".into(),
            user_uuid: Uuid::new_v4(),
            user_display_name: "Andrew Bayko".into(),
            user_handle: "bayko".into(),
        };
        let item = m.to_item();
        assert_eq!(item["pk"].as_s().unwrap(), &format!("MSG#{}", m.message_group_uuid));
        assert_eq!(MessageRow::from_item(&item).unwrap(), m);
        let g = MessageGroupRow {
            owner_uuid: Uuid::new_v4(),
            last_message_at: now(),
            message_group_uuid: Uuid::new_v4(),
            message: "x".into(),
            user_uuid: Uuid::new_v4(),
            user_display_name: "Y".into(),
            user_handle: "y".into(),
        };
        assert_eq!(MessageGroupRow::from_item(&g.to_item()).unwrap(), g);
        assert_eq!(key_of(&g.to_item()).len(), 2);
    }

    #[test]
    fn malformed_items_name_the_problem() {
        let mut item = HashMap::from([("pk".to_string(), s("MSG#nope")), ("sk".to_string(), s("x"))]);
        let err = MessageRow::from_item(&item).unwrap_err().to_string();
        assert!(err.contains("(MSG#nope, x)") && err.contains("not a uuid"), "{err}");
        item.insert("pk".into(), s(format!("MSG#{}", Uuid::nil())));
        let err = MessageRow::from_item(&item).unwrap_err().to_string();
        assert!(err.contains("RFC 3339"), "{err}");
    }
}
