//! The `messaging-stream` Lambda (pattern E on AWS): the table's stream invokes it with batches of
//! records; it keeps every conversation's group rows on its newest message through
//! [`ddb_core::stream::handle`] and answers with a partial batch response (enable
//! `ReportBatchItemFailures` on the event source mapping) that names only the records that failed
//! for a passing reason (throttling, a timeout, an unreachable endpoint, a lost race), which
//! Lambda delivers again. A record that no delivery can mend is logged with its keys and its
//! reason, counted, and not reported, so that the shard moves on: one the handler cannot apply
//! (a malformed row, an item too large), a record of another table's stream (its
//! `eventSourceARN`), a record whose shape this function does not know.
//!
//! Build the `bootstrap` for Lambda's `provided.al2023` runtime and deploy it: README.md,
//! 'Pattern E on AWS' (`deploy/messaging-stream.yaml`).

use aws_lambda_events::event::dynamodb::EventRecord;
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use ddb_core::stream::{handle, EventKind, Outcome, Record, Skipped};
use ddb_core::{table, target, Ddb};
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

/// The records of an event, sorted before the handler sees them.
#[derive(Debug, Default)]
struct Sorted {
    /// Records of this table's stream, in the handler's form.
    records: Vec<Record>,
    /// Records of another table's stream (an event source mapping on the wrong stream): ignored.
    foreign: Vec<Skipped>,
    /// Records whose shape this function does not know: skipped.
    unknown: Vec<Skipped>,
}

/// `s` with its control characters escaped: keys and reasons come from the table, and a log
/// line must not carry a raw control character.
fn clean(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() }).collect()
}

/// A record's sequence number (what a partial batch response names), or its event id.
fn sequence_number(raw: &Value) -> String {
    raw["dynamodb"]["SequenceNumber"].as_str().or_else(|| raw["eventID"].as_str()).unwrap_or("?").to_string()
}

/// A record's keys, `(pk, sk)`, as the handler writes them, read from the event as it came.
fn keys(raw: &Value) -> String {
    let key = |k: &str| raw["dynamodb"]["Keys"][k]["S"].as_str().map_or_else(|| "?".to_string(), str::to_string);
    format!("({}, {})", key(table::PK), key(table::SK))
}

/// The table of a stream ARN (`arn:PARTITION:dynamodb:REGION:ACCOUNT:table/NAME/stream/LABEL`).
fn table_of(arn: &str) -> Option<&str> {
    // The resource is the rest after the account: a stream's label, a time, holds colons too.
    let mut parts = arn.strip_prefix("arn:")?.splitn(5, ':');
    let (_partition, service, _region, _account, resource) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let (name, stream) = resource.strip_prefix("table/")?.split_once('/')?;
    (service == "dynamodb" && stream.starts_with("stream/")).then_some(name)
}

/// Sorts the records of `event` for the table `table` (see [`Sorted`]).
fn sort(event: &Value, table: &str) -> Sorted {
    let mut sorted = Sorted::default();
    for raw in event["Records"].as_array().map(Vec::as_slice).unwrap_or_default() {
        let skipped = |reason: String| Skipped { sequence_number: sequence_number(raw), keys: keys(raw), reason };
        match raw["eventSourceARN"].as_str() {
            Some(arn) if table_of(arn) == Some(table) => {}
            Some(arn) => {
                sorted.foreign.push(skipped(format!("a record of another table's stream ({arn}), not of {table}")));
                continue;
            }
            None => {
                sorted.unknown.push(skipped("a record without eventSourceARN: not a record of a DynamoDB stream".into()));
                continue;
            }
        }
        let r: EventRecord = match serde_json::from_value(raw.clone()) {
            Ok(r) => r,
            Err(e) => {
                sorted.unknown.push(skipped(format!("not a DynamoDB stream record: {e}")));
                continue;
            }
        };
        let kind = match r.event_name.as_str() {
            "INSERT" => EventKind::Insert,
            "MODIFY" => EventKind::Modify,
            "REMOVE" => EventKind::Remove,
            other => {
                sorted.unknown.push(skipped(format!("an event name this function does not know: {other:?}")));
                continue;
            }
        };
        let new_image = (!r.change.new_image.is_empty()).then(|| r.change.new_image.into());
        sorted.records.push(Record { sequence_number: sequence_number(raw), kind, new_image });
    }
    sorted
}

/// The log lines of a batch: every record skipped or ignored with its keys and why, the passing
/// failures, the notes, and one summary line.
fn log_lines(total: usize, sorted: &Sorted, outcome: &Outcome) -> Vec<String> {
    let mut lines = Vec::new();
    for s in &sorted.foreign {
        lines.push(format!("ignored record {} {}: {}", s.sequence_number, s.keys, s.reason));
    }
    for s in sorted.unknown.iter().chain(&outcome.skipped) {
        lines.push(format!("skipped record {} {}: {}", s.sequence_number, s.keys, s.reason));
    }
    lines.extend(outcome.errors.iter().map(|e| format!("will be delivered again: {e}")));
    lines.extend(outcome.notes.iter().cloned());
    lines.push(format!(
        "{total} record(s), {} message(s), {} group row(s) moved, {} failed, {} skipped, {} ignored, {} of another table",
        outcome.messages,
        outcome.moved,
        outcome.failed.len(),
        sorted.unknown.len() + outcome.skipped.len(),
        outcome.ignored,
        sorted.foreign.len()
    ));
    lines.into_iter().map(|l| format!("messaging-stream: {}", clean(&l))).collect()
}

