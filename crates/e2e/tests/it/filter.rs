//! The event source mapping's filter and the handler agree: real stream records of DynamoDB Local
//! (a seed with its lock, patterns C and D, pattern E's own moves, a message deleted, a message and
//! a group row overwritten), wrapped as Lambda delivers them, go through the FilterCriteria of
//! deploy/messaging-stream.yaml, matched by moto's implementation of Lambda's filter-pattern
//! syntax (deploy/filter_match.py, run by the Python of `.local/moto`), and through
//! `ddb_core::stream::invokes`, the handler's own predicate. Each record gets the same answer
//! from both: the filter drops nothing that the handler acts on, and lets through nothing that it
//! would only ignore.

use super::deploy::template;
use super::lambda::{create_conversation, create_message, Stream};
use aws_sdk_dynamodb::types::AttributeValue;
use ddb_core::records::Item;
use ddb_core::stream::{handle, invokes, EventKind, Record};
use e2e::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};

/// Whether Lambda would deliver each record, by moto's matcher and the template's filter.
fn filter(records: &[Value]) -> Vec<bool> {
    let python = root().join(".local/moto/bin/python");
    if !python.exists() {
        install("install-moto");
    }
    let mut child = Command::new(python)
        .arg(root().join("deploy/filter_match.py"))
        .arg(template())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("deploy/filter_match.py");
    child.stdin.take().unwrap().write_all(&serde_json::to_vec(records).unwrap()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "deploy/filter_match.py: {}", stderr(&out));
    serde_json::from_slice(&out.stdout).expect("a JSON array of booleans")
}

/// A record as Lambda delivers it, in the handler's form (as the Lambda converts it).
fn handler_record(r: &Value) -> Record {
    let kind = match r["eventName"].as_str() {
        Some("INSERT") => EventKind::Insert,
        Some("MODIFY") => EventKind::Modify,
        Some("REMOVE") => EventKind::Remove,
        other => panic!("event name {other:?}"),
    };
    let new_image = r["dynamodb"].get("NewImage").map(|image| {
        let item: serde_dynamo::Item = serde_json::from_value(image.clone()).expect("a typed image");
        Item::from(item)
    });
    Record { sequence_number: r["dynamodb"]["SequenceNumber"].as_str().unwrap().to_string(), kind, new_image }
}

/// A record's kind for the table: the row type (by its pk's prefix) and the event.
fn kind(r: &Value) -> String {
    let pk = r["dynamodb"]["Keys"]["pk"]["S"].as_str().unwrap();
    let row = pk.split_inclusive('#').next().unwrap_or(pk);
    format!("{row} {}", r["eventName"].as_str().unwrap())
}

#[test]
fn the_filter_and_the_handler_agree_on_every_kind_of_stream_record() {
    let server = DynamoLocal::start();
    let db = TestDb::create();
    let t = TestTable::create(&server, "filter");
    // The course seed (its lock's rows, group rows, messages), patterns D and C.
    let out = t.seed(&db, &[]);
    assert!(out.status.success(), "seed: {}", stderr(&out));
    let g = create_conversation(&t, &db, "bayko", "yaya2devops", "Have you seen Babylon 5?");
    create_message(&t, &db, g, "yaya2devops", "Every season, twice");
    let messages = t.messages().len();
    let stream = Stream::of(&t);
    // Pattern E's moves, as the Lambda and the worker write them (group rows removed and put).
    let written = stream.until(|r| r.iter().filter(|r| kind(r) == "MSG# INSERT").count() >= messages);
    let outcome = block_on(handle(&t.ddb, &written.iter().map(handler_record).collect::<Vec<_>>()));
    assert!(outcome.moved == 2 && outcome.failed.is_empty() && outcome.skipped.is_empty(), "{outcome:?}");
    // A message deleted, a message and a group row overwritten (MODIFY), then a last row that
    // tells the reader below that the stream holds everything before it.
    let message = t.messages().into_iter().find(|m| m.message_group_uuid == g).expect("a message of g");
    block_on(t.client().delete_item().table_name(&t.name).set_key(Some(ddb_core::records::key_of(&message.to_item()))).send()).unwrap();
    let mut changed = t.messages()[0].to_item();
    changed.insert("message".into(), AttributeValue::S("edited".into()));
    block_on(t.client().put_item().table_name(&t.name).set_item(Some(changed)).send()).unwrap();
    let mut row = t.group_rows()[0].to_item();
    row.insert("user_display_name".into(), AttributeValue::S("Renamed".into()));
    block_on(t.client().put_item().table_name(&t.name).set_item(Some(row)).send()).unwrap();
    let mut last = Item::new();
    last.insert("pk".into(), AttributeValue::S("END#filter".into()));
    last.insert("sk".into(), AttributeValue::S("end".into()));
    block_on(t.client().put_item().table_name(&t.name).set_item(Some(last)).send()).unwrap();
    let records = stream.until(|r| r.iter().any(|r| kind(r) == "END# INSERT"));

    let delivered = filter(&records);
    assert_eq!(delivered.len(), records.len());
    // kind -> (records, let through by the filter, acted on by the handler)
    let mut table: BTreeMap<String, (usize, usize, usize)> = BTreeMap::new();
    let mut disagree = Vec::new();
    for (r, &passes) in records.iter().zip(&delivered) {
        let acts = invokes(&handler_record(r));
        let e = table.entry(kind(r)).or_default();
        e.0 += 1;
        e.1 += usize::from(passes);
        e.2 += usize::from(acts);
        if passes != acts {
            disagree.push(format!("{}: filter {passes}, invokes {acts}: {r}", kind(r)));
        }
    }
    let mut printed = format!("{:<16}{:>8}{:>10}{:>10}{:>8}\n", "record", "count", "filter", "invokes", "agree");
    for (k, (n, passes, acts)) in &table {
        let agree = records.iter().zip(&delivered).filter(|(r, &p)| kind(r) == *k && p == invokes(&handler_record(r))).count();
        printed += &format!("{k:<16}{n:>8}{passes:>10}{acts:>10}{agree:>8}\n");
    }
    eprintln!("the filter and the handler on {} real stream records:\n{printed}", records.len());
    assert!(disagree.is_empty(), "the filter and the handler disagree:\n{}", disagree.join("\n"));
    for k in ["MSG# INSERT", "MSG# REMOVE", "MSG# MODIFY", "GRP# INSERT", "GRP# REMOVE", "GRP# MODIFY", "LOCK# INSERT", "LOCK# REMOVE", "END# INSERT"]
    {
        assert!(table.contains_key(k), "no {k} record among them:\n{printed}");
    }
    let (n, passes, _) = table["MSG# INSERT"];
    assert_eq!((n, passes), (messages, messages), "every message INSERT passes");
    assert_eq!(table.iter().filter(|(k, _)| k.as_str() != "MSG# INSERT").map(|(_, v)| v.1).sum::<usize>(), 0, "nothing else passes");
}
