use ddb_core::patterns::{self, Page};
use ddb_core::records::{format_ts, parse_ts, MessageRow};
use ddb_core::seed::COURSE_GROUP;
use ddb_core::ErrorKind;
use e2e::*;
use std::io::Write;
use std::process::Stdio;
use uuid::Uuid;

#[test]
fn a_pages_newest_first_and_returns_each_page_oldest_first() {
    let (t, _db) = seeded(DynamoLocal::shared(), "pa", &["--messages", "45"]);
    let mut all = t.messages();
    all.sort_by_key(|m| m.created_at);
    assert_eq!(all.len(), 45);

    let first = block_on(patterns::list_messages(&t.ddb, COURSE_GROUP, &Page::default())).unwrap();
    let want: Vec<Uuid> = all[25..].iter().map(|m| m.message_uuid).collect();
    assert_eq!(first.items.iter().map(|m| m.uuid).collect::<Vec<_>>(), want, "the newest 20, oldest first");
    assert!(first.items.windows(2).all(|w| w[0].created_at < w[1].created_at));

    // Following the cursors yields every message exactly once, in order.
    let mut pages = vec![first.items.clone()];
    let mut cursor = first.cursor.clone();
    while let Some(c) = cursor {
        let page = block_on(patterns::list_messages(&t.ddb, COURSE_GROUP, &Page { limit: 20, before: Some(c) })).unwrap();
        pages.push(page.items.clone());
        cursor = page.cursor;
        assert!(pages.len() <= 4, "the cursors must end");
    }
    let seen: Vec<Uuid> = pages.into_iter().rev().flatten().map(|m| m.uuid).collect();
    assert_eq!(seen, all.iter().map(|m| m.message_uuid).collect::<Vec<_>>());
    // Each message as the API returns it.
    let last = first.items.last().unwrap();
    let row = all.last().unwrap();
    assert_eq!(
        (last.handle.as_str(), last.display_name.as_str(), last.message.as_str()),
        (row.user_handle.as_str(), row.user_display_name.as_str(), row.message.as_str())
    );
    assert_eq!(last.created_at, format_ts(row.created_at));
}

