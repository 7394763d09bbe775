use ddb_core::records::parse_ts;
use ddb_core::seed::COURSE_GROUP;
use e2e::*;
use std::collections::HashSet;
use std::process::Stdio;
use std::time::{Duration, Instant};

fn write_file(name: &str, bytes: &[u8]) -> tempfile_path::Path {
    tempfile_path::Path::new(name, bytes)
}

/// A file removed when the test ends.
mod tempfile_path {
    pub struct Path(pub std::path::PathBuf);
    impl Path {
        pub fn new(name: &str, bytes: &[u8]) -> Self {
            let p = std::env::temp_dir().join(format!("{}-{name}", uuid::Uuid::new_v4().simple()));
            std::fs::write(&p, bytes).unwrap();
            Path(p)
        }
        pub fn arg(&self) -> &str {
            self.0.to_str().unwrap()
        }
    }
    impl Drop for Path {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

#[test]
fn seed_writes_the_course_conversation_as_spec_says() {
    let db = TestDb::create();
    let t = TestTable::create(DynamoLocal::shared(), "seed");
    let out = t.seed(&db, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let last = stdout(&out).lines().last().unwrap().to_string();
    assert!(last.contains("26 items written") && last.contains("items/s"), "{last}");

    let items = t.items();
    assert_eq!(items.len(), 26);
    let (groups, mut msgs) = split(&items);
    assert_eq!((groups.len(), msgs.len()), (2, 24));

    // Every attribute is a string, named as SPEC.md says.
    let msg_attrs: HashSet<&str> = ["pk", "sk", "message_uuid", "message", "user_uuid", "user_display_name", "user_handle"].into();
    let grp_attrs: HashSet<&str> = ["pk", "sk", "message_group_uuid", "message", "user_uuid", "user_display_name", "user_handle"].into();
    for item in &items {
        let names: HashSet<&str> = item.keys().map(String::as_str).collect();
        let want = if s(item, "pk").starts_with("MSG#") { &msg_attrs } else { &grp_attrs };
        assert_eq!(&names, want);
        assert!(item.values().all(|v| v.is_s()));
        // sk: RFC 3339 with an explicit offset and microseconds.
        let sk = s(item, "sk");
        assert!(parse_ts(sk).is_ok() && sk.ends_with("+00:00") && sk.len() == 32, "{sk}");
    }

    // The two users come from Postgres.
    let users = db.users(&COURSE_HANDLES);
    let (yaya, bayko) = (&users["yaya2devops"], &users["bayko"]);

    // The group rows mirror each other, each naming the OTHER user.
    let by_owner = |u: uuid::Uuid| groups.iter().find(|g| g.owner_uuid == u).unwrap();
    let (gy, gb) = (by_owner(yaya.uuid), by_owner(bayko.uuid));
    assert_eq!((gy.user_uuid, gy.user_handle.as_str(), gy.user_display_name.as_str()), (bayko.uuid, "bayko", "Andrew Bayko"));
    assert_eq!((gb.user_uuid, gb.user_handle.as_str(), gb.user_display_name.as_str()), (yaya.uuid, "yaya2devops", "Yahya Abulhaj"));
    for g in [gy, gb] {
        assert_eq!(g.message_group_uuid, COURSE_GROUP);
        assert_eq!(g.message, "this is a filler message");
    }
    assert_eq!(gy.last_message_at, gb.last_message_at);

    // Messages: sk order is time order; now - 1 day + i minutes; the course's lines and speakers.
    msgs.sort_by_key(|m| ddb_core::records::format_ts(m.created_at));
    let conv: Vec<&str> = ddb_core::seed::COURSE_CONVERSATION.lines().collect();
    let start = gy.last_message_at - time::Duration::days(1);
    for (i, m) in msgs.iter().enumerate() {
        assert_eq!(m.message_group_uuid, COURSE_GROUP);
        assert_eq!(m.created_at, start + time::Duration::minutes(i as i64));
        let (speaker, text) = conv[i].split_once(": ").unwrap();
        assert_eq!(m.message, text);
        let want = if speaker == "Yaya2DevOps" { yaya } else { bayko };
        assert_eq!(
            (m.user_uuid, m.user_handle.as_str(), m.user_display_name.as_str()),
            (want.uuid, want.handle.as_str(), want.display_name.as_str())
        );
    }
    // The course's Fan: lines are there (its own parser crashed on them).
    assert!(msgs.iter().any(|m| m.message.starts_with("Yes, truth ! I love it.")));
}

#[test]
fn seed_twice_leaves_one_copy() {
    let db = TestDb::create();
    let t = TestTable::create(DynamoLocal::shared(), "twice");
    assert!(t.seed(&db, &[]).status.success());
    let first = t.items();
    let again = t.seed(&db, &[]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(stdout(&again).contains("replaced the earlier seed (26 items)"), "{}", stdout(&again));
    let items = t.items();
    assert_eq!(items.len(), first.len());
    let (groups, msgs) = split(&items);
    assert_eq!((groups.len(), msgs.len()), (2, 24));
    let uuids: HashSet<_> = msgs.iter().map(|m| m.message_uuid).collect();
    let sks: HashSet<_> = msgs.iter().map(|m| m.created_at).collect();
    assert_eq!((uuids.len(), sks.len()), (24, 24));
}

#[test]
fn custom_conversation_and_speakers() {
    let db = TestDb::with_user("Londo Mollari", "londo");
    let t = TestTable::create(DynamoLocal::shared(), "custom");
    let f = write_file("conv.txt", b"Londo: Ah, Mr. Garibaldi.\r\n\r\nYaya2DevOps: Hello Londo\nLondo: Goodbye\n");
    let out = t.seed(&db, &["--conversation", f.arg(), "--speaker", "Londo=londo"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (groups, msgs) = split(&t.items());
    assert_eq!((groups.len(), msgs.len()), (2, 3));
    let handles: HashSet<_> = groups.iter().map(|g| g.user_handle.as_str()).collect();
    assert_eq!(handles, ["londo", "yaya2devops"].into());
    assert!(msgs.iter().any(|m| m.message == "Ah, Mr. Garibaldi." && m.user_handle == "londo"));
}

/// Each bad input: non-zero exit, a message naming the problem, nothing written.
#[test]
fn bad_inputs_write_nothing() {
    let db = TestDb::create();
    let server = DynamoLocal::shared();
    let t = TestTable::create(server, "bad");
    let big = format!("Yaya2DevOps: {}\nFan: ok\n", "x".repeat(410_000));
    let files = [
        ("unknown.txt", b"Yaya2DevOps: hi\nStranger: who?\n".to_vec(), "unknown.txt:2: unknown speaker \"Stranger\""),
        ("noline.txt", b"Yaya2DevOps: hi\njust text\n".to_vec(), "noline.txt:2: expected `Speaker: message`"),
        ("empty-msg.txt", b"Yaya2DevOps: hi\nFan123:  \n".to_vec(), "empty-msg.txt:2: empty message"),
        ("big.txt", big.into_bytes(), "big.txt:1: the message is too long"),
        ("latin1.txt", b"Yaya2DevOps: hi\nFan: caf\xe9\n".to_vec(), "latin1.txt:2: not UTF-8"),
        ("empty.txt", b"".to_vec(), "has no lines"),
        ("binary.bin", vec![0u8, 1, 2, 3, 255, 254, 0, 10], "not UTF-8"),
        ("one-speaker.txt", b"Yaya2DevOps: hi\nYaya2DevOps: anyone?\n".to_vec(), "between two users; this one has 1"),
    ];
    let written: Vec<_> = files.iter().map(|(name, bytes, want)| (*name, write_file(name, bytes), *want)).collect();
    let mut cases: Vec<(&str, Vec<&str>, &str, i32)> =
        written.iter().map(|(name, f, want)| (*name, vec!["--conversation", f.arg()], *want, 1)).collect();
    cases.extend([
        ("missing file", vec!["--conversation", "/nonexistent/conv.txt"], "cannot read conversation file /nonexistent/conv.txt", 1),
        ("handle not in postgres", vec!["--speaker", "Fan=nobody", "--speaker", "Fan123=nobody"], "no user with handle \"nobody\"", 1),
        // A flag's bad value is a usage error, also when it is found after parsing.
        ("bad speaker flag", vec!["--speaker", "Fan"], "NAME=handle", 2),
        ("more groups than messages", vec!["--groups", "25"], "--groups must be between 1 and the number of messages (24)", 2),
    ]);
    for (what, args, want, code) in cases {
        let out = t.seed(&db, &args);
        assert_eq!(out.status.code(), Some(code), "{what}: {}", stderr(&out));
        assert!(stderr(&out).contains(want), "{what}: {:?} lacks {want:?}", stderr(&out));
        assert_eq!(t.items().len(), 0, "{what} wrote items");
    }

    // The table does not exist.
    let missing = TestTable::missing(server);
    let out = missing.seed(&db, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("does not exist") && stderr(&out).contains("./bin/ddb/schema-load"), "{}", stderr(&out));

    // Postgres unreachable, with the password redacted.
    let port = free_port();
    let out = t.cmd("seed").env("CONNECTION_URL", format!("postgresql://postgres:hunter2@127.0.0.1:{port}/cruddur")).arg("--quiet").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("cannot connect") && err.contains("***") && !err.contains("hunter2"), "{err}");

    // A database without the seed users' table.
    let out = t.cmd("seed").env("CONNECTION_URL", format!("{}_nope", db.url)).arg("--quiet").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("does not exist"), "{}", stderr(&out));

    // DynamoDB unreachable.
    let out = t.seed(&db, &["--endpoint-url", &format!("http://127.0.0.1:{port}")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("cannot reach DynamoDB"), "{}", stderr(&out));
    assert_eq!(t.items().len(), 0);
}

#[test]
fn scale_mode_writes_exactly_n_plus_two() {
    let db = TestDb::create();
    let (t, _server) = TestTable::on_own_server("scale");
    let out = t.seed(&db, &["--messages", "10000"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let items = t.items();
    assert_eq!(items.len(), 10_002);
    let (groups, msgs) = split(&items);
    assert_eq!(groups.len(), 2);
    let sks: HashSet<_> = msgs.iter().map(|m| m.created_at).collect();
    assert_eq!(sks.len(), 10_000, "timestamps are unique");
    assert!(msgs.iter().all(|m| m.created_at < groups[0].last_message_at));
    assert_eq!(groups[0].last_message_at, groups[1].last_message_at, "the two rows of a conversation mirror each other");

    // Spread over groups, then fewer messages: the earlier, larger seed is replaced entirely.
    let out = t.seed(&db, &["--messages", "300", "--groups", "3"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (groups, msgs) = split(&t.items());
    assert_eq!((groups.len(), msgs.len()), (6, 300));
    let per_group: HashSet<_> = msgs.iter().map(|m| m.message_group_uuid).collect();
    assert_eq!(per_group.len(), 3);
    let out = t.seed(&db, &[]);
    assert!(out.status.success());
    assert_eq!(t.items().len(), 26);
}

#[test]
fn killed_mid_run_then_rerun_gives_exactly_the_expected_items() {
    let db = TestDb::create();
    let (t, _server) = TestTable::on_own_server("kill");
    let mut child = t.seed_cmd(&db, &["--messages", "20000", "--concurrency", "2"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    // Wait until part of it is written, then SIGKILL.
    let deadline = Instant::now() + Duration::from_secs(60);
    while t.count() <= 2_000 {
        assert!(Instant::now() < deadline, "seed wrote nothing within 60 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let partial = t.items().len();
    assert!(partial < 20_002, "seed finished before it was killed ({partial} items)");

    let out = t.seed(&db, &["--messages", "20000"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let items = t.items();
    assert_eq!(items.len(), 20_002, "after the re-run (partial run had {partial})");
    let (groups, msgs) = split(&items);
    assert_eq!(groups.len(), 2);
    let uuids: HashSet<_> = msgs.iter().map(|m| m.message_uuid).collect();
    assert_eq!(uuids.len(), 20_000);
}

#[test]
fn progress_and_summary_lines() {
    // --quiet or not, without a terminal there is no progress bar on stderr.
    let db = TestDb::create();
    let t = TestTable::create(DynamoLocal::shared(), "quiet");
    let out = t.cmd_db("seed", &db).output().unwrap();
    assert!(out.status.success());
    assert_eq!(stderr(&out), "");

    // --json: the figures as one object instead of the summary line; a re-run says what it replaced.
    let out = t.cmd_db("seed", &db).arg("--json").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let f: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is one JSON object");
    assert_eq!(
        (f["messages"].as_u64(), f["conversations"].as_u64(), f["written"].as_u64(), f["deleted"].as_u64()),
        (Some(24), Some(1), Some(26), Some(26))
    );
    assert_eq!((f["table"].as_str(), f["target"].as_str()), (Some(t.name.as_str()), Some(t.endpoint.as_str())));
    assert!(f["items_per_second"].as_f64().is_some_and(|r| r > 0.0) && f["writing_seconds"].as_f64().is_some_and(|s| s > 0.0), "{f}");
    assert_eq!(t.count(), 26);
}
