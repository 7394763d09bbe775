//! The messaging-stream Lambda run as Lambda runs it: the release bootstrap talks to cargo-lambda's
//! Runtime API emulator (`cargo lambda watch --only-lambda-apis`), and `cargo lambda invoke` hands
//! it events made of DynamoDB Local's real stream records (GetRecords), wrapped as Lambda's event
//! source mapping wraps them. And the package: `bin/lambda/build`'s zip for provided.al2023.
//!
//! cargo-lambda (PyPI, with its own zig) is installed into `.local/cargo-lambda` on first use by
//! `bin/local/install-cargo-lambda`; after that nothing here needs a network.

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodbstreams::types::{Record as StreamRecord, ShardIteratorType};
use ddb_core::item_json::{item_to_json, ItemFormat};
use ddb_core::records::{format_ts, Item, MessageGroupRow, MessageRow};
use e2e::*;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// cargo-lambda's folder (`cargo-lambda`, and the `python3` whose `ziglang` it links with).
fn cargo_lambda_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| PathBuf::from(install("install-cargo-lambda")))
}

/// `cargo lambda SUBCOMMAND` without cargo in between (cargo would run it as a child of its own,
/// which a kill of cargo leaves running).
fn cargo_lambda(subcommand: &str) -> Command {
    let dir = cargo_lambda_dir();
    let mut c = Command::new(dir.join("cargo-lambda"));
    let path = std::env::join_paths(std::iter::once(dir.to_path_buf()).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())))
        .expect("PATH");
    c.arg("lambda").arg(subcommand).env("PATH", path).current_dir(root());
    c
}

/// The Runtime API emulator and a `bootstrap` polling it, aimed at the test's table, in an
/// environment as bare as Lambda's `provided.al2023` runtime gives it.
struct Lambda {
    port: u16,
    bootstrap: Guarded,
    _emulator: Guarded,
    /// The function's stdout and stderr (what CloudWatch would show).
    log: PathBuf,
}

impl Lambda {
    fn start(bootstrap: &Path, t: &TestTable) -> Lambda {
        Lambda::start_at(bootstrap, &t.endpoint, &t.name, LOCAL_TIMEOUT)
    }

    /// [`Lambda::start`] aimed at `endpoint` and `table`, waiting `timeout` for an answer
    /// (`DDB_LOCAL_TIMEOUT`, as the scripts of the tests do).
    fn start_at(bootstrap: &Path, endpoint: &str, table: &str, timeout: Duration) -> Lambda {
        let port = free_port();
        let emulator = serve(
            cargo_lambda("watch").args(["--only-lambda-apis", "--invoke-address", "127.0.0.1", "--invoke-port", &port.to_string()]),
            port,
            "cargo lambda watch",
        );
        let log = std::env::temp_dir().join(format!("messaging-stream-{}.log", Uuid::new_v4().simple()));
        let file = std::fs::File::create(&log).expect("log file");
        // The variables that `cargo lambda watch --only-lambda-apis` says the function needs (the
        // runtime API's URL with its scheme: lambda_runtime needs it with the /.rt path), the
        // region as Lambda sets it, and the table; nothing inherited from the test's shell.
        let bootstrap = Command::new(bootstrap)
            .env_clear()
            .env("HOME", std::env::temp_dir())
            .env("AWS_LAMBDA_RUNTIME_API", format!("http://127.0.0.1:{port}/.rt"))
            .env("AWS_LAMBDA_FUNCTION_NAME", "_")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "4096")
            .env("AWS_REGION", "ca-central-1")
            .env("AWS_ENDPOINT_URL", endpoint)
            .env("DDB_LOCAL_TIMEOUT", timeout.as_secs().to_string())
            .env("DDB_MESSAGE_TABLE", table)
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log file"))
            .stderr(file)
            .spawn()
            .expect("messaging-stream");
        Lambda { port, bootstrap: Guarded::new(bootstrap), _emulator: emulator, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `cargo lambda invoke` with `records` as the event; the function's answer, as printed.
    fn invoke(&mut self, records: &[Value]) -> String {
        self.invoke_event(&json!({ "Records": records }))
    }

    /// `cargo lambda invoke` with `event`; the function's answer, as printed.
    fn invoke_event(&mut self, event: &Value) -> String {
        let records = event["Records"].as_array().map_or(0, Vec::len);
        let path = std::env::temp_dir().join(format!("dynamodb-event-{}.json", Uuid::new_v4().simple()));
        std::fs::write(&path, serde_json::to_vec_pretty(event).unwrap()).unwrap();
        let event = path;
        let out = cargo_lambda("invoke")
            .args(["--invoke-address", "127.0.0.1", "--invoke-port", &self.port.to_string(), "--data-file"])
            .arg(&event)
            .arg("_")
            .stdin(Stdio::null())
            .output()
            .expect("cargo lambda invoke");
        let _ = std::fs::remove_file(&event);
        let alive = self.bootstrap.0.try_wait().ok().flatten().is_none();
        assert!(out.status.success(), "cargo lambda invoke failed (bootstrap alive: {alive}): {}\nfunction log:\n{}", stderr(&out), self.log());
        let response = stdout(&out).trim().to_string();
        eprintln!("cargo lambda invoke, {records} record(s): {response}");
        response
    }
}

impl Drop for Lambda {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.log);
    }
}

