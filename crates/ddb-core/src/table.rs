//! The `cruddur-messages` table: its names, keys and index, defined once, and the calls that
//! create, describe, list and delete tables.

use crate::error::{input, quoted, Error, Result};
use crate::Ddb;
use aws_sdk_dynamodb::client::Waiters;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType, ProvisionedThroughput,
    ScalarAttributeType, StreamSpecification, StreamViewType, TableDescription, TableStatus,
};
use std::time::Duration;

/// The course's table name.
pub const TABLE_NAME: &str = "cruddur-messages";
/// Environment variable that overrides the table name (as `--table` does).
pub const TABLE_ENV: &str = "DDB_MESSAGE_TABLE";
/// Partition key attribute.
pub const PK: &str = "pk";
/// Sort key attribute.
pub const SK: &str = "sk";
/// The index that finds every group row of a conversation (pattern E).
pub const GSI_NAME: &str = "message-group-sk-index";
/// Partition key of [`GSI_NAME`].
pub const GSI_PK: &str = "message_group_uuid";
/// Prefix of message rows' partition key: `MSG#{message_group_uuid}`.
pub const MSG_PREFIX: &str = "MSG#";
/// Prefix of message-group rows' partition key: `GRP#{my_user_uuid}`.
pub const GRP_PREFIX: &str = "GRP#";

/// How the table pays for throughput.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Billing {
    /// Fixed read and write capacity units (the course: 5 and 5).
    Provisioned {
        /// Read capacity units.
        read: i64,
        /// Write capacity units.
        write: i64,
    },
    /// Pay per request.
    OnDemand,
}

impl Default for Billing {
    fn default() -> Self {
        Billing::Provisioned { read: 5, write: 5 }
    }
}

/// Checks a table name against DynamoDB's rules before any request is sent.
pub fn validate_table_name(name: &str) -> Result<()> {
    let len = name.chars().count();
    if !(3..=255).contains(&len) {
        return Err(input(format!("invalid table name {}: a table name has 3 to 255 characters, this one has {len}", shorten(name))));
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))) {
        return Err(input(format!("invalid table name {}: {} is not allowed (only a-z A-Z 0-9 _ - .)", shorten(name), quoted(&c.to_string()))));
    }
    Ok(())
}

fn shorten(s: &str) -> String {
    if s.chars().count() > 40 {
        format!("{}...", quoted(&s.chars().take(40).collect::<String>()))
    } else {
        quoted(s)
    }
}

/// The table's keys: `pk` (HASH), `sk` (RANGE).
const KEYS: [(&str, KeyType); 2] = [(PK, KeyType::Hash), (SK, KeyType::Range)];
/// The keys of [`GSI_NAME`]: `message_group_uuid` (HASH), `sk` (RANGE).
const GSI_KEYS: [(&str, KeyType); 2] = [(GSI_PK, KeyType::Hash), (SK, KeyType::Range)];

fn key_schema(keys: &[(&str, KeyType)]) -> Vec<KeySchemaElement> {
    keys.iter()
        .map(|(name, kind)| KeySchemaElement::builder().attribute_name(*name).key_type(kind.clone()).build().expect("name and type set"))
        .collect()
}

fn string_attr(name: &str) -> AttributeDefinition {
    AttributeDefinition::builder().attribute_name(name).attribute_type(ScalarAttributeType::S).build().expect("name and type set")
}

