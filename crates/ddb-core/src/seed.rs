//! The seed: the course's conversation between two users of Postgres, written into the table,
//! validated completely before the first write, and safe to run again, also beside other writers.
//!
//! Re-runs: message timestamps follow the clock (`now - 1 day + i minutes`, as in the course), so
//! a second run cannot simply overwrite the first. Every run therefore clears the seed's earlier
//! rows first, then writes, in an order that keeps a crash at any point recoverable by running
//! again:
//!
//! 1. take the table's seed lock ([`SEED_LOCK`]): a second seed started meanwhile stops with an
//!    error naming the first, instead of clearing what the first has not written yet;
//! 2. find every group row of every seed conversation through `message-group-sk-index`, whoever
//!    its members are (an earlier run may have mapped a speaker to another user, or read another
//!    users database);
//! 3. delete the message rows of those conversations and of this run's;
//! 4. replace each conversation's group rows in one transaction: the rows found are deleted on
//!    condition that they are still there, the new ones put on condition that their keys are
//!    free, so that the stream worker (or the Lambda) moving the same rows at that moment makes
//!    the transaction fail and the seed re-read, never a second row per member;
//! 5. put the messages (older than the group rows' time, so pattern E leaves the rows alone);
//! 6. give the lock back.
//!
//! Whenever message rows of a seed group exist, its group rows exist too (they go last and
//! come first), so the next run finds and clears them. Seed groups are recognisable by their
//! uuid: group 0 is the course's `5ae290ed-55d1-47a0-bc6d-fe2bc2700399`, group k of scale
//! mode is `5ae290ed-55d1-47a0-bc6d-{k:012x}`. Message uuids are derived from the group and the
//! message's index (uuid v5), so a run always writes the same ids.

use crate::error::{input, Error, Result};
use crate::lock::Lease;
use crate::progress::Progress;
use crate::records::{format_ts, item_size, key_of, Item, MessageGroupRow, MessageRow, User, MAX_ITEM_BYTES};
use crate::table::{GRP_PREFIX, GSI_NAME, GSI_PK, SK};
use crate::write::{
    delete, delete_if_exists, put, put_conditioned, transact, write_all, write_stream, TransactError, WriteOptions, MAX_TRANSACT_ACTIONS,
};
use crate::Ddb;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};
use futures::{StreamExt, TryStreamExt};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use uuid::{uuid, Uuid};

/// The course's conversation, verbatim (24 lines, with its `Fan:` lines).
pub const COURSE_CONVERSATION: &str = include_str!("../data/course-conversation.txt");
/// Who speaks in it.
pub const COURSE_SPEAKERS: &str = include_str!("../data/course-speakers.txt");
/// The course's message group.
pub const COURSE_GROUP: Uuid = uuid!("5ae290ed-55d1-47a0-bc6d-fe2bc2700399");
/// The course's group rows carry this text until pattern E moves them to a real message.
pub const FILLER_MESSAGE: &str = "this is a filler message";
/// The most conversations scale mode spreads messages over.
pub const MAX_GROUPS: u64 = 1 << 40;

const SEED_GROUP_PREFIX: &str = "5ae290ed-55d1-47a0-bc6d-";

/// The uuid of seed group `k` (0 is the course's group).
pub fn group_uuid(k: u64) -> Uuid {
    if k == 0 {
        COURSE_GROUP
    } else {
        Uuid::parse_str(&format!("{SEED_GROUP_PREFIX}{k:012x}")).expect("valid uuid text")
    }
}

/// True for groups that the seed writes (and so may clear).
pub fn is_seed_group(g: &Uuid) -> bool {
    g.to_string().starts_with(SEED_GROUP_PREFIX)
}

/// Who speaks: speaker name as written in the conversation, and the handle in `users`.
#[derive(Debug, Clone, Default)]
pub struct SpeakerMap(Vec<(String, String)>);

impl SpeakerMap {
    /// Parses `NAME=handle` lines (blank lines and `#` comments are skipped).
    pub fn parse(text: &str, source: &str) -> Result<Self> {
        let mut map = SpeakerMap::default();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            map.add(line).map_err(|e| input(format!("{source}:{}: {e}", i + 1)))?;
        }
        Ok(map)
    }

    /// Adds or replaces one `NAME=handle` entry.
    pub fn add(&mut self, entry: &str) -> Result<()> {
        let (name, handle) = entry
            .split_once('=')
            .map(|(n, h)| (n.trim(), h.trim()))
            .filter(|(n, h)| !n.is_empty() && !h.is_empty())
            .ok_or_else(|| Error::Usage(format!("speaker mapping {entry:?} is not of the form NAME=handle")))?;
        self.0.retain(|(n, _)| n != name);
        self.0.push((name.to_string(), handle.to_string()));
        Ok(())
    }

    /// The handle of speaker `name`.
    pub fn handle(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, h)| h.as_str())
    }

    fn names(&self) -> String {
        self.0.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ")
    }
}

