//! `bin/ddb/patterns/create-message GROUP_UUID HANDLE TEXT [prod]`: pattern C, one message from
//! a member into an existing conversation.
#![deny(clippy::print_stdout)]

use clap::Parser;
use ddb_cli::{self as cli, outln, DdbArgs, PgArgs};
use ddb_core::patterns;
use std::process::ExitCode;

/// Write a message into an existing conversation (pattern C). The sender must be one of its
/// members. With the stream worker running (./bin/local/up starts it), the conversation's group
/// rows follow within a second, as the Lambda does on AWS.
#[derive(Parser)]
#[command(version, after_help = "Example: ./bin/ddb/patterns/create-message 5ae290ed-55d1-47a0-bc6d-fe2bc2700399 bayko 'Hello again'")]
struct Args {
    /// The conversation
    #[arg(value_name = "GROUP_UUID")]
    group: String,
    /// The sender's handle in Postgres
    handle: String,
    /// The message; `-` reads it from stdin
    text: String,
    #[command(flatten)]
    ddb: DdbArgs,
    #[command(flatten)]
    pg: PgArgs,
    /// Print the written row as JSON
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    cli::run(1, |Args { group, handle, text, ddb, pg, json }: Args| async move {
        let group = cli::parse_uuid("GROUP_UUID", &group)?;
        let ddb = ddb.connect().await?;
        let sender = pg.users(&[&handle]).await?.remove(0);
        let text = if text == "-" {
            let mut t = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut t).map_err(|e| anyhow::anyhow!("cannot read the message from stdin: {e}"))?;
            t.trim_end_matches('\n').to_string()
        } else {
            text
        };
        let row = patterns::create_message(&ddb, group, &sender, &text).await?;
        if json {
            cli::print_json(&row)?;
        } else {
            outln!("created message {} in conversation {group} at {}", row.message_uuid, ddb_core::records::format_ts(row.created_at))?;
        }
        Ok(())
    })
}
