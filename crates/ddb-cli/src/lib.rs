//! The command-line layer that every script of the toolkit shares: the runtime, error printing
//! and exit codes, the flags (`prod`, the target, the table, Postgres, paging), stdout that ends
//! quietly when its reader goes away, progress bars and confirmation. `ddb-core` decides and
//! writes; this crate parses and prints. Each script stays a tiny binary: parse, call, print.
//!
//! # Layout
//!
//! - Running: [`run`] (and [`run_cognito`]) parse a script's arguments and run its body on a
//!   runtime; [`main`] prints `error: ...` and picks the exit code ([`usage`] errors exit 2).
//! - Output: [`outln!`], [`print_json`], [`print_json_line`] (`--json`); a closed stdout ends quietly.
//! - Flags: [`DdbArgs`] (`prod`, the target, the table), [`DdbFlags`] with [`word_and_prod`] for
//!   scripts whose positional words are all optional, [`TargetArgs`], [`PgArgs`], [`PageArgs`],
//!   `CognitoArgs` (feature `cognito`), [`parse_uuid`].
//! - Interaction: [`Bar`] (the library's `Progress` drawn on stderr), [`confirm`],
//!   [`shutdown_signal`], [`state_file`].
#![deny(missing_docs)]

use anyhow::Context;
use ddb_core::patterns::{Page, DEFAULT_LIMIT};
use ddb_core::progress::Progress;
use ddb_core::target::{sdk_config, Service, Settings, Target};
use ddb_core::{pg, table, Ddb};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::future::Future;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

/// Exit code for a failure (bad input, missing server, refused request).
pub const EXIT_FAILURE: u8 = 1;
/// Exit code for bad usage (clap uses it too).
pub const EXIT_USAGE: u8 = 2;
/// Exit code for a run stopped by Ctrl-C or SIGTERM (128 + SIGINT, as a shell reports it).
pub const EXIT_INTERRUPTED: u8 = 130;

/// An error that should exit with a specific code (usage errors found after parsing).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Exit {
    /// The code.
    pub code: u8,
    /// What to print.
    pub message: String,
}

/// A usage error (exit 2) with the given message.
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    Exit { code: EXIT_USAGE, message: message.into() }.into()
}

/// Runs a binary's body: prints `error: ...` on failure and exits 1, or 2 for a usage error (an
/// [`Exit`] of [`usage`], or a library error of kind `Usage`: a flag's value).
/// A closed stdout (`| head`) ends quietly with 0.
///
/// One-shot scripts run on a current-thread runtime: they wait on the network, and starting
/// worker threads would only add start-up time. `threads > 1` gives a multi-threaded runtime to
/// the scripts that also do CPU work while they wait (seed, scan).
pub fn main<F>(threads: usize, body: F) -> ExitCode
where
    F: Future<Output = anyhow::Result<()>>,
{
    let rt = if threads > 1 {
        tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build()
    } else {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    };
    let result = match rt {
        Ok(rt) => rt.block_on(body),
        Err(e) => Err(anyhow::Error::new(e).context("cannot start the async runtime")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            let kind = |k| e.chain().any(|c| c.downcast_ref::<ddb_core::Error>().is_some_and(|l| l.kind() == k));
            let fallback = if kind(ddb_core::ErrorKind::Usage) {
                EXIT_USAGE
            } else if kind(ddb_core::ErrorKind::Interrupted) {
                EXIT_INTERRUPTED
            } else {
                EXIT_FAILURE
            };
            let code = e.downcast_ref::<Exit>().map_or(fallback, |x| x.code);
            eprintln!("error: {}", error_text(&e));
            ExitCode::from(code)
        }
    }
}

/// [`main`] for a body that takes the script's arguments: parses `A` (clap exits on bad usage,
/// with 2) and runs `body(args)`.
pub fn run<A: clap::Parser, F: Future<Output = anyhow::Result<()>>>(threads: usize, body: impl FnOnce(A) -> F) -> ExitCode {
    main(threads, body(A::parse()))
}

/// [`run`] for the scripts that talk to Cognito: the shared target flags say Cognito's defaults
/// (AWS, or its endpoint variables), not DynamoDB's.
pub fn run_cognito<A: clap::Parser, F: Future<Output = anyhow::Result<()>>>(threads: usize, body: impl FnOnce(A) -> F) -> ExitCode {
    main(threads, body(parse_cognito_args()))
}