#[test]
fn b_lists_my_groups_newest_first_and_never_anothers() {
    let db = TestDb::with_user("Carol C", "carol");
    let u = db.users(&["yaya2devops", "bayko", "carol"]);
    let t = TestTable::create(DynamoLocal::shared(), "pb");
    let at = |s: &str| parse_ts(s).unwrap();
    let g1 =
        block_on(patterns::create_message_group_at(&t.ddb, Uuid::new_v4(), &u["bayko"], &u["yaya2devops"], "old one", at("2025-12-30T10:00:00Z")))
            .unwrap();
    let g2 =
        block_on(patterns::create_message_group_at(&t.ddb, Uuid::new_v4(), &u["carol"], &u["bayko"], "new one", at("2026-01-02T10:00:00Z"))).unwrap();

    let mine = block_on(patterns::list_message_groups(&t.ddb, u["bayko"].uuid, &Page::default())).unwrap();
    assert_eq!(mine.items.iter().map(|g| g.uuid).collect::<Vec<_>>(), [g2.uuid, g1.uuid], "newest first");
    assert_eq!((mine.items[0].handle.as_str(), mine.items[0].message.as_str()), ("carol", "new one"), "names the other member");
    assert_eq!(mine.items[1].created_at, "2025-12-30T10:00:00.000000+00:00");
    assert!(mine.cursor.is_none());

    let yaya = block_on(patterns::list_message_groups(&t.ddb, u["yaya2devops"].uuid, &Page::default())).unwrap();
    assert_eq!(yaya.items.iter().map(|g| g.uuid).collect::<Vec<_>>(), [g1.uuid], "carol's conversation is not yaya's");

    // The script: my-uuid, then a readable table; --output json is the list.
    let out = t.run_db("list-conversations", &db, &["bayko"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with(&format!("my-uuid: {}\n", u["bayko"].uuid)), "{text}");
    assert!(text.contains(&g2.uuid.to_string()) && text.contains("carol") && text.contains("new one"), "{text}");
    let out = t.run_db("list-conversations", &db, &["yaya2devops", "--output", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json[0]["uuid"], g1.uuid.to_string());
    assert_eq!(json[0]["handle"], "bayko");
    assert_eq!(json.as_array().unwrap().len(), 1);
}

/// The course conversation seeded as of 2026-01-01 00:10 UTC: its messages are dated the day
/// before, in the previous year, and must still list (no begins_with(sk, year) filter).
#[test]
fn get_conversations_prints_the_course_lines_and_last_years_messages_still_list() {
    let (t, _db) = seeded(DynamoLocal::shared(), "pgolden", &["--now", "2026-01-01T00:10:00Z"]);
    let out = t.run("get-conversations", &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    let golden = include_str!("golden/get-conversations-2026-01-01.txt");
    assert_eq!(lines[lines.len() - 20..].join("\n"), golden.trim_end(), "the latest 20 messages in the course's format");
    // Before them: the query response and the consumed capacity, as JSON.
    let json_end = text.find("\n}\n").unwrap() + 3;
    let response: serde_json::Value = serde_json::from_str(&text[..json_end]).unwrap();
    assert_eq!(response["Count"], 20);
    assert_eq!(response["Items"].as_array().unwrap().len(), 20);
    assert_eq!(response["Items"][0]["sk"]["S"], "2025-12-31T00:33:00.000000+00:00", "newest first, as DynamoDB answered");
    assert!(response["ConsumedCapacity"]["CapacityUnits"].as_f64().unwrap() > 0.0);
    assert!(stderr(&out).contains("older messages: --before 2025-12-31T00:14:00.000000+00:00"), "{}", stderr(&out));

    // --output json: only the list; the default group and an explicit one are the same.
    let out = t.run("get-conversations", &[&COURSE_GROUP.to_string(), "--output", "json", "--limit", "30"]);
    let list: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list.len(), 24);
    assert!(list[0]["created_at"].as_str().unwrap().starts_with("2025-12-31T00:10:00"));
}

#[test]
fn c_then_a_the_new_message_comes_last() {
    let (t, db) = seeded(DynamoLocal::shared(), "pc", &[]);
    let out = t.run_db("create-message", &db, &[&COURSE_GROUP.to_string(), "bayko", "A brand new message", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let row: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let page = block_on(patterns::list_messages(&t.ddb, COURSE_GROUP, &Page::default())).unwrap();
    let last = page.items.last().unwrap();
    assert_eq!((last.message.as_str(), last.handle.as_str()), ("A brand new message", "bayko"));
    assert_eq!(last.uuid.to_string(), row["message_uuid"].as_str().unwrap());
    assert_eq!(t.items().len(), 27, "one row more, nothing else");

    // Text from stdin; a message over DynamoDB's item limit is refused and nothing is written.
    let mut child = t
        .cmd_db("create-message", &db)
        .args([&COURSE_GROUP.to_string(), "bayko", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&vec![b'x'; 410 * 1024]).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("too long") && stderr(&out).contains("nothing was written"), "{}", stderr(&out));
    assert_eq!(t.items().len(), 27);

    // Not a member, no such conversation, unknown handle, malformed uuid.
    let other = Uuid::new_v4().to_string();
    let out = t.run_db("create-message", &db, &[&other, "bayko", "hi"]);
    assert!(stderr(&out).contains(&format!("no conversation {other}")), "{}", stderr(&out));
    let out = t.run_db("create-message", &db, &[&COURSE_GROUP.to_string(), "nobody", "hi"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no user with handle \"nobody\" in database"), "{}", stderr(&out));
    let out = t.run_db("create-message", &db, &["not-a-uuid", "bayko", "hi"]);
    assert_eq!(out.status.code(), Some(2), "a malformed uuid is a usage error");
    assert_eq!(t.items().len(), 27);
}

/// Pattern C's rule lives in the library: any caller, not only the script, is refused a message
/// from a non-member or into a conversation that does not exist, and nothing is written.
#[test]
fn c_only_a_member_writes_into_a_conversation() {
    let db = TestDb::with_user("Carol C", "carol");
    let u = db.users(&["bayko", "carol"]);
    let t = TestTable::create(DynamoLocal::shared(), "pm");
    let out = t.seed(&db, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let before = t.items().len();

    let err = block_on(patterns::create_message(&t.ddb, COURSE_GROUP, &u["carol"], "let me in")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Input, "{err}");
    assert!(err.to_string().starts_with(&format!("carol is not a member of conversation {COURSE_GROUP} (its members: ")), "{err}");
    let missing = Uuid::new_v4();
    let err = block_on(patterns::create_message(&t.ddb, missing, &u["bayko"], "hello?")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert_eq!(t.items().len(), before, "nothing was written");

    // The script says the same, with exit 1.
    let out = t.run_db("create-message", &db, &[&COURSE_GROUP.to_string(), "carol", "let me in"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("carol is not a member of conversation"), "{}", stderr(&out));
    assert_eq!(t.items().len(), before);

    // A member may.
    let row = block_on(patterns::create_message(&t.ddb, COURSE_GROUP, &u["bayko"], "welcome")).unwrap();
    assert!(t.messages().contains(&row));
}

#[test]
fn d_writes_all_three_rows_or_none() {
    let db = TestDb::create();
    let u = db.users(&COURSE_HANDLES);
    let t = TestTable::create(DynamoLocal::shared(), "pd");
    let out = t.run_db("create-conversation", &db, &["bayko", "yaya2devops", "Have you seen Babylon 5?"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let group = Uuid::parse_str(stdout(&out).trim()).unwrap();
    let items = t.items();
    assert_eq!(items.len(), 3);
    let rows = t.rows_of(group);
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r.message == "Have you seen Babylon 5?"));
    let msgs = block_on(patterns::list_messages(&t.ddb, group, &Page::default())).unwrap();
    assert_eq!(msgs.items.len(), 1);
    assert_eq!(msgs.items[0].handle, "bayko");
    assert_eq!(format_ts(rows[0].last_message_at), msgs.items[0].created_at);

    // A condition that fails (the message's key is taken): the transaction writes nothing.
    let taken = Uuid::new_v4();
    let at = parse_ts("2026-03-01T12:00:00Z").unwrap();
    let blocker = MessageRow {
        message_group_uuid: taken,
        created_at: at,
        message_uuid: Uuid::new_v4(),
        message: "already here".into(),
        user_uuid: u["bayko"].uuid,
        user_display_name: "Andrew Bayko".into(),
        user_handle: "bayko".into(),
    };
    block_on(t.client().put_item().table_name(&t.name).set_item(Some(blocker.to_item())).send()).unwrap();
    let err = block_on(patterns::create_message_group_at(&t.ddb, taken, &u["yaya2devops"], &u["bayko"], "hello", at)).unwrap_err();
    assert!(err.to_string().contains("nothing was written"), "{err}");
    assert!(t.rows_of(taken).is_empty(), "no group row of the failed transaction");
    assert_eq!(t.items().len(), 4, "only the blocker was added");

    // A missing table: an error that says so, nothing anywhere.
    let missing = TestTable::missing(DynamoLocal::shared());
    let out = missing.run_db("create-conversation", &db, &["bayko", "yaya2devops", "hi"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("does not exist") && stderr(&out).contains("schema-load"), "{}", stderr(&out));
    // The same user twice, and an unknown one.
    let out = t.run_db("create-conversation", &db, &["bayko", "bayko", "hi"]);
    assert!(stderr(&out).contains("two different users"), "{}", stderr(&out));
    let out = t.run_db("create-conversation", &db, &["bayko", "nobody", "hi"]);
    assert!(stderr(&out).contains("no user with handle \"nobody\""), "{}", stderr(&out));
    assert_eq!(t.items().len(), 4);
}

#[test]
fn script_errors_and_empty_conversations() {
    let db = TestDb::create();
    let t = TestTable::create(DynamoLocal::shared(), "perr");
    // An empty conversation: an empty list, a note on stderr, exit 0.
    let empty = Uuid::new_v4().to_string();
    let out = t.run("get-conversations", &[&empty, "--output", "json"]);
    assert!(out.status.success());
    assert_eq!(stdout(&out).trim(), "[]");
    assert!(stderr(&out).contains(&format!("no messages in conversation {empty}")), "{}", stderr(&out));
    // Malformed uuid, too many words, bad cursor: usage errors.
    for args in [&["nope"][..], &[&empty, "extra", "words"][..], &["--before", "yesterday"][..], &["--limit", "0"][..]] {
        let out = t.run("get-conversations", args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    }
    // Unknown handle.
    let out = t.run_db("list-conversations", &db, &["nobody"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("no user with handle \"nobody\" in database postgresql://"), "{err}");
    // --help everywhere.
    for name in ["get-conversations", "list-conversations", "create-message", "create-conversation", "stream-worker"] {
        let out = clean_cmd(name).arg("--help").output().unwrap();
        assert!(out.status.success() && stdout(&out).contains("Usage:"), "{name}");
    }
}

/// One item of another shape in a conversation's partition or in a user's inbox (the course app's
/// naive timestamp, a number where a string belongs, an edit in the console) does not hide the
/// rest: pattern A and B list every row that reads and name the item they left out.
#[test]
fn a_and_b_list_the_rows_that_read_and_name_the_item_they_leave_out() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let (t, db) = seeded(DynamoLocal::shared(), "skip", &[]);
    let mut naive = t.messages()[0].to_item();
    naive.insert("sk".into(), AttributeValue::S("2026-12-08T01:16:00.123456".into()));
    let mut number = t.group_rows().into_iter().find(|g| g.user_handle == "yaya2devops").unwrap().to_item();
    number.insert("sk".into(), AttributeValue::S(format_ts(time::OffsetDateTime::now_utc() - time::Duration::days(3))));
    number.insert("message".into(), AttributeValue::N("42".into()));
    for item in [naive, number] {
        block_on(t.client().put_item().table_name(&t.name).set_item(Some(item)).send()).unwrap();
    }
    let out = t.run("get-conversations", &["--output", "json", "--limit", "1000"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let shown: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown.len(), 24, "every message that reads is listed");
    let err = stderr(&out);
    assert!(err.contains("warning: item (MSG#") && err.contains("2026-12-08T01:16:00.123456") && err.contains("./bin/ddb/check"), "{err}");
    let out = t.run_db("list-conversations", &db, &["bayko", "--output", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let groups: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(groups.len(), 1, "the seeded conversation is listed: {groups:?}");
    assert!(stderr(&out).contains("attribute message is not a string"), "{}", stderr(&out));
}
