//! `bin/ddb/patterns/list-conversations [HANDLE] [prod]`: pattern B, a user's conversations,
//! newest first; the user's uuid comes from Postgres by handle.
#![deny(clippy::print_stdout)]

use clap::Parser;
use ddb_cli::{self as cli, errln, outln, DdbFlags, PageArgs, PgArgs};
use ddb_core::patterns;
use std::process::ExitCode;

/// The handle the course looks up.
const COURSE_HANDLE: &str = "yaya2devops";

/// List a user's conversations (pattern B), newest first. Prints `my-uuid: ...` as the course
/// does, then a table (or, with --output json, the list as the app's API returns it).
#[derive(Parser)]
#[command(
    version,
    after_help = "Examples:\n  ./bin/ddb/patterns/list-conversations\n  ./bin/ddb/patterns/list-conversations bayko prod\n  ./bin/ddb/patterns/list-conversations --output json"
)]
struct Args {
    /// The user's handle in Postgres (default: yaya2devops), then `prod` for real AWS
    #[arg(value_name = "[HANDLE] [prod]", num_args = 0..=2)]
    words: Vec<String>,
    #[command(flatten)]
    ddb: DdbFlags,
    #[command(flatten)]
    pg: PgArgs,
    /// table: readable columns; json: the list; course: the query's JSON response
    #[arg(long, value_enum, default_value_t = Output::Table)]
    output: Output,
    #[command(flatten)]
    page: PageArgs,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Output {
    Table,
    Json,
    Course,
}

fn main() -> ExitCode {
    cli::run(1, |Args { words, ddb, pg, output, page }: Args| async move {
        let (handle, prod) = cli::word_and_prod(&words, "HANDLE")?;
        let handle = handle.unwrap_or_else(|| COURSE_HANDLE.to_string());
        let page = page.page()?;
        let ddb = ddb.connect(prod).await?;
        let me = pg.users(&[&handle]).await?.remove(0);
        let listing = patterns::list_message_groups(&ddb, me.uuid, &page).await?;
        match output {
            Output::Json => cli::print_json(&listing.items)?,
            Output::Course => {
                outln!("my-uuid: {}", me.uuid)?;
                cli::print_json(&patterns::response_json(&listing.raw))?;
            }
            Output::Table => {
                outln!("my-uuid: {}", me.uuid)?;
                let mut table = cli::Table::new(["conversation", "with", "display name", "last message (UTC)", "message"]).cut(4, 40);
                for g in &listing.items {
                    let when = g.created_at.get(..19).unwrap_or(&g.created_at).replace('T', " ");
                    table.row([&g.uuid.to_string(), &g.handle, &g.display_name, &when, &g.message]);
                }
                if !listing.items.is_empty() {
                    table.print()?;
                }
            }
        }
        cli::warn_skipped(&listing.skipped);
        if listing.items.is_empty() {
            errln!("{} has no conversations in table {} at {}", cli::escape(&handle), ddb.table, cli::escape(&ddb.target.label()));
        }
        if let Some(c) = listing.cursor {
            errln!("older conversations: --before {}", cli::escape(&c));
        }
        Ok(())
    })
}
