//! The access patterns of the course app's `ddb` library (SPEC.md, 'Access patterns'):
//!
//! - A. [`list_messages`]: a conversation's newest messages, returned oldest first;
//! - B. [`list_message_groups`]: a user's conversations, newest first;
//! - C. [`create_message`]: one message row in an existing conversation;
//! - D. [`create_message_group`]: a new conversation, its two group rows and its first message
//!   in one transaction.
//!
//! Pattern E (group rows follow the newest message) is in [`crate::stream`].
//!
//! Unlike the course, no query filters on `begins_with(sk, year)`: the latest N are the latest N
//! on 1 January too. Pages are cut by a cursor, the sort key of the last row returned: a
//! partition's sort keys are unique, so `sk < cursor` continues exactly where a page stopped.

use crate::conversation::{self, Applied, Attempt, Change};
use crate::error::{input, quoted, Error, Result};
use crate::records::{check_text, format_ts, item_size, now, parse_ts, Item, Key, MessageGroupRow, MessageRow, User, MAX_ITEM_BYTES};
use crate::table::{PK, SK};
use crate::Ddb;
use aws_sdk_dynamodb::operation::query::QueryOutput;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnConsumedCapacity};
use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

/// The course's page size.
pub const DEFAULT_LIMIT: i32 = 20;

/// Which page to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// Rows per page (1..=1000).
    pub limit: i32,
    /// Only rows older than this instant: a cursor from [`Listing::cursor`], or any RFC 3339
    /// time (`Z`, `+00:00` or another offset all mean the same instant).
    pub before: Option<String>,
}

impl Default for Page {
    fn default() -> Self {
        Page { limit: DEFAULT_LIMIT, before: None }
    }
}

impl Page {
    /// Checks the limit and the cursor (a timestamp as the table stores them).
    pub fn validate(&self) -> Result<()> {
        self.sort_key().map(drop)
    }

    /// The cursor as the table's sort keys spell instants ([`format_ts`]): sort keys compare as
    /// text, so `2026-01-01T10:00:00Z` or `...T11:00:00+01:00` must become
    /// `2026-01-01T10:00:00.000000+00:00` before `sk < cursor` means "older than". An instant
    /// finer than the table's microseconds is rounded up: `sk < cursor` then still takes every
    /// row before it. Also checks the limit.
    pub fn sort_key(&self) -> Result<Option<String>> {
        if !(1..=1000).contains(&self.limit) {
            return Err(input(format!("the page size must be between 1 and 1000, not {}", self.limit)));
        }
        let Some(c) = &self.before else {
            return Ok(None);
        };
        let bad = |why: String| input(format!("cursor {} is not a timestamp of the table ({why}); use a cursor that a listing printed", quoted(c)));
        let t = parse_ts(c).map_err(|e| bad(e.to_string()))?;
        let sub_us = t.nanosecond() % 1000;
        let t = t
            .checked_add(time::Duration::nanoseconds(if sub_us == 0 { 0 } else { 1000 - i64::from(sub_us) }))
            .and_then(|t| t.checked_to_offset(time::UtcOffset::UTC))
            .ok_or_else(|| bad("out of range".into()))?;
        Ok(Some(format_ts(t)))
    }
}

/// A message as the app's API returns it (pattern A).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Message {
    /// `message_uuid`.
    pub uuid: Uuid,
    /// The sender's display name.
    pub display_name: String,
    /// The sender's handle.
    pub handle: String,
    /// The text.
    pub message: String,
    /// When it was sent, as stored (the sort key).
    pub created_at: String,
}

/// A conversation in a user's inbox as the app's API returns it (pattern B).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MessageGroup {
    /// The conversation's `message_group_uuid`.
    pub uuid: Uuid,
    /// The other member's display name.
    pub display_name: String,
    /// The other member's handle.
    pub handle: String,
    /// Text of the newest message.
    pub message: String,
    /// Time of the newest message (the sort key).
    pub created_at: String,
}

