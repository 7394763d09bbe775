//! The flags and words that the scripts share, and what they turn into: the library's settings,
//! a client, a page, a Postgres lookup.

use crate::errln;
use crate::run::usage;
use crate::text::escape;
use ddb_core::patterns::{Page, DEFAULT_LIMIT};
use ddb_core::target::{Resolved, Service, Settings};
use ddb_core::write::WriteOptions;
use ddb_core::{pg, table, Ddb};

/// The course's trailing `prod` word, as the last positional argument of a script.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct Prod {
    /// `prod` for real AWS, as in the course; default: DynamoDB Local (see --endpoint-url)
    #[arg(value_name = "prod", value_parser = ["prod"])]
    prod: Option<String>,
}

impl Prod {
    /// True when `prod` was given.
    pub fn is_set(&self) -> bool {
        self.prod.is_some()
    }
}

/// Splits the positional words of a script that takes `[NAME] [prod]` (both optional): the
/// word, if any, and whether `prod` was there. More words are a usage error.
pub fn word_and_prod(words: &[String], name: &str) -> anyhow::Result<(Option<String>, bool)> {
    let (words, prod) = match words.split_last() {
        Some((last, rest)) if last == "prod" => (rest, true),
        _ => (words, false),
    };
    match words {
        [] => Ok((None, prod)),
        [w] => Ok((Some(w.clone()), prod)),
        _ => Err(usage(format!("expected at most a {name} and prod"))),
    }
}

/// A struct of the three target flags (`--endpoint-url`, `--region`, `--profile`) with help
/// texts of its own: each service says its own defaults, checked by the compiler.
macro_rules! target_flags {
    ($(#[$meta:meta])* $name:ident { endpoint_url: $e:literal, region: $r:literal, profile: $p:literal $(,)? }) => {
        $(#[$meta])*
        #[derive(clap::Args, Debug, Clone, Default)]
        pub struct $name {
            #[doc = $e]
            #[arg(long, value_name = "URL", global = true)]
            pub endpoint_url: Option<String>,
            #[doc = $r]
            #[arg(long, value_name = "REGION", global = true)]
            pub region: Option<String>,
            #[doc = $p]
            #[arg(long, value_name = "NAME", global = true)]
            pub profile: Option<String>,
        }
    };
}
#[cfg(feature = "cognito")]
pub(crate) use target_flags;

target_flags! {
    /// Flags every script that talks to AWS or an emulator shares.
    TargetArgs {
        endpoint_url: "Send requests to this endpoint (default: AWS_ENDPOINT_URL_DYNAMODB or AWS_ENDPOINT_URL when set, else http://localhost:8000; AWS with `prod`). Overrides those variables.",
        region: "AWS region (default: the AWS config chain under prod, else AWS_REGION or us-east-1)",
        profile: "Named profile from your AWS config files (used with prod)",
    }
}

impl TargetArgs {
    /// The library's settings for these flags.
    pub fn settings(&self, prod: bool) -> Settings {
        Settings { prod, endpoint_url: self.endpoint_url.clone(), region: self.region.clone(), profile: self.profile.clone() }
    }

    /// The target of `service` and the SDK's setup for it, its warnings printed on stderr.
    pub fn resolve(&self, service: Service, prod: bool) -> anyhow::Result<Resolved> {
        let resolved = self.settings(prod).resolve(service)?;
        for w in &resolved.warnings {
            errln!("{}", escape(w));
        }
        Ok(resolved)
    }
}

/// What every DynamoDB script takes: the course's trailing `prod`, the target and the table.
/// Flattened after the script's own positional arguments.
#[derive(clap::Args, Debug, Clone)]
pub struct DdbArgs {
    /// `prod`.
    #[command(flatten)]
    pub prod: Prod,
    /// The target and the table.
    #[command(flatten)]
    pub flags: DdbFlags,
}

impl DdbArgs {
    /// Resolves the target, validates the table name and builds the client. Nothing is sent yet.
    pub async fn connect(&self) -> anyhow::Result<Ddb> {
        self.flags.connect(self.prod.is_set()).await
    }

    /// [`DdbArgs::connect`], also returning the SDK configuration for clients of other services
    /// at the same target (DynamoDB Streams).
    pub async fn connect_with_config(&self) -> anyhow::Result<(Ddb, aws_config::SdkConfig)> {
        self.flags.connect_with_config(self.prod.is_set()).await
    }
}

/// The target and the table, for scripts that find `prod` among their own words
/// (see [`word_and_prod`]).
#[derive(clap::Args, Debug, Clone)]
pub struct DdbFlags {
    /// Where requests go.
    #[command(flatten)]
    pub target: TargetArgs,
    /// Table name (for tests and for several stages)
    #[arg(long, env = table::TABLE_ENV, default_value = table::TABLE_NAME, global = true, hide_env_values = true)]
    pub table: String,
}

impl DdbFlags {
    /// Resolves the target, validates the table name and builds the client. Nothing is sent yet.
    pub async fn connect(&self, prod: bool) -> anyhow::Result<Ddb> {
        Ok(self.connect_with_config(prod).await?.0)
    }

    /// [`DdbFlags::connect`] with the SDK configuration.
    pub async fn connect_with_config(&self, prod: bool) -> anyhow::Result<(Ddb, aws_config::SdkConfig)> {
        let resolved = self.target.resolve(Service::DynamoDb, prod)?;
        Ok(Ddb::connect(&resolved, &self.table).await?)
    }
}

/// The flags of the scripts that write many items (the seed, the import): how the batch writer
/// runs and what they print.
#[derive(clap::Args, Debug, Clone)]
pub struct WriteArgs {
    /// BatchWriteItem calls in flight
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=256))]
    pub concurrency: u64,
    /// No progress bar
    #[arg(long, short)]
    pub quiet: bool,
    /// Print the run's figures as one JSON object instead of the summary line
    #[arg(long)]
    pub json: bool,
}

