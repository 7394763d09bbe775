//! Faults found at the edges (issue 20) in the seed, pattern C and pattern E: a re-seed never
//! leaves group rows on a message it deleted, a message near the item limit never stops pattern
//! E, the seed's clock stays within what its keys order, Ctrl-C stops a seed cleanly, and
//! create-message takes the text rules of the seed.

use ddb_core::pg::User;
use ddb_core::records::{format_ts, MessageGroupRow, MessageRow, MAX_ITEM_BYTES};
use ddb_core::seed::{COURSE_GROUP, FILLER_MESSAGE, SEED_LOCK};
use ddb_core::stream::{handle, EventKind, Record};
use e2e::fault::FaultProxy;
use e2e::*;
use std::collections::HashMap;
use std::io::Write;
use std::process::Stdio;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// The rule every writer keeps: one group row per member, each on the newest message that exists
/// (its time and text), or, as the seed leaves them, ahead of every message with the filler text.
fn rows_on_newest_message(t: &TestTable, group: Uuid) -> Result<(), String> {
    let rows: Vec<MessageGroupRow> = t.rows_of(group);
    let newest = t.messages().into_iter().filter(|m| m.message_group_uuid == group).max_by_key(|m| m.created_at);
    let mut owners: Vec<Uuid> = rows.iter().map(|r| r.owner_uuid).collect();
    owners.sort();
    owners.dedup();
    if owners.len() != rows.len() || rows.len() != 2 {
        return Err(format!("not one row per member: {rows:?}"));
    }
    for r in &rows {
        let ok = match &newest {
            Some(m) => r.is_on(m) || (r.last_message_at > m.created_at && r.message == FILLER_MESSAGE),
            None => r.message == FILLER_MESSAGE,
        };
        if !ok {
            return Err(format!(
                "row {} is not on the newest message that exists ({:?}): {r:?}",
                format_ts(r.last_message_at),
                newest.map(|m| format_ts(m.created_at))
            ));
        }
    }
    Ok(())
}