/// One page of a listing.
#[derive(Debug, Clone)]
pub struct Listing<T> {
    /// The rows, in the pattern's order.
    pub items: Vec<T>,
    /// The items of the page that do not read as a row of the pattern (another client wrote
    /// them, or edited them in the console): left out, each told by its error (its key and what is wrong),
    /// so that one bad item does not hide a whole conversation.
    pub skipped: Vec<String>,
    /// Pass as [`Page::before`] for the next (older) page; `None` on the last page.
    pub cursor: Option<String>,
    /// The query's raw answer (newest first, as DynamoDB returned it), for the course's printout.
    pub raw: QueryOutput,
}

impl<T> Listing<T> {
    /// The page's items read by `read`: the rows, and the items that do not read, skipped.
    fn read(raw: QueryOutput, read: impl Fn(&Item) -> Result<T>) -> Self {
        let (mut items, mut skipped) = (Vec::new(), Vec::new());
        for i in raw.items() {
            match read(i) {
                Ok(row) => items.push(row),
                Err(e) => skipped.push(e.to_string()),
            }
        }
        Listing { items, skipped, cursor: cursor_of(&raw), raw }
    }
}

async fn query_newest(ddb: &Ddb, pk: String, page: &Page) -> Result<QueryOutput> {
    let before = page.sort_key()?;
    let mut q = ddb
        .client
        .query()
        .table_name(&ddb.table)
        .expression_attribute_names("#pk", PK)
        .expression_attribute_values(":pk", AttributeValue::S(pk))
        .scan_index_forward(false)
        .limit(page.limit)
        .return_consumed_capacity(ReturnConsumedCapacity::Total);
    q = match before {
        Some(before) => q
            .key_condition_expression("#pk = :pk AND #sk < :before")
            .expression_attribute_names("#sk", SK)
            .expression_attribute_values(":before", AttributeValue::S(before)),
        None => q.key_condition_expression("#pk = :pk"),
    };
    q.send().await.map_err(|e| Error::from_sdk(e, &ddb.ctx("Query")))
}

fn cursor_of(out: &QueryOutput) -> Option<String> {
    out.last_evaluated_key().and_then(|k| k.get(SK)).and_then(|v| v.as_s().ok()).cloned()
}

/// A. The newest `page.limit` messages of `group` (older than the cursor), oldest first. Items
/// of the partition that are not message rows are [`Listing::skipped`].
pub async fn list_messages(ddb: &Ddb, group: Uuid, page: &Page) -> Result<Listing<Message>> {
    let raw = query_newest(ddb, MessageRow::pk_of(group), page).await?;
    let mut listing = Listing::read(raw, |i| {
        let m = MessageRow::from_item(i)?;
        Ok(Message {
            uuid: m.message_uuid,
            display_name: m.user_display_name,
            handle: m.user_handle,
            message: m.message,
            created_at: format_ts(m.created_at),
        })
    });
    listing.items.reverse();
    Ok(listing)
}

/// B. `owner`'s conversations (older than the cursor), newest first. Items of the partition that
/// are not group rows are [`Listing::skipped`].
pub async fn list_message_groups(ddb: &Ddb, owner: Uuid, page: &Page) -> Result<Listing<MessageGroup>> {
    let raw = query_newest(ddb, MessageGroupRow::pk_of(owner), page).await?;
    Ok(Listing::read(raw, |i| {
        let g = MessageGroupRow::from_item(i)?;
        Ok(MessageGroup {
            uuid: g.message_group_uuid,
            display_name: g.user_display_name,
            handle: g.user_handle,
            message: g.message,
            created_at: format_ts(g.last_message_at),
        })
    }))
}

fn check_size(item: &Item) -> Result<()> {
    let size = item_size(item);
    if size > MAX_ITEM_BYTES {
        return Err(input(format!(
            "the message is too long: its item would be {size} bytes, DynamoDB's limit is {MAX_ITEM_BYTES}; nothing was written"
        )));
    }
    Ok(())
}

/// The text rules of every writer ([`check_text`]), as an input error.
fn check_message_text(text: &str) -> Result<()> {
    check_text(text).map_err(|e| input(format!("{e}; nothing was written")))
}

