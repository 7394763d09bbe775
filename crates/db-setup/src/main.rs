//! `bin/db/setup`: creates the database of CONNECTION_URL, the course's `users` table and the two
//! seed users, each only where missing, so that a re-run changes nothing.
#![deny(clippy::print_stdout)]

use clap::Parser;
use ddb_cli::{self as cli, outln};
use ddb_core::pg;
use std::process::ExitCode;

/// Create the Postgres database, the course's users table and the seed users (yaya2devops,
/// bayko) where they are missing. A re-run changes nothing.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Database URL
    #[arg(long, env = pg::CONNECTION_ENV, default_value = pg::DEFAULT_URL, hide_env_values = true)]
    connection_url: String,
    /// Only check that the database and the users table are there; change nothing
    #[arg(long)]
    check: bool,
}

fn main() -> ExitCode {
    cli::run(1, |Args { connection_url, check }: Args| async move {
        let url = &connection_url;
        if check {
            let db = pg::connect(url).await?;
            let n = db.count_users().await?;
            outln!("postgres {}: users table with {n} row(s)", db.url())?;
            return Ok(());
        }
        let created = pg::ensure_database(url).await?;
        let db = pg::connect(url).await?;
        db.setup().await?;
        outln!(
            "postgres {}: database {}, users table with {} row(s)",
            db.url(),
            if created { "created" } else { "already there" },
            db.count_users().await?
        )?;
        Ok(())
    })
}
