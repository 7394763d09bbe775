//! `bin/ddb/list-tables [prod]`: every table name, all pages, printed like
//! `aws dynamodb list-tables --query TableNames --output table`.
#![deny(clippy::print_stdout)]

use clap::{Parser, ValueEnum};
use ddb_cli::{self as cli, outln, DdbFlags, Prod, TargetArgs};
use ddb_core::table;
use std::process::ExitCode;

#[derive(Clone, Copy, Default, ValueEnum)]
enum Output {
    /// A box, as the AWS CLI's `--output table`
    #[default]
    Table,
    /// A JSON array of names
    Json,
    /// One name a line
    Text,
}

/// List every DynamoDB table name (all pages, not just the first 100).
#[derive(Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    prod: Prod,
    // No --table: this lists them all.
    #[command(flatten)]
    target: TargetArgs,
    /// Output format
    #[arg(long, value_enum, default_value_t)]
    output: Output,
}

/// The AWS CLI's table rendering of a list of strings under a title, centred by display width;
/// the names are escaped (they come from the server).
fn boxed(title: &str, rows: &[String]) -> String {
    let rows: Vec<String> = rows.iter().map(|r| cli::escape(r).into_owned()).collect();
    let inner = rows.iter().map(|r| cli::width(r)).chain([title.len()]).max().unwrap_or(0) + 4;
    let center = |s: &str| {
        let pad = inner - cli::width(s);
        format!("|{}{}{}|", " ".repeat(pad / 2), s, " ".repeat(pad - pad / 2))
    };
    let mut out = vec!["-".repeat(inner + 2), center(title), format!("+{}+", "-".repeat(inner))];
    if !rows.is_empty() {
        out.extend(rows.iter().map(|r| center(r)));
        out.push(format!("+{}+", "-".repeat(inner)));
    }
    out.join("\n")
}

fn main() -> ExitCode {
    cli::run(1, |Args { prod, target, output }: Args| async move {
        let ddb = DdbFlags { target, table: table::TABLE_NAME.to_string() }.connect(prod.is_set()).await?;
        let names = table::list(&ddb).await?;
        match output {
            Output::Table => outln!("{}", boxed("ListTables", &names))?,
            Output::Json => cli::print_json(&names)?,
            Output::Text => {
                for n in &names {
                    outln!("{}", cli::escape(n))?;
                }
            }
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn box_like_the_aws_cli() {
        let out = super::boxed("ListTables", &["cruddur-messages".to_string()]);
        assert_eq!(out, "----------------------\n|     ListTables     |\n+--------------------+\n|  cruddur-messages  |\n+--------------------+");
    }
}
