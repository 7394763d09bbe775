//! `bin/ddb/check`: one test per kind of violation, injected with raw writes, named by check
//! (kind, keys, what was expected), repaired when mechanical, and clean after; clean on every
//! table the seeds and scripts make; `--repair` racing a worker and create-message.

use aws_sdk_dynamodb::types::AttributeValue;
use ddb_core::records::{format_ts, Item, MessageGroupRow, MessageRow, User};
use ddb_core::seed::COURSE_GROUP;
use e2e::{block_on, run_watched, seeded, stderr, stdout, DynamoLocal, TempDir, TestDb, TestTable};
use serde_json::Value;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// What one run of check said: its exit code, its violations (`--json`), its stderr.
pub(crate) struct Report {
    pub code: i32,
    pub violations: Vec<Value>,
    pub stderr: String,
}

impl Report {
    pub fn kinds(&self) -> Vec<String> {
        let mut k: Vec<String> = self.violations.iter().map(|v| v["kind"].as_str().unwrap_or("?").to_string()).collect();
        k.sort();
        k
    }
}

/// Runs `check --json --quiet ARGS` on `t` (with `db` as CONNECTION_URL when given).
pub(crate) fn check(t: &TestTable, db: Option<&TestDb>, args: &[&str]) -> Report {
    let mut cmd = match db {
        Some(db) => t.cmd_db("check", db),
        None => t.cmd("check"),
    };
    let out = run_watched(cmd.args(["--json", "--quiet"]).args(args), Duration::from_secs(300));
    let violations = stdout(&out).lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect();
    Report { code: out.status.code().unwrap_or(-1), violations, stderr: stderr(&out) }
}

/// Asserts that check finds nothing on `t`.
pub(crate) fn assert_clean(t: &TestTable, context: &str) {
    let r = check(t, None, &[]);
    assert!(r.code == 0 && r.violations.is_empty(), "{context}: check found {:?} (exit {}): {}", r.violations, r.code, r.stderr);
}

fn user(handle: &str) -> User {
    User { uuid: Uuid::new_v4(), display_name: handle.to_uppercase(), handle: handle.into() }
}

/// A conversation of two fresh users made by pattern D, in the library.
fn conversation(t: &TestTable) -> ddb_core::patterns::NewGroup {
    block_on(ddb_core::patterns::create_message_group(&t.ddb, &user("ann"), &user("bob"), "hello")).expect("pattern D")
}

fn put(t: &TestTable, item: Item) {
    block_on(t.client().put_item().table_name(&t.name).set_item(Some(item)).send()).expect("put");
}

fn delete(t: &TestTable, key: &ddb_core::records::Key) {
    block_on(t.client().delete_item().table_name(&t.name).set_key(Some(key.to_item())).send()).expect("delete");
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_string())
}

/// Injects what `inject` writes into a fresh table, checks that check names `kind` (once, with
/// `key_part` among its keys), then `--repair`: clean after when `repairable`, else still there.
fn one_kind(tag: &str, kind: &str, repairable: bool, inject: impl FnOnce(&TestTable) -> String) {
    let t = TestTable::create(DynamoLocal::shared(), tag);
    assert_clean(&t, "a new table");
    let key_part = inject(&t);
    let r = check(&t, None, &[]);
    assert_eq!((r.code, r.kinds()), (1, vec![kind.to_string()]), "{:?}: {}", r.violations, r.stderr);
    let v = &r.violations[0];
    assert!(v["keys"].to_string().contains(&key_part), "keys of {v} should name {key_part}");
    assert!(v["expected"].as_str().is_some_and(|e| !e.is_empty()) && v["found"].as_str().is_some(), "{v}");
    assert!(r.stderr.contains(&format!("{kind} 1")), "summary: {}", r.stderr);
    let fixed = check(&t, None, &["--repair"]);
    if repairable {
        assert_eq!(fixed.code, 0, "repair: {}", fixed.stderr);
        assert_clean(&t, "after --repair");
    } else {
        assert_eq!(fixed.code, 1, "a violation repair cannot mend fails the run: {}", fixed.stderr);
        assert_eq!(check(&t, None, &[]).kinds(), vec![kind.to_string()], "left as it was");
    }
}

#[test]
fn a_duplicate_group_row_is_named_and_the_newest_kept() {
    one_kind("chk-dup", "duplicate_group_row", true, |t| {
        let g = conversation(t);
        let older = MessageGroupRow { last_message_at: g.rows[0].last_message_at - time::Duration::seconds(5), ..g.rows[0].clone() };
        put(t, older.to_item());
        older.key().sk
    });
}

