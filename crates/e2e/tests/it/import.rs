//! bin/ddb/import: scan's two formats back into a table (a round trip of every attribute type),
//! bad lines (each named FILE:LINE, nothing written), a stream-enabled table with the worker
//! running (every conversation ends consistent), and prod's confirmation.

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use ddb_core::item_json::{item_to_json, ItemFormat};
use ddb_core::records::{Item, MessageGroupRow, MessageRow};
use ddb_core::write::put;
use e2e::*;
use std::collections::HashMap;
use std::io::Write;
use std::process::{Output, Stdio};
use uuid::Uuid;

fn av_s(s: &str) -> AttributeValue {
    AttributeValue::S(s.to_string())
}

/// Items of every attribute type, nested, with unicode, and one near DynamoDB's 400 KB.
fn every_type() -> Vec<Item> {
    let key = |pk: &str, sk: &str| Item::from([("pk".to_string(), av_s(pk)), ("sk".to_string(), av_s(sk))]);
    let mut all = key("TYPES#1", "every type");
    let nested = AttributeValue::M(HashMap::from([
        ("list".to_string(), AttributeValue::L(vec![av_s("ü"), AttributeValue::N("-0.5".into()), AttributeValue::Null(true)])),
        ("deeper".to_string(), AttributeValue::M(HashMap::from([("bytes".to_string(), AttributeValue::B(Blob::new(vec![0, 255, 10])))]))),
    ]));
    for (name, v) in [
        ("s", av_s("plain text")),
        ("unicode", av_s("héllo 世界 🎉 \u{202e}rtl\u{202c} tab\there")),
        ("n", AttributeValue::N("42".into())),
        ("n_frac", AttributeValue::N("1.50".into())),
        ("n_big", AttributeValue::N("123456789012345678901234567890".into())),
        ("n_neg", AttributeValue::N("-3.25E-10".into())),
        ("b", AttributeValue::B(Blob::new(b"\x00\x01binary\xff".to_vec()))),
        ("t", AttributeValue::Bool(true)),
        ("f", AttributeValue::Bool(false)),
        ("z", AttributeValue::Null(true)),
        ("ss", AttributeValue::Ss(vec!["a".into(), "β".into()])),
        ("ns", AttributeValue::Ns(vec!["1".into(), "2.5".into()])),
        ("bs", AttributeValue::Bs(vec![Blob::new(b"x".to_vec()), Blob::new(b"y".to_vec())])),
        ("l", AttributeValue::L(vec![av_s("one"), AttributeValue::L(vec![]), nested.clone()])),
        ("m", nested),
        ("empty_m", AttributeValue::M(HashMap::new())),
    ] {
        all.insert(name.to_string(), v);
    }
    let mut big = key("TYPES#2", "near 400 KB");
    big.insert("text".into(), av_s(&"é".repeat(197 * 1024)));
    vec![all, big, key("TYPES#3", "ключ 🔑")]
}

fn import(t: &TestTable, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut c = t.cmd("import");
    c.args(args).arg("--quiet").stdout(Stdio::piped()).stderr(Stdio::piped());
    c.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    let mut child = c.spawn().expect("spawn import");
    if let Some(bytes) = stdin {
        child.stdin.take().unwrap().write_all(bytes).unwrap();
    }
    child.wait_with_output().unwrap()
}

/// Scan's lines of the table in `format`, sorted.
fn scanned(t: &TestTable, format: &str) -> Vec<String> {
    let out = t.run("scan", &["--output", format]);
    assert!(out.status.success(), "scan: {}", stderr(&out));
    let mut lines: Vec<String> = stdout(&out).lines().map(str::to_string).collect();
    lines.sort();
    lines
}

