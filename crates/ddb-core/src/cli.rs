//! What every binary shares: the runtime, error printing and exit codes, the `prod` word,
//! progress bars. Binaries stay thin: parse, call the library, print.

use crate::target::{resolve, sdk_config, Service, Target, TargetArgs};
use crate::{table, Ddb};
use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::future::Future;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

/// Exit code for a failure (bad input, missing server, refused request).
pub const EXIT_FAILURE: u8 = 1;
/// Exit code for bad usage (clap uses it too).
pub const EXIT_USAGE: u8 = 2;

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

/// Runs a binary's body: prints `error: ...` with the whole chain on failure and exits 1 (or the
/// code of an [`Exit`]). A closed stdout (`| head`) ends quietly with 0.
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
            let code = e.downcast_ref::<Exit>().map_or(EXIT_FAILURE, |x| x.code);
            eprintln!("error: {e:#}");
            ExitCode::from(code)
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    use std::io::ErrorKind::BrokenPipe;
    e.chain().any(|c| {
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

/// Parses the flags of a script that talks to Cognito: the shared target flags say Cognito's
/// defaults (AWS, or its endpoint variables), not DynamoDB's.
pub fn parse_cognito_args<T: clap::Parser>() -> T {
    let cmd = T::command()
        .mut_arg("endpoint_url", |a| {
            a.help("Send requests to this endpoint (default: AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER or AWS_ENDPOINT_URL when set, else AWS)")
        })
        .mut_arg("region", |a| a.help("AWS region (default: the AWS config chain; with an endpoint, AWS_REGION or us-east-1)"))
        .mut_arg("profile", |a| a.help("Named profile from your AWS config files"));
    let matches = cmd.get_matches();
    T::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

/// Flags every DynamoDB script shares: the target and the table.
#[derive(clap::Args, Debug, Clone)]
pub struct DdbArgs {
    /// Where requests go.
    #[command(flatten)]
    pub target: TargetArgs,
    /// Table name (for tests and for several stages)
    #[arg(long, env = table::TABLE_ENV, default_value = table::TABLE_NAME, global = true)]
    pub table: String,
}

impl DdbArgs {
    /// Resolves the target, validates the table name and builds the client. Nothing is sent yet.
    pub async fn connect(&self, prod: bool) -> anyhow::Result<Ddb> {
        Ok(self.connect_with_config(prod).await?.0)
    }

    /// [`DdbArgs::connect`], also returning the SDK configuration for clients of other services
    /// at the same target (DynamoDB Streams).
    pub async fn connect_with_config(&self, prod: bool) -> anyhow::Result<(Ddb, aws_config::SdkConfig)> {
        table::validate_table_name(&self.table)?;
        let target = self.resolve(Service::DynamoDb, prod)?;
        let config = sdk_config(&target, &self.target).await;
        Ok((Ddb::new(&config, &target, &self.table), config))
    }

    /// The target of `service`, with a warning on stderr where it deserves one.
    pub fn resolve(&self, service: Service, prod: bool) -> anyhow::Result<Target> {
        resolve_target(&self.target, service, prod)
    }
}

/// Resolves the target of `service` from the flags and the environment, warning on stderr about
/// endpoints that are neither local nor AWS.
pub fn resolve_target(args: &TargetArgs, service: Service, prod: bool) -> anyhow::Result<Target> {
    if let Some(r) = &args.region {
        crate::target::check_region(r, "--region")?;
    }
    for var in ["AWS_REGION", "AWS_DEFAULT_REGION"] {
        if let Some(r) = std::env::var(var).ok().filter(|r| !r.is_empty()) {
            crate::target::check_region(&r, var)?;
        }
    }
    let target = resolve(service, prod, args.endpoint_url.as_deref(), |k| std::env::var(k).ok())?;
    if let Some(w) = crate::target::endpoint_warning(&target) {
        eprintln!("{w}");
    }
    if prod && args.endpoint_url.is_none() {
        for var in [service.endpoint_env(), "AWS_ENDPOINT_URL"] {
            if std::env::var(var).is_ok_and(|v| !v.is_empty()) {
                eprintln!("note: {var} is set; the AWS SDK sends prod requests there");
            }
        }
    }
    Ok(target)
}

/// A progress bar on stderr when stderr is a terminal and `quiet` is off; hidden otherwise
/// (the library updates it either way, so it also counts).
pub fn progress_bar(total: u64, quiet: bool) -> ProgressBar {
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
    bar
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

/// The Postgres flag of the scripts that read `users`.
#[derive(clap::Args, Debug, Clone)]
pub struct PgArgs {
    /// Postgres URL of the users table
    #[arg(long, env = crate::pg::CONNECTION_ENV, default_value = crate::pg::DEFAULT_URL, hide_env_values = true)]
    pub connection_url: String,
}

impl PgArgs {
    /// The users with these handles, in this order; an error names the first one missing.
    pub async fn users(&self, handles: &[&str]) -> anyhow::Result<Vec<crate::pg::User>> {
        let url = &self.connection_url;
        let db = crate::pg::connect(url).await?;
        let wanted: Vec<String> = handles.iter().map(|h| h.to_string()).collect();
        let found = crate::pg::users_by_handle(&db, url, &wanted).await?;
        handles
            .iter()
            .map(|h| found.get(*h).cloned().ok_or_else(|| anyhow::anyhow!("no user with handle {h} in database {}", crate::pg::redact(url))))
            .collect()
    }
}

/// Takes the course's optional trailing `prod` off a script's positional words: true when it was
/// there.
pub fn take_prod(words: &mut Vec<String>) -> bool {
    if words.last().is_some_and(|w| w == "prod") {
        words.pop();
        true
    } else {
        false
    }
}

/// A uuid from the command line, or a usage error (exit 2) that names the argument.
pub fn parse_uuid(what: &str, s: &str) -> anyhow::Result<uuid::Uuid> {
    uuid::Uuid::parse_str(s).map_err(|e| usage(format!("{what} {s:?} is not a uuid ({e}); expected something like {}", crate::seed::COURSE_GROUP)))
}

/// Pretty JSON on stdout, as the course's `json.dumps(..., indent=2)`.
pub fn print_json(v: &impl serde::Serialize) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, v)?;
    out.write_all(b"\n")?;
    Ok(())
}