#[test]
fn a_group_row_behind_its_newest_message_is_moved_onto_it() {
    let t = TestTable::create(DynamoLocal::shared(), "chk-behind");
    let g = conversation(&t);
    let newer = MessageRow { created_at: g.message.created_at + time::Duration::seconds(1), message: "newer".into(), ..g.message.clone() };
    put(&t, newer.to_item());
    let r = check(&t, None, &[]);
    assert_eq!(r.kinds(), ["group_row_behind", "group_row_behind"], "{:?}", r.violations);
    assert!(r.violations[0]["expected"].as_str().unwrap().contains(&format_ts(newer.created_at)), "{:?}", r.violations[0]);
    assert_eq!(check(&t, None, &["--repair"]).code, 0);
    assert_clean(&t, "after --repair");
    assert!(t.rows_of(g.uuid).iter().all(|r| r.is_on(&newer)), "{:?}", t.rows_of(g.uuid));
}

#[test]
fn a_missing_member_is_reported_and_left() {
    one_kind("chk-missing", "missing_member", false, |t| {
        let g = conversation(t);
        delete(t, &g.rows[1].key());
        g.rows[0].key().pk
    });
}

#[test]
fn an_extra_member_is_reported_and_left() {
    one_kind("chk-extra", "extra_member", false, |t| {
        let g = conversation(t);
        let third = MessageGroupRow { owner_uuid: Uuid::new_v4(), ..g.rows[0].clone() };
        put(t, third.to_item());
        third.key().pk
    });
}

#[test]
fn members_that_disagree_are_reported() {
    one_kind("chk-mismatch", "member_mismatch", false, |t| {
        let g = conversation(t);
        // Ann's row names Bob; Bob's row names Ann by another handle than her message says.
        put(t, MessageGroupRow { user_handle: "not-ann".into(), ..g.rows[1].clone() }.to_item());
        g.rows[1].key().pk
    });
}

#[test]
fn an_orphan_message_is_reported_and_left() {
    one_kind("chk-orphan", "orphan_message", false, |t| {
        let m = MessageRow { message_group_uuid: Uuid::new_v4(), ..conversation(t).message };
        put(t, m.to_item());
        m.key().pk
    });
}

#[test]
fn group_rows_without_messages_are_reported_and_left() {
    one_kind("chk-nomsg", "group_without_messages", false, |t| {
        let g = conversation(t);
        delete(t, &g.message.key());
        g.rows[0].key().pk
    });
}

#[test]
fn malformed_keys_and_attributes_are_reported() {
    one_kind("chk-badkey", "bad_key", false, |t| {
        let mut item = conversation(t).message.to_item();
        item.insert("pk".into(), s("MSG#not-a-uuid"));
        put(t, item);
        "MSG#not-a-uuid".into()
    });
    one_kind("chk-badsk", "bad_key", false, |t| {
        let g = conversation(t);
        let mut item = g.message.to_item();
        // An RFC 3339 time, but not the one format that sorts.
        item.insert("sk".into(), s("2026-01-01T00:00:00Z"));
        put(t, item);
        "2026-01-01T00:00:00Z".into()
    });
    one_kind("chk-badattr", "bad_attribute", false, |t| {
        let m = MessageRow { message_group_uuid: Uuid::new_v4(), ..conversation(t).message };
        let mut item = m.to_item();
        item.insert("user_uuid".into(), AttributeValue::N("7".into()));
        put(t, item);
        m.key().pk
    });
}

#[test]
fn items_of_no_known_shape_are_reported() {
    one_kind("chk-unknown", "unknown_item", false, |t| {
        put(t, [("pk", "USER#1"), ("sk", "x")].into_iter().map(|(k, v)| (k.to_string(), s(v))).collect());
        "USER#1".into()
    });
}

fn lock_item(name: &str, attrs: &[(&str, &str)]) -> Item {
    let key = format!("LOCK#{name}");
    let mut item: Item = attrs.iter().map(|(k, v)| (k.to_string(), s(v))).collect();
    item.extend([("pk".to_string(), s(&key)), ("sk".to_string(), s(&key))]);
    item
}

#[test]
fn stale_lock_items_are_reported_and_removed_and_live_ones_kept() {
    let token = Uuid::new_v4().to_string();
    one_kind("chk-lockexp", "lock_expired", true, |t| {
        let old = [
            ("lock_owner", token.as_str()),
            ("host", "elsewhere"),
            ("pid", "1"),
            ("expires_at", "2020-01-01T00:00:00.000000+00:00"),
            ("version", "v1"),
        ];
        put(t, lock_item("seed", &old));
        "LOCK#seed".into()
    });
    one_kind("chk-lockbad", "lock_unreadable", true, |t| {
        put(t, lock_item("seed", &[("note", "left by hand")]));
        "LOCK#seed".into()
    });
    one_kind("chk-lockgone", "lock_holder_gone", true, |t| {
        let mut gone = std::process::Command::new("true").spawn().unwrap();
        let pid = gone.id().to_string();
        gone.wait().unwrap();
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap().trim().to_string();
        let far = format_ts(ddb_core::records::now() + Duration::from_secs(3600));
        put(t, lock_item("seed", &[("lock_owner", &token), ("host", &host), ("pid", &pid), ("expires_at", &far), ("version", "v1")]));
        "LOCK#seed".into()
    });
    // A lock renewed between the read and the removal is kept.
    let t = TestTable::create(DynamoLocal::shared(), "chk-lockkept");
    let read =
        lock_item("seed", &[("lock_owner", &token), ("host", "elsewhere"), ("expires_at", "2020-01-01T00:00:00.000000+00:00"), ("version", "v1")]);
    put(&t, read.clone());
    put(
        &t,
        lock_item("seed", &[("lock_owner", &token), ("host", "elsewhere"), ("expires_at", "2020-01-01T00:00:00.000000+00:00"), ("version", "v2")]),
    );
    assert!(!block_on(ddb_core::lock::remove_as_read(&t.ddb, &read)).unwrap());
    assert_eq!(t.count(), 1, "the renewed lock stays");
}