/// The error's chain joined by ": ", down to the first library error: its text already names its
/// cause, which would otherwise be printed twice.
pub fn error_text(e: &anyhow::Error) -> String {
    let mut parts = Vec::new();
    for cause in e.chain() {
        parts.push(cause.to_string());
        if cause.is::<ddb_core::Error>() {
            break;
        }
    }
    parts.join(": ")
}

/// True when the error is stdout's reader gone away (`| head`). Not looked for below a library
/// error: a broken pipe there is a server's connection (Postgres killed mid-statement), a failure.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    use std::io::ErrorKind::BrokenPipe;
    e.chain().take_while(|c| !c.is::<ddb_core::Error>()).any(|c| {
        c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == BrokenPipe)
            || c.downcast_ref::<serde_json::Error>().is_some_and(|j| j.io_error_kind() == Some(BrokenPipe))
    })
}

/// `println!` for the binaries: a closed stdout (`| head -1`, `| true`) comes back as an error
/// instead of a panic, and [`main`] ends such a run quietly with exit 0, as `| head` expects.
/// Use it as `outln!("...")?`; every binary denies `clippy::print_stdout`, so this is the one way.
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {{
        use ::std::io::Write as _;
        ::std::writeln!(::std::io::stdout().lock(), $($arg)*)
    }};
}

/// Pretty JSON on stdout, as the course's `json.dumps(..., indent=2)`.
pub fn print_json(v: &impl serde::Serialize) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, v)?;
    out.write_all(b"\n")?;
    Ok(())
}

/// One line of JSON on stdout: the machine-readable output of `--json` (bench/ reads it).
pub fn print_json_line(v: &impl serde::Serialize) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, v)?;
    out.write_all(b"\n")?;
    Ok(())
}

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

/// Flags every script that talks to AWS or an emulator shares.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct TargetArgs {
    /// Send requests to this endpoint (default: AWS_ENDPOINT_URL_DYNAMODB or AWS_ENDPOINT_URL
    /// when set, else http://localhost:8000; AWS with `prod`). Overrides those variables.
    #[arg(long, value_name = "URL", global = true)]
    pub endpoint_url: Option<String>,
    /// AWS region (default: the AWS config chain under prod, else AWS_REGION or us-east-1)
    #[arg(long, value_name = "REGION", global = true)]
    pub region: Option<String>,
    /// Named profile from your AWS config files (used with prod)
    #[arg(long, value_name = "NAME", global = true)]
    pub profile: Option<String>,
}

impl TargetArgs {
    /// The library's settings for these flags.
    pub fn settings(&self, prod: bool) -> Settings {
        Settings { prod, endpoint_url: self.endpoint_url.clone(), region: self.region.clone(), profile: self.profile.clone() }
    }

    /// The target of `service`, its warnings printed on stderr.
    pub fn resolve(&self, service: Service, prod: bool) -> anyhow::Result<Target> {
        let resolved = self.settings(prod).resolve(service)?;
        for w in &resolved.warnings {
            eprintln!("{w}");
        }
        Ok(resolved.target)
    }
}

/// The flags of the scripts that read the Cognito user pool.
#[cfg(feature = "cognito")]
#[derive(clap::Args, Debug, Clone)]
pub struct CognitoArgs {
    /// Where requests go (Cognito's defaults: see [`run_cognito`]).
    #[command(flatten)]
    pub target: TargetArgs,
    /// The pool (default: $AWS_COGNITO_USER_POOL_ID)
    #[arg(long, value_name = "ID")]
    pub user_pool_id: Option<String>,
}

/// A Cognito client at the resolved target, with the pool to read.
#[cfg(feature = "cognito")]
pub struct Cognito {
    /// The SDK client.
    pub client: aws_sdk_cognitoidentityprovider::Client,
    /// The user pool id.
    pub pool: String,
    /// Where requests go, for messages.
    pub label: String,
}

#[cfg(feature = "cognito")]
impl CognitoArgs {
    /// Checks the pool id (flag or variable), resolves the target and builds the client.
    pub async fn connect(&self) -> anyhow::Result<Cognito> {
        let pool = ddb_core::cognito::pool_id(self.user_pool_id.as_deref())?;
        let target = self.target.resolve(Service::Cognito, false)?;
        let config = sdk_config(&target, &self.target.settings(false)).await;
        Ok(Cognito { client: ddb_core::cognito::client(&config, &target), pool, label: target.label() })
    }
}