/// scan -> drop -> schema-load -> import -> scan, in `format`, the lines through a file or
/// standard input: the same lines, sorted.
fn round_trip(t: &TestTable, dir: &TempDir, format: &str, stdin: bool) {
    let before = scanned(t, format);
    assert_eq!(before.len(), 60 + 6 + 3);
    let file = dir.join(&format!("{format}.jsonl"));
    std::fs::write(&file, before.join("\n") + "\n").unwrap();
    let dropped = t.run("drop", &[&t.name]);
    assert!(dropped.status.success(), "{}", stderr(&dropped));
    assert!(t.run("schema-load", &[]).status.success());
    let out = match stdin {
        false => import(t, &[file.to_str().unwrap(), "--json"], None),
        true => import(t, &["-", "--json"], Some(&std::fs::read(&file).unwrap())),
    };
    assert!(out.status.success(), "import {format}: {}", stderr(&out));
    let figures: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    let counts = (figures["items"].as_u64(), figures["group_rows"].as_u64(), figures["conversations"].as_u64());
    assert_eq!(counts, (Some(63), Some(6), Some(3)), "{figures}");
    assert_eq!(figures["format"], format, "told from the first line");
    assert_eq!(figures["source"], if stdin { "-".to_string() } else { file.display().to_string() });
    assert_eq!(scanned(t, format), before, "{format}: the items after the round trip");
}

#[test]
fn a_scan_dropped_and_imported_comes_back_item_for_item_in_both_formats() {
    let (t, _db) = seeded(DynamoLocal::shared(), "import", &["--messages", "60", "--groups", "3"]);
    assert_eq!(t.write(every_type().into_iter().map(put)), 3);
    let typed_before = t.snapshot();
    let dir = TempDir::new("import");
    round_trip(&t, &dir, "dynamodb-json", false);
    assert_eq!(t.snapshot(), typed_before, "typed JSON is lossless: every attribute of every type as it was");
    round_trip(&t, &dir, "dynamodb-json", true);
    assert_eq!(t.snapshot(), typed_before);
    // Plain JSON gives back what it shows (a set comes back a list, a binary its base64 text).
    round_trip(&t, &dir, "json", false);
}