/// An image of the stream in DynamoDB's typed JSON, as Lambda's events carry it.
fn image_json(m: &HashMap<String, aws_sdk_dynamodbstreams::types::AttributeValue>) -> Value {
    let item: Item = serde_dynamo::Item::from(m.clone()).into();
    item_to_json(&item, ItemFormat::DynamodbJson)
}

/// A stream record wrapped as Lambda's event source mapping wraps it in `Records`.
fn lambda_record(r: &StreamRecord, stream_arn: &str) -> Value {
    let d = r.dynamodb().expect("a stream record has its dynamodb part");
    let mut change = json!({
        "ApproximateCreationDateTime": d.approximate_creation_date_time().map(|t| t.secs()),
        "Keys": image_json(d.keys().expect("keys")),
        "SequenceNumber": d.sequence_number(),
        "SizeBytes": d.size_bytes(),
        "StreamViewType": d.stream_view_type().map(|v| v.as_str()),
    });
    if let Some(image) = d.new_image() {
        change["NewImage"] = image_json(image);
    }
    json!({
        "eventID": r.event_id(),
        "eventName": r.event_name().map(|n| n.as_str()),
        "eventVersion": r.event_version(),
        "eventSource": r.event_source(),
        "awsRegion": r.aws_region(),
        "dynamodb": change,
        "eventSourceARN": stream_arn,
    })
}

/// The table's stream as Lambda would deliver it, every shard from its start, until it holds at
/// least `want` records (the stream trails the writes by milliseconds).
pub(crate) struct Stream {
    client: aws_sdk_dynamodbstreams::Client,
    arn: String,
}

impl Stream {
    pub(crate) fn of(t: &TestTable) -> Stream {
        let table = block_on(t.client().describe_table().table_name(&t.name).send()).expect("describe table");
        let arn = table.table().and_then(|t| t.latest_stream_arn()).expect("schema-load enables the stream").to_string();
        Stream { client: t.streams(), arn }
    }

    pub(crate) fn read_all(&self) -> Vec<Value> {
        block_on(async {
            let mut records = Vec::new();
            let desc = self.client.describe_stream().stream_arn(&self.arn).send().await.expect("describe stream");
            for shard in desc.stream_description().map(|d| d.shards()).unwrap_or_default() {
                let mut iterator = self
                    .client
                    .get_shard_iterator()
                    .stream_arn(&self.arn)
                    .shard_id(shard.shard_id().unwrap())
                    .shard_iterator_type(ShardIteratorType::TrimHorizon)
                    .send()
                    .await
                    .expect("shard iterator")
                    .shard_iterator
                    .clone();
                while let Some(it) = iterator {
                    let page = self.client.get_records().shard_iterator(it).send().await.expect("get records");
                    if page.records().is_empty() {
                        break;
                    }
                    records.extend(page.records().iter().map(|r| lambda_record(r, &self.arn)));
                    iterator = page.next_shard_iterator;
                }
            }
            records
        })
    }

