//! Reading a conversation: its partitions, its group rows through the index, its newest message.

use crate::error::{Error, Result};
use crate::records::{Item, Key, MessageGroupRow, MessageRow};
use crate::table::{GSI_NAME, GSI_PK, PK, SK};
use crate::Ddb;
use aws_sdk_dynamodb::types::{AttributeValue, Select};
use futures::{Stream, StreamExt, TryStreamExt};
use uuid::Uuid;

/// A query of partition `pk`, strongly consistent.
fn query_partition(ddb: &Ddb, pk: String) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder {
    ddb.client
        .query()
        .table_name(&ddb.table)
        .key_condition_expression("#pk = :pk")
        .expression_attribute_names("#pk", PK)
        .expression_attribute_values(":pk", AttributeValue::S(pk))
        .consistent_read(true)
}

/// The keys of every item of partition `pk`, page by page (strongly consistent).
pub fn keys_of_partition(ddb: &Ddb, pk: String) -> impl Stream<Item = Result<Item>> + '_ {
    let pages = query_partition(ddb, pk).projection_expression("#pk, #sk").expression_attribute_names("#sk", SK).into_paginator().items().send();
    crate::stream_of(pages).map(|r| r.map_err(|e| Error::from_sdk(e, &ddb.ctx("Query"))))
}

/// Every item of partition `pk`, page by page (strongly consistent).
pub fn items_of_partition(ddb: &Ddb, pk: String) -> impl Stream<Item = Result<Item>> + '_ {
    let pages = query_partition(ddb, pk).into_paginator().items().send();
    crate::stream_of(pages).map(|r| r.map_err(|e| Error::from_sdk(e, &ddb.ctx("Query"))))
}

/// How many items partition `pk` holds (count queries, all pages).
pub async fn count_partition(ddb: &Ddb, pk: String) -> Result<u64> {
    let pages = query_partition(ddb, pk).select(Select::Count).into_paginator().send();
    crate::stream_of(pages)
        .map(|p| p.map(|p| p.count() as u64).map_err(|e| Error::from_sdk(e, &ddb.ctx("Query"))))
        .try_fold(0, |n, c| async move { Ok(n + c) })
        .await
}

/// A row as read from the table: its typed form, and its key as stored (a row written by another
/// client may spell its time otherwise than [`crate::records::format_ts`]; deletes need the key
/// as it is).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored<T> {
    /// The key as stored.
    pub key: Key,
    /// The row.
    pub row: T,
}

/// Reads a stored row: its key and its typed form.
fn stored<T>(item: &Item, read: impl Fn(&Item) -> Result<T>) -> Result<Stored<T>> {
    let row = read(item)?;
    let key = Key::of(item).expect("a row that reads has string keys");
    Ok(Stored { key, row })
}

/// The items of conversation `group`'s group rows (one per member), through
/// `message-group-sk-index`, all pages. The index is eventually consistent: writes conditioned on
/// what it shows stay safe, and a lost race reads it again.
pub async fn group_items(ddb: &Ddb, group: Uuid) -> Result<Vec<Item>> {
    ddb.client
        .query()
        .table_name(&ddb.table)
        .index_name(GSI_NAME)
        .key_condition_expression("#g = :g")
        .expression_attribute_names("#g", GSI_PK)
        .expression_attribute_values(":g", AttributeValue::S(group.to_string()))
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| Error::from_sdk(e, &ddb.ctx("Query")))
}

/// Every group row of conversation `group` (see [`group_items`]), typed. Empty when the
/// conversation does not exist; a row of another shape is an [`Error::BadItem`].
pub async fn group_rows(ddb: &Ddb, group: Uuid) -> Result<Vec<Stored<MessageGroupRow>>> {
    group_items(ddb, group).await?.iter().map(|i| stored(i, MessageGroupRow::from_item)).collect()
}

/// True when `user` has a group row of `group` (see [`member_row`]).
pub async fn is_member(ddb: &Ddb, group: Uuid, user: Uuid) -> Result<bool> {
    Ok(member_row(ddb, group, user).await?.is_some())
}

/// The key of `user`'s group row of `group`, if any. A strongly consistent query of the user's
/// own partition, not the index: a move deletes a member's row and puts a later one in one
/// transaction, and a consistent read sees the old row, the new one or both, never neither; the
/// index, updated after the table, may show neither for a moment.
pub async fn member_row(ddb: &Ddb, group: Uuid, user: Uuid) -> Result<Option<Key>> {
    let mut rows = query_partition(ddb, MessageGroupRow::pk_of(user))
        .filter_expression("#g = :g")
        .expression_attribute_names("#g", GSI_PK)
        .expression_attribute_values(":g", AttributeValue::S(group.to_string()))
        .projection_expression("#pk, #sk")
        .expression_attribute_names("#sk", SK)
        .into_paginator()
        .items()
        .send();
    match rows.next().await {
        Some(row) => row.map(|r| Key::of(&r)).map_err(|e| Error::from_sdk(e, &ddb.ctx("Query"))),
        None => Ok(None),
    }
}

/// The newest message of `group` that exists now (a strongly consistent read), with its key as
/// stored. `None` when the conversation has no message; a newest row of another shape is an
/// [`Error::BadItem`].
pub async fn newest_message(ddb: &Ddb, group: Uuid) -> Result<Option<Stored<MessageRow>>> {
    let out = query_partition(ddb, MessageRow::pk_of(group))
        .scan_index_forward(false)
        .limit(1)
        .send()
        .await
        .map_err(|e| Error::from_sdk(e, &ddb.ctx("Query")))?;
    match out.items().first() {
        Some(item) => stored(item, MessageRow::from_item).map(Some),
        None => Ok(None),
    }
}
