//! The shared library of the Cruddur DynamoDB toolkit, a Rust port of week 5 of the Cruddur
//! bootcamp: the `cruddur-messages` table, its seed, its access patterns and the scripts around
//! them. Every script in `bin/` is a thin binary over this crate.
//!
//! # Layout
//!
//! - [`target`]: where requests go (`prod`, `--endpoint-url`, the SDK's endpoint variables) and
//!   the SDK configuration for it; the only place that decides.
//! - [`table`]: the table's names, keys and index, defined once; create, describe, list, delete.
//! - [`records`]: typed message and message-group rows, the timestamp format.
//! - [`item_json`]: items as plain or typed JSON.
//! - [`write`](mod@write): bulk writes with BatchWriteItem, retries and backoff.
//! - [`conversation`]: a conversation's partitions, and every write of group rows (conditioned
//!   transactions, one retry loop).
//! - [`check`]: the table's rules checked over the whole table, and the mechanical ones repaired.
//! - [`lock`]: a lease in the table (the seed's lock), by conditional writes.
//! - [`seed`]: the course conversation, its validation, and the idempotent seed.
//! - [`patterns`]: access patterns A-D (list messages, list groups, create message, create group).
//! - [`stream`]: pattern E, group rows follow the newest message; a reader of a stream's shards
//!   and the local stream worker (feature `streams`).
//! - [`scan`]: the whole table as a stream, plain or parallel.
//! - [`import`]: what scan writes, checked whole and written back (a backup restored, a table
//!   copied).
//! - `pg` (feature `pg`): Postgres `users`.
//! - [`progress`]: how long work reports phases and items done (the library never prints).
//! - `cognito` (feature `cognito`): the user pool's users and their sync into Postgres.
//! - [`error`]: the error type and its kinds; every message says what to do.
//! - [`call`]: where an SDK call went, and its errors turned into ours with what to do.
#![deny(missing_docs)]

pub mod call;
pub mod check;
#[cfg(feature = "cognito")]
pub mod cognito;
pub mod conversation;
pub mod error;
pub mod import;
pub mod item_json;
pub mod lock;
pub mod patterns;
#[cfg(feature = "pg")]
pub mod pg;
pub mod progress;
pub mod records;
pub mod scan;
pub mod seed;
pub mod stream;
pub mod table;
pub mod target;
pub mod write;

pub use error::{Error, ErrorKind, Result};

use aws_config::SdkConfig;
use call::CallContext;
use target::{Resolved, Target};

/// A DynamoDB client bound to one table at one target: what every table operation takes.
#[derive(Debug, Clone)]
pub struct Ddb {
    /// The SDK client.
    pub client: aws_sdk_dynamodb::Client,
    /// The table's name.
    pub table: String,
    /// Where the client sends requests (for messages).
    pub target: Target,
    /// How long the client waits for an answer (for messages).
    pub patience: target::Patience,
}

impl Ddb {
    /// A client for `table` at `target`, configured by `config` (see [`target::sdk_config`]).
    pub fn new(config: &SdkConfig, target: &Target, table: &str) -> Self {
        Ddb { client: target::client(config, target), table: table.to_string(), target: target.clone(), patience: target.patience() }
    }

    /// Checks the table name and builds the client for a resolved target (see
    /// [`target::Settings::resolve`]), with the SDK configuration for other services' clients at
    /// the same target (DynamoDB Streams). Nothing is sent yet.
    pub async fn connect(resolved: &Resolved, table: &str) -> Result<(Self, SdkConfig)> {
        table::validate_table_name(table)?;
        let config = target::sdk_config(resolved).await?;
        Ok((Ddb { patience: resolved.patience, ..Ddb::new(&config, &resolved.target, table) }, config))
    }

    /// Context for errors of operation `op` on the table.
    pub fn ctx(&self, op: &'static str) -> CallContext<'_> {
        CallContext { service: "DynamoDB", op, target: &self.target, table: Some(&self.table), patience: self.patience }
    }

    /// Context for errors of an operation that is not about one table.
    pub fn ctx_no_table(&self, op: &'static str) -> CallContext<'_> {
        CallContext { service: "DynamoDB", op, target: &self.target, table: None, patience: self.patience }
    }
}

/// The SDK's paginators as a `futures` stream, so that they compose (`select_all`, `map`).
pub(crate) fn stream_of<T>(mut pages: aws_smithy_async::future::pagination_stream::PaginationStream<T>) -> impl futures::Stream<Item = T> {
    futures::stream::poll_fn(move |cx| pages.poll_next(cx))
}