/// Creates the table of SPEC.md and waits until it is ACTIVE. [`Error::TableExists`] when it
/// is already there (nothing is changed then).
pub async fn create(ddb: &Ddb, billing: Billing, max_wait: Duration) -> Result<TableDescription> {
    let throughput = |b: Billing| match b {
        Billing::Provisioned { read, write } => {
            Some(ProvisionedThroughput::builder().read_capacity_units(read).write_capacity_units(write).build().expect("units set"))
        }
        Billing::OnDemand => None,
    };
    let gsi = GlobalSecondaryIndex::builder()
        .index_name(GSI_NAME)
        .set_key_schema(Some(key_schema(&GSI_KEYS)))
        .projection(Projection::builder().projection_type(ProjectionType::All).build())
        .set_provisioned_throughput(throughput(billing))
        .build()
        .expect("index fields set");
    let created = ddb
        .client
        .create_table()
        .table_name(&ddb.table)
        .attribute_definitions(string_attr(PK))
        .attribute_definitions(string_attr(SK))
        .attribute_definitions(string_attr(GSI_PK))
        .set_key_schema(Some(key_schema(&KEYS)))
        .global_secondary_indexes(gsi)
        .billing_mode(match billing {
            Billing::Provisioned { .. } => BillingMode::Provisioned,
            Billing::OnDemand => BillingMode::PayPerRequest,
        })
        .set_provisioned_throughput(throughput(billing))
        .stream_specification(
            StreamSpecification::builder().stream_enabled(true).stream_view_type(StreamViewType::NewImage).build().expect("stream enabled set"),
        )
        .send()
        .await
        .map_err(|e| Error::from_sdk(e, &ddb.ctx("CreateTable")))?;
    // DynamoDB Local answers ACTIVE at once: no waiting, no second call.
    if let Some(t) = created.table_description.filter(|t| t.table_status() == Some(&TableStatus::Active)) {
        return Ok(t);
    }
    let last = ddb.client.wait_until_table_exists().table_name(&ddb.table).wait(max_wait).await.map_err(|e| Error::Timeout {
        what: format!("table {} was created but did not become ACTIVE", ddb.table),
        waited: max_wait,
        cause: Some(e.to_string()),
    })?;
    match last.into_result().ok().and_then(|out| out.table) {
        Some(t) => Ok(t),
        None => describe(ddb).await,
    }
}

/// DescribeTable; [`Error::TableMissing`] when the table is not there.
pub async fn describe(ddb: &Ddb) -> Result<TableDescription> {
    let out = ddb.client.describe_table().table_name(&ddb.table).send().await.map_err(|e| Error::from_sdk(e, &ddb.ctx("DescribeTable")))?;
    out.table.ok_or_else(|| Error::TableMissing { table: ddb.table.clone(), target: ddb.target.label() })
}

/// Deletes the table and waits until it is gone.
pub async fn delete(ddb: &Ddb, max_wait: Duration) -> Result<()> {
    ddb.client.delete_table().table_name(&ddb.table).send().await.map_err(|e| Error::from_sdk(e, &ddb.ctx("DeleteTable")))?;
    ddb.client.wait_until_table_not_exists().table_name(&ddb.table).wait(max_wait).await.map_err(|e| Error::Timeout {
        what: format!("table {} is being deleted but was still there", ddb.table),
        waited: max_wait,
        cause: Some(e.to_string()),
    })?;
    Ok(())
}

/// Every table name at the target, all pages (ListTables returns at most 100 a page).
pub async fn list(ddb: &Ddb) -> Result<Vec<String>> {
    ddb.client.list_tables().into_paginator().items().send().try_collect().await.map_err(|e| Error::from_sdk(e, &ddb.ctx_no_table("ListTables")))
}

/// What schema-load found or made: the table's description, whether it was there already, and
/// how it differs from ours (see [`differences`]).
#[derive(Debug, Clone)]
pub struct Ensured {
    /// The table as DynamoDB describes it.
    pub description: TableDescription,
    /// It was there before: nothing was changed.
    pub existed: bool,
    /// How an existing table differs from ours; empty when it is ours.
    pub differences: Vec<String>,
}

impl Ensured {
    /// [`description_json`] with `existed` and `differences`.
    pub fn json(&self) -> serde_json::Value {
        let mut v = description_json(&self.description);
        v["existed"] = self.existed.into();
        v["differences"] = self.differences.clone().into();
        v
    }

