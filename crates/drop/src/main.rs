//! `bin/ddb/drop TABLE [prod]`: deletes a table and waits until it is gone. Against AWS it asks
//! first: `--yes`, or the table's name typed at the prompt.
#![deny(clippy::print_stdout)]

use clap::Parser;
use ddb_cli::{self as cli, outln, DdbFlags, Prod, TargetArgs};
use ddb_core::target::Service;
use ddb_core::{table, Error};
use std::process::ExitCode;
use std::time::Duration;

/// Delete a DynamoDB table and wait until it is gone. In AWS (prod without --endpoint-url), it asks
/// for confirmation first.
#[derive(Parser)]
#[command(version, after_help = "Example: ./bin/ddb/drop cruddur-messages prod")]
struct Args {
    /// The table to delete
    #[arg(value_name = "TABLE_NAME")]
    table: Option<String>,
    #[command(flatten)]
    prod: Prod,
    #[command(flatten)]
    target: TargetArgs,
    /// Delete from AWS without asking
    #[arg(long, short = 'y')]
    yes: bool,
}

fn main() -> ExitCode {
    let args = match cli::parse::<Args>() {
        Ok(args) => args,
        Err(code) => return code,
    };
    let Some(name) = args.table.clone() else {
        // The course's words, on stdout as its `echo` did.
        let _ = outln!("No TABLE_NAME argument supplied eg ./bin/ddb/drop cruddur-messages prod ");
        return ExitCode::from(cli::EXIT_FAILURE);
    };
    cli::main(1, async move {
        if name == "prod" && !args.prod.is_set() {
            return Err(cli::usage("no TABLE_NAME before prod; eg ./bin/ddb/drop cruddur-messages prod"));
        }
        let (prod, flags) = (args.prod.is_set(), DdbFlags { target: args.target, table: name.clone() });
        // Asked first, and wherever the table really is: `prod` with --endpoint-url is not AWS.
        if flags.target.settings(prod).resolve(Service::DynamoDb)?.target.is_aws() && !args.yes {
            let prompt = format!("This deletes table {name} and all its items from AWS. Type its name to go on: ");
            if !cli::confirm(&prompt, &name)? {
                anyhow::bail!("not deleting {name} from AWS: pass --yes, or run in a terminal and type the table name when asked");
            }
        }
        let ddb = flags.connect(prod).await?;
        outln!("deleting table: {name}")?;
        match table::delete(&ddb, Duration::from_secs(300)).await {
            Err(Error::TableMissing { table, target }) => anyhow::bail!("table {table} does not exist at {target}; nothing to delete"),
            result => result?,
        }
        outln!("deleted table {name} at {}", ddb.target.label())?;
        Ok(())
    })
}