fn wait_for(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ok() {
        assert!(Instant::now() < deadline, "{what} did not happen within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A stream worker of the test's own, stopped when dropped (then its state folder goes).
fn worker(t: &TestTable) -> (Guarded, TempDir) {
    let dir = TempDir::new("edges-worker");
    (t.worker(&dir.join("state.json")), dir)
}

fn create_message(t: &TestTable, db: &TestDb, group: Uuid, handle: &str, text: &str) -> std::process::Output {
    t.run_db("create-message", db, &[&group.to_string(), handle, text])
}

/// Fault 6. The seed's clock is taken, then a message is written and the worker moves the rows
/// onto it, then the seed clears that message: the rows must not stay on it. And when the
/// worker reads that message's INSERT only after the seed (it was stopped), it must not move
/// the rows onto the deleted message either.
#[test]
fn a_reseed_never_leaves_group_rows_on_a_message_it_deleted() {
    let server = DynamoLocal::start();
    let (t, db) = seeded(&server, "ghost", &[]);
    let proxy = FaultProxy::start(&t.endpoint);
    proxy.faults.only(&["PutItem"]);
    for worker_during_the_seed in [true, false] {
        let w = worker_during_the_seed.then(|| worker(&t));
        // The seed's first PutItem is its lock: held until a message newer than its clock exists.
        proxy.faults.hold(1);
        let seed = t.seed_cmd(&db, &[]).env("AWS_ENDPOINT_URL", &proxy.endpoint).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
        wait_for("the seed's lock request", Duration::from_secs(60), || proxy.faults.held.load(Relaxed) > 0);
        let out = create_message(&t, &db, COURSE_GROUP, "bayko", "written while the seed waits");
        assert!(out.status.success(), "{}", stderr(&out));
        if worker_during_the_seed {
            wait_for("the worker's move", Duration::from_secs(60), || {
                t.rows_of(COURSE_GROUP).iter().all(|r| r.message == "written while the seed waits")
            });
        }
        proxy.faults.open_gate();
        let out = wait_watched(seed, Duration::from_secs(120), "seed");
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(!t.messages().iter().any(|m| m.message == "written while the seed waits"), "the seed clears its conversation's messages");
        drop(w);
        // The worker reads the whole stream again: the deleted message's INSERT included.
        let w = worker(&t);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Err(e) = rows_on_newest_message(&t, COURSE_GROUP) {
                panic!("worker during the seed: {worker_during_the_seed}: {e}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        drop(w);
        proxy.faults.held.store(0, Relaxed);
    }
}

/// Fault 3. A message as large as DynamoDB takes for a message row: its group rows carry a few
/// more bytes, so they get a preview of the text that fits, and the worker moves them at once
/// instead of retrying an item that is too large for ever.
#[test]
fn a_message_near_the_item_limit_moves_its_group_rows() {
    let db = TestDb::create();
    let (t, _server) = TestTable::on_own_server("bigmsg");
    let out = t.run_db("create-conversation", &db, &["bayko", "yaya2devops", "hello"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let group = Uuid::parse_str(stdout(&out).trim()).unwrap();
    let _w = worker(&t);
    // The largest text whose message row fits: the issue's 409,379 characters.
    let overhead = ddb_core::records::item_size(&MessageRow { message: String::new(), ..t.messages()[0].clone() }.to_item());
    let text = "x".repeat(MAX_ITEM_BYTES - overhead);
    let mut c = t.cmd_db("create-message", &db);
    c.args([&group.to_string(), "bayko", "-"]).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    wait_for("the move of both group rows", Duration::from_secs(60), || t.rows_of(group).iter().all(|r| r.message.len() > 1_000));
    for r in t.rows_of(group) {
        let size = ddb_core::records::item_size(&r.to_item());
        assert!(size <= MAX_ITEM_BYTES && r.message.len() < text.len() && text.starts_with(&r.message), "{size} bytes");
        assert!(r.is_on(t.messages().iter().max_by_key(|m| m.created_at).unwrap()));
    }
}

/// Fault 3, the general rule: a record that cannot succeed (a malformed message row) is skipped
/// with its keys, never reported for another delivery, and the good records of the batch apply.
#[test]
fn a_poison_record_is_skipped_and_the_rest_of_the_batch_applies() {
    let db = TestDb::create();
    let u: HashMap<String, User> = db.users(&COURSE_HANDLES);
    let t = TestTable::create(DynamoLocal::shared(), "poison");
    let g = block_on(ddb_core::patterns::create_message_group(&t.ddb, &u["bayko"], &u["yaya2devops"], "first")).unwrap();
    let good = block_on(ddb_core::patterns::create_message(&t.ddb, g.uuid, &u["yaya2devops"], "second")).unwrap();
    let mut bad = good.to_item();
    bad.insert("sk".into(), aws_sdk_dynamodb::types::AttributeValue::S(format_ts(good.created_at + time::Duration::seconds(1))));
    bad.insert("message".into(), aws_sdk_dynamodb::types::AttributeValue::N("42".into()));
    let records = [
        Record { sequence_number: "1".into(), kind: EventKind::Insert, new_image: Some(bad) },
        Record { sequence_number: "2".into(), kind: EventKind::Insert, new_image: Some(good.to_item()) },
    ];
    let out = block_on(handle(&t.ddb, &records));
    assert!(out.failed.is_empty(), "{out:?}");
    assert_eq!((out.moved, out.messages, out.skipped.len()), (2, 1, 1), "{out:?}");
    assert_eq!(out.skipped[0].sequence_number, "1");
    assert!(
        out.skipped[0].keys.contains(&format!("MSG#{}", g.uuid)) && out.skipped[0].reason.contains("message is not a string"),
        "{:?}",
        out.skipped
    );
    assert!(t.rows_of(g.uuid).iter().all(|r| r.is_on(&good)));
}

/// Fault 11: clocks whose keys would not sort, or whose group rows no later message could pass.
#[test]
fn the_seed_refuses_clocks_outside_what_its_keys_order() {
    let db = TestDb::create();
    let t = TestTable::create(DynamoLocal::shared(), "clock");
    for bad in ["0000-01-01T00:00:30Z", "9999-12-31T00:00:00Z", "-0001-06-01T00:00:00Z"] {
        let out = t.seed(&db, &[&format!("--now={bad}")]);
        assert_eq!(out.status.code(), Some(2), "{bad}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.starts_with("error: ") && !err.contains("panicked"), "{bad}: {err}");
        assert!(err.contains("four-digit year") || err.contains("RFC 3339"), "{bad}: {err}");
    }
    assert_eq!(t.count(), 0, "nothing written");
    let out = t.seed(&db, &["--now", "0001-01-02T00:00:00Z"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(t.messages().iter().all(|m| format_ts(m.created_at).starts_with("0001-01-01")));
}

/// Ctrl-C on a seed: it stops writing, gives the lock back, says how far it got and that a re-run
/// completes, and exits 130; the re-run leaves exactly the expected items.
#[test]
fn ctrl_c_stops_a_seed_cleanly_and_a_rerun_completes() {
    let db = TestDb::create();
    let (t, _server) = TestTable::on_own_server("ctrlc");
    let child = t.seed_cmd(&db, &["--messages", "30000"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    wait_for("the first messages", Duration::from_secs(120), || t.count() > 2);
    let pid = child.id().to_string();
    assert!(std::process::Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    let out = wait_watched(child, Duration::from_secs(60), "seed");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted; the seed stopped while writing") && err.contains("run it again"), "{err}");
    assert!(block_on(SEED_LOCK.holder(&t.ddb)).unwrap().is_none(), "the lock was given back");
    assert!(t.count() < 30_002, "stopped before the end");
    let out = t.seed(&db, &["--messages", "30000"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(t.count(), 30_002);
}

/// create-message takes the seed's text rules: no blank message, no control character; `-`
/// reads the text from standard input (one trailing newline is not part of it).
#[test]
fn create_message_refuses_blank_text_and_control_characters() {
    let db = TestDb::create();
    let t = TestTable::create(DynamoLocal::shared(), "cmtext");
    let out = t.run_db("create-conversation", &db, &["bayko", "yaya2devops", "hello"]);
    let group = stdout(&out).trim().to_string();
    for bad in ["   ", "\t", "clear \x1b[2J", "bell \x07", "cr \r", "two\nlines", "osc \x1b]52;c;aGk=\x07"] {
        let out = t.run_db("create-message", &db, &[&group, "bayko", bad]);
        assert_eq!(out.status.code(), Some(1), "{bad:?}");
        let err = stderr(&out);
        assert!(err.contains("nothing was written") && (err.contains("empty") || err.contains("control character")), "{bad:?}: {err}");
        assert!(!err.bytes().any(|b| b == 0x1b || b == 0x07 || b == b'\r'), "{bad:?}: the error echoes no control byte: {err:?}");
    }
    assert_eq!(t.messages().len(), 1, "only the first message");
    let mut c = t.cmd_db("create-message", &db);
    c.args([&group, "bayko", "-"]).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    child.stdin.take().unwrap().write_all("from stdin, tab\there\n".as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(t.messages().iter().any(|m| m.message == "from stdin, tab\there"));
}

/// `seed --conversation -` reads the conversation from standard input, as create-message's `-`.
#[test]
fn the_seed_reads_a_conversation_from_standard_input() {
    let db = TestDb::create();
    let t = TestTable::create(DynamoLocal::shared(), "stdin");
    let mut c = t.seed_cmd(&db, &["--conversation", "-"]);
    c.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    child.stdin.take().unwrap().write_all(b"Yaya2DevOps: from a pipe\nFan: indeed\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let mut texts: Vec<String> = t.messages().into_iter().map(|m| m.message).collect();
    texts.sort();
    assert_eq!(texts, ["from a pipe", "indeed"]);
    let mut c = t.seed_cmd(&db, &["--conversation", "-"]);
    c.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    child.stdin.take().unwrap().write_all(b"Nobody: hi\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("standard input:1: unknown speaker"), "{}", stderr(&out));
}
