//! Human-readable output on a terminal: text of the table, Cognito and Postgres, written by any
//! client, reaches stdout and stderr with its control characters escaped, and columns line up by
//! display width (CJK takes two columns). Issue 20, fault 2.

use aws_sdk_cognitoidentityprovider::types::AttributeType;
use ddb_core::records::{parse_ts, MessageGroupRow, MessageRow};
use ddb_core::seed::COURSE_GROUP;
use e2e::*;
use std::process::{Output, Stdio};
use unicode_width::UnicodeWidthChar;
use uuid::Uuid;

/// A message that would clear the screen, set the clipboard (OSC 52), ring, overwrite its line,
/// forge the next one, and then some.
const HOSTILE: &str = "\u{1b}]52;c;aGVsbG8=\u{7}clipboard\r\0\nforged line\u{1b}[2J\u{7f}\u{9b}2J\ttab\u{202e}";
/// Long text of wide characters: cut by columns, never in the middle of one.
const WIDE: &str = "こんにちは、世界。これは長いメッセージです。全角の文字は二つの列を使います。";

/// Fails unless `bytes` is UTF-8 without anything a terminal acts on: no C0 control but the
/// printers' own newlines, no DEL, no C1 control, no bidi override.
fn assert_inert(what: &str, bytes: &[u8]) {
    let text = std::str::from_utf8(bytes).unwrap_or_else(|e| panic!("{what}: not UTF-8: {e}"));
    for (i, c) in text.char_indices() {
        let acts = (c.is_control() && c != '\n') || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
        assert!(!acts, "{what}: {c:?} at byte {i} reaches the terminal: {text:?}");
    }
}

fn assert_run_inert(what: &str, out: &Output) {
    assert_inert(&format!("{what} (stdout)"), &out.stdout);
    assert_inert(&format!("{what} (stderr)"), &out.stderr);
}

fn width(s: &str) -> usize {
    s.chars().map(|c| c.width().unwrap_or(0)).sum()
}

/// The display columns where the header's columns start: after each run of two or more spaces.
fn column_starts(header: &str) -> Vec<usize> {
    let (mut starts, mut col, mut spaces) = (Vec::new(), 0, 0);
    for c in header.chars() {
        if c != ' ' && spaces >= 2 {
            starts.push(col);
        }
        spaces = if c == ' ' { spaces + 1 } else { 0 };
        col += c.width().unwrap_or(0);
    }
    starts
}

/// Fails unless every line starts a cell at each column of the header (`lines[0]`): the text
/// before the column is exactly that wide and ends in the two spaces between columns.
fn assert_aligned(lines: &[&str]) {
    let starts = column_starts(lines[0]);
    assert!(!starts.is_empty(), "no columns in {:?}", lines[0]);
    for line in lines {
        for &start in &starts {
            let (mut col, mut at) = (0, None);
            for (i, c) in line.char_indices() {
                if col == start {
                    at = Some(i);
                    break;
                }
                col += c.width().unwrap_or(0);
            }
            let at = at.unwrap_or_else(|| panic!("no cell starts at column {start}: {line:?}\n{}", lines.join("\n")));
            assert!(line[..at].ends_with("  ") && !line[at..].starts_with(' '), "column {start} misaligned: {line:?}\n{}", lines.join("\n"));
        }
    }
}

fn put(t: &TestTable, item: ddb_core::records::Item) {
    block_on(t.client().put_item().table_name(&t.name).set_item(Some(item)).send()).expect("put_item");
}

fn message(created_at: &str, handle: &str, text: &str) -> MessageRow {
    MessageRow {
        message_group_uuid: COURSE_GROUP,
        created_at: parse_ts(created_at).unwrap(),
        message_uuid: Uuid::new_v4(),
        message: text.into(),
        user_uuid: Uuid::new_v4(),
        user_display_name: format!("{handle}\u{1b}[2J"),
        user_handle: handle.into(),
    }
}