/// One line of a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// 1-based line number in the file.
    pub lineno: usize,
    /// The speaker's handle.
    pub handle: String,
    /// The message.
    pub text: String,
}

/// A parsed conversation.
#[derive(Debug, Clone)]
pub struct Conversation {
    /// Where it came from, for messages.
    pub source: String,
    /// Its messages, in order.
    pub lines: Vec<Line>,
}

impl Conversation {
    /// Parses `Speaker: message` lines. Blank lines are skipped; anything else that is not such a
    /// line, an unknown speaker, an empty message or text that is not UTF-8 is an error naming the
    /// file and line.
    pub fn parse(bytes: &[u8], source: &str, speakers: &SpeakerMap) -> Result<Self> {
        let text = std::str::from_utf8(bytes).map_err(|e| {
            let at = e.valid_up_to();
            let line = bytes[..at].iter().filter(|b| **b == b'\n').count() + 1;
            input(format!("{source}:{line}: not UTF-8 text (invalid byte at offset {at}); save the conversation as UTF-8"))
        })?;
        // Windows editors start UTF-8 files with a byte-order mark; it is not part of the text.
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut lines = Vec::new();
        for (i, raw) in text.split('\n').enumerate() {
            let lineno = i + 1;
            let raw = raw.strip_suffix('\r').unwrap_or(raw);
            if raw.trim().is_empty() {
                continue;
            }
            let at = |msg: String| input(format!("{source}:{lineno}: {msg}"));
            if let Some(c) = raw.chars().find(|c| c.is_control() && *c != '\t') {
                return Err(at(format!("control character {c:?} in the text; is this a binary file?")));
            }
            let (speaker, message) = raw
                .split_once(": ")
                .filter(|(s, _)| !s.trim().is_empty())
                .ok_or_else(|| at(format!("expected `Speaker: message`, got {:?}", preview(raw))))?;
            let handle = speakers
                .handle(speaker)
                .ok_or_else(|| at(format!("unknown speaker {speaker:?}; map it with --speaker '{speaker}=HANDLE' (mapped: {})", speakers.names())))?;
            if message.trim().is_empty() {
                return Err(at(format!("empty message from {speaker}")));
            }
            lines.push(Line { lineno, handle: handle.to_string(), text: message.to_string() });
        }
        if lines.is_empty() {
            return Err(input(format!("{source}: the conversation has no lines; expected `Speaker: message` lines")));
        }
        Ok(Conversation { source: source.to_string(), lines })
    }

    /// The two handles that speak, in order of first appearance (the first is "me").
    pub fn participants(&self) -> Result<[String; 2]> {
        let mut seen: Vec<&str> = Vec::new();
        for l in &self.lines {
            if !seen.contains(&l.handle.as_str()) {
                seen.push(&l.handle);
            }
        }
        match seen.as_slice() {
            [a, b] => Ok([a.to_string(), b.to_string()]),
            _ => Err(input(format!("{}: a conversation is between two users; this one has {} ({})", self.source, seen.len(), seen.join(", ")))),
        }
    }
}

fn preview(s: &str) -> String {
    if s.chars().count() > 60 {
        format!("{}...", s.chars().take(60).collect::<String>())
    } else {
        s.to_string()
    }
}

/// Everything a seed run writes, decided before it writes anything.
#[derive(Debug, Clone)]
pub struct SeedPlan {
    /// The first speaker.
    pub me: User,
    /// The second speaker.
    pub other: User,
    /// The conversation, cycled to reach `messages`.
    pub lines: Vec<(bool, String)>,
    /// How many message rows.
    pub messages: u64,
    /// How many conversations they are spread over.
    pub groups: u64,
    /// The run's clock: group rows' `last_message_at`.
    pub now: OffsetDateTime,
    /// Time between consecutive messages.
    pub step: Duration,
}

impl SeedPlan {
    /// Builds the plan and checks every row it will write against DynamoDB's item limit.
    /// `users` must hold both participants (see [`Conversation::participants`]).
    pub fn new(conv: &Conversation, me: User, other: User, messages: Option<u64>, groups: u64, now: OffsetDateTime) -> Result<Self> {
        let messages = messages.unwrap_or(conv.lines.len() as u64);
        if messages == 0 {
            return Err(Error::Usage("--messages must be at least 1".into()));
        }
        if groups == 0 || groups > MAX_GROUPS || groups > messages {
            return Err(Error::Usage(format!("--groups must be between 1 and the number of messages ({messages})")));
        }
        // The course: now - 1 day + i minutes. Larger runs squeeze into the same day, so every
        // timestamp stays unique, ordered and in the past.
        let day_us = 86_400_000_000u64;
        let step = Duration::from_micros((day_us / messages).clamp(1, 60_000_000));
        let plan =
            SeedPlan { lines: conv.lines.iter().map(|l| (l.handle == me.handle, l.text.clone())).collect(), me, other, messages, groups, now, step };
        for (i, l) in conv.lines.iter().enumerate() {
            let size = item_size(&plan.message(i as u64).to_item());
            if size > MAX_ITEM_BYTES {
                return Err(input(format!(
                    "{}:{}: the message is too long: its item would be {size} bytes, DynamoDB's limit is {MAX_ITEM_BYTES}",
                    conv.source, l.lineno
                )));
            }
        }
        Ok(plan)
    }

