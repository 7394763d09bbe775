//! Pattern E: the handler on recorded records, and the stream worker against DynamoDB Local's
//! real stream. Each worker test has a server of its own (SPEC.md: stream tables created late on
//! a busy server crawl).

use aws_sdk_dynamodb::types::{AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType};
use ddb_core::patterns;
use ddb_core::records::{format_ts, parse_ts, MessageRow};
use ddb_core::seed::{group_uuid, COURSE_GROUP};
use ddb_core::stream::{handle, EventKind, Record};
use e2e::*;
use std::collections::HashMap;
use std::process::Stdio;
use std::time::{Duration, Instant};
use uuid::Uuid;

fn newest_by_group(t: &TestTable) -> HashMap<Uuid, MessageRow> {
    let mut newest: HashMap<Uuid, MessageRow> = HashMap::new();
    for m in t.messages() {
        let e = newest.entry(m.message_group_uuid).or_insert_with(|| m.clone());
        if m.created_at > e.created_at {
            *e = m;
        }
    }
    newest
}

/// True when every group row sits on its conversation's newest message.
fn all_current(t: &TestTable) -> bool {
    let newest = newest_by_group(t);
    t.group_rows().iter().all(|g| newest.get(&g.message_group_uuid).is_some_and(|m| m.created_at == g.last_message_at && m.message == g.message))
}

fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

/// A worker's state folder, removed at the end of the test.
fn state_dir() -> TempDir {
    TempDir::new("stream-state")
}