impl WriteArgs {
    /// The batch writer's options for these flags.
    pub fn options(&self) -> WriteOptions {
        WriteOptions { concurrency: self.concurrency as usize, ..WriteOptions::default() }
    }
}

/// The Postgres flag of the scripts that read `users`.
#[derive(clap::Args, Debug, Clone)]
pub struct PgArgs {
    /// Postgres URL of the users table
    #[arg(long, env = pg::CONNECTION_ENV, default_value = pg::DEFAULT_URL, hide_env_values = true)]
    pub connection_url: String,
}

impl PgArgs {
    /// The users with these handles, in this order; an error names the first one missing.
    pub async fn users(&self, handles: &[&str]) -> anyhow::Result<Vec<pg::User>> {
        Ok(pg::users(&self.connection_url, handles).await?)
    }
}

/// The paging flags of the listing patterns (A and B).
#[derive(clap::Args, Debug, Clone)]
pub struct PageArgs {
    /// Items per page
    #[arg(long, default_value_t = DEFAULT_LIMIT, value_parser = clap::value_parser!(i32).range(1..=1000))]
    pub limit: i32,
    /// Only items older than this cursor (printed on stderr when there are more)
    #[arg(long, value_name = "CURSOR")]
    pub before: Option<String>,
}

impl PageArgs {
    /// The page, checked: a bad cursor is a usage error.
    pub fn page(&self) -> anyhow::Result<Page> {
        let page = Page { limit: self.limit, before: self.before.clone() };
        page.validate().map_err(|e| usage(e.to_string()))?;
        Ok(page)
    }
}

/// A uuid from the command line, or a usage error (exit 2) that names the argument.
pub fn parse_uuid(what: &str, s: &str) -> anyhow::Result<uuid::Uuid> {
    uuid::Uuid::parse_str(s).map_err(|e| usage(format!("{what} \"{s}\" is not a uuid ({e}); expected 32 hex digits in groups of 8-4-4-4-12")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_optional_word_and_prod() {
        let w = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(word_and_prod(&w(&[]), "X").unwrap(), (None, false));
        assert_eq!(word_and_prod(&w(&["prod"]), "X").unwrap(), (None, true));
        assert_eq!(word_and_prod(&w(&["a", "prod"]), "X").unwrap(), (Some("a".into()), true));
        assert_eq!(word_and_prod(&w(&["a"]), "X").unwrap(), (Some("a".into()), false));
        let e = word_and_prod(&w(&["a", "b"]), "X").unwrap_err();
        assert_eq!(e.downcast_ref::<ddb_core::Error>().map(ddb_core::Error::kind), Some(ddb_core::ErrorKind::Usage));
    }
}