    /// Total items: the messages and two group rows per conversation.
    pub fn total_items(&self) -> u64 {
        self.messages + 2 * self.groups
    }

    /// Message `i` (0-based) of the run.
    pub fn message(&self, i: u64) -> MessageRow {
        let group = group_uuid(i % self.groups);
        let (mine, text) = &self.lines[((i / self.groups) % self.lines.len() as u64) as usize];
        let who = if *mine { &self.me } else { &self.other };
        let start = self.now - time::Duration::days(1);
        MessageRow {
            message_group_uuid: group,
            created_at: start + time::Duration::microseconds((self.step.as_micros() as u64 * i) as i64),
            message_uuid: Uuid::new_v5(&group, &i.to_be_bytes()),
            message: text.clone(),
            user_uuid: who.uuid,
            user_display_name: who.display_name.clone(),
            user_handle: who.handle.clone(),
        }
    }

    /// The two group rows of conversation `k`, one in each member's inbox. A user's group rows
    /// share a partition and are keyed by `last_message_at`, so conversation k is dated k
    /// microseconds before the run's clock: same-time rows would overwrite each other.
    pub fn group_rows(&self, k: u64) -> [MessageGroupRow; 2] {
        let row = |owner: &User, other: &User| MessageGroupRow {
            owner_uuid: owner.uuid,
            last_message_at: self.now - time::Duration::microseconds(k as i64),
            message_group_uuid: group_uuid(k),
            message: FILLER_MESSAGE.to_string(),
            user_uuid: other.uuid,
            user_display_name: other.display_name.clone(),
            user_handle: other.handle.clone(),
        };
        [row(&self.me, &self.other), row(&self.other, &self.me)]
    }
}

/// What a seed run did.
#[derive(Debug, Clone, Default)]
pub struct SeedReport {
    /// Earlier seed rows removed first.
    pub deleted: u64,
    /// Rows written.
    pub written: u64,
    /// How long clearing the earlier seed took (zero when there was none).
    pub clearing: Duration,
    /// How long writing took (from the first write of this run's rows to the last).
    pub writing: Duration,
}

impl SeedReport {
    /// Rows written per second of writing.
    pub fn rate(&self) -> f64 {
        self.written as f64 / self.writing.as_secs_f64().max(1e-6)
    }

    /// The run's figures, for `--json`: what was written where, and how long each phase took.
    pub fn figures(&self, plan: &SeedPlan, ddb: &Ddb) -> serde_json::Value {
        serde_json::json!({
            "messages": plan.messages,
            "conversations": plan.groups,
            "written": self.written,
            "deleted": self.deleted,
            "writing_seconds": self.writing.as_secs_f64(),
            "clearing_seconds": self.clearing.as_secs_f64(),
            "items_per_second": self.rate(),
            "table": ddb.table,
            "target": ddb.target.label(),
        })
    }

    /// The seed's last line: what was written where, how fast, and what it replaced.
    pub fn summary(&self, plan: &SeedPlan, ddb: &Ddb) -> String {
        let cleared = if self.deleted > 0 {
            format!("; replaced the earlier seed ({} items), cleared in {:.2} s", self.deleted, self.clearing.as_secs_f64())
        } else {
            String::new()
        };
        format!(
            "seeded {} messages in {} conversation(s) between {} and {} into {} at {}: {} items written in {:.2} s ({:.0} items/s){cleared}",
            plan.messages,
            plan.groups,
            plan.me.handle,
            plan.other.handle,
            ddb.table,
            ddb.target.label(),
            self.written,
            self.writing.as_secs_f64(),
            self.rate()
        )
    }
}

/// What a seed run is asked for: the command line's choices, before anything is read.
#[derive(Debug, Clone)]
pub struct SeedRequest {
    /// A file of `Speaker: message` lines; `None` for the course's conversation.
    pub conversation: Option<PathBuf>,
    /// `NAME=handle` entries that add to or replace the course's speaker map.
    pub speakers: Vec<String>,
    /// Messages to write, cycling the conversation (default: its lines, once).
    pub messages: Option<u64>,
    /// Conversations to spread them over.
    pub groups: u64,
    /// The run's clock (default: now), for reproducible runs.
    pub now: Option<OffsetDateTime>,
}

impl Default for SeedRequest {
    fn default() -> Self {
        SeedRequest { conversation: None, speakers: Vec::new(), messages: None, groups: 1, now: None }
    }
}