    /// [`Error::TableShape`] when the table differs from ours (it cannot be used as it is).
    pub fn check(&self, ddb: &Ddb) -> Result<()> {
        if self.differences.is_empty() {
            return Ok(());
        }
        Err(Error::TableShape { table: ddb.table.clone(), target: ddb.target.label(), differences: self.differences.join("; ") })
    }
}

/// Creates the table (see [`create`]); when a table of its name is there, describes it and
/// compares it with ours instead. Nothing existing is changed.
pub async fn ensure(ddb: &Ddb, billing: Billing, max_wait: Duration) -> Result<Ensured> {
    match create(ddb, billing, max_wait).await {
        Ok(description) => Ok(Ensured { description, existed: false, differences: Vec::new() }),
        Err(Error::TableExists { .. }) => {
            let description = describe(ddb).await?;
            Ok(Ensured { differences: differences(&description), description, existed: true })
        }
        Err(e) => Err(e),
    }
}

/// How a table differs from ours in what the scripts rely on: its keys and their types, the
/// index [`GSI_NAME`] (keys, projection ALL) and a stream with new images (pattern E). Billing
/// and capacity are the user's choice and not compared.
pub fn differences(t: &TableDescription) -> Vec<String> {
    let shown =
        |ks: &[KeySchemaElement]| ks.iter().map(|k| format!("{} ({})", k.attribute_name(), k.key_type().as_str())).collect::<Vec<_>>().join(", ");
    let same = |ks: &[KeySchemaElement], want: &[(&str, KeyType)]| {
        ks.len() == want.len() && ks.iter().zip(want).all(|(k, (name, kind))| k.attribute_name() == *name && k.key_type() == kind)
    };
    let mut out = Vec::new();
    if !same(t.key_schema(), &KEYS) {
        out.push(format!("its keys are {}, ours {}", shown(t.key_schema()), shown(&key_schema(&KEYS))));
    }
    for a in t.attribute_definitions() {
        if [PK, SK, GSI_PK].contains(&a.attribute_name()) && a.attribute_type() != &ScalarAttributeType::S {
            out.push(format!("attribute {} is of type {}, ours S", a.attribute_name(), a.attribute_type().as_str()));
        }
    }
    match t.global_secondary_indexes().iter().find(|g| g.index_name() == Some(GSI_NAME)) {
        None => out.push(format!("it has no index {GSI_NAME}")),
        Some(g) => {
            if !same(g.key_schema(), &GSI_KEYS) {
                out.push(format!("index {GSI_NAME} has keys {}, ours {}", shown(g.key_schema()), shown(&key_schema(&GSI_KEYS))));
            }
            if let Some(p) = g.projection().and_then(|p| p.projection_type()).filter(|p| **p != ProjectionType::All) {
                out.push(format!("index {GSI_NAME} projects {}, ours ALL", p.as_str()));
            }
        }
    }
    let view = t.stream_specification().filter(|s| s.stream_enabled()).and_then(|s| s.stream_view_type());
    match view {
        Some(StreamViewType::NewImage | StreamViewType::NewAndOldImages) => {}
        Some(v) => out.push(format!("its stream carries {}, ours NEW_IMAGE", v.as_str())),
        None => out.push("it has no stream, ours NEW_IMAGE".to_string()),
    }
    out
}