/// The partial batch response: the records that failed for a passing reason, and only those.
fn response(failed: Vec<String>) -> DynamoDbEventResponse {
    let mut response = DynamoDbEventResponse::default();
    response.batch_item_failures = failed
        .into_iter()
        .map(|id| {
            let mut f = DynamoDbBatchItemFailure::default();
            f.item_identifier = Some(id);
            f
        })
        .collect();
    response
}

/// The log line of an event that is not a batch of a DynamoDB stream (no `Records` array: a test
/// event, a mapping of another source): what came, escaped and cut to 200 characters.
fn not_a_batch(event: &Value) -> String {
    let got = event.to_string();
    let shown: String = got.chars().take(200).collect();
    let more = if shown.len() < got.len() { format!("... ({} bytes)", got.len()) } else { String::new() };
    clean(&format!("messaging-stream: the event is not a DynamoDB stream batch (no Records array), nothing to do: {shown}{more}"))
}

/// One invocation: the batch sorted, applied, logged, answered. An event that is not a batch is
/// logged as such and answered with no failure: there is nothing to deliver again.
async fn apply(ddb: &Ddb, table: &str, event: &Value) -> DynamoDbEventResponse {
    if !event["Records"].is_array() {
        eprintln!("{}", not_a_batch(event));
        return response(Vec::new());
    }
    let sorted = sort(event, table);
    let outcome = handle(ddb, &sorted.records).await;
    let total = event["Records"].as_array().map_or(0, Vec::len);
    for line in log_lines(total, &sorted, &outcome) {
        eprintln!("{line}");
    }
    response(outcome.failed)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    // The table from DDB_MESSAGE_TABLE (as the course's Lambda reads it), the region and the
    // credentials from the Lambda environment; the SDK's endpoint variables are honoured (tests).
    let name = std::env::var(table::TABLE_ENV).unwrap_or_else(|_| table::TABLE_NAME.to_string());
    let connected = async {
        let resolved = target::in_lambda(|k| std::env::var(k).ok())?;
        Ddb::connect(&resolved, &name).await
    }
    .await;
    // A bad setting of the function's environment: one line in its log (not a debug dump), and
    // the init fails.
    let (ddb, _) = connected.unwrap_or_else(|e| {
        eprintln!("messaging-stream: {e}");
        std::process::exit(1)
    });
    let (ddb, name) = (&ddb, name.as_str());
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<Value>| async move { Ok::<_, lambda_runtime::Error>(apply(ddb, name, &event.payload).await) },
    ))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A DynamoDB stream event as AWS sends it (the shape of the Lambda documentation's example).
    const FIXTURE: &str = include_str!("../tests/fixtures/dynamodb-event.json");

    fn fixture() -> Value {
        serde_json::from_str(FIXTURE).expect("the fixture is JSON")
    }

    #[test]
    fn an_aws_event_deserialises_into_handler_records() {
        let sorted = sort(&fixture(), "cruddur-messages");
        assert!(sorted.foreign.is_empty() && sorted.unknown.is_empty(), "{sorted:?}");
        let records = sorted.records;
        assert_eq!(records.len(), 3);
        assert_eq!(records[0].kind, EventKind::Insert);
        assert_eq!(records[0].sequence_number, "111");
        let image = records[0].new_image.as_ref().unwrap();
        assert_eq!(image["pk"].as_s().unwrap(), "MSG#5ae290ed-55d1-47a0-bc6d-fe2bc2700399");
        assert_eq!(image["message"].as_s().unwrap(), "Hello from the stream");
        assert_eq!(records[1].kind, EventKind::Modify);
        assert_eq!(records[2].kind, EventKind::Remove);
        assert!(records[2].new_image.is_none());
    }

    #[test]
    fn records_of_another_tables_stream_are_set_aside_with_their_keys() {
        let mut event = fixture();
        event["Records"][1]["eventSourceARN"] =
            json!("arn:aws:dynamodb:ca-central-1:123456789012:table/cruddur-messages-old/stream/2026-11-25T00:00:00.000");
        event["Records"][2]["eventSourceARN"] = json!("arn:aws:kinesis:ca-central-1:123456789012:stream/cruddur-messages");
        let sorted = sort(&event, "cruddur-messages");
        assert_eq!(sorted.records.len(), 1);
        assert_eq!(sorted.foreign.len(), 2);
        let first = &sorted.foreign[0];
        assert_eq!(first.keys, "(GRP#2b4a0b7e-1c55-4c7c-bb49-5f4d3a9e8c21, 2026-11-25T09:20:00.123456+00:00)");
        assert!(first.reason.contains("table/cruddur-messages-old/stream") && first.reason.ends_with("not of cruddur-messages"), "{first:?}");
        // The same records on a table of another name are all foreign.
        assert_eq!(sort(&fixture(), "cruddur").foreign.len(), 3);
    }

    #[test]
    fn stream_arns_name_their_table() {
        assert_eq!(
            table_of("arn:aws:dynamodb:ca-central-1:123456789012:table/cruddur-messages/stream/2026-11-25T00:00:00.000"),
            Some("cruddur-messages")
        );
        assert_eq!(table_of("arn:aws-cn:dynamodb:cn-north-1:123456789012:table/a.b_c-d/stream/x"), Some("a.b_c-d"));
        assert_eq!(table_of("arn:aws:dynamodb:ddblocal:000000000000:table/t/stream/2026-12-01T00:00:00.000"), Some("t"));
        for not in
            ["", "cruddur-messages", "arn:aws:dynamodb:r:1:table/t", "arn:aws:dynamodb:r:1:table/t/index/i", "arn:aws:kinesis:r:1:table/t/stream/x"]
        {
            assert_eq!(table_of(not), None, "{not}");
        }
    }

    #[test]
    fn unknown_shapes_are_skipped_and_the_rest_goes_on() {
        let mut event = fixture();
        event["Records"][0]["eventName"] = json!("TTL_EXPIRE");
        event["Records"][1]["dynamodb"]["NewImage"] = json!("not an image");
        event["Records"][2].as_object_mut().unwrap().remove("eventSourceARN");
        event["Records"].as_array_mut().unwrap().push(fixture()["Records"][0].clone());
        let sorted = sort(&event, "cruddur-messages");
        assert_eq!(sorted.records.len(), 1, "{sorted:?}");
        let reasons: Vec<&str> = sorted.unknown.iter().map(|s| s.reason.as_str()).collect();
        assert_eq!(reasons.len(), 3, "{reasons:?}");
        assert!(reasons[0].contains("TTL_EXPIRE"), "{reasons:?}");
        assert!(reasons[1].starts_with("not a DynamoDB stream record"), "{reasons:?}");
        assert!(reasons[2].contains("without eventSourceARN"), "{reasons:?}");
        // Not an event of a stream at all: nothing to do.
        let none = sort(&json!({"hello": "world"}), "cruddur-messages");
        assert!(none.records.is_empty() && none.unknown.is_empty() && none.foreign.is_empty());
    }

    #[test]
    fn the_log_names_each_set_aside_record_and_escapes_control_characters() {
        let mut event = fixture();
        event["Records"][0]["dynamodb"]["Keys"]["sk"]["S"] = json!("\u{1b}]52;c;bad\u{7}");
        event["Records"][0]["eventSourceARN"] = json!("arn:aws:dynamodb:r:1:table/other/stream/x");
        let sorted = sort(&event, "cruddur-messages");
        let outcome = Outcome {
            skipped: vec![Skipped { sequence_number: "222".into(), keys: "(MSG#x, y)".into(), reason: "a malformed row\r".into() }],
            ignored: 1,
            ..Outcome::default()
        };
        let lines = log_lines(3, &sorted, &outcome);
        assert!(
            lines[0].starts_with("messaging-stream: ignored record 111 (MSG#5ae290ed-55d1-47a0-bc6d-fe2bc2700399, \\u{1b}]52;c;bad\\u{7}): a record of another table's stream"),
            "{lines:?}"
        );
        assert_eq!(lines[1], "messaging-stream: skipped record 222 (MSG#x, y): a malformed row\\r");
        assert_eq!(
            lines.last().unwrap(),
            "messaging-stream: 3 record(s), 0 message(s), 0 group row(s) moved, 0 failed, 1 skipped, 1 ignored, 1 of another table"
        );
        assert!(lines.iter().all(|l| !l.chars().any(char::is_control)), "{lines:?}");
    }

    #[test]
    fn an_event_that_is_not_a_batch_is_one_escaped_bounded_line() {
        assert_eq!(
            not_a_batch(&json!({"Records": "x"})),
            r#"messaging-stream: the event is not a DynamoDB stream batch (no Records array), nothing to do: {"Records":"x"}"#
        );
        let hostile = json!({"a": "\u{1b}]52;c;bad\u{7}\u{9b}", "b": "日".repeat(300)});
        let line = not_a_batch(&hostile);
        assert!(!line.chars().any(char::is_control), "{line}");
        assert!(line.ends_with(&format!("... ({} bytes)", hostile.to_string().len())), "{line}");
        assert!(line.chars().count() < 400, "{line}");
    }

    #[test]
    fn only_passing_failures_become_the_partial_batch_response() {
        let json = serde_json::to_value(response(vec!["111".into()])).unwrap();
        assert_eq!(json, json!({"batchItemFailures": [{"itemIdentifier": "111"}]}));
        assert_eq!(serde_json::to_value(response(Vec::new())).unwrap(), json!({"batchItemFailures": []}));
    }
}