    /// Every record, once `done` says the stream holds what the test waits for (it fails the
    /// test after 30 s).
    pub(crate) fn until(&self, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let records = self.read_all();
            if done(&records) {
                return records;
            }
            assert!(Instant::now() < deadline, "the stream did not show what the test waits for within 30 s: {records:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub(crate) fn records(&self, want: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let records = self.read_all();
            if records.len() >= want || Instant::now() > deadline {
                assert_eq!(records.len(), want, "the stream's records");
                return records;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn event_id(r: &Value) -> &str {
    r["eventID"].as_str().unwrap()
}

/// The records whose new image is a message of `group`.
fn message_records(records: &[Value], group: Uuid) -> Vec<&Value> {
    let pk = format!("MSG#{group}");
    records.iter().filter(|r| r["dynamodb"]["NewImage"]["pk"]["S"] == pk.as_str()).collect()
}

fn with_db(t: &TestTable, db: &TestDb, name: &str, args: &[&str]) -> Output {
    let out = t.run_db(name, db, args);
    assert!(out.status.success(), "{name}: {}", stderr(&out));
    out
}

pub(crate) fn create_conversation(t: &TestTable, db: &TestDb, from: &str, to: &str, text: &str) -> Uuid {
    Uuid::parse_str(stdout(&with_db(t, db, "create-conversation", &[from, to, text])).trim()).expect("create-conversation prints the uuid")
}

pub(crate) fn create_message(t: &TestTable, db: &TestDb, group: Uuid, from: &str, text: &str) {
    with_db(t, db, "create-message", &[&group.to_string(), from, text]);
}

fn group_rows(t: &TestTable, group: Uuid) -> Vec<MessageGroupRow> {
    let mut rows: Vec<MessageGroupRow> = t
        .items()
        .iter()
        .filter(|i| s(i, "pk").starts_with("GRP#") && s(i, "message_group_uuid") == group.to_string())
        .map(|i| MessageGroupRow::from_item(i).unwrap())
        .collect();
    rows.sort_by_key(|r| r.user_handle.clone());
    rows
}

fn newest_message(t: &TestTable, group: Uuid) -> MessageRow {
    let pk = format!("MSG#{group}");
    t.items().iter().filter(|i| s(i, "pk") == pk).map(|i| MessageRow::from_item(i).unwrap()).max_by_key(|m| m.created_at).expect("a message")
}

/// Both group rows of `group` sit on its newest message.
fn assert_on_newest(t: &TestTable, group: Uuid) {
    let newest = newest_message(t, group);
    let rows = group_rows(t, group);
    assert_eq!(rows.len(), 2, "two group rows of {group}: {rows:?}");
    for r in &rows {
        assert_eq!((format_ts(r.last_message_at), r.message.as_str()), (format_ts(newest.created_at), newest.message.as_str()), "{r:?}");
    }
}

/// The sequence numbers of `records`.
fn sequence_numbers<'a>(records: impl IntoIterator<Item = &'a Value>) -> HashSet<String> {
    records.into_iter().map(|r| r["dynamodb"]["SequenceNumber"].as_str().unwrap().to_string()).collect()
}

/// The records that a response names in `batchItemFailures`.
fn reported(response: &str) -> HashSet<String> {
    let response: Value = serde_json::from_str(response).expect("the response is JSON");
    response["batchItemFailures"].as_array().expect("batchItemFailures").iter().map(|f| f["itemIdentifier"].as_str().unwrap().to_string()).collect()
}

#[test]
fn the_bootstrap_applies_good_records_and_answers_without_the_permanently_bad_ones() {
    let server = DynamoLocal::start();
    let db = TestDb::create();
    let t = TestTable::create(&server, "lambda");
    let a = create_conversation(&t, &db, "bayko", "yaya2devops", "Have you seen Babylon 5?");
    create_message(&t, &db, a, "yaya2devops", "Every season, twice");
    create_message(&t, &db, a, "bayko", "Then you know the Shadows");
    let stream = Stream::of(&t);
    // create-conversation writes both group rows and the first message: 3 records, then 2 messages.
    let first = stream.records(5);
    assert!(first.iter().all(|r| r["eventName"] == "INSERT" && r["eventSource"] == "aws:dynamodb"), "{first:?}");
    let mut lambda = Lambda::start(&bin("messaging-stream"), &t);

    let response = lambda.invoke(&first);
    assert_eq!(response, r#"{"batchItemFailures":[]}"#);
    assert_on_newest(&t, a);
    assert_eq!(group_rows(&t, a)[0].message, "Then you know the Shadows");
    let applied = t.snapshot();

    // Lambda delivers a batch again after a timeout or a crash: nothing changes.
    let response = lambda.invoke(&first);
    assert_eq!(response, r#"{"batchItemFailures":[]}"#);
    assert_eq!(t.snapshot(), applied, "a redelivered batch changed the table");

    // Two kinds of records that no delivery can mend, among good ones: conversation b's group row
    // of yaya2devops is made malformed (its user_uuid is not a uuid), so b's rows cannot be moved;
    // and a message row of a conversation c whose text is a number, not a string (issue 20: the
    // function says why it skips it).
    let b = create_conversation(&t, &db, "yaya2devops", "bayko", "Did you get my postcard?");
    create_message(&t, &db, b, "bayko", "Not yet");
    create_message(&t, &db, a, "yaya2devops", "Who are you? What do you want?");
    let bad = group_rows(&t, b).into_iter().find(|r| r.user_handle == "yaya2devops").unwrap();
    let mut item = bad.to_item();
    item.insert("user_uuid".into(), AttributeValue::S("not-a-uuid".into()));
    block_on(t.client().put_item().table_name(&t.name).set_item(Some(item)).send()).unwrap();
    let c = Uuid::new_v4();
    let mut broken = Item::new();
    broken.insert("pk".into(), AttributeValue::S(format!("MSG#{c}")));
    broken.insert("sk".into(), AttributeValue::S(format_ts(time::OffsetDateTime::now_utc())));
    for (name, value) in [("message_uuid", Uuid::new_v4().to_string()), ("user_uuid", Uuid::new_v4().to_string())] {
        broken.insert(name.into(), AttributeValue::S(value));
    }
    broken.insert("user_display_name".into(), AttributeValue::S("Londo Mollari".into()));
    broken.insert("user_handle".into(), AttributeValue::S("londo".into()));
    broken.insert("message".into(), AttributeValue::N("42".into()));
    block_on(t.client().put_item().table_name(&t.name).set_item(Some(broken)).send()).unwrap();
    // The function's own moves of a's rows (2 REMOVE, 2 INSERT: Lambda delivers them without the
    // filter), pattern D's 3 records, 2 messages, the MODIFY of the malformed row, c's message.
    let seen: HashSet<String> = first.iter().map(|r| event_id(r).to_string()).collect();
    let second: Vec<Value> = stream.records(16).into_iter().filter(|r| !seen.contains(event_id(r))).collect();
    assert_eq!(second.iter().filter(|r| r["eventName"] == "REMOVE").count(), 2, "{second:?}");
    assert_eq!(second.iter().filter(|r| r["eventName"] == "MODIFY").count(), 1, "{second:?}");
    let response = lambda.invoke(&second);
    assert_eq!(response, r#"{"batchItemFailures":[]}"#, "permanent failures are not reported");
    assert_on_newest(&t, a);
    assert_eq!(group_rows(&t, a)[0].message, "Who are you? What do you want?");
    let b_rows: Vec<Item> = t
        .items()
        .into_iter()
        .filter(|i| s(i, "pk").starts_with("GRP#") && i.get("message_group_uuid").and_then(|v| v.as_s().ok()) == Some(&b.to_string()))
        .collect();
    assert_eq!(b_rows.len(), 2);
    assert!(b_rows.iter().all(|i| s(i, "message") == "Did you get my postcard?"), "b's group rows stay where they were: {b_rows:?}");
    // Each skipped record is in the log with its sequence number and keys.
    let log = lambda.log();
    let of_b = message_records(&second, b);
    assert_eq!(of_b.len(), 2, "b's two messages");
    let of_c = message_records(&second, c);
    for r in of_b.iter().chain(&of_c) {
        let line = format!("messaging-stream: skipped record {} (MSG#", r["dynamodb"]["SequenceNumber"].as_str().unwrap());
        assert!(log.contains(&line), "the log names {line}...:\n{log}");
    }
    assert!(log.contains(&format!("(MSG#{c}, ")), "{log}");
    let of_c_line = log.lines().find(|l| l.contains(&format!("(MSG#{c}, "))).unwrap();
    assert!(of_c_line.contains("attribute message is not a string"), "the log says why c's message is skipped: {of_c_line}");
    assert!(log.contains("11 record(s), 3 message(s), 2 group row(s) moved, 0 failed, 3 skipped, 7 ignored, 0 of another table"), "{log}");
}

/// A record of another table's stream (an event source mapping on the wrong stream) is ignored,
/// logged with its keys and counted, even when it names a conversation of this table (issue 20,
/// fault 10).
#[test]
fn records_of_another_tables_stream_are_ignored_logged_and_counted() {
    let server = DynamoLocal::start();
    let db = TestDb::create();
    let t = TestTable::create(&server, "lambdaarn");
    let a = create_conversation(&t, &db, "bayko", "yaya2devops", "Is this your table?");
    create_message(&t, &db, a, "yaya2devops", "From another table");
    let mut records = Stream::of(&t).records(4);
    let foreign = |arn: &str| arn.replace(&format!("table/{}/", t.name), "table/another-table/");
    for r in &mut records {
        r["eventSourceARN"] = Value::String(foreign(r["eventSourceARN"].as_str().unwrap()));
    }
    let mut lambda = Lambda::start(&bin("messaging-stream"), &t);
    let before = t.snapshot();
    assert_eq!(lambda.invoke(&records), r#"{"batchItemFailures":[]}"#);
    assert_eq!(t.snapshot(), before, "records of another table's stream changed the table");
    let log = lambda.log();
    for r in message_records(&records, a) {
        let line = format!("messaging-stream: ignored record {} (MSG#{a}, ", r["dynamodb"]["SequenceNumber"].as_str().unwrap());
        assert!(log.contains(&line), "the log names {line}...:\n{log}");
    }
    assert!(log.contains("table/another-table/stream/"), "{log}");
    assert!(log.contains("4 record(s), 0 message(s), 0 group row(s) moved, 0 failed, 0 skipped, 0 ignored, 4 of another table"), "{log}");
}

/// DynamoDB Local stopped (on disk, so that it comes back with the table): the batch's message
/// records come back in batchItemFailures; delivered again once the server is back, they apply.
#[test]
fn a_stopped_dynamodb_is_reported_and_the_redelivered_batch_applies() {
    let dir = std::env::temp_dir().join(format!("lambda-ddb-{}", Uuid::new_v4().simple()));
    std::fs::create_dir(&dir).unwrap();
    let port = free_port();
    let mut server = DynamoLocal::start_at(port, Some(&dir));
    let db = TestDb::create();
    let t = TestTable::create(&server, "lambdadown");
    let g = create_conversation(&t, &db, "bayko", "yaya2devops", "Are you there?");
    create_message(&t, &db, g, "yaya2devops", "Yes, but my server is not");
    let records = Stream::of(&t).records(4);
    let messages = sequence_numbers(message_records(&records, g));
    assert_eq!(messages.len(), 2);
    let mut lambda = Lambda::start(&bin("messaging-stream"), &t);

    server.kill();
    let response = lambda.invoke(&records);
    assert_eq!(reported(&response), messages, "the message records are reported: {response}");
    let log = lambda.log();
    assert!(log.contains(&format!("messaging-stream: will be delivered again: conversation {g}: ")), "{log}");
    assert!(log.contains("4 record(s), 2 message(s), 0 group row(s) moved, 2 failed, 0 skipped, 2 ignored, 0 of another table"), "{log}");

    let restarted = DynamoLocal::start_at(port, Some(&dir));
    assert_eq!(lambda.invoke(&records), r#"{"batchItemFailures":[]}"#);
    assert_on_newest(&t, g);
    drop((lambda, t, restarted));
    let _ = std::fs::remove_dir_all(&dir);
}

/// 5 conversations and 40 more messages, alternating between them, in one batch of 55 records
/// (Lambda's default batch size for DynamoDB streams is 100); then the whole batch again.
#[test]
fn a_batch_of_many_records_over_several_conversations_moves_every_group_row_once() {
    let server = DynamoLocal::start();
    let db = TestDb::create();
    let t = TestTable::create(&server, "lambdamany");
    let groups: Vec<Uuid> = (0..5).map(|k| create_conversation(&t, &db, "bayko", "yaya2devops", &format!("conversation {k}"))).collect();
    for i in 0..40 {
        let from = if i % 2 == 0 { "yaya2devops" } else { "bayko" };
        create_message(&t, &db, groups[i % 5], from, &format!("message {i}"));
    }
    let records = Stream::of(&t).records(55);
    let mut lambda = Lambda::start(&bin("messaging-stream"), &t);
    let response = lambda.invoke(&records);
    assert_eq!(response, r#"{"batchItemFailures":[]}"#);
    for (k, g) in groups.iter().enumerate() {
        assert_on_newest(&t, *g);
        assert_eq!(group_rows(&t, *g)[0].message, format!("message {}", 35 + k));
    }
    assert_eq!(t.items().iter().filter(|i| s(i, "pk").starts_with("GRP#")).count(), 10, "no group row lost or doubled");
    let applied = t.snapshot();
    assert_eq!(lambda.invoke(&records), r#"{"batchItemFailures":[]}"#);
    assert_eq!(t.snapshot(), applied, "a redelivered batch changed the table");
    let log = lambda.log();
    assert!(log.contains("55 record(s), 45 message(s), 10 group row(s) moved, 0 failed"), "{log}");
    assert!(log.contains("55 record(s), 45 message(s), 0 group row(s) moved, 0 failed"), "{log}");
}

/// An event that is not a DynamoDB stream batch (no `Records` array: a console's test event, a
/// mapping of another source) is said in one line of the log with what came, escaped and cut,
/// and answered with no failure: nothing to deliver again (issue 20: it answered with 0 records
/// and said nothing of why).
#[test]
fn an_event_that_is_not_a_stream_batch_is_logged_and_answered_with_no_failure() {
    // No request is sent for such an event: a server that never answers would hold it.
    let silent = SilentServer::start();
    let mut lambda = Lambda::start_at(&bin("messaging-stream"), &silent.url(), "cruddur-messages", LOCAL_TIMEOUT);
    let long = json!({ "detail": "x".repeat(1000) });
    let events = [json!({}), json!({"Records": "x"}), json!({"Records": {"0": "\u{1b}]52;c;bad\u{7}\u{9b}"}}), long.clone()];
    for event in &events {
        assert_eq!(lambda.invoke_event(event), r#"{"batchItemFailures":[]}"#, "{event}");
    }
    let log = lambda.log();
    let lines: Vec<&str> = log.lines().filter(|l| l.starts_with("messaging-stream: ")).collect();
    assert_eq!(lines.len(), events.len(), "one line an event: {log}");
    let says = "messaging-stream: the event is not a DynamoDB stream batch (no Records array), nothing to do: ";
    assert_eq!(lines[0], format!("{says}{{}}"));
    assert_eq!(lines[1], format!("{says}{{\"Records\":\"x\"}}"));
    assert_eq!(lines[2], format!("{says}{{\"Records\":{{\"0\":\"\\u001b]52;c;bad\\u0007\\u{{9b}}\"}}}}"), "{log}");
    assert!(
        lines[3].starts_with(&format!("{says}{{\"detail\":\"xxx")) && lines[3].ends_with(&format!("... ({} bytes)", long.to_string().len())),
        "{log}"
    );
    assert!(lines[3].len() < 400, "{}", lines[3]);
    assert!(lines.iter().all(|l| !l.chars().any(char::is_control)), "{lines:?}");
    assert_eq!(silent.accepted(), 0, "no request was sent");
}

/// DDB_LOCAL_TIMEOUT, which every script honours, holds for the bootstrap aimed at a local
/// endpoint too: against a server that never answers, the record is reported after 5 s, and the
/// log names the 5 s (issue 20: the bootstrap ignored it and waited 10 s).
#[test]
fn the_bootstrap_waits_as_long_as_ddb_local_timeout_says() {
    let silent = SilentServer::start();
    let fixture = std::fs::read_to_string(root().join("crates/messaging-stream/tests/fixtures/dynamodb-event.json")).unwrap();
    let fixture: Value = serde_json::from_str(&fixture).unwrap();
    // The fixture's first record: a message INSERT of table cruddur-messages, sequence number 111.
    let record = fixture["Records"][0].clone();
    assert_eq!((record["eventName"].as_str(), record["dynamodb"]["SequenceNumber"].as_str()), (Some("INSERT"), Some("111")));
    let mut lambda = Lambda::start_at(&bin("messaging-stream"), &silent.url(), "cruddur-messages", Duration::from_secs(5));
    let response = lambda.invoke(&[record]);
    assert_eq!(reported(&response), HashSet::from(["111".to_string()]), "{response}");
    let log = lambda.log();
    assert!(log.contains(&format!("DynamoDB at {} did not answer within 5 s (Query)", silent.url())), "{log}");
}

/// The files of a zip: name, unix mode, contents. Enough of the format for cargo-lambda's zips
/// (one file, stored or deflated, no zip64).
fn unzip(zip: &[u8]) -> Vec<(String, u32, Vec<u8>)> {
    let u16_at = |o: usize| u16::from_le_bytes([zip[o], zip[o + 1]]) as usize;
    let u32_at = |o: usize| u32::from_le_bytes(zip[o..o + 4].try_into().unwrap()) as usize;
    let end = (0..=zip.len() - 22).rev().find(|&o| u32_at(o) == 0x0605_4b50).expect("a zip's end of central directory");
    let (count, mut at) = (u16_at(end + 10), u32_at(end + 16));
    let mut files = Vec::new();
    for _ in 0..count {
        assert_eq!(u32_at(at), 0x0201_4b50, "a central directory entry");
        let (method, size, name_len) = (u16_at(at + 10), u32_at(at + 20), u16_at(at + 28));
        let mode = (u32_at(at + 38) >> 16) as u32;
        let name = String::from_utf8(zip[at + 46..at + 46 + name_len].to_vec()).unwrap();
        let local = u32_at(at + 42);
        let start = local + 30 + u16_at(local + 26) + u16_at(local + 28);
        let data = &zip[start..start + size];
        let contents = match method {
            0 => data.to_vec(),
            8 => {
                let mut v = Vec::new();
                flate2::read::DeflateDecoder::new(data).read_to_end(&mut v).expect("inflate");
                v
            }
            m => panic!("{name}: compression method {m} is not stored or deflated"),
        };
        files.push((name, mode, contents));
        at += 46 + name_len + u16_at(at + 30) + u16_at(at + 32);
    }
    files
}

/// The GLIBC symbol versions an ELF file needs (its `.gnu.version_r`, as `readelf -V` lists it).
fn glibc_versions_needed(elf: &Path) -> Vec<(Vec<u32>, String)> {
    let out = Command::new("readelf").args(["-V", "-W"]).arg(elf).output().expect("readelf (binutils)");
    assert!(out.status.success(), "readelf: {}", stderr(&out));
    let text = stdout(&out);
    let needs = text.split("Version needs section").nth(1).expect("the binary has version needs");
    let mut versions: Vec<(Vec<u32>, String)> = needs
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("GLIBC_"))
        .filter_map(|v| v.split('.').map(str::parse).collect::<Result<Vec<u32>, _>>().ok().map(|n| (n, format!("GLIBC_{v}"))))
        .collect();
    versions.sort();
    versions.dedup();
    versions
}

/// bin/lambda/build's zip holds one executable `bootstrap`, an x86_64 ELF that needs no GLIBC
/// symbol newer than 2.34 (Amazon Linux 2023's glibc), so it starts on provided.al2023; and that
/// very `bootstrap` answers an invocation under the Runtime API emulator.
/// A bad setting of the function's environment fails its init with one line in its log, before
/// any Runtime API is asked for an event (none runs here).
#[test]
fn a_bad_environment_fails_the_init_with_one_line() {
    for (var, value, says) in
        [("AWS_ENDPOINT_URL", "ftp://x", "malformed endpoint URL"), ("DDB_MESSAGE_TABLE", "no such table!", "invalid table name")]
    {
        let mut c = clean_cmd("messaging-stream");
        let out = c.env(var, value).env("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9").stdin(Stdio::null()).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{var}={value}: {}", stderr(&out));
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("messaging-stream: ") && err.contains(says) && !err.contains("Input("), "{err}");
    }
}

#[test]
fn bin_lambda_build_zips_a_bootstrap_that_needs_at_most_glibc_2_34_and_runs() {
    // The test binary lives in <target>/release/deps; build into the same target directory.
    let exe = std::env::current_exe().unwrap();
    let target = exe.ancestors().nth(3).expect("the target directory").to_path_buf();
    // Installed here first, so that the script's install never races the other tests' one.
    cargo_lambda_dir();
    // A cold build compiles every dependency again for the zig target (minutes): niced, so that
    // the tests running beside it keep their pace.
    let out = Command::new("nice")
        .args(["-n", "10"])
        .arg(root().join("bin/lambda/build"))
        .env("CARGO_TARGET_DIR", &target)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "bin/lambda/build failed: {}", stderr(&out));
    let zip_path = PathBuf::from(stdout(&out).trim());
    assert_eq!(zip_path, target.join("lambda/messaging-stream/bootstrap.zip"));
    let files = unzip(&std::fs::read(&zip_path).unwrap());
    assert_eq!(files.iter().map(|f| f.0.as_str()).collect::<Vec<_>>(), ["bootstrap"]);
    let (_, mode, elf) = &files[0];
    assert_eq!(mode & 0o170000, 0o100000, "bootstrap is a regular file: mode {mode:o}");
    assert_eq!(mode & 0o111, 0o111, "bootstrap is executable: mode {mode:o}");
    assert_eq!(&elf[..4], b"\x7fELF");
    assert_eq!(u16::from_le_bytes([elf[18], elf[19]]), 62, "an x86_64 executable (e_machine EM_X86_64)");

    let dir = std::env::temp_dir().join(format!("lambda-zip-{}", Uuid::new_v4().simple()));
    std::fs::create_dir(&dir).unwrap();
    let bootstrap = dir.join("bootstrap");
    std::fs::write(&bootstrap, elf).unwrap();
    std::fs::set_permissions(&bootstrap, std::os::unix::fs::PermissionsExt::from_mode(*mode & 0o777)).unwrap();
    let versions = glibc_versions_needed(&bootstrap);
    let (highest, name) = versions.last().expect("bootstrap links glibc");
    eprintln!("{}: bootstrap {} bytes, mode {:o}, highest GLIBC version needed: {name}", zip_path.display(), elf.len(), mode);
    assert!(*highest <= vec![2, 34], "bootstrap needs {name}, newer than Amazon Linux 2023's GLIBC_2.34: {versions:?}");

    // The zig-linked bootstrap itself (not the release binary) on a real record.
    // A server of its own: reliability's bad-input test counts the shared server's tables.
    let server = DynamoLocal::start();
    let db = TestDb::create();
    let t = TestTable::create(&server, "lambdazip");
    let g = create_conversation(&t, &db, "bayko", "yaya2devops", "Packed for Amazon Linux");
    create_message(&t, &db, g, "yaya2devops", "And it runs");
    let records = Stream::of(&t).records(4);
    let mut lambda = Lambda::start(&bootstrap, &t);
    assert_eq!(lambda.invoke(&records), r#"{"batchItemFailures":[]}"#);
    assert_on_newest(&t, g);
    drop(lambda);
    drop(t);
    let _ = std::fs::remove_dir_all(&dir);
}