/// A short human summary of a table description.
pub fn summary(t: &TableDescription) -> String {
    let keys =
        |ks: &[KeySchemaElement]| ks.iter().map(|k| format!("{} ({})", k.attribute_name(), k.key_type().as_str())).collect::<Vec<_>>().join(", ");
    let mut out = format!(
        "table:   {} ({})\nkeys:    {}\n",
        t.table_name().unwrap_or("?"),
        t.table_status().map(|s| s.as_str()).unwrap_or("?"),
        keys(t.key_schema())
    );
    for g in t.global_secondary_indexes() {
        out.push_str(&format!(
            "index:   {}: {}, projection {}\n",
            g.index_name().unwrap_or("?"),
            keys(g.key_schema()),
            g.projection().and_then(|p| p.projection_type()).map(|p| p.as_str()).unwrap_or("?")
        ));
    }
    match t.provisioned_throughput() {
        Some(p) if p.read_capacity_units().unwrap_or(0) > 0 => out.push_str(&format!(
            "billing: PROVISIONED, {} RCU / {} WCU\n",
            p.read_capacity_units().unwrap_or(0),
            p.write_capacity_units().unwrap_or(0)
        )),
        _ => out.push_str("billing: PAY_PER_REQUEST\n"),
    }
    let stream = t
        .stream_specification()
        .filter(|s| s.stream_enabled())
        .and_then(|s| s.stream_view_type())
        .map(|v| v.as_str().to_string())
        .unwrap_or_else(|| "off".into());
    out.push_str(&format!("stream:  {stream}"));
    if let Some(arn) = t.latest_stream_arn() {
        out.push_str(&format!(" ({arn})"));
    }
    out
}

/// The parts of a table description worth showing, as JSON in the API's own names.
pub fn description_json(t: &TableDescription) -> serde_json::Value {
    use serde_json::json;
    let keys = |ks: &[KeySchemaElement]| {
        ks.iter().map(|k| json!({"AttributeName": k.attribute_name(), "KeyType": k.key_type().as_str()})).collect::<Vec<_>>()
    };
    let throughput = |p: Option<&aws_sdk_dynamodb::types::ProvisionedThroughputDescription>| {
        p.map(|p| json!({"ReadCapacityUnits": p.read_capacity_units(), "WriteCapacityUnits": p.write_capacity_units()}))
    };
    json!({
        "TableName": t.table_name(),
        "TableStatus": t.table_status().map(|s| s.as_str()),
        "TableArn": t.table_arn(),
        "CreationDateTime": t.creation_date_time().map(|d| d.to_string()),
        "AttributeDefinitions": t.attribute_definitions().iter()
            .map(|a| json!({"AttributeName": a.attribute_name(), "AttributeType": a.attribute_type().as_str()}))
            .collect::<Vec<_>>(),
        "KeySchema": keys(t.key_schema()),
        "BillingModeSummary": t.billing_mode_summary().and_then(|b| b.billing_mode()).map(|m| json!({"BillingMode": m.as_str()})),
        "ProvisionedThroughput": throughput(t.provisioned_throughput()),
        "GlobalSecondaryIndexes": t.global_secondary_indexes().iter().map(|g| json!({
            "IndexName": g.index_name(),
            "KeySchema": keys(g.key_schema()),
            "Projection": {"ProjectionType": g.projection().and_then(|p| p.projection_type()).map(|p| p.as_str())},
            "IndexStatus": g.index_status().map(|s| s.as_str()),
            "ProvisionedThroughput": throughput(g.provisioned_throughput()),
        })).collect::<Vec<_>>(),
        "StreamSpecification": t.stream_specification().map(|s| json!({
            "StreamEnabled": s.stream_enabled(),
            "StreamViewType": s.stream_view_type().map(|v| v.as_str()),
        })),
        "LatestStreamArn": t.latest_stream_arn(),
        "ItemCount": t.item_count(),
        "TableSizeBytes": t.table_size_bytes(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names() {
        assert!(validate_table_name("cruddur-messages").is_ok());
        assert!(validate_table_name("a.b_c-D9").is_ok());
        assert!(validate_table_name(&"x".repeat(255)).is_ok());
        let long = validate_table_name(&"x".repeat(256)).unwrap_err().to_string();
        assert!(long.contains("3 to 255") && long.contains("256"), "{long}");
        assert!(validate_table_name("ab").unwrap_err().to_string().contains("has 2"));
        let bad = validate_table_name("my table").unwrap_err().to_string();
        assert!(bad.contains(r#"" " is not allowed"#), "{bad}");
        assert!(validate_table_name("bad/name").is_err());
        assert!(validate_table_name("tablé").is_err());
    }
}