#[test]
fn create_message_moves_both_group_rows() {
    let server = DynamoLocal::start();
    let (t, db) = seeded(&server, "sw", &[]);
    let dir = state_dir();
    let state = dir.join("state.json");
    let _worker = t.worker(&state);
    let out = t.run_db("create-message", &db, &[&COURSE_GROUP.to_string(), "bayko", "fresh off the stream"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // How fast is bench/stream's question (p99 lag); here only that they follow, with a watchdog.
    let took = wait_until(Duration::from_secs(120), || {
        let rows = t.group_rows();
        rows.len() == 2 && rows.iter().all(|g| g.message == "fresh off the stream")
    });
    assert!(took.is_some(), "group rows did not follow within 120 s: {:?}", t.group_rows());
    let newest = newest_by_group(&t);
    let rows = t.group_rows();
    assert_eq!(rows.len(), 2, "still exactly two group rows");
    assert!(rows.iter().all(|g| g.last_message_at == newest[&COURSE_GROUP].created_at));
}

/// 100 messages over 10 conversations in one burst, with the worker killed and restarted in the
/// middle: every group row ends on its conversation's newest message, none lost or doubled.
#[test]
fn bursts_across_groups_end_current_even_with_the_worker_killed_midway() {
    let server = DynamoLocal::start();
    let (t, db) = seeded(&server, "swburst", &["--messages", "10", "--groups", "10"]);
    let u = db.users(&COURSE_HANDLES);
    assert_eq!(t.group_rows().len(), 20);
    let dir = state_dir();
    let state = dir.join("state.json");
    let mut worker = t.worker(&state);
    let send = |range: std::ops::Range<u64>| {
        block_on(futures::future::join_all(range.map(|i| {
            let sender = if i % 2 == 0 { &u["bayko"] } else { &u["yaya2devops"] };
            let ddb = &t.ddb;
            async move { patterns::create_message(ddb, group_uuid(i % 10), sender, &format!("burst message {i}")).await.unwrap() }
        })));
    };
    send(0..50);
    std::thread::sleep(Duration::from_millis(300));
    worker.kill();
    send(50..100);
    let mut worker = t.worker(&state);
    assert!(wait_until(Duration::from_secs(30), || all_current(&t)).is_some(), "group rows not current: {:?}", t.group_rows());
    let rows = t.group_rows();
    assert_eq!(rows.len(), 20, "the number of group rows is unchanged");
    for k in 0..10u64 {
        let of_k: Vec<_> = rows.iter().filter(|g| g.message_group_uuid == group_uuid(k)).collect();
        assert_eq!(of_k.len(), 2);
        assert!(of_k.iter().all(|g| g.message.starts_with("burst message")), "{of_k:?}");
    }
    // The position was kept: a restart does not re-read the whole stream into new moves.
    worker.kill();
    let saved: serde_json::Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    assert!(saved["shards"].as_object().is_some_and(|s| s.values().any(|p| p["last"].is_string())), "{saved}");
}

fn record(seq: &str, kind: EventKind, m: &MessageRow) -> Record {
    Record { sequence_number: seq.into(), kind, new_image: Some(m.to_item()) }
}

#[test]
fn the_handler_is_idempotent_ignores_older_messages_and_removes() {
    let db = TestDb::create();
    let u = db.users(&COURSE_HANDLES);
    let t = TestTable::create(DynamoLocal::shared(), "shandler");
    let start = parse_ts("2026-02-01T10:00:00Z").unwrap();
    let g = block_on(patterns::create_message_group_at(&t.ddb, Uuid::new_v4(), &u["bayko"], &u["yaya2devops"], "first", start)).unwrap();
    let msg = |mins: i64, text: &str| MessageRow {
        created_at: start + time::Duration::minutes(mins),
        message: text.into(),
        message_uuid: Uuid::new_v4(),
        ..g.message.clone()
    };
    let (newer, older) = (msg(10, "newer"), msg(5, "older"));
    for m in [&newer, &older] {
        block_on(t.client().put_item().table_name(&t.name).set_item(Some(m.to_item())).send()).unwrap();
    }

    let batch = vec![record("1", EventKind::Insert, &newer)];
    let first = block_on(handle(&t.ddb, &batch));
    assert_eq!((first.moved, first.failed.len()), (2, 0));
    let after_first = t.snapshot();
    let rows = t.rows_of(g.uuid);
    assert!(rows.iter().all(|r| r.message == "newer" && format_ts(r.last_message_at) == format_ts(newer.created_at)));

    // The same batch again changes nothing.
    let again = block_on(handle(&t.ddb, &batch));
    assert_eq!((again.moved, again.failed.len()), (0, 0));
    assert_eq!(t.snapshot(), after_first);

    // An older message after a newer one is ignored; so are REMOVE and group-row records.
    let grp_record = Record { sequence_number: "4".into(), kind: EventKind::Modify, new_image: Some(rows[0].to_item()) };
    let late = vec![
        record("2", EventKind::Insert, &older),
        record("3", EventKind::Remove, &msg(20, "removed")),
        grp_record,
        Record { sequence_number: "5".into(), kind: EventKind::Remove, new_image: None },
    ];
    let out = block_on(handle(&t.ddb, &late));
    assert_eq!((out.moved, out.failed.len(), out.messages), (0, 0, 1));
    assert_eq!(t.snapshot(), after_first);

    // Several messages of one conversation in a batch: the group rows end on the newest.
    let (a, b) = (msg(30, "thirty"), msg(40, "forty"));
    for m in [&a, &b] {
        block_on(t.client().put_item().table_name(&t.name).set_item(Some(m.to_item())).send()).unwrap();
    }
    let out = block_on(handle(&t.ddb, &[record("6", EventKind::Insert, &b), record("7", EventKind::Insert, &a)]));
    assert_eq!(out.moved, 2);
    let rows = t.rows_of(g.uuid);
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r.message == "forty"));

    // A batch that cannot be applied (the table is gone) reports its records as failed.
    let missing = TestTable::missing(DynamoLocal::shared());
    let out = block_on(handle(&missing.ddb, &[record("8", EventKind::Insert, &msg(50, "x"))]));
    assert_eq!(out.failed, ["8"]);
    assert!(out.errors[0].contains("does not exist"), "{:?}", out.errors);
}

#[test]
fn the_worker_refuses_a_table_without_a_stream_and_a_missing_table() {
    let t = TestTable::missing(DynamoLocal::shared());
    let dir = state_dir();
    let out = t.cmd("stream-worker").args(["--state"]).arg(dir.join("state.json")).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("does not exist") && stderr(&out).contains("schema-load"), "{}", stderr(&out));
    // A table made without a stream (not by schema-load).
    let name = table_name("nostream");
    let ddb = DynamoLocal::shared().ddb(&name);
    let pk = AttributeDefinition::builder().attribute_name("pk").attribute_type(ScalarAttributeType::S).build().unwrap();
    let key = KeySchemaElement::builder().attribute_name("pk").key_type(KeyType::Hash).build().unwrap();
    let create = ddb.client.create_table().table_name(&name).attribute_definitions(pk).key_schema(key).billing_mode(BillingMode::PayPerRequest);
    block_on(create.send()).unwrap();
    let out = clean_cmd("stream-worker")
        .env("AWS_ENDPOINT_URL", &DynamoLocal::shared().endpoint)
        .args(["--table", &name, "--state"])
        .arg(dir.join("other.json"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("has no stream"), "{}", stderr(&out));
    let _ = block_on(ddb.client.delete_table().table_name(&name).send());
}