impl SeedRequest {
    /// The conversation with its speakers mapped to handles: everything that needs no server.
    pub fn conversation(&self) -> Result<Conversation> {
        let mut speakers = SpeakerMap::parse(COURSE_SPEAKERS, "course-speakers.txt")?;
        for s in &self.speakers {
            speakers.add(s)?;
        }
        match &self.conversation {
            Some(path) => {
                let bytes = std::fs::read(path).map_err(|e| Error::io(format!("cannot read conversation file {}", path.display()), e))?;
                Conversation::parse(&bytes, &path.display().to_string(), &speakers)
            }
            None => Conversation::parse(COURSE_CONVERSATION.as_bytes(), "course-conversation.txt", &speakers),
        }
    }

    /// The plan for these two users (the conversation's participants, in order).
    pub fn plan_for(&self, conv: &Conversation, me: User, other: User) -> Result<SeedPlan> {
        SeedPlan::new(conv, me, other, self.messages, self.groups, self.now.map_or_else(crate::records::now, crate::records::truncate_us))
    }

    /// The whole plan: the conversation, its two users from the `users` table at `pg_url`, and
    /// every row checked. Nothing is written.
    #[cfg(feature = "pg")]
    pub async fn plan(&self, pg_url: &str) -> Result<SeedPlan> {
        let conv = self.conversation()?;
        let [me, other] = conv.participants()?;
        let db = crate::pg::connect(pg_url).await?;
        let mut users = crate::pg::users_by_handle(&db, pg_url, &[me.clone(), other.clone()]).await?;
        let mut take = |h: &str| {
            users.remove(h).ok_or_else(|| {
                let line = conv.lines.iter().find(|l| l.handle == h).map_or(0, |l| l.lineno);
                Error::NotFound(format!(
                    "no user with handle {h} in database {} ({}:{line}); add the user, or map the speaker to another handle with --speaker",
                    crate::pg::redact(pg_url),
                    conv.source
                ))
            })
        };
        let (me, other) = (take(&me)?, take(&other)?);
        self.plan_for(&conv, me, other)
    }
}

/// The seed's lock: one seed at a time per table (see [`crate::lock`]).
pub const SEED_LOCK: Lease = Lease { name: "seed", ttl: Duration::from_secs(30) };

/// Key-only query of one partition, strongly consistent, page by page as a stream of keys.
fn keys_of_partition(ddb: &Ddb, pk: String) -> impl futures::Stream<Item = Result<Item>> + '_ {
    let pages = ddb
        .client
        .query()
        .table_name(&ddb.table)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", AttributeValue::S(pk))
        .projection_expression("pk, sk")
        .consistent_read(true)
        .into_paginator()
        .items()
        .send();
    crate::stream_of(pages).map(|r| r.map_err(|e| Error::from_sdk(e, &ddb.ctx("Query"))))
}

/// How many rows one partition holds (a count query, all pages).
async fn count_partition(ddb: &Ddb, pk: String) -> Result<u64> {
    let mut pages = ddb
        .client
        .query()
        .table_name(&ddb.table)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", AttributeValue::S(pk))
        .select(aws_sdk_dynamodb::types::Select::Count)
        .consistent_read(true)
        .into_paginator()
        .send();
    let mut n = 0u64;
    while let Some(page) = pages.next().await {
        n += page.map_err(|e| Error::from_sdk(e, &ddb.ctx("Query")))?.count() as u64;
    }
    Ok(n)
}

/// A group row found in the table: what replacing it needs.
#[derive(Debug, Clone)]
struct FoundRow {
    key: Item,
    sk: String,
    message: String,
}

/// Group rows of seed conversations, by conversation.
type Found = BTreeMap<Uuid, Vec<FoundRow>>;

fn add_found(found: &mut Found, item: &Item) {
    let get = |k: &str| item.get(k).and_then(|v| v.as_s().ok());
    let Some(g) = get(GSI_PK).and_then(|s| Uuid::parse_str(s).ok()).filter(is_seed_group) else {
        return;
    };
    let row = FoundRow { key: key_of(item), sk: get(SK).cloned().unwrap_or_default(), message: get("message").cloned().unwrap_or_default() };
    let rows = found.entry(g).or_default();
    if !rows.iter().any(|r| r.key == row.key) {
        rows.push(row);
    }
}