/// Parses the flags of a script that talks to Cognito: the shared target flags say Cognito's
/// defaults (AWS, or its endpoint variables), not DynamoDB's.
fn parse_cognito_args<T: clap::Parser>() -> T {
    let cmd = T::command()
        .mut_arg("endpoint_url", |a| {
            a.help("Send requests to this endpoint (default: AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER or AWS_ENDPOINT_URL when set, else AWS)")
        })
        .mut_arg("region", |a| a.help("AWS region (default: the AWS config chain; with an endpoint, AWS_REGION or us-east-1)"))
        .mut_arg("profile", |a| a.help("Named profile from your AWS config files"));
    let matches = cmd.get_matches();
    T::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
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
        let target = self.target.resolve(Service::DynamoDb, prod)?;
        Ok(Ddb::connect(&target, &self.target.settings(prod), &self.table).await?)
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
    uuid::Uuid::parse_str(s).map_err(|e| usage(format!("{what} {s:?} is not a uuid ({e}); expected 32 hex digits in groups of 8-4-4-4-12")))
}

/// Asks the user to type `expected` to go on. False without a terminal (nothing is asked).
pub fn confirm(prompt: &str, expected: &str) -> anyhow::Result<bool> {
    if !std::io::stdin().is_terminal() {
        return Ok(false);
    }
    eprint!("{prompt}");
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer).context("reading the confirmation")?;
    Ok(answer.trim() == expected)
}

/// Resolves on Ctrl-C or SIGTERM: for scripts that run until stopped (the stream worker).
pub async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

/// Where a script keeps state between runs: `$XDG_STATE_HOME/cruddur-ddb/NAME` (else
/// `~/.local/state/...`), `NAME` with every character but letters, digits, `-` and `.` made `_`.
pub fn state_file(name: &str) -> std::path::PathBuf {
    use std::path::PathBuf;
    let base = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(|| PathBuf::from("."));
    let clean: String = name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' { c } else { '_' }).collect();
    base.join("cruddur-ddb").join(clean)
}

/// A progress bar on stderr for the library's [`Progress`]: drawn when stderr is a terminal and
/// `quiet` is off, hidden otherwise. Notes go to stderr either way.
pub struct Bar(ProgressBar);

impl Bar {
    /// A bar of `total` items.
    pub fn new(total: u64, quiet: bool) -> Self {
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden());
        if !quiet && std::io::stderr().is_terminal() {
            bar.set_draw_target(ProgressDrawTarget::stderr_with_hz(5));
            bar.set_style(
                ProgressStyle::with_template("{msg} [{bar:30}] {human_pos}/{human_len} items, {per_sec}, ETA {eta}")
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
        }
        Bar(bar)
    }

    /// Runs `f` with the bar out of the way (for a prompt).
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        self.0.suspend(f)
    }

    /// Takes the bar off the screen.
    pub fn clear(&self) {
        self.0.finish_and_clear();
    }
}

impl Progress for Bar {
    fn phase(&self, name: &str, total: u64) {
        self.0.set_message(name.to_string());
        self.0.set_length(total);
        self.0.set_position(0);
    }
    fn inc(&self, n: u64) {
        self.0.inc(n);
    }
    fn note(&self, text: &str) {
        self.0.suspend(|| eprintln!("note: {text}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_errors_are_printed_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory");
        let e = anyhow::Error::from(ddb_core::Error::io("cannot read conversation file x.txt", io)).context("seeding");
        assert_eq!(error_text(&e), "seeding: cannot read conversation file x.txt: No such file or directory");
    }

    #[test]
    fn a_broken_pipe_is_quiet_only_when_it_is_stdout() {
        let pipe = || std::io::Error::new(std::io::ErrorKind::BrokenPipe, "Broken pipe");
        assert!(is_broken_pipe(&anyhow::Error::from(pipe())));
        // A library error whose cause is a broken connection is a failure, not `| head`.
        let lib = ddb_core::Error::io("writing to the server", pipe());
        assert!(!is_broken_pipe(&anyhow::Error::from(lib)));
    }

    #[test]
    fn one_optional_word_and_prod() {
        let w = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(word_and_prod(&w(&[]), "X").unwrap(), (None, false));
        assert_eq!(word_and_prod(&w(&["prod"]), "X").unwrap(), (None, true));
        assert_eq!(word_and_prod(&w(&["a", "prod"]), "X").unwrap(), (Some("a".into()), true));
        assert_eq!(word_and_prod(&w(&["a"]), "X").unwrap(), (Some("a".into()), false));
        let e = word_and_prod(&w(&["a", "b"]), "X").unwrap_err();
        assert_eq!(e.downcast_ref::<Exit>().unwrap().code, EXIT_USAGE);
    }
}
