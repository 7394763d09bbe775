//! The error type of the library. Every message says what went wrong and, where the user can do
//! something about it, what to do next.

use crate::target::{is_local, Patience};
use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use std::fmt::Display;
use std::time::Duration;

/// What can go wrong in the toolkit, phrased for the person running the script.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The DynamoDB table is not there.
    #[error("table {table} does not exist at {target}: run ./bin/ddb/schema-load first")]
    TableMissing {
        /// Table name.
        table: String,
        /// Where we looked.
        target: String,
    },
    /// The table is there when it should not be.
    #[error("table {table} already exists at {target}")]
    TableExists {
        /// Table name.
        table: String,
        /// Where it is.
        target: String,
    },
    /// Nothing answered at the endpoint, or it did not answer in time.
    #[error("{}", unreachable_text(.service, .op, .target, .cause, .hint, *.waited))]
    Unreachable {
        /// DynamoDB, Cognito, ...
        service: &'static str,
        /// The operation that got no answer.
        op: &'static str,
        /// Endpoint or "AWS".
        target: String,
        /// The lowest-level cause.
        cause: String,
        /// What to do about it, with a leading separator.
        hint: String,
        /// Set when the server took the connection and then did not answer within this long.
        waited: Option<Duration>,
    },
    /// The SDK's credential chain found nothing (prod, or an endpoint with a named profile).
    #[error(
        "no AWS credentials found for {service} at {target}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, \
         or a profile with AWS_PROFILE or --profile (aws configure; aws sso login); without prod the scripts use DynamoDB Local and need none"
    )]
    NoCredentials {
        /// Service name.
        service: &'static str,
        /// Where the request would have gone.
        target: String,
    },
    /// Throttled for longer than we are willing to wait.
    #[error("{service} kept throttling {op} for {secs} s; {done} items were written before giving up. Re-run to resume (the seed is idempotent), or lower --concurrency")]
    GaveUp {
        /// Service name.
        service: &'static str,
        /// Operation.
        op: &'static str,
        /// How long we tried.
        secs: u64,
        /// Progress before giving up.
        done: u64,
    },
    /// Any other answer from an AWS service.
    #[error("{service} {op} failed: {code}: {message}")]
    Service {
        /// Service name.
        service: &'static str,
        /// Operation.
        op: &'static str,
        /// Error code.
        code: String,
        /// Error message.
        message: String,
    },
    /// Bad input from the user: a file's content, a name, a variable of the environment.
    #[error("{0}")]
    Input(String),
    /// A command-line flag with a value that cannot work (the scripts exit 2 for it, as for any
    /// usage error).
    #[error("{0}")]
    Usage(String),
    /// Something the input names is not there: a user, a conversation.
    #[error("{0}")]
    NotFound(String),
    /// Another writer holds what this run needs (the seed lock), or kept changing it.
    #[error("{0}")]
    Conflict(String),
    /// A wait with a limit ran out: a table that did not become ACTIVE, or was not deleted.
    #[error("{what} within {} s{}", .waited.as_secs(), cause_text(.cause))]
    Timeout {
        /// What did not happen, as a phrase ("table x did not become ACTIVE").
        what: String,
        /// How long we waited.
        waited: Duration,
        /// What the waiter said, if anything.
        cause: Option<String>,
    },
    /// A file could not be read or written.
    #[error("{what}: {source}")]
    Io {
        /// What we were doing, with the file's name.
        what: String,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A server answered in a way that its API does not allow.
    #[error("{0}")]
    Protocol(String),
    /// The run was interrupted (Ctrl-C or SIGTERM) before it finished.
    #[error("interrupted")]
    Interrupted,
    /// A long run failed part of the way; running it again finishes it.
    #[error("{source}; the seed stopped while {phase} ({done} of {total} items done); run it again to finish (it replaces the partial seed)")]
    Stopped {
        /// Why it stopped.
        source: Box<Error>,
        /// The phase it was in.
        phase: String,
        /// Items done in that phase.
        done: u64,
        /// Items of that phase.
        total: u64,
    },
    /// Postgres could not be reached, did not answer in time, or refused a statement.
    #[error("postgres ({url}): {message}")]
    Postgres {
        /// The connection URL with any password redacted.
        url: String,
        /// What happened, and what to do.
        message: String,
        /// Set when Postgres did not answer within this long (kind [`ErrorKind::Timeout`]).
        waited: Option<Duration>,
        /// The Postgres client's own error, when there is one.
        #[source]
        cause: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// A row in the table does not have the shape of SPEC.md.
    #[error("item {key} is malformed: {problem}")]
    BadItem {
        /// The item's key, for finding it.
        key: String,
        /// What is wrong with it.
        problem: String,
    },
}

/// The kinds of [`Error`], for callers that decide by kind (exit codes, retries, tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Bad input: a file's content, a name, a variable.
    Input,
    /// A command-line flag's value.
    Usage,
    /// Something named is not there (a table, a user, a conversation).
    NotFound,
    /// Already there (a table).
    Exists,
    /// Another writer got in the way.
    Conflict,
    /// A bounded wait ran out.
    Timeout,
    /// Nothing answered, or not in time.
    Unreachable,
    /// No credentials for AWS.
    Credentials,
    /// Throttled for longer than we wait.
    Throttled,
    /// A service refused the request.
    Service,
    /// Postgres refused or was not there.
    Postgres,
    /// A file could not be read or written.
    Io,
    /// A server broke its API's rules.
    Protocol,
    /// A row of the table has the wrong shape.
    Data,
    /// Stopped by the user (Ctrl-C): the scripts exit 130, as a shell does.
    Interrupted,
}

