//! One SDK call's context, and its errors turned into the library's: what went wrong, where, and
//! what to do. It sits above [`crate::error`] and [`crate::target`] (the hints depend on the
//! target: local or not, plain HTTP or TLS), so that neither of those imports the other.

use crate::error::{find_source, one_line, root_cause, Error};
use crate::target::Target;
use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};

/// Where a call went, so that errors can name it.
#[derive(Debug, Clone)]
pub struct CallContext<'a> {
    /// Service name for messages.
    pub service: &'static str,
    /// Operation name.
    pub op: &'static str,
    /// Where the request went.
    pub target: &'a Target,
    /// The table the call was about, if any.
    pub table: Option<&'a str>,
    /// How long the client waited (what a timeout's message names).
    pub patience: crate::target::Patience,
}

/// The answer to a conditional write: true when it was made, false when its condition failed
/// (another writer came first), and any other failure as an [`Error`] of `ctx`.
pub(crate) fn conditioned<T, E, R>(res: Result<T, SdkError<E, R>>, ctx: &CallContext<'_>) -> crate::error::Result<bool>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    match res {
        Ok(_) => Ok(true),
        Err(e) if e.as_service_error().and_then(|s| s.code()) == Some("ConditionalCheckFailedException") => Ok(false),
        Err(e) => Err(Error::from_sdk(e, ctx)),
    }
}

/// What DynamoDB says when an item or a key does not fit the table's keys or indexes: the table
/// is not shaped as ours (another table of the same name, made by hand or by an older script).
const SHAPE_MESSAGES: [&str; 6] =
    ["key schema element", "Missing the key", "does not match the schema", "Type mismatch for key", "specified index", "required keys was not given"];

impl Error {
    /// Turns an SDK error into one that tells the user what to do.
    pub fn from_sdk<E, R>(err: SdkError<E, R>, ctx: &CallContext<'_>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug + 'static,
    {
        if let Some(cred) = find_source::<CredentialsError>(&err) {
            // "Not loaded" is the chain finding nothing; anything else is a source that is set
            // up and failed, whose own words say what to fix.
            let cause = (!matches!(cred, CredentialsError::CredentialsNotLoaded(_))).then(|| one_line(&root_cause(cred)));
            return Error::NoCredentials { service: ctx.service, target: ctx.target.label(), cause };
        }
        match &err {
            SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => unreachable(&err, ctx),
            _ => {
                let code = err.code().unwrap_or("Unknown").to_string();
                if let Some(table) = ctx.table {
                    if code == "ResourceNotFoundException" {
                        return Error::TableMissing { table: table.into(), target: ctx.target.label() };
                    }
                    if code == "ResourceInUseException" && ctx.op == "CreateTable" {
                        return Error::TableExists { table: table.into(), target: ctx.target.label() };
                    }
                }
                let mut message = err.message().map(str::to_string).unwrap_or_else(|| root_cause(&err));
                if code == "ValidationException" && SHAPE_MESSAGES.iter().any(|m| message.contains(m)) {
                    message.push_str(": the table's shape differs from ours: run ./bin/ddb/schema-load to see how");
                }
                // No error code at all: the answer was not one of the service's (a web server or
                // another program on the port).
                if code == "Unknown" && !ctx.target.is_aws() {
                    message.push_str(&format!(
                        ": {} answered, but not as {} does: is that the right endpoint? (./bin/local/status tells what runs on the local port)",
                        ctx.target.label(),
                        ctx.service
                    ));
                }
                Error::Service { service: ctx.service, op: ctx.op, code, message }
            }
        }
    }
}

/// An [`Error::Unreachable`] for a request that got no answer, or none in time, with what to do.
fn unreachable<E, R>(err: &SdkError<E, R>, ctx: &CallContext<'_>) -> Error
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    let waited = matches!(err, SdkError::TimeoutError(_)).then(|| ctx.patience.operation);
    let cause = one_line(&root_cause(err));
    let tls_to_plain = matches!(ctx.target, Target::Endpoint(url) if url.starts_with("https://"))
        && (cause.contains("corrupt message") || cause.contains("InvalidContentType"));
    let hint = match (ctx.target.is_local(), ctx.service.starts_with("DynamoDB"), waited.is_some()) {
        // Nothing was sent: the SDK found no region to sign for.
        _ if cause.contains("missing signing region") => ": set AWS_REGION or pass --region (or a region in ~/.aws/config)".to_string(),
        _ if tls_to_plain => format!(": the server answers plain HTTP, not TLS: use {}", ctx.target.label().replacen("https://", "http://", 1)),
        (true, true, true) => {
            ": something there accepts connections but does not answer; ./bin/local/status tells whether it is DynamoDB Local, ./bin/local/reset restarts it".to_string()
        }
        (true, true, false) => ": start the local stack with ./bin/local/up, or pass prod for AWS".to_string(),
        (true, false, _) => ": is the emulator running?".to_string(),
        (false, _, _) => ": check the endpoint URL, your network and your AWS region".to_string(),
    };
    Error::Unreachable { service: ctx.service, op: ctx.op, target: ctx.target.label(), cause, hint, waited }
}