/// Every group row of every seed conversation, whoever its members are: the index holds only
/// group rows (one per member of each conversation), so a filtered scan of it reads a few rows
/// per conversation, never the messages. The index is eventually consistent; the current members'
/// own partitions are read strongly as well, and every delete below is conditioned anyway.
async fn find_seed_group_rows(ddb: &Ddb, members: [&User; 2]) -> Result<Found> {
    let mut found = Found::new();
    let mut pages = ddb
        .client
        .scan()
        .table_name(&ddb.table)
        .index_name(GSI_NAME)
        .filter_expression("begins_with(#g, :p)")
        .expression_attribute_names("#g", GSI_PK)
        .expression_attribute_values(":p", AttributeValue::S(SEED_GROUP_PREFIX.to_string()))
        .into_paginator()
        .items()
        .send();
    while let Some(item) = pages.next().await {
        add_found(&mut found, &item.map_err(|e| Error::from_sdk(e, &ddb.ctx("Scan")))?);
    }
    for user in members {
        let mut pages = ddb
            .client
            .query()
            .table_name(&ddb.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(format!("{GRP_PREFIX}{}", user.uuid)))
            .consistent_read(true)
            .into_paginator()
            .items()
            .send();
        while let Some(item) = pages.next().await {
            add_found(&mut found, &item.map_err(|e| Error::from_sdk(e, &ddb.ctx("Query")))?);
        }
    }
    Ok(found)
}

/// The group rows of one conversation, re-read after a lost race.
async fn reread(ddb: &Ddb, group: Uuid) -> Result<Vec<FoundRow>> {
    let mut found = Found::new();
    for row in crate::patterns::group_rows(ddb, group).await? {
        add_found(&mut found, &row.to_item());
    }
    Ok(found.remove(&group).unwrap_or_default())
}

/// How often one conversation's rows are re-read and replaced again after a lost race.
const ATTEMPTS: u32 = 8;

/// Replaces the group rows of one conversation: deletes the rows found (each conditioned on
/// still being there) and puts `new` (each conditioned on its key being free), all in one
/// transaction, so that a stream worker moving the same rows at the same moment makes the
/// transaction fail instead of leaving a second row per member. A lost race re-reads and tries
/// again. Rows that someone moved past the plan's clock (a message written during the seed) keep
/// their time and text: a group row never goes back before its conversation's newest message.
async fn replace_conversation(ddb: &Ddb, group: Uuid, mut rows: Vec<FoundRow>, new: Option<[MessageGroupRow; 2]>) -> Result<(u64, u64)> {
    for attempt in 0..ATTEMPTS {
        let mut new_items: Vec<Item> = Vec::new();
        if let Some(new) = &new {
            let newest = rows.iter().max_by(|a, b| a.sk.cmp(&b.sk));
            for row in new {
                let mut item = row.to_item();
                if let Some(n) = newest.filter(|n| n.sk > format_ts(row.last_message_at)) {
                    item.insert(SK.into(), AttributeValue::S(n.sk.clone()));
                    item.insert("message".into(), AttributeValue::S(n.message.clone()));
                }
                new_items.push(item);
            }
        }
        // A new row on the key of a found row overwrites it (one action per item).
        let overwrites: Vec<bool> = new_items.iter().map(|i| rows.iter().any(|r| r.key == key_of(i))).collect();
        let deletes: Vec<&FoundRow> = rows.iter().filter(|r| !new_items.iter().any(|i| key_of(i) == r.key)).collect();
        let mut actions: Vec<TransactWriteItem> = deletes.iter().map(|r| delete_if_exists(ddb, r.key.clone())).collect();
        actions.extend(new_items.iter().zip(&overwrites).map(|(i, over)| put_conditioned(ddb, i.clone(), *over)));
        match transact_chunks(ddb, actions).await {
            Ok(()) => return Ok((deletes.len() as u64, new_items.len() as u64)),
            Err(TransactError::Failed(e)) => return Err(e),
            Err(TransactError::Race) => {}
        }
        tokio::time::sleep(crate::write::backoff(attempt)).await;
        rows = reread(ddb, group).await?;
    }
    Err(Error::Conflict(format!(
        "the group rows of conversation {group} kept changing under {ATTEMPTS} attempts to replace them (is something else rewriting them?); run the seed again"
    )))
}

/// Runs `actions` as transactions of at most [`MAX_TRANSACT_ACTIONS`], deletes first.
async fn transact_chunks(ddb: &Ddb, actions: Vec<TransactWriteItem>) -> std::result::Result<(), TransactError> {
    for chunk in actions.chunks(MAX_TRANSACT_ACTIONS) {
        transact(ddb, chunk.to_vec()).await?;
    }
    Ok(())
}

/// Conversations whose group rows go into one transaction when none of them has rows yet.
const NEW_CONVERSATIONS_PER_TRANSACTION: usize = MAX_TRANSACT_ACTIONS / 2;

/// Puts the group rows of conversations that had none, many per transaction, each put
/// conditioned on its key being free; a chunk that loses a race falls back to one conversation
/// at a time (which re-reads).
async fn put_new_conversations(ddb: &Ddb, plan: &SeedPlan, ks: &[u64]) -> Result<(u64, u64)> {
    let actions: Vec<TransactWriteItem> = ks.iter().flat_map(|k| plan.group_rows(*k)).map(|r| put_conditioned(ddb, r.to_item(), false)).collect();
    match transact_chunks(ddb, actions).await {
        Ok(()) => Ok((0, 2 * ks.len() as u64)),
        Err(TransactError::Failed(e)) => Err(e),
        Err(TransactError::Race) => {
            let mut total = (0, 0);
            for k in ks {
                let group = group_uuid(*k);
                let (d, w) = replace_conversation(ddb, group, reread(ddb, group).await?, Some(plan.group_rows(*k))).await?;
                total = (total.0 + d, total.1 + w);
            }
            Ok(total)
        }
    }
}