#[test]
fn group_rows_that_differ_from_postgres_users_are_reported_with_users() {
    let db = TestDb::create();
    let t = TestTable::create(DynamoLocal::shared(), "chk-users");
    let u = db.users(&["yaya2devops", "bayko"]);
    block_on(ddb_core::patterns::create_message_group(&t.ddb, &u["yaya2devops"], &u["bayko"], "hi")).unwrap();
    assert_eq!(check(&t, Some(&db), &["--users"]).code, 0);
    db.exec("UPDATE users SET display_name = 'Someone Else' WHERE handle = 'bayko'");
    let r = check(&t, Some(&db), &["--users"]);
    assert_eq!((r.code, r.kinds()), (1, vec!["user_mismatch".to_string()]), "{:?}", r.violations);
    assert!(r.violations[0]["found"].as_str().unwrap().contains("Someone Else"), "{:?}", r.violations[0]);
    assert_clean(&t, "without --users");
}

#[test]
fn every_table_the_seeds_and_scripts_make_is_clean() {
    let server = DynamoLocal::shared();
    let (course, db) = seeded(server, "chk-course", &[]);
    assert_clean(&course, "the course seed");
    let out = course.seed(&db, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_clean(&course, "the course seed run again");
    let (scale, db2) = seeded(server, "chk-scale", &["--messages", "90", "--groups", "7"]);
    assert_clean(&scale, "scale mode");
    assert!(scale.seed(&db2, &["--messages", "20", "--groups", "3"]).status.success());
    assert_clean(&scale, "scale mode re-seeded with fewer conversations");
    // Patterns C and D through their scripts, with the worker moving the rows.
    let dir = TempDir::new("chk-worker");
    let _worker = course.worker(&dir.join("state.json"));
    let out = course.run_db("create-conversation", &db, &["yaya2devops", "bayko", "a new one"]);
    assert!(out.status.success(), "{}", stderr(&out));
    for text in ["one", "two", "three"] {
        let out = course.run_db("create-message", &db, &[&COURSE_GROUP.to_string(), "bayko", text]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    wait_clean(&course, Duration::from_secs(120)).unwrap_or_else(|v| panic!("patterns C and D with the worker: {v:?}"));
}

/// Polls check until it is clean (the worker caught up), for at most `limit`; the last
/// violations otherwise.
pub(crate) fn wait_clean(t: &TestTable, limit: Duration) -> Result<(), Vec<Value>> {
    let start = Instant::now();
    loop {
        let r = check(t, None, &[]);
        if r.code == 0 && r.violations.is_empty() {
            return Ok(());
        }
        if start.elapsed() > limit {
            return Err(r.violations);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn repair_racing_a_worker_and_create_message_ends_clean_and_loses_nothing() {
    let server = DynamoLocal::start();
    let (t, db) = seeded(&server, "chk-race", &["--messages", "60", "--groups", "6"]);
    // Duplicates in every conversation, as the course's Lambda leaves them.
    for g in t.group_rows() {
        put(&t, MessageGroupRow { last_message_at: g.last_message_at - time::Duration::seconds(30), ..g }.to_item());
    }
    let before = t.messages().len();
    let dir = TempDir::new("chk-race");
    let _worker = t.worker(&dir.join("state.json"));
    let senders: Vec<std::process::Child> = (0..6)
        .map(|i| {
            let group = ddb_core::seed::group_uuid(i % 6).to_string();
            t.cmd_db("create-message", &db)
                .args([group.as_str(), "bayko", &format!("racing {i}")])
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let repair = check(&t, None, &["--repair"]);
    for mut c in senders {
        assert!(c.wait().unwrap().success(), "create-message failed");
    }
    assert!(repair.stderr.contains("repaired"), "{}", repair.stderr);
    wait_clean(&t, Duration::from_secs(120)).unwrap_or_else(|v| panic!("after --repair beside the worker: {v:?}"));
    assert_eq!(t.messages().len(), before + 6, "no message lost");
}