#[test]
fn bad_lines_are_named_by_file_and_line_and_nothing_is_written() {
    let t = TestTable::create(DynamoLocal::shared(), "importbad");
    let dir = TempDir::new("importbad");
    let good = r#"{"pk":{"S":"A"},"sk":{"S":"1"}}"#;
    let huge = format!(r#"{{"pk":{{"S":"A"}},"sk":{{"S":"2"}},"x":{{"S":"{}"}}}}"#, "x".repeat(401 * 1024));
    let lines = [
        good.to_string(),
        "{not json".to_string(),
        r#"{"pk":{"S":"A"},"sk":{"S":"3"},"x":{"SX":"1"}}"#.to_string(),
        r#"{"sk":{"S":"4"}}"#.to_string(),
        r#"{"pk":{"S":"A"}}"#.to_string(),
        huge,
        r#"{"id":{"S":"5"},"name":{"S":"a user"}}"#.to_string(),
        r#"{"pk":{"N":"6"},"sk":{"S":"6"}}"#.to_string(),
        good.to_string(),
    ];
    let file = dir.join("bad.jsonl");
    std::fs::write(&file, lines.join("\n")).unwrap();
    let f = file.display().to_string();
    let expected = [
        format!("error: {f}:2: not JSON"),
        format!("error: {f}:3: attribute \"x\": unknown type tag \"SX\""),
        format!("error: {f}:4: no pk attribute"),
        format!("error: {f}:5: no sk attribute"),
        format!("error: {f}:6: the item is "),
        format!("error: {f}:7: no pk attribute: not an item of this table (its keys are pk and sk; this one has id, name)"),
        format!("error: {f}:8: pk is not of type S"),
        format!("error: 7 bad line(s) in {f}; nothing was written"),
    ];
    for (args, stdin, name) in [(vec![f.as_str()], None, f.clone()), (vec!["-"], Some(lines.join("\n").into_bytes()), "-".to_string())] {
        let out = import(&t, &args, stdin.as_deref());
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        let err = stderr(&out);
        let said: Vec<&str> = err.lines().collect();
        assert_eq!(said.len(), expected.len(), "{err}");
        for (line, want) in said.iter().zip(&expected) {
            let want = want.replace(&f, &name);
            assert!(line.starts_with(&want), "expected {want:?}, got {line:?}");
        }
        assert_eq!(t.count(), 0, "a bad line, and nothing is written");
    }
    // The file mended: every line goes in.
    std::fs::write(&file, format!("{good}\n\n{}\n", good.replace("\"1\"", "\"2\""))).unwrap();
    let out = import(&t, &[&f], None);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(t.count(), 2);
}

/// A conversation of `members`, `n` messages a second apart from an hour ago plus `offset_ms`
/// (two conversations' rows of one member never share a key), its group rows on the message
/// `rows_on` (the newest, or an older one: a backup taken while the stream lagged).
fn conversation(members: [Uuid; 2], n: usize, rows_on: usize, offset_ms: i64) -> (Vec<MessageRow>, Vec<MessageGroupRow>) {
    let group = Uuid::new_v4();
    let start = time::OffsetDateTime::now_utc().replace_nanosecond(0).unwrap() - time::Duration::hours(1) + time::Duration::milliseconds(offset_ms);
    let messages: Vec<MessageRow> = (0..n)
        .map(|i| MessageRow {
            message_group_uuid: group,
            created_at: start + time::Duration::seconds(i as i64),
            message_uuid: Uuid::new_v4(),
            message: format!("message {i} of {group}"),
            user_uuid: members[i % 2],
            user_display_name: format!("User {}", i % 2),
            user_handle: format!("user{}", i % 2),
        })
        .collect();
    let m = &messages[rows_on];
    let rows = (0..2)
        .map(|k| MessageGroupRow {
            owner_uuid: members[k],
            last_message_at: m.created_at,
            message_group_uuid: group,
            message: m.message.clone(),
            user_uuid: members[1 - k],
            user_display_name: format!("User {}", 1 - k),
            user_handle: format!("user{}", 1 - k),
        })
        .collect();
    (messages, rows)
}

/// Every conversation of the file arrived, and `bin/ddb/check` finds the table consistent: one
/// group row per member, each on its conversation's newest message, nothing else amiss.
fn assert_consistent(t: &TestTable, conversations: usize) {
    let (rows, messages) = split(&t.items());
    let groups: std::collections::HashSet<Uuid> = messages.iter().map(|m| m.message_group_uuid).collect();
    assert_eq!(groups.len(), conversations, "conversations with messages");
    assert_eq!(rows.len(), 2 * conversations, "one group row per member: {rows:?}");
    crate::check::assert_clean(t, "after the import");
}

#[test]
fn into_a_stream_table_with_the_worker_running_every_conversation_ends_consistent() {
    let (t, _server) = TestTable::on_own_server("importstream");
    let dir = TempDir::new("importstream");
    let _worker = t.worker(&dir.join("worker.json"));
    let members = [Uuid::new_v4(), Uuid::new_v4()];
    let mut lines = Vec::new();
    for k in 0..8i64 {
        // Half of the conversations were backed up with their rows behind the newest message.
        let (messages, rows) = conversation(members, 30, if k % 2 == 0 { 29 } else { 10 }, k);
        lines.extend(messages.iter().map(|m| item_to_json(&m.to_item(), ItemFormat::DynamodbJson).to_string()));
        lines.extend(rows.iter().map(|r| item_to_json(&r.to_item(), ItemFormat::DynamodbJson).to_string()));
    }
    // Any order: the messages, their group rows and the worker's moves interleave.
    fastrand::seed(24);
    fastrand::shuffle(&mut lines);
    let file = dir.join("conversations.jsonl");
    std::fs::write(&file, lines.join("\n")).unwrap();
    let out = import(&t, &[file.to_str().unwrap(), "--concurrency", "4"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("8 conversation(s) settled"), "{}", stdout(&out));
    assert_consistent(&t, 8);
    // A second run (a restore run twice) changes nothing and leaves no duplicate.
    let out = import(&t, &[file.to_str().unwrap()], None);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("16 group rows already there kept"), "{}", stdout(&out));
    assert_consistent(&t, 8);
}

#[test]
fn into_aws_it_asks_first_and_without_a_terminal_writes_nothing() {
    let dir = TempDir::new("importprod");
    let file = dir.join("items.jsonl");
    std::fs::write(&file, r#"{"pk":{"S":"A"},"sk":{"S":"1"}}"#).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let trap = format!("http://{}", listener.local_addr().unwrap());
    let prod = |args: &[&str], stdin: Stdio| {
        clean_cmd("import")
            .args(args)
            .env("AWS_ENDPOINT_URL", &trap)
            .env("AWS_ACCESS_KEY_ID", "x")
            .env("AWS_SECRET_ACCESS_KEY", "y")
            .env("AWS_REGION", "us-east-1")
            .stdin(stdin)
            .output()
            .unwrap()
    };
    let f = file.to_str().unwrap();
    for out in [prod(&[f, "prod"], Stdio::null()), prod(&["-", "prod"], Stdio::from(std::fs::File::open(&file).unwrap()))] {
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert!(stderr(&out).contains("not importing into cruddur-messages in AWS: pass --yes"), "{}", stderr(&out));
    }
    assert!(listener.accept().is_err(), "import prod sent a request without confirmation");
    // `prod` with --endpoint-url goes to that endpoint, not AWS: nothing to confirm.
    let t = TestTable::create(DynamoLocal::shared(), "importprod");
    let out = clean_cmd("import").args([f, "prod", "--endpoint-url", &t.endpoint, "--table", &t.name]).stdin(Stdio::null()).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(t.count(), 1);
}

/// A source that can be read only once (a pipe as `/dev/stdin` or `<(...)`, a FIFO) is spooled
/// as standard input is, then checked and written; before, it was read twice and the second
/// read found nothing ("imported 0 items", exit 0), and a FIFO hung on its second open. A device
/// (`/dev/zero`, which never ends) and a directory are refused at once.
#[test]
fn sources_read_once_are_spooled_and_devices_refused() {
    let t = TestTable::create(DynamoLocal::shared(), "importonce");
    let dir = TempDir::new("importonce");
    let lines: String = (1..=3).map(|i| format!("{{\"pk\":{{\"S\":\"X#{i}\"}},\"sk\":{{\"S\":\"a\"}}}}\n")).collect();
    let out = import(&t, &["/dev/stdin"], Some(lines.as_bytes()));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(t.count(), 3, "a pipe named /dev/stdin: {}", stdout(&out));
    let fifo = dir.join("items.fifo");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let writer = {
        let (fifo, lines) = (fifo.clone(), lines.replace("X#", "Y#"));
        std::thread::spawn(move || std::fs::write(&fifo, lines).unwrap())
    };
    let out = run_watched(t.cmd("import").arg(&fifo).arg("--quiet").stdin(Stdio::null()), std::time::Duration::from_secs(120));
    writer.join().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(t.count(), 6, "a FIFO: {}", stdout(&out));
    for (path, what) in [("/dev/zero", "is a device, not a file of items"), (dir.path().to_str().unwrap(), "is a directory, not a file of items")] {
        let out = run_watched(t.cmd("import").arg(path).stdin(Stdio::null()), std::time::Duration::from_secs(60));
        assert_eq!(out.status.code(), Some(1), "{path}: {}", stderr(&out));
        assert!(stderr(&out).contains(what), "{path}: {}", stderr(&out));
    }
    assert_eq!(t.count(), 6);
}