/// Writes the plan (see the module docs for the order), holding the table's seed lock: a
/// second seed started meanwhile fails, naming this one. `progress` is told of each phase
/// ("clearing the earlier seed", "writing") and of the items deleted and written, and of a
/// DynamoDB Local that has become too slow to finish a large seed in reasonable time.
///
/// `approve_replace` is asked before rows of an earlier seed are deleted (with their count); when
/// it says no, nothing is changed and the run fails (the prod guard). An error after the first
/// write is an [`Error::Stopped`] that says how far the run got.
pub async fn run(
    ddb: &Ddb,
    plan: &SeedPlan,
    opts: WriteOptions,
    progress: &dyn Progress,
    approve_replace: &dyn Fn(u64) -> bool,
) -> Result<SeedReport> {
    let phases = Phases::new(progress);
    let work = SEED_LOCK.hold(ddb, &phases, async {
        let result = run_locked(ddb, plan, opts, &phases, approve_replace).await;
        *phases.ended.lock().expect("not poisoned") = Some(Instant::now());
        result
    });
    let result = if ddb.target.is_local() && plan.total_items() >= SLOW_LOCAL_WATCH_FROM {
        tokio::select! {
            r = work => r,
            never = watch_local_rate(&phases) => match never {},
        }
    } else {
        work.await
    };
    phases.finish(result)
}

/// Seeds of this many items on DynamoDB Local get their rate watched: a rate that collapses is
/// reported through [`Progress::note`], with how to reset the server.
pub const SLOW_LOCAL_WATCH_FROM: u64 = 20_000;

/// The progress of one run: the phase it is in, when clearing and writing started, items done.
struct Phases<'a> {
    outer: &'a dyn Progress,
    /// The phase it is in, with its items.
    current: Mutex<Option<(String, u64)>>,
    /// Items done in the current phase, and in all.
    in_phase: AtomicU64,
    in_all: AtomicU64,
    started: Instant,
    clearing_from: Mutex<Option<Instant>>,
    writing_from: Mutex<Option<Instant>>,
    /// When the writing ended (before the lock is given back).
    ended: Mutex<Option<Instant>>,
}

impl<'a> Phases<'a> {
    fn new(outer: &'a dyn Progress) -> Self {
        let now = Instant::now();
        Phases {
            outer,
            current: Mutex::new(None),
            in_phase: AtomicU64::new(0),
            in_all: AtomicU64::new(0),
            started: now,
            clearing_from: Mutex::new(None),
            writing_from: Mutex::new(None),
            ended: Mutex::new(None),
        }
    }

    /// The run's report with its timings, or its error with how far it got.
    fn finish(&self, result: Result<SeedReport>) -> Result<SeedReport> {
        let ended = self.ended.lock().expect("not poisoned").unwrap_or_else(Instant::now);
        let writing_from = self.writing_from.lock().expect("not poisoned").unwrap_or(self.started);
        let clearing_from = *self.clearing_from.lock().expect("not poisoned");
        match (result, self.current.lock().expect("not poisoned").take()) {
            (Ok(mut report), _) => {
                report.writing = ended - writing_from;
                report.clearing = clearing_from.map_or(Duration::ZERO, |c| writing_from - c);
                Ok(report)
            }
            (Err(e), None) => Err(e),
            (Err(e), Some((phase, total))) => Err(Error::Stopped { source: Box::new(e), phase, done: self.in_phase.load(Ordering::Relaxed), total }),
        }
    }
}

impl Progress for Phases<'_> {
    fn phase(&self, name: &str, total: u64) {
        let slot = if name.starts_with("clearing") { &self.clearing_from } else { &self.writing_from };
        slot.lock().expect("not poisoned").get_or_insert_with(Instant::now);
        *self.current.lock().expect("not poisoned") = Some((name.to_string(), total));
        self.in_phase.store(0, Ordering::Relaxed);
        self.outer.phase(name, total);
    }
    fn inc(&self, n: u64) {
        self.in_phase.fetch_add(n, Ordering::Relaxed);
        self.in_all.fetch_add(n, Ordering::Relaxed);
        self.outer.inc(n);
    }
    fn note(&self, text: &str) {
        self.outer.note(text);
    }
}

