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
//! 4. replace each conversation's group rows through [`crate::conversation`], one conditioned
//!    transaction per conversation: the rows found are removed, the new ones put at the run's
//!    clock with the course's filler text, so that the stream worker (or the Lambda) moving the
//!    same rows at that moment makes the transaction fail and the seed read again, never a second
//!    row per member. A message written into the conversation during the seed that survived the
//!    clearing is newer than the run's clock: the rows are put onto it instead, on condition that
//!    it still exists (never onto a message the clearing deleted);
//! 5. put the messages (older than the group rows' time, so pattern E leaves the rows alone);
//! 6. give the lock back, also when the run fails or is interrupted (Ctrl-C).
//!
//! Whenever message rows of a seed group exist, its group rows exist too (they go last and
//! come first), so the next run finds and clears them. Seed groups are recognisable by their
//! uuid: group 0 is the course's `5ae290ed-55d1-47a0-bc6d-fe2bc2700399`, group k of scale
//! mode is `5ae290ed-55d1-47a0-bc6d-{k:012x}`. Message uuids are derived from the group and the
//! message's index (uuid v5), so a run always writes the same ids.
//!
//! # Layout
//!
//! - `file`: reading the conversation ([`Conversation`], [`SpeakerMap`]);
//! - `plan`: the rows of a run, decided and checked first ([`SeedRequest`], [`SeedPlan`]);
//! - `run`: the run under the lock ([`run`], [`run_until`]);
//! - `report`: its phases and figures ([`SeedReport`]).

use crate::lock::Lease;
use std::time::Duration;
use uuid::{uuid, Uuid};

mod file;
mod plan;
mod report;
mod run;

pub use file::{Conversation, Line, SpeakerMap};
pub use plan::{check_clock, SeedPlan, SeedRequest, EARLIEST_CLOCK, MAX_CLOCK_AHEAD};
pub use report::{Phase, SeedReport, SLOW_LOCAL_WATCH_FROM};
pub use run::{run, run_until};

/// The course's conversation, verbatim (24 lines, with its `Fan:` lines).
pub const COURSE_CONVERSATION: &str = include_str!("../../data/course-conversation.txt");
/// Who speaks in it.
pub const COURSE_SPEAKERS: &str = include_str!("../../data/course-speakers.txt");
/// The course's message group.
pub const COURSE_GROUP: Uuid = uuid!("5ae290ed-55d1-47a0-bc6d-fe2bc2700399");
pub use crate::records::FILLER_MESSAGE;
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

/// The seed's lock: one seed at a time per table (see [`crate::lock`]).
pub const SEED_LOCK: Lease = Lease { name: "seed", ttl: Duration::from_secs(30) };

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{format_ts, MessageRow, User, MAX_ITEM_BYTES};

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
            (b"Yaya2DevOps: a\x1b]52;c;aGk=\x07\n", "f:1: control character"),
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
    fn clocks_outside_what_the_keys_order_are_refused() {
        use time::macros::datetime;
        let real = datetime!(2026-12-02 00:00 UTC);
        for bad in [datetime!(0000-01-01 00:00:30 UTC), datetime!(0001-01-01 12:00 UTC), datetime!(9999-12-31 23:59 UTC), datetime!(2028-01-01 00:00 UTC)] {
            let err = check_clock(bad, real).unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::Usage, "{bad}");
            assert!(err.to_string().contains("four-digit year"), "{err}");
        }
        for good in [EARLIEST_CLOCK, datetime!(1970-01-01 00:00 UTC), datetime!(2026-01-01 00:10 UTC), datetime!(2027-01-01 00:00 UTC)] {
            assert_eq!(check_clock(good, real).unwrap(), good);
        }
        // A seed at the earliest clock writes keys that sort: four-digit years, all in order.
        let c = Conversation::parse(COURSE_CONVERSATION.as_bytes(), "course", &course_map()).unwrap();
        let plan = SeedPlan::new(&c, user("yaya2devops"), user("bayko"), None, 1, EARLIEST_CLOCK).unwrap();
        let sks: Vec<String> = (0..24).map(|i| sk_of(&plan.message(i))).chain([format_ts(plan.group_rows(0)[0].last_message_at)]).collect();
        assert!(sks.iter().all(|k| k.starts_with("0001-")), "{sks:?}");
        assert!(sks.windows(2).all(|w| w[0] < w[1]), "{sks:?}");
    }

    #[test]
    fn oversized_messages_are_refused_before_writing() {
        let text = format!("Yaya2DevOps: {}\nFan: ok\n", "x".repeat(MAX_ITEM_BYTES));
        let c = Conversation::parse(text.as_bytes(), "big.txt", &course_map()).unwrap();
        let err = SeedPlan::new(&c, user("yaya2devops"), user("bayko"), None, 1, crate::records::now()).unwrap_err();
        assert!(err.to_string().contains("big.txt:1: the message is too long"), "{err}");
    }
}
