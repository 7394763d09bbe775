//! `bin/cognito/list-users`: every user of the Cognito pool (all pages of ListUsers), printed as
//! the course does (the users as JSON, then the `{handle: sub}` map), or as a table.
#![deny(clippy::print_stdout)]

use clap::Parser;
use ddb_cli::{self as cli, errln, CognitoArgs};
use ddb_core::cognito;
use std::process::ExitCode;

/// List every user of the Cognito user pool with preferred_username and sub (all pages, not
/// only the first 60). Prints the users as JSON and the {handle: sub} map, as the course does.
#[derive(Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    cognito: CognitoArgs,
    /// course: the users and the map as JSON; table: one line per user; map: only the map
    #[arg(long, value_enum, default_value_t = Output::Course)]
    output: Output,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Output {
    Course,
    Table,
    Map,
}

fn main() -> ExitCode {
    cli::run(1, |Args { cognito, output }: Args| async move {
        let pool = cognito.connect().await?;
        let users = pool.list_users().await?;
        let (map, skipped) = cognito::handle_map(&users);
        match output {
            Output::Course => {
                cli::print_json(&users.iter().map(|u| &u.raw).collect::<Vec<_>>())?;
                cli::print_json(&map)?;
            }
            Output::Map => cli::print_json(&map)?,
            Output::Table => {
                let mut table = cli::Table::new(["handle", "sub", "username"]);
                for u in &users {
                    table.row([u.handle.as_deref().unwrap_or("-"), u.sub.as_deref().unwrap_or("-"), &u.username]);
                }
                table.print()?;
            }
        }
        for (name, why) in &skipped {
            errln!("skipped {}: {}", cli::escape(name), cli::escape(why));
        }
        errln!("{} user(s) in pool {}", users.len(), cli::escape(&pool.pool));
        Ok(())
    })
}