/// DynamoDB Local slows down for good once it holds many stream records (SPEC.md): says so, and
/// how to reset it, when the rate collapses. Never ends; the run it watches does.
async fn watch_local_rate(phases: &Phases<'_>) -> std::convert::Infallible {
    let done = || phases.in_all.load(Ordering::Relaxed);
    let mut last = done();
    loop {
        tokio::time::sleep(Duration::from_secs(10)).await;
        let now = done();
        // Nothing at all written is a server that does not answer, which the run itself reports.
        let rate = now.saturating_sub(last) / 10;
        if now > last && rate < 300 {
            phases.note(&format!(
                "DynamoDB Local is writing only {rate} items/s; it slows down for good once it holds many stream records. \
                 ./bin/local/reset restarts it empty (then ./bin/ddb/schema-load and seed again)"
            ));
            return std::future::pending().await;
        }
        last = now;
    }
}

async fn run_locked(ddb: &Ddb, plan: &SeedPlan, opts: WriteOptions, progress: &Phases<'_>, approve: &dyn Fn(u64) -> bool) -> Result<SeedReport> {
    let mut found = find_seed_group_rows(ddb, [&plan.me, &plan.other]).await?;
    // Message rows of a seed group exist only while its group rows do (see the module docs), so
    // the groups found above are enough; the first groups of this plan are checked as well, as a
    // cheap guard against rows left by other tools.
    let groups: BTreeSet<Uuid> = found.keys().copied().chain((0..plan.groups.min(1_000)).map(group_uuid)).collect();
    let old_group_rows: u64 = found.values().map(|r| r.len() as u64).sum();

    let mut report = SeedReport::default();
    // Counted first (for the prod guard and the progress bar), then deleted page by page:
    // memory does not grow with the size of the earlier seed.
    let mut old_messages = 0u64;
    for g in &groups {
        old_messages += count_partition(ddb, MessageRow::pk_of(*g)).await?;
    }
    if old_messages + old_group_rows > 0 {
        let n = old_messages + old_group_rows;
        if !approve(n) {
            return Err(input(format!(
                "table {} at {} holds {n} rows of an earlier seed; not replacing them without confirmation: pass --yes, or run in a terminal and confirm",
                ddb.table,
                ddb.target.label()
            )));
        }
        progress.phase("clearing the earlier seed", old_messages);
        let keys = futures::stream::iter(groups.iter()).flat_map(|g| keys_of_partition(ddb, MessageRow::pk_of(*g)));
        report.deleted += write_stream(ddb, keys.map_ok(delete), opts, progress).await?;
    }

    progress.phase("writing", plan.total_items() + old_group_rows);
    // Conversations with rows (of this plan or earlier ones) are replaced one transaction each;
    // the plan's other conversations get their rows many per transaction.
    let mut replacements: Vec<(Uuid, Vec<FoundRow>, Option<[MessageGroupRow; 2]>)> = Vec::new();
    let mut fresh: Vec<u64> = Vec::new();
    for k in 0..plan.groups {
        match found.remove(&group_uuid(k)) {
            Some(rows) => replacements.push((group_uuid(k), rows, Some(plan.group_rows(k)))),
            None => fresh.push(k),
        }
    }
    replacements.extend(found.into_iter().map(|(g, rows)| (g, rows, None)));
    type Job<'a> = futures::future::BoxFuture<'a, Result<(u64, u64)>>;
    let replace = futures::stream::iter(replacements).map(|(g, rows, new)| -> Job<'_> { Box::pin(replace_conversation(ddb, g, rows, new)) });
    let create = futures::stream::iter(fresh.chunks(NEW_CONVERSATIONS_PER_TRANSACTION))
        .map(|ks| -> Job<'_> { Box::pin(put_new_conversations(ddb, plan, ks)) });
    let (deleted, written) = replace
        .chain(create)
        .buffer_unordered(opts.concurrency.max(1))
        .try_fold((0u64, 0u64), |(d, w), (dn, wn)| {
            progress.inc(dn + wn);
            async move { Ok((d + dn, w + wn)) }
        })
        .await?;
    report.deleted += deleted;
    report.written += written;
    let messages = (0..plan.messages).map(|i| put(plan.message(i).to_item()));
    report.written += write_all(ddb, messages, opts, progress).await?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::format_ts;

    fn sk_of(row: &MessageRow) -> String {
        format_ts(row.created_at)
    }

    fn course_map() -> SpeakerMap {
        SpeakerMap::parse(COURSE_SPEAKERS, "course-speakers.txt").unwrap()
    }

    fn user(handle: &str) -> User {
        User { uuid: Uuid::new_v4(), display_name: handle.to_uppercase(), handle: handle.into() }
    }

    #[test]
    fn course_conversation_parses_completely() {
        let c = Conversation::parse(COURSE_CONVERSATION.as_bytes(), "course", &course_map()).unwrap();
        assert_eq!(c.lines.len(), 24);
        assert_eq!(c.lines[1].handle, "bayko", "the Fan: lines belong to bayko");
        assert_eq!(c.participants().unwrap(), ["yaya2devops".to_string(), "bayko".to_string()]);
        assert!(c.lines[0].text.starts_with("Hello You Gotta"));
    }

    #[test]
    fn bad_lines_name_file_and_line() {
        let m = course_map();
        let cases: &[(&[u8], &str)] = &[
            (b"Yaya2DevOps: hi\nnobody said this\n", "f:2: expected `Speaker: message`"),
            (b"Yaya2DevOps: hi\nStranger: hello\n", "f:2: unknown speaker \"Stranger\""),
            (b"Yaya2DevOps: hi\nFan: \n", "f:2: empty message from Fan"),
            (b"Yaya2DevOps: hi\n\xff\xfe\n", "f:2: not UTF-8"),
            (b"\n\n  \n", "f: the conversation has no lines"),
            (b"", "f: the conversation has no lines"),
            (b"Yaya2DevOps: a\x00b\n", "f:1: control character"),
            (b"\xef\xbb\xbf\xef\xbb\xbfYaya2DevOps: a\n", "f:1: unknown speaker"),
        ];
        for (bytes, want) in cases {
            let err = Conversation::parse(bytes, "f", &m).unwrap_err().to_string();
            assert!(err.contains(want), "{err:?} should contain {want:?}");
        }
    }

    #[test]
    fn a_byte_order_mark_is_not_text() {
        let c = Conversation::parse(b"\xef\xbb\xbfYaya2DevOps: hi\r\nFan: ho\r\n", "f", &course_map()).unwrap();
        assert_eq!(c.lines[0].handle, "yaya2devops");
        assert_eq!((c.lines[0].text.as_str(), c.lines[1].text.as_str()), ("hi", "ho"));
    }

    #[test]
    fn speaker_overrides_and_participants() {
        let mut m = course_map();
        m.add("Fan=londo").unwrap();
        let c = Conversation::parse(b"Yaya2DevOps: a\nFan123: b\nFan: c\n", "f", &m).unwrap();
        assert!(c.participants().unwrap_err().to_string().contains("has 3"));
        assert!(m.add("nonsense").is_err());
        assert!(SpeakerMap::parse("A=b\n=x\n", "s").unwrap_err().to_string().contains("s:2"));
    }

    #[test]
    fn plan_matches_the_course_and_scales() {
        let c = Conversation::parse(COURSE_CONVERSATION.as_bytes(), "course", &course_map()).unwrap();
        let (me, other) = (user("yaya2devops"), user("bayko"));
        let now = crate::records::now();
        let plan = SeedPlan::new(&c, me.clone(), other.clone(), None, 1, now).unwrap();
        assert_eq!(plan.total_items(), 26);
        let m0 = plan.message(0);
        assert_eq!(m0.created_at, now - time::Duration::days(1));
        assert_eq!(plan.message(3).created_at, now - time::Duration::days(1) + time::Duration::minutes(3));
        assert_eq!(m0.user_handle, "yaya2devops");
        assert_eq!(plan.message(1).user_handle, "bayko");
        assert_eq!(m0.message_group_uuid, COURSE_GROUP);
        let [a, b] = plan.group_rows(0);
        assert_eq!((a.owner_uuid, a.user_uuid), (me.uuid, other.uuid));
        assert_eq!((b.owner_uuid, b.user_uuid), (other.uuid, me.uuid));
        assert_eq!(a.last_message_at, now);

        let big = SeedPlan::new(&c, me, other, Some(1_000_000), 7, now).unwrap();
        let sks: Vec<String> = [0u64, 1, 2, 999_998, 999_999].iter().map(|i| sk_of(&big.message(*i))).collect();
        assert!(sks.windows(2).all(|w| w[0] < w[1]), "{sks:?}");
        assert!(big.message(999_999).created_at < now);
        assert!(is_seed_group(&big.message(5).message_group_uuid));
        let keys: std::collections::HashSet<_> = (0..7).flat_map(|k| big.group_rows(k)).map(|g| (g.owner_uuid, g.last_message_at)).collect();
        assert_eq!(keys.len(), 14, "group rows of one user must not share a key");
        assert!(big.message(999_999).created_at < big.group_rows(6)[0].last_message_at);
        assert_ne!(big.message(5).message_uuid, big.message(12).message_uuid);
        assert!(SeedPlan::new(&c, user("a"), user("b"), Some(10), 11, now).is_err());
        assert!(SeedPlan::new(&c, user("a"), user("b"), Some(0), 1, now).is_err());
    }

    #[test]
    fn oversized_messages_are_refused_before_writing() {
        let text = format!("Yaya2DevOps: {}\nFan: ok\n", "x".repeat(MAX_ITEM_BYTES));
        let c = Conversation::parse(text.as_bytes(), "big.txt", &course_map()).unwrap();
        let err = SeedPlan::new(&c, user("yaya2devops"), user("bayko"), None, 1, crate::records::now()).unwrap_err();
        assert!(err.to_string().contains("big.txt:1: the message is too long"), "{err}");
    }
}