#[test]
fn get_conversations_escapes_messages_and_keeps_the_course_columns() {
    let (t, _db) = seeded(DynamoLocal::shared(), "outa", &["--now", "2026-01-01T00:10:00Z"]);
    let written = [
        message("2026-01-01T00:20:00.000000+00:00", "bad\u{1b}", HOSTILE),
        message("2026-01-01T00:21:00.000000+00:00", "日本語", WIDE),
        message("2026-01-01T00:22:00.000000+00:00", "bayko", "a backslash \\u{1b} stays readable"),
    ];
    for m in &written {
        put(&t, m.to_item());
    }
    for args in [&[][..], &["--output", "lines"]] {
        let out = t.run("get-conversations", args);
        assert!(out.status.success(), "{}", stderr(&out));
        assert_run_inert(&format!("get-conversations {args:?}"), &out);
        let text = stdout(&out);
        let lines: Vec<&str> = text.lines().rev().take(20).collect();
        for line in &lines {
            // The course's columns: handle in 12, time in 22, at most 40 columns of text and `...`.
            let time = line.find("202").unwrap_or_else(|| panic!("no time in {line:?}"));
            assert_eq!(width(&line[..time]), 12, "{line:?}");
            let shown = line[time + 22..].strip_suffix("...").unwrap();
            assert!(width(shown) <= 40, "{line:?}");
        }
        assert!(lines[2].starts_with("bad\\u{1b}   2026-01-01 12:20 AM   \\u{1b}]52;c;aGVsbG8=\\u{7}clipboard\\r..."), "{}", lines[2]);
        assert_eq!(lines[1], format!("日本語      2026-01-01 12:21 AM   {}...", WIDE.chars().take(20).collect::<String>()));
        assert!(lines[0].ends_with("a backslash \\\\u{1b} stays readable..."), "{}", lines[0]);
    }
    // JSON: escaped as JSON, and the very text that was written.
    let out = t.run("get-conversations", &["--output", "json"]);
    assert_run_inert("get-conversations --output json", &out);
    let list: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let texts: Vec<&str> = list.iter().rev().take(3).map(|m| m["message"].as_str().unwrap()).collect();
    assert_eq!(texts, [written[2].message.as_str(), WIDE, HOSTILE]);
}

