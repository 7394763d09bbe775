//! `bin/ddb/patterns/create-conversation HANDLE OTHER_HANDLE TEXT [prod]`: pattern D, a new
//! conversation with its first message, written in one transaction.
#![deny(clippy::print_stdout)]

use clap::Parser;
use ddb_cli::{self as cli, outln, DdbArgs, PgArgs};
use ddb_core::patterns;
use std::process::ExitCode;

/// Start a conversation between two users of Postgres with a first message from the first
/// (pattern D): both group rows and the message in one transaction, all or nothing. Prints the
/// new conversation's uuid.
#[derive(Parser)]
#[command(version, after_help = "Example: ./bin/ddb/patterns/create-conversation bayko yaya2devops 'Have you seen Babylon 5?'")]
struct Args {
    /// The sender's handle
    handle: String,
    /// The other member's handle
    other_handle: String,
    /// The first message
    text: String,
    #[command(flatten)]
    ddb: DdbArgs,
    #[command(flatten)]
    pg: PgArgs,
}

fn main() -> ExitCode {
    cli::run(1, |Args { handle, other_handle, text, ddb, pg }: Args| async move {
        let ddb = ddb.connect().await?;
        let users = pg.users(&[&handle, &other_handle]).await?;
        let new = patterns::create_message_group(&ddb, &users[0], &users[1], &text).await?;
        outln!("{}", new.uuid)?;
        cli::errln!("created conversation {} between {} and {}", new.uuid, cli::escape(&users[0].handle), cli::escape(&users[1].handle));
        Ok(())
    })
}