/// C. Writes one message from `sender` into `group` and returns it. The conversation must exist
/// and `sender` must be one of its members: they have a group row of it (read strongly
/// consistently, so that pattern E moving the row at that moment does not hide it). The message
/// is put in one transaction with a check that this row still exists: a re-seed that removes the
/// conversation meanwhile makes the write read again (and refuse) instead of leaving a message
/// without group rows. Two messages of a conversation may not share a timestamp (it is their
/// key): a collision moves the new one on by a microsecond instead of overwriting the other.
pub async fn create_message(ddb: &Ddb, group: Uuid, sender: &User, text: &str) -> Result<MessageRow> {
    check_message_text(text)?;
    let row = std::sync::Mutex::new(MessageRow {
        message_group_uuid: group,
        created_at: now(),
        message_uuid: Uuid::new_v4(),
        message: text.to_string(),
        user_uuid: sender.uuid,
        user_display_name: sender.display_name.clone(),
        user_handle: sender.handle.clone(),
    });
    check_size(&row.lock().expect("not poisoned").to_item())?;
    // Checked once before the loop: a refusal, or a server that does not answer, ends the run
    // at once; a lost race reads the sender's row again.
    let first = check_member(ddb, group, sender).await?;
    let what = format!("the timestamps of conversation {group}");
    let (row, first) = (&row, &first);
    conversation::retry(&what, |attempt| async move {
        let member = if attempt == 0 { first.clone() } else { check_member(ddb, group, sender).await? };
        let attempt = row.lock().expect("not poisoned").clone();
        match conversation::apply(ddb, &[Change::CreateMessage(attempt.clone()), Change::OnRow(member)]).await? {
            Applied::Done => Ok(Attempt::Done(attempt)),
            // The key was taken, or the sender's row moved or went: read again, a microsecond on.
            Applied::Race | Applied::MessageGone => {
                row.lock().expect("not poisoned").created_at += time::Duration::microseconds(1);
                Ok(Attempt::Again)
            }
        }
    })
    .await
}

/// The key of `sender`'s group row of `group`; refuses a `sender` who is not a member, or a
/// `group` that does not exist.
async fn check_member(ddb: &Ddb, group: Uuid, sender: &User) -> Result<Key> {
    // The seed's replacement of group rows may put a member's row at an earlier key than the one
    // it deletes, which a read at that very moment can miss: a refusal is checked once more.
    if let Some(key) = conversation::member_row(ddb, group, sender.uuid).await? {
        return Ok(key);
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    if let Some(key) = conversation::member_row(ddb, group, sender.uuid).await? {
        return Ok(key);
    }
    // Refused either way; the index says which message fits.
    let members = conversation::group_rows(ddb, group).await?;
    if members.is_empty() {
        return Err(Error::NotFound(format!(
            "no conversation {group} in table {} at {}; start one with ./bin/ddb/patterns/create-conversation",
            ddb.table,
            ddb.target.label()
        )));
    }
    let names: Vec<&str> = members.iter().map(|r| r.row.user_handle.as_str()).collect();
    Err(input(format!("{} is not a member of conversation {group} (its members: {}); nothing was written", sender.handle, names.join(", "))))
}

/// What [`create_message_group`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewGroup {
    /// The new conversation's uuid.
    pub uuid: Uuid,
    /// The first message.
    pub message: MessageRow,
    /// The group rows: `me`'s, then `other`'s.
    pub rows: [MessageGroupRow; 2],
}

/// D. Starts a conversation between `me` and `other` with `text` from `me`: both group rows and
/// the message in one TransactWriteItems, all or nothing. Returns what was written.
pub async fn create_message_group(ddb: &Ddb, me: &User, other: &User, text: &str) -> Result<NewGroup> {
    create_message_group_at(ddb, Uuid::new_v4(), me, other, text, now()).await
}