#[test]
fn the_error_line_escapes_what_it_quotes() {
    let (t, db) = seeded(DynamoLocal::shared(), "outerr", &[]);
    // A message whose sort key is not a time: left out, and the warning names the item, key and
    // all, on one line.
    let mut item = message("2026-01-01T00:20:00.000000+00:00", "x", "x").to_item();
    item.insert("sk".into(), aws_sdk_dynamodb::types::AttributeValue::S(format!("9999{HOSTILE}")));
    put(&t, item);
    let out = t.run("get-conversations", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_run_inert("get-conversations on a malformed item", &out);
    let err = stderr(&out);
    let warnings: Vec<&str> = err.lines().filter(|l| l.starts_with("warning: item ")).collect();
    assert_eq!(warnings.len(), 1, "{err}");
    assert!(warnings[0].contains("9999\\u{1b}]52;c;aGVsbG8=\\u{7}clipboard\\r\\u{0}\\nforged"), "{err}");
    // A handle from the command line, quoted by an error.
    // (An argument holds no NUL.)
    let out = t.run_db("list-conversations", &db, &["\u{1b}]52;c;aGVsbG8=\u{7}\r\nme"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_run_inert("list-conversations with a hostile handle", &out);
    assert!(stderr(&out).contains("\\u{1b}]52;c;"), "{}", stderr(&out));
}

#[test]
fn list_conversations_lines_up_wide_handles_and_escapes_names() {
    let db = TestDb::create();
    let t = TestTable::create(DynamoLocal::shared(), "outb");
    let me = db.users(&["yaya2devops"])["yaya2devops"].uuid;
    let rows = [
        ("日本語ハンドル", "山田 太郎", WIDE, "2026-01-01T00:20:00.000000+00:00"),
        ("x\u{1b}[2J", "Mallory\u{7}\r\n\0\u{9b}", HOSTILE, "2026-01-01T00:21:00.000000+00:00"),
        ("bayko", "Andrew Bayko", "plain", "2026-01-01T00:22:00.000000+00:00"),
    ];
    for (handle, name, text, at) in rows {
        let row = MessageGroupRow {
            owner_uuid: me,
            last_message_at: parse_ts(at).unwrap(),
            message_group_uuid: Uuid::new_v4(),
            message: text.into(),
            user_uuid: Uuid::new_v4(),
            user_display_name: name.into(),
            user_handle: handle.into(),
        };
        put(&t, row.to_item());
    }
    let out = t.run_db("list-conversations", &db, &["yaya2devops"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_run_inert("list-conversations", &out);
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().skip(1).collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert_aligned(&lines);
    let message_col = *column_starts(lines[0]).last().unwrap();
    for line in &lines[1..] {
        let start = line
            .char_indices()
            .scan(0, |col, (i, c)| Some((std::mem::replace(col, *col + c.width().unwrap_or(0)), i)))
            .find(|(col, _)| *col == message_col)
            .unwrap()
            .1;
        assert!(width(&line[start..]) <= 40, "the message is cut to 40 columns: {line:?}");
    }
    assert!(lines[2].contains("x\\u{1b}[2J") && lines[2].contains("Mallory\\u{7}\\r\\n\\u{0}\\u{9b}"), "{text}");
    assert!(lines[3].contains("日本語ハンドル") && lines[3].contains("山田 太郎"), "{text}");
    let out = t.run_db("list-conversations", &db, &["yaya2devops", "--output", "json"]);
    assert_run_inert("list-conversations --output json", &out);
    let list: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list[1]["display_name"], "Mallory\u{7}\r\n\0\u{9b}", "JSON keeps the text");
}

#[test]
fn cognito_scripts_escape_handles_from_cognito_and_postgres() {
    let moto = Moto::start();
    let c = moto.cognito();
    let evil = "日本\u{1b}]52;c;aGk=\u{7}";
    let pool = block_on(async {
        let pool = c.create_user_pool().pool_name(format!("p-{}", Uuid::new_v4().simple())).send().await.unwrap();
        let id = pool.user_pool().unwrap().id().unwrap().to_string();
        let attr = |n: &str, v: &str| AttributeType::builder().name(n).value(v).build().unwrap();
        for (user, handle) in [("u1", Some(evil)), ("u\u{1b}[2J", None), ("u3", Some("全角ユーザー\r"))] {
            let mut req = c.admin_create_user().user_pool_id(&id).username(user);
            if let Some(h) = handle {
                req = req.user_attributes(attr("preferred_username", h));
            }
            req.send().await.unwrap();
        }
        id
    });
    let db = TestDb::create();
    // Postgres holds no NUL; everything else goes in as written.
    for (i, handle) in [evil, "mock\u{1b}[31m\u{7f}"].iter().enumerate() {
        db.exec(&format!("INSERT INTO users (display_name, handle, email, cognito_user_id) VALUES ('X', '{handle}', 'x{i}@example.com', 'MOCK')"));
    }
    let cmd = |name: &str| {
        let mut cmd = clean_cmd(name);
        cmd.env("AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER", &moto.endpoint).env("AWS_COGNITO_USER_POOL_ID", &pool).env("CONNECTION_URL", &db.url);
        cmd.stdin(Stdio::null());
        cmd
    };

    let out = cmd("list-users").args(["--output", "table"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_run_inert("list-users --output table", &out);
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert_aligned(&lines);
    assert!(text.contains("日本\\u{1b}]52;c;aGk=\\u{7}") && text.contains("u\\u{1b}[2J") && text.contains("全角ユーザー\\r"), "{text}");
    assert!(stderr(&out).contains("skipped u\\u{1b}[2J: no preferred_username"), "{}", stderr(&out));
    let out = cmd("list-users").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_run_inert("list-users", &out);

    let out = cmd("update_cognito_user_ids").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_run_inert("update_cognito_user_ids", &out);
    let text = stdout(&out);
    assert!(text.contains("changed 日本\\u{1b}]52;c;aGk=\\u{7}: MOCK -> "), "{text}");
    assert!(text.contains("with no row in users: 全角ユーザー\\r"), "{text}");
    assert!(text.lines().any(|l| l.contains("still hold MOCK: ") && l.contains("mock\\u{1b}[31m\\u{7f}")), "{text}");
    assert!(text.contains("skipped u\\u{1b}[2J: no preferred_username"), "{text}");
    let out = cmd("update_cognito_user_ids").args(["--json", "--dry-run"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_run_inert("update_cognito_user_ids --json", &out);
}