#[test]
fn the_worker_stops_cleanly_on_sigterm_and_saves_its_position() {
    let server = DynamoLocal::start();
    let (t, _db) = seeded(&server, "swterm", &[]);
    let dir = state_dir();
    let state = dir.join("state.json");
    let child =
        t.cmd("stream-worker").args(["--state"]).arg(&state).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    assert!(wait_until(Duration::from_secs(120), || state.exists()).is_some(), "no state file written");
    let _ = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    // 26 rows, and the seed lock's put and delete, and its renewals (one every 3 s: none, unless
    // the machine is slow).
    let err = stderr(&out);
    let records: Option<u64> = err.split("stream-worker: stopped after ").nth(1).and_then(|r| r.split(' ').next()).and_then(|n| n.parse().ok());
    assert!(records.is_some_and(|n| n >= 28), "{err}");
}

/// How many lines of the worker's log at `log` say that it waits for its server.
fn retry_lines(log: &std::path::Path) -> usize {
    std::fs::read_to_string(log).unwrap_or_default().lines().filter(|l| l.contains("trying again in 2 s")).count()
}

/// Issue 20: README said that a server that does not answer is retried with a line each time,
/// but a plain `stream-worker` (without --wait-for-table) exited 1 when DynamoDB Local was killed.
/// Now a worker that has found its stream waits for its server, a line each time, and goes on
/// when the server is back (on disk, so that it keeps the table); Ctrl-C (here SIGTERM) stops it
/// while it waits.
#[test]
fn a_plain_worker_rides_out_a_restart_of_its_server() {
    let data = TempDir::new("worker-restart-data");
    let port = free_port();
    let mut server = DynamoLocal::start_at(port, Some(data.path()));
    let (t, db) = seeded(&server, "swrestart", &[]);
    let dir = state_dir();
    let (state, log) = (dir.join("state.json"), dir.join("worker.log"));
    let child = t.worker_logged(Some(&state), &log).arg("--quiet").spawn().unwrap();
    let mut worker = Guarded::new(child);
    let alive = |worker: &mut Guarded, what: &str| {
        let status = worker.0.try_wait().unwrap();
        assert!(status.is_none(), "the worker stopped ({status:?}) {what}: {}", std::fs::read_to_string(&log).unwrap_or_default());
    };
    let follows = |text: &str| {
        let out = t.run_db("create-message", &db, &[&COURSE_GROUP.to_string(), "bayko", text]);
        assert!(out.status.success(), "{}", stderr(&out));
        wait_until(Duration::from_secs(120), || t.group_rows().iter().all(|g| g.message == text)).is_some()
    };
    assert!(follows("before the restart"), "group rows did not follow within 120 s: {:?}", t.group_rows());

    server.kill();
    // Each try is a line; two of them show that it goes on trying.
    let waited = wait_until(Duration::from_secs(120), || retry_lines(&log) >= 2 || worker.0.try_wait().unwrap().is_some());
    alive(&mut worker, "while its server was down");
    assert!(waited.is_some(), "no two lines about the server within 120 s: {}", std::fs::read_to_string(&log).unwrap());
    let text = std::fs::read_to_string(&log).unwrap();
    let line = text.lines().find(|l| l.contains("trying again in 2 s")).unwrap();
    assert!(line.starts_with("stream-worker: cannot reach DynamoDB") && line.contains(&format!("127.0.0.1:{port}")), "{line}");

    server = DynamoLocal::start_at(port, Some(data.path()));
    assert!(follows("after the restart"), "group rows did not follow the restarted server within 120 s: {:?}", t.group_rows());
    alive(&mut worker, "after its server came back");
    assert_eq!(t.group_rows().len(), 2, "{:?}", t.group_rows());

    // Stopped while it waits for a server that is gone again.
    server.kill();
    let before = retry_lines(&log);
    assert!(wait_until(Duration::from_secs(120), || retry_lines(&log) > before).is_some(), "no line about the server within 120 s");
    let _ = std::process::Command::new("kill").args(["-TERM", &worker.0.id().to_string()]).status();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = worker.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the worker did not stop within 60 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "{status:?}: {text}");
    assert!(text.lines().last().is_some_and(|l| l.starts_with("stream-worker: stopped after ")), "{text}");
}
