//! The `messaging-stream` Lambda (pattern E on AWS): the table's stream invokes it with batches of
//! records; it keeps every conversation's group rows on its newest message through
//! [`ddb_core::stream::handle`] and reports the records it could not apply as a partial batch
//! response (enable `ReportBatchItemFailures` on the event source mapping), so none is dropped.
//!
//! Build the `bootstrap` for Lambda's `provided.al2023` runtime: see README.md, 'Pattern E on AWS'.

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use ddb_core::stream::{handle, EventKind, Record};
use ddb_core::{table, target, Ddb};
use lambda_runtime::{service_fn, LambdaEvent};

/// A record of the Lambda event in the handler's form; `None` for event names it does not know.
fn record(r: &EventRecord) -> Option<Record> {
    let kind = match r.event_name.as_str() {
        "INSERT" => EventKind::Insert,
        "MODIFY" => EventKind::Modify,
        "REMOVE" => EventKind::Remove,
        _ => return None,
    };
    Some(Record {
        sequence_number: r.change.sequence_number.clone().unwrap_or_else(|| r.event_id.clone()),
        kind,
        new_image: (!r.change.new_image.is_empty()).then(|| r.change.new_image.clone().into()),
    })
}

/// The handler's answer for a batch.
async fn apply(ddb: &Ddb, event: &Event) -> DynamoDbEventResponse {
    let records: Vec<Record> = event.records.iter().filter_map(record).collect();
    let outcome = handle(ddb, &records).await;
    for e in &outcome.errors {
        eprintln!("messaging-stream: {e}");
    }
    for n in &outcome.notes {
        eprintln!("messaging-stream: {n}");
    }
    println!(
        "messaging-stream: {} record(s), {} message(s), {} group row(s) moved, {} failed",
        records.len(),
        outcome.messages,
        outcome.moved,
        outcome.failed.len()
    );
    let mut response = DynamoDbEventResponse::default();
    response.batch_item_failures = outcome
        .failed
        .into_iter()
        .map(|id| {
            let mut f = DynamoDbBatchItemFailure::default();
            f.item_identifier = Some(id);
            f
        })
        .collect();
    response
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
    let ddb = &ddb;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Event>| async move { Ok::<_, lambda_runtime::Error>(apply(ddb, &event.payload).await) }))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A DynamoDB stream event as AWS sends it (the shape of the Lambda documentation's example).
    const FIXTURE: &str = include_str!("../tests/fixtures/dynamodb-event.json");

    #[test]
    fn an_aws_event_deserialises_into_handler_records() {
        let event: Event = serde_json::from_str(FIXTURE).expect("the fixture is a DynamoDB event");
        let records: Vec<Record> = event.records.iter().filter_map(record).collect();
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
    fn failures_become_a_partial_batch_response() {
        let mut r = DynamoDbEventResponse::default();
        let mut f = DynamoDbBatchItemFailure::default();
        f.item_identifier = Some("111".into());
        r.batch_item_failures.push(f);
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json, serde_json::json!({"batchItemFailures": [{"itemIdentifier": "111"}]}));
    }
}
