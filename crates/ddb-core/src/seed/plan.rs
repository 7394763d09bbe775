//! The plan of a seed run: every row it writes, decided and checked before the first write, from
//! the conversation, its two users (Postgres) and the run's clock.

use super::file::{Conversation, SpeakerMap};
use super::{group_uuid, COURSE_CONVERSATION, COURSE_SPEAKERS, FILLER_MESSAGE, MAX_GROUPS};
use crate::error::{input, Error, Result};
use crate::records::{format_ts, item_size, MessageGroupRow, MessageRow, User, MAX_ITEM_BYTES};
use std::path::PathBuf;
use std::time::Duration;
use time::macros::datetime;
use time::OffsetDateTime;
use uuid::Uuid;

/// The earliest clock a seed accepts: its messages start a day before it, and sort keys (and the
/// course's Python readers) need a year of four digits from 1.
pub const EARLIEST_CLOCK: OffsetDateTime = datetime!(0001-01-02 00:00 UTC);

/// How far ahead of the real clock a seed's clock may be: its group rows are dated at it, and
/// pattern E moves a row only onto a newer message, so a conversation seeded in year 9999 would
/// never show a real message as its newest. A year leaves room for trying next New Year.
pub const MAX_CLOCK_AHEAD: time::Duration = time::Duration::days(366);

/// Checks a clock given by `--now` against the range the seed's keys order (see
/// [`EARLIEST_CLOCK`], [`MAX_CLOCK_AHEAD`]); `real` is the machine's clock.
pub fn check_clock(now: OffsetDateTime, real: OffsetDateTime) -> Result<OffsetDateTime> {
    let latest = real + MAX_CLOCK_AHEAD;
    if now < EARLIEST_CLOCK || now > latest {
        return Err(Error::Usage(format!(
            "--now {} is outside the clocks a seed accepts, {} to {} (a year from now): sort keys need a four-digit year from 0001, \
             and group rows dated after every real message would never move to one",
            format_ts(now),
            format_ts(EARLIEST_CLOCK),
            format_ts(latest)
        )));
    }
    Ok(now)
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

/// What a seed run is asked for: the command line's choices, before anything is read.
#[derive(Debug, Clone)]
pub struct SeedRequest {
    /// A file of `Speaker: message` lines (`-`: standard input); `None` for the course's conversation.
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

/// The largest conversation file the seed reads: far above any conversation a person writes
/// (the course's is 2 KB, 20,000 lines about 1 MB), and a bound for a path such as /dev/zero.
pub const MAX_CONVERSATION_BYTES: u64 = 64 * 1024 * 1024;

/// All of `from` (`what`, for messages), at most [`MAX_CONVERSATION_BYTES`].
fn read_bounded(from: impl std::io::Read, what: &str) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut std::io::Read::take(from, MAX_CONVERSATION_BYTES + 1), &mut bytes)
        .map_err(|e| Error::io(format!("cannot read {what}"), e))?;
    if bytes.len() as u64 > MAX_CONVERSATION_BYTES {
        return Err(input(format!(
            "{what} is larger than {} MiB: a conversation is lines of text (is it the right file?); seed many messages with --messages N instead",
            MAX_CONVERSATION_BYTES >> 20
        )));
    }
    Ok(bytes)
}

impl SeedRequest {
    /// The conversation with its speakers mapped to handles: everything that needs no server.
    pub fn conversation(&self) -> Result<Conversation> {
        let mut speakers = SpeakerMap::parse(COURSE_SPEAKERS, "course-speakers.txt")?;
        for s in &self.speakers {
            speakers.add(s)?;
        }
        match &self.conversation {
            // `-`, as create-message's TEXT: the conversation comes from standard input.
            Some(path) if path.as_os_str() == "-" => {
                let bytes = read_bounded(std::io::stdin(), "the conversation from standard input")?;
                Conversation::parse(&bytes, "standard input", &speakers)
            }
            Some(path) => {
                let what = format!("conversation file {}", path.display());
                let file = std::fs::File::open(path).map_err(|e| Error::io(format!("cannot read {what}"), e))?;
                let bytes = read_bounded(file, &what)?;
                Conversation::parse(&bytes, &path.display().to_string(), &speakers)
            }
            None => Conversation::parse(COURSE_CONVERSATION.as_bytes(), "course-conversation.txt", &speakers),
        }
    }

    /// The plan for these two users (the conversation's participants, in order).
    pub fn plan_for(&self, conv: &Conversation, me: User, other: User) -> Result<SeedPlan> {
        let now = match self.now {
            Some(t) => check_clock(crate::records::truncate_us(t), crate::records::now())?,
            None => crate::records::now(),
        };
        SeedPlan::new(conv, me, other, self.messages, self.groups, now)
    }

    /// The whole plan: the conversation, its two users from the `users` table at `pg_url`, and
    /// every row checked. Nothing is written.
    #[cfg(feature = "pg")]
    pub async fn plan(&self, pg_url: &str) -> Result<SeedPlan> {
        let conv = self.conversation()?;
        let [me, other] = conv.participants()?;
        let db = crate::pg::connect(pg_url).await?;
        let mut users = db.users_by_handle(&[me.clone(), other.clone()]).await?;
        let mut take = |h: &str| {
            users.remove(h).ok_or_else(|| {
                let line = conv.lines.iter().find(|l| l.handle == h).map_or(0, |l| l.lineno);
                Error::NotFound(format!(
                    "no user with handle {} in database {} ({}:{line}); add the user, or map the speaker to another handle with --speaker",
                    crate::error::quoted(h),
                    db.url(),
                    conv.source
                ))
            })
        };
        let (me, other) = (take(&me)?, take(&other)?);
        self.plan_for(&conv, me, other)
    }
}
