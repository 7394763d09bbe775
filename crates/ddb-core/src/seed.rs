//! The seed: the course's conversation between two users of Postgres, written into the table,
//! validated completely before the first write, and safe to run again.
//!
//! Re-runs: message timestamps follow the clock (`now - 1 day + i minutes`, as in the course), so
//! a second run cannot simply overwrite the first. Every run therefore clears the seed's earlier
//! rows first, then writes, in an order that keeps a crash at any point recoverable by running
//! again:
//!
//! 1. delete the message rows of every seed group (found through the two users' group rows,
//!    plus the groups this run writes);
//! 2. delete those groups' old group rows;
//! 3. put the new group rows;
//! 4. put the messages.
//!
//! Whenever message rows of a seed group exist, its group rows exist too (they go last and
//! come first), so the next run finds and clears them. Seed groups are recognisable by their
//! uuid: group 0 is the course's `5ae290ed-55d1-47a0-bc6d-fe2bc2700399`, group k of scale
//! mode is `5ae290ed-55d1-47a0-bc6d-{k:012x}`. Message uuids are derived from the group and the
//! message's index (uuid v5), so a run always writes the same ids.

use crate::error::{input, Error, Result};
use crate::pg::User;
use crate::records::{item_size, key_of, Item, MessageGroupRow, MessageRow, MAX_ITEM_BYTES};
use crate::table::GRP_PREFIX;
use crate::write::{delete, put, write_all, write_stream, WriteOptions};
use crate::Ddb;
use aws_sdk_dynamodb::types::AttributeValue;
use futures::{StreamExt, TryStreamExt};
use indicatif::ProgressBar;
use std::collections::BTreeSet;
use std::time::Duration;
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
            .ok_or_else(|| input(format!("speaker mapping {entry:?} is not of the form NAME=handle")))?;
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
            return Err(input("--messages must be at least 1"));
        }
        if groups == 0 || groups > MAX_GROUPS || groups > messages {
            return Err(input(format!("--groups must be between 1 and the number of messages ({messages})")));
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
}

/// Key-only query of one partition, strongly consistent, page by page as a stream of keys.
fn keys_of_partition(ddb: &Ddb, pk: String, with_group: bool) -> impl futures::Stream<Item = Result<Item>> + '_ {
    let projection = if with_group { "pk, sk, message_group_uuid" } else { "pk, sk" };
    let pages = ddb
        .client
        .query()
        .table_name(&ddb.table)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", AttributeValue::S(pk))
        .projection_expression(projection)
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

/// Writes the plan (see the module docs for the order). `progress` counts items deleted and
/// written; `on_phase` is told when each phase starts.
///
/// `approve_replace` is asked before rows of an earlier seed are deleted (with their count); when
/// it says no, nothing is changed and the run fails (the prod guard).
pub async fn run(
    ddb: &Ddb,
    plan: &SeedPlan,
    opts: WriteOptions,
    progress: &ProgressBar,
    on_phase: &dyn Fn(&str, u64),
    approve_replace: &dyn Fn(u64) -> bool,
) -> Result<SeedReport> {
    // Existing group rows of both users that belong to seed groups.
    let mut old_group_rows = Vec::new();
    let mut groups: BTreeSet<Uuid> = BTreeSet::new();
    for user in [&plan.me, &plan.other] {
        let keys: Vec<Item> = keys_of_partition(ddb, format!("{GRP_PREFIX}{}", user.uuid), true).try_collect().await?;
        for item in keys {
            let g = item.get("message_group_uuid").and_then(|v| v.as_s().ok()).and_then(|s| Uuid::parse_str(s).ok());
            if let Some(g) = g.filter(is_seed_group) {
                groups.insert(g);
                old_group_rows.push(key_of(&item));
            }
        }
    }
    // Message rows of a seed group exist only while its group rows do (see the module docs), so
    // the groups found above are enough; the first groups of this plan are checked as well, as a
    // cheap guard against rows left by other tools.
    groups.extend((0..plan.groups.min(1_000)).map(group_uuid));

    let mut report = SeedReport::default();
    if !groups.is_empty() {
        // Counted first (for the prod guard and the progress bar), then deleted page by page:
        // memory does not grow with the size of the earlier seed.
        let mut old_messages = 0u64;
        for g in &groups {
            old_messages += count_partition(ddb, MessageRow::pk_of(*g)).await?;
        }
        if old_messages > 0 || !old_group_rows.is_empty() {
            let n = old_messages + old_group_rows.len() as u64;
            if !approve_replace(n) {
                return Err(input(format!(
                    "table {} at {} holds {n} rows of an earlier seed; not replacing them without confirmation: pass --yes, or run in a terminal and confirm",
                    ddb.table,
                    ddb.target.label()
                )));
            }
            on_phase("clearing the earlier seed", n);
            let keys = futures::stream::iter(groups.iter()).flat_map(|g| keys_of_partition(ddb, MessageRow::pk_of(*g), false));
            report.deleted += write_stream(ddb, keys.map_ok(delete), opts, progress).await?;
            report.deleted += write_all(ddb, old_group_rows.into_iter().map(delete), opts, progress).await?;
        }
    }

    on_phase("writing", plan.total_items());
    let group_rows = (0..plan.groups).flat_map(|k| plan.group_rows(k)).map(|r| put(r.to_item()));
    report.written += write_all(ddb, group_rows, opts, progress).await?;
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
        ];
        for (bytes, want) in cases {
            let err = Conversation::parse(bytes, "f", &m).unwrap_err().to_string();
            assert!(err.contains(want), "{err:?} should contain {want:?}");
        }
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
