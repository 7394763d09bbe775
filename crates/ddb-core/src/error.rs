//! The error type of the library. Every message says what went wrong and, where the user can do
//! something about it, what to do next.

//!
//! This module depends on no other of the crate: the conversion of SDK errors, which needs to
//! know the target, lives in [`crate::call`].

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
    /// A table of our name that is not shaped as ours (keys, index, stream): the scripts cannot
    /// use it, and schema-load will not change it.
    #[error(
        "table {table} at {target} is not shaped as ours: {differences}; drop it (./bin/ddb/drop {table}) and run ./bin/ddb/schema-load again, or pass another --table"
    )]
    TableShape {
        /// Table name.
        table: String,
        /// Where it is.
        target: String,
        /// What differs, as a phrase ("keys are id (HASH), expected pk (HASH), sk (RANGE)").
        differences: String,
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
    /// The SDK's credential chain found nothing (prod, or an endpoint with a named profile), or
    /// a source of it failed (`cause`: an expired SSO session, a failing credential_process).
    #[error("{}", credentials_text(.service, .target, .cause))]
    NoCredentials {
        /// Service name.
        service: &'static str,
        /// Where the request would have gone.
        target: String,
        /// Why a configured source gave none, in the SDK's words; `None` when there was none.
        cause: Option<String>,
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
    /// An import failed part of the way; running it again finishes it (its writes are puts).
    #[error("{source}; the import stopped while {phase} ({done} of {total} done); run it again to finish (its writes are idempotent)")]
    ImportStopped {
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
    /// The table, or a row of it, has the wrong shape.
    Data,
    /// Stopped by the user (Ctrl-C): the scripts exit 130, as a shell does.
    Interrupted,
}

/// Result with the library's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
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
            Error::BadItem { .. } | Error::TableShape { .. } => ErrorKind::Data,
            Error::Interrupted => ErrorKind::Interrupted,
            Error::Stopped { source, .. } | Error::ImportStopped { source, .. } => source.kind(),
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

fn credentials_text(service: &str, target: &str, cause: &Option<String>) -> String {
    match cause {
        None => format!(
            "no AWS credentials found for {service} at {target}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, \
             or a profile with AWS_PROFILE or --profile (aws configure; aws sso login); without prod the scripts use DynamoDB Local and need none"
        ),
        Some(cause) => format!(
            "cannot get AWS credentials for {service} at {target}: {cause}: check the profile's settings (aws configure list; aws sso login renews an SSO session)"
        ),
    }
}

fn cause_text(cause: &Option<String>) -> String {
    cause.as_deref().map_or(String::new(), |c| format!(" ({c})"))
}

/// The first error of type `T` in `err`'s chain of sources, `err` included.
pub(crate) fn find_source<'a, T: std::error::Error + 'static>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a T> {
    let mut cur = Some(err);
    while let Some(e) = cur {
        if let Some(t) = e.downcast_ref::<T>() {
            return Some(t);
        }
        cur = e.source();
    }
    None
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

/// `text` in double quotes, as it is: messages quote data this way, not with `{:?}`, because
/// whoever prints them escapes what a terminal must not see (ddb-cli's `escape`, the Lambda's log)
/// and Debug's own escapes would show doubled (`'\\0'`).
pub fn quoted(text: &str) -> String {
    format!("\"{text}\"")
}

/// A character as its code point, `U+0000`: how messages name a control character.
pub fn code_point(c: char) -> String {
    format!("U+{:04X}", u32::from(c))
}

/// `text` on one line: an error is one line of stderr, whatever the SDK's messages hold.
pub(crate) fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