/// Result with the library's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Where a call went, so that errors can name it.
#[derive(Debug, Clone)]
pub struct CallContext<'a> {
    /// Service name for messages.
    pub service: &'static str,
    /// Operation name.
    pub op: &'static str,
    /// The endpoint, or "AWS".
    pub target: &'a str,
    /// The table the call was about, if any.
    pub table: Option<&'a str>,
}

impl Error {
    /// Turns an SDK error into one that tells the user what to do.
    pub fn from_sdk<E, R>(err: SdkError<E, R>, ctx: &CallContext<'_>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug + 'static,
    {
        if has_source::<CredentialsError>(&err) {
            return Error::NoCredentials { service: ctx.service, target: ctx.target.to_string() };
        }
        let waited = match &err {
            SdkError::TimeoutError(_) => Some(Patience::of(ctx.target).operation),
            _ => None,
        };
        match &err {
            SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => {
                let local = is_local(ctx.target);
                let cause = root_cause(&err);
                let hint = match (local, ctx.service.starts_with("DynamoDB"), waited.is_some()) {
                    // Nothing was sent: the SDK found no region to sign for.
                    _ if cause.contains("missing signing region") => ": set AWS_REGION or pass --region (or a region in ~/.aws/config)",
                    (true, true, true) => {
                        ": something there accepts connections but does not answer; ./bin/local/status tells whether it is DynamoDB Local, ./bin/local/reset restarts it"
                    }
                    (true, true, false) => ": start the local stack with ./bin/local/up, or pass prod for AWS",
                    (true, false, _) => ": is the emulator running?",
                    (false, _, _) => ": check the endpoint URL, your network and your AWS region",
                };
                Error::Unreachable { service: ctx.service, op: ctx.op, target: ctx.target.to_string(), cause, hint: hint.to_string(), waited }
            }
            _ => {
                let code = err.code().unwrap_or("Unknown").to_string();
                if code == "ResourceNotFoundException" {
                    if let Some(table) = ctx.table {
                        return Error::TableMissing { table: table.into(), target: ctx.target.into() };
                    }
                }
                if code == "ResourceInUseException" && ctx.op == "CreateTable" {
                    if let Some(table) = ctx.table {
                        return Error::TableExists { table: table.into(), target: ctx.target.into() };
                    }
                }
                let message = err.message().map(str::to_string).unwrap_or_else(|| root_cause(&err));
                Error::Service { service: ctx.service, op: ctx.op, code, message }
            }
        }
    }

    /// What kind of error this is (of a [`Error::Stopped`]: its cause's).
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::TableMissing { .. } | Error::NotFound(_) => ErrorKind::NotFound,
            Error::TableExists { .. } => ErrorKind::Exists,
            Error::Unreachable { .. } => ErrorKind::Unreachable,
            Error::NoCredentials { .. } => ErrorKind::Credentials,
            Error::GaveUp { .. } => ErrorKind::Throttled,
            Error::Service { .. } => ErrorKind::Service,
            Error::Input(_) => ErrorKind::Input,
            Error::Usage(_) => ErrorKind::Usage,
            Error::Conflict(_) => ErrorKind::Conflict,
            Error::Timeout { .. } => ErrorKind::Timeout,
            Error::Io { .. } => ErrorKind::Io,
            Error::Protocol(_) => ErrorKind::Protocol,
            Error::Postgres { waited: Some(_), .. } => ErrorKind::Timeout,
            Error::Postgres { .. } => ErrorKind::Postgres,
            Error::BadItem { .. } => ErrorKind::Data,
            Error::Interrupted => ErrorKind::Interrupted,
            Error::Stopped { source, .. } => source.kind(),
        }
    }

    /// An [`Error::Io`]: `what` we were doing, with the file's name.
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io { what: what.into(), source }
    }

    /// True for errors worth retrying after a pause (throttling, 5xx, lost connections).
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Unreachable { .. } => true,
            Error::Service { code, .. } => is_transient_code(code),
            _ => false,
        }
    }
}

/// Error codes that mean "try again later".
pub fn is_transient_code(code: &str) -> bool {
    matches!(
        code,
        "ProvisionedThroughputExceededException"
            | "ThrottlingException"
            | "RequestLimitExceeded"
            | "InternalServerError"
            | "InternalFailure"
            | "ServiceUnavailable"
            | "TransactionInProgressException"
            | "Unknown"
    )
}

fn unreachable_text(service: &str, op: &str, target: &str, cause: &str, hint: &str, waited: Option<Duration>) -> String {
    match waited {
        Some(d) => format!("{service} at {target} did not answer within {} s ({op}){hint}", d.as_secs()),
        None => format!("cannot reach {service} at {target} ({cause}){hint}"),
    }
}

fn cause_text(cause: &Option<String>) -> String {
    cause.as_deref().map_or(String::new(), |c| format!(" ({c})"))
}

/// True when an error of type `T` is somewhere in `err`'s chain of sources.
fn has_source<T: std::error::Error + 'static>(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(err);
    while let Some(e) = cur {
        if e.is::<T>() {
            return true;
        }
        cur = e.source();
    }
    false
}

/// The innermost message of an error chain: "Connection refused" rather than "dispatch failure".
pub fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cur: &dyn std::error::Error = err;
    let mut last = cur.to_string();
    while let Some(next) = cur.source() {
        cur = next;
        let s = cur.to_string();
        if !s.is_empty() {
            last = s;
        }
    }
    last
}

/// Shorthand for an input error.
pub fn input(msg: impl Display) -> Error {
    Error::Input(msg.to_string())
}