/// [`create_message_group`] with the conversation's uuid and clock given (tests, imports). Every
/// put is conditioned on its key being free, so an existing row makes the whole transaction fail
/// and nothing is written.
pub async fn create_message_group_at(ddb: &Ddb, uuid: Uuid, me: &User, other: &User, text: &str, at: OffsetDateTime) -> Result<NewGroup> {
    if me.uuid == other.uuid {
        return Err(input(format!("a conversation needs two different users; {} was given twice", me.handle)));
    }
    check_message_text(text)?;
    let message = MessageRow {
        message_group_uuid: uuid,
        created_at: at,
        message_uuid: Uuid::new_v4(),
        message: text.to_string(),
        user_uuid: me.uuid,
        user_display_name: me.display_name.clone(),
        user_handle: me.handle.clone(),
    };
    check_size(&message.to_item())?;
    let row = |owner: &User, member: &User| {
        let empty = MessageGroupRow {
            owner_uuid: owner.uuid,
            last_message_at: at,
            message_group_uuid: uuid,
            message: String::new(),
            user_uuid: member.uuid,
            user_display_name: member.display_name.clone(),
            user_handle: member.handle.clone(),
        };
        empty.onto(&message)
    };
    let rows = [row(me, other), row(other, me)];
    let changes = [Change::CreateMessage(message.clone()), Change::Create(rows[0].clone()), Change::Create(rows[1].clone())];
    match conversation::apply(ddb, &changes).await? {
        Applied::Done => Ok(NewGroup { uuid, message, rows }),
        Applied::Race | Applied::MessageGone => Err(Error::Conflict(format!(
            "the conversation was not created, nothing was written: one of its keys is taken (conversation {uuid} at {})",
            format_ts(at)
        ))),
    }
}

/// The time of the course's line for a message (`created_at`, the sort key):
/// `YYYY-MM-DD HH:MM AM/PM`, or the stored text as it is when it is not a time. The line itself
/// (handle padded to 12 columns, this to 22, the text cut to 40 and `...`) is laid out by the
/// script, which escapes and measures the text for the terminal.
pub fn course_time(created_at: &str) -> String {
    parse_ts(created_at)
        .ok()
        .map(|t| {
            let (h, ampm) = match t.hour() {
                0 => (12, "AM"),
                h @ 1..=11 => (h, "AM"),
                12 => (12, "PM"),
                h => (h - 12, "PM"),
            };
            format!("{:04}-{:02}-{:02} {:02}:{:02} {ampm}", t.year(), u8::from(t.month()), t.day(), h, t.minute())
        })
        .unwrap_or_else(|| created_at.to_string())
}

/// The query's answer as boto3 prints it (`json.dumps(response, sort_keys=True, indent=2)` in the
/// course): `Items` typed, `Count`, `ScannedCount`, `LastEvaluatedKey`, `ConsumedCapacity`.
pub fn response_json(out: &QueryOutput) -> serde_json::Value {
    use crate::item_json::{item_to_json, ItemFormat};
    let mut m = serde_json::Map::new();
    m.insert("Items".into(), out.items().iter().map(|i| item_to_json(i, ItemFormat::DynamodbJson)).collect());
    m.insert("Count".into(), out.count().into());
    m.insert("ScannedCount".into(), out.scanned_count().into());
    if let Some(k) = out.last_evaluated_key() {
        m.insert("LastEvaluatedKey".into(), item_to_json(k, ItemFormat::DynamodbJson));
    }
    if let Some(c) = out.consumed_capacity() {
        m.insert("ConsumedCapacity".into(), capacity_json(c));
    }
    serde_json::Value::Object(m)
}

/// `ConsumedCapacity` as boto3 prints it.
pub fn capacity_json(c: &aws_sdk_dynamodb::types::ConsumedCapacity) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    if let Some(t) = c.table_name() {
        m.insert("TableName".into(), t.into());
    }
    if let Some(u) = c.capacity_units() {
        m.insert("CapacityUnits".into(), u.into());
    }
    serde_json::Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn course_times_are_the_courses() {
        assert_eq!(course_time("2025-12-31T13:05:00.000000+00:00"), "2025-12-31 01:05 PM");
        assert_eq!(course_time("2026-01-01T00:09:59.999999+00:00"), "2026-01-01 12:09 AM");
        assert_eq!(course_time("yesterday"), "yesterday");
    }

    #[test]
    fn pages_are_checked() {
        assert!(Page::default().validate().is_ok());
        assert!(Page { limit: 0, before: None }.validate().is_err());
        assert!(Page { limit: 20, before: Some("yesterday".into()) }.validate().is_err());
        assert!(Page { limit: 20, before: Some("2026-01-01T00:00:00.000000+00:00".into()) }.validate().is_ok());
    }
}
