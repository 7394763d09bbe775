//! `bin/ddb/patterns/get-conversations [GROUP_UUID] [prod]` (also `get-conversation`, the course
//! repository's name): pattern A, a conversation's latest messages, printed as the course does.
#![deny(clippy::print_stdout)]

use clap::Parser;
use ddb_cli::{self as cli, errln, outln, DdbFlags, PageArgs};
use ddb_core::patterns;
use ddb_core::seed::COURSE_GROUP;
use std::process::ExitCode;

/// Print a conversation's latest messages (pattern A), oldest first. The default output is the
/// course's: the query's JSON response, the consumed capacity, then one line per message.
#[derive(Parser)]
#[command(
    version,
    after_help = "Examples:\n  ./bin/ddb/patterns/get-conversations\n  ./bin/ddb/patterns/get-conversations 5ae290ed-55d1-47a0-bc6d-fe2bc2700399 prod\n  ./bin/ddb/patterns/get-conversations --output json --limit 5"
)]
struct Args {
    /// The conversation (default: the seeded one), then `prod` for real AWS
    #[arg(value_name = "[GROUP_UUID] [prod]", num_args = 0..=2)]
    words: Vec<String>,
    #[command(flatten)]
    ddb: DdbFlags,
    /// course: response, capacity and lines; lines: only the lines; json: only the messages
    #[arg(long, value_enum, default_value_t = Output::Course)]
    output: Output,
    #[command(flatten)]
    page: PageArgs,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Output {
    Course,
    Lines,
    Json,
}

fn main() -> ExitCode {
    cli::run(1, |Args { words, ddb, output, page }: Args| async move {
        let (group, prod) = cli::word_and_prod(&words, "GROUP_UUID")?;
        let group = group.map_or(Ok(COURSE_GROUP), |g| cli::parse_uuid("GROUP_UUID", &g))?;
        let page = page.page()?;
        let ddb = ddb.connect(prod).await?;
        let listing = patterns::list_messages(&ddb, group, &page).await?;
        match output {
            Output::Course => {
                cli::print_json(&patterns::response_json(&listing.raw))?;
                let capacity = listing.raw.consumed_capacity().map(patterns::capacity_json).unwrap_or_default();
                cli::print_json(&capacity)?;
                print_lines(&listing.items)?;
            }
            Output::Lines => print_lines(&listing.items)?,
            Output::Json => cli::print_json(&listing.items)?,
        }
        cli::warn_skipped(&listing.skipped);
        if listing.items.is_empty() {
            errln!("no messages in conversation {group} in table {} at {}", ddb.table, cli::escape(&ddb.target.label()));
        }
        if let Some(c) = listing.cursor {
            errln!("older messages: --before {}", cli::escape(&c));
        }
        Ok(())
    })
}

/// The course's lines: the handle padded to 12 columns, the time to 22, the text cut to 40 and
/// `...`; measured by display width, escaped.
fn print_lines(items: &[patterns::Message]) -> anyhow::Result<()> {
    for m in items {
        outln!("{}{}{}...", cli::pad(&m.handle, 12), cli::pad(&patterns::course_time(&m.created_at), 22), cli::cut(&m.message, 40))?;
    }
    Ok(())
}
