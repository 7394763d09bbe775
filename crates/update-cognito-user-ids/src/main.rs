//! `bin/db/update_cognito_user_ids` (also `bin/cognito/db/update_cognito_user_ids`): copies each
//! Cognito user's `sub` into `users.cognito_user_id`, matched by handle, for the whole pool in
//! one transaction.
#![deny(clippy::print_stdout)]

use clap::Parser;
use cli::escape as esc;
use ddb_cli::{self as cli, errln, outln, CognitoArgs, PgArgs};
use ddb_core::{cognito, pg};
use std::process::ExitCode;

/// Set users.cognito_user_id in Postgres from the Cognito pool (preferred_username = handle),
/// for every user of the pool, in one transaction: all rows or none. Reports what changed, the
/// Cognito handles with no row, and the rows still holding MOCK.
#[derive(Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    cognito: CognitoArgs,
    #[command(flatten)]
    pg: PgArgs,
    /// Change nothing; print what would change
    #[arg(long)]
    dry_run: bool,
    /// Print only one JSON object on stdout: changed ([{handle, before, after}]), unchanged,
    /// unmatched, still_mock, map, skipped, cognito_seconds, postgres_seconds, dry_run
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    cli::run(1, |Args { cognito, pg, dry_run, json }: Args| async move {
        let pool = cognito.connect().await?;
        let url = &pg.connection_url;
        let run = cognito::sync_pool(&pool, url, dry_run).await?;
        if json {
            // stdout holds the JSON alone; what was skipped is in it, and said on stderr too.
            run.skipped.iter().for_each(|(name, why)| errln!("skipped {}: {}", esc(name), esc(why)));
            return cli::print_json_line(&run);
        }
        outln!("== db-update-cognito-user-ids")?;
        for (handle, sub) in &run.map {
            outln!("---- {} {}", esc(handle), esc(sub))?;
        }
        for (name, why) in &run.skipped {
            outln!("skipped {}: {}", esc(name), esc(why))?;
        }
        let (report, verb) = (&run.report, if dry_run { "would change" } else { "changed" });
        for c in &report.changed {
            outln!("{verb} {}: {} -> {}", esc(&c.handle), esc(c.before.as_deref().unwrap_or("NULL")), esc(&c.after))?;
        }
        outln!(
            "{} row(s) {verb}, {} already up to date, in database {}{} (cognito {:.3} s, postgres {:.3} s)",
            report.changed.len(),
            report.unchanged,
            esc(&pg::redact(url)),
            if dry_run { " (dry run: nothing was written)" } else { "" },
            run.cognito_seconds,
            run.postgres_seconds
        )?;
        if !report.unmatched.is_empty() {
            outln!("{} Cognito handle(s) with no row in users: {}", report.unmatched.len(), esc(&report.unmatched.join(", ")))?;
        }
        if !report.still_mock.is_empty() {
            outln!("{} row(s) still hold MOCK: {}", report.still_mock.len(), esc(&report.still_mock.join(", ")))?;
        }
        Ok(())
    })
}
