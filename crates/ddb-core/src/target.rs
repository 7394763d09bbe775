//! Where requests go, decided in one place, and the clients built for it.
//!
//! The course switches between DynamoDB Local and AWS with the word `prod` as the script's
//! argument. We keep that, and add the SDK's own endpoint variables and `--endpoint-url`:
//!
//! 1. `--endpoint-url URL` always wins;
//! 2. `prod` means real AWS through the SDK's normal chain (credentials, region, profile);
//! 3. otherwise the service's variable (`AWS_ENDPOINT_URL_DYNAMODB`,
//!    `AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER`), then `AWS_ENDPOINT_URL`;
//! 4. otherwise DynamoDB goes to `http://localhost:8000` and Cognito to AWS.
//!
//! Endpoint targets need no credentials or config files: dummy keys and a default region are used
//! unless the user sets their own. The environment is read once, by [`Settings::resolve`] (or
//! passed in to [`Settings::resolve_in`]): [`Resolved`] carries all that the SDK configuration
//! ([`sdk_config`], in `target/config.rs`) takes from it.

use crate::error::{quoted, Error, Result};
use std::fmt;

mod config;
pub use config::{client, sdk_config, Patience, SdkClient};

/// The endpoint the course's scripts use for DynamoDB Local.
pub const LOCAL_ENDPOINT: &str = "http://localhost:8000";
/// Region used for endpoint targets when none is configured.
pub const DEFAULT_LOCAL_REGION: &str = "us-east-1";

/// The AWS services the toolkit talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// DynamoDB (tables, items).
    DynamoDb,
    /// Cognito user pools.
    Cognito,
}

impl Service {
    /// The SDK's service-specific endpoint variable.
    pub fn endpoint_env(self) -> &'static str {
        match self {
            Service::DynamoDb => "AWS_ENDPOINT_URL_DYNAMODB",
            Service::Cognito => "AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER",
        }
    }

    /// Human name for messages.
    pub fn name(self) -> &'static str {
        match self {
            Service::DynamoDb => "DynamoDB",
            Service::Cognito => "Cognito",
        }
    }
}

/// What the user asked for: the `prod` word and the target flags. The environment (the SDK's
/// endpoint and region variables) fills in the rest when [`Settings::resolve`] decides.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// The course's `prod` word: real AWS.
    pub prod: bool,
    /// `--endpoint-url`: always wins.
    pub endpoint_url: Option<String>,
    /// `--region`.
    pub region: Option<String>,
    /// `--profile`: a named profile of the AWS config files.
    pub profile: Option<String>,
}

/// A resolved target, with what deserves a warning about it and how the SDK is set up for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// Where requests go.
    pub target: Target,
    /// Lines for stderr: a third-party endpoint, an endpoint variable that `prod` lets the SDK use.
    pub warnings: Vec<String>,
    /// The region given to the SDK: `--region`; for an endpoint also `AWS_REGION`,
    /// `AWS_DEFAULT_REGION` or [`DEFAULT_LOCAL_REGION`]. `None`: the SDK's own chain (AWS).
    pub region: Option<String>,
    /// Sign with dummy keys: an endpoint, with neither keys in the environment nor `--profile`.
    pub test_credentials: bool,
    /// `--profile`, given to the SDK.
    pub profile: Option<String>,
    /// The AWS config files, when credentials may come from them: checked before a request.
    pub profiles: Option<Profiles>,
    /// How long its clients wait: [`Target::patience`], for a local endpoint lengthened by
    /// [`LOCAL_TIMEOUT_ENV`].
    pub patience: Patience,
}

/// Where the SDK's chain reads profiles from, and which one it uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Profiles {
    /// The profile named by `--profile` or `AWS_PROFILE`, and which of them named it. `None`: the
    /// `default` profile, which may well be absent (keys from elsewhere).
    pub selected: Option<(String, Origin)>,
    /// The variables that say where the files are (`HOME`, `AWS_CONFIG_FILE`,
    /// `AWS_SHARED_CREDENTIALS_FILE`), as set.
    pub vars: Vec<(String, String)>,
}

/// The variables that locate the AWS config files.
const PROFILE_VARS: [&str; 3] = ["HOME", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"];

impl Settings {
    /// Decides the target of `service` from these settings and the process environment, after
    /// checking the regions given by flag or variable.
    pub fn resolve(&self, service: Service) -> Result<Resolved> {
        self.resolve_in(service, |k| std::env::var(k).ok())
    }

    /// [`Settings::resolve`] with the environment passed in: the only one read.
    pub fn resolve_in(&self, service: Service, env: impl Fn(&str) -> Option<String>) -> Result<Resolved> {
        let env = |k: &str| env(k).filter(|v| !v.is_empty());
        if let Some(r) = &self.region {
            check_region(r, Origin::Flag("--region"))?;
        }
        for var in ["AWS_REGION", "AWS_DEFAULT_REGION"] {
            if let Some(r) = env(var) {
                check_region(&r, Origin::Var(var))?;
            }
        }
        let local_wait = local_timeout(env)?;
        let target = resolve(service, self.prod, self.endpoint_url.as_deref(), env)?;
        let mut warnings: Vec<String> = endpoint_warning(&target).into_iter().collect();
        if self.prod && self.endpoint_url.is_none() {
            for var in [service.endpoint_env(), "AWS_ENDPOINT_URL"] {
                if env(var).is_some() {
                    warnings.push(format!("note: {var} is set; the AWS SDK sends prod requests there"));
                }
            }
        }
        let mut resolved = sdk_setup(target, self, env);
        resolved.warnings = warnings;
        if let (Some(wait), true) = (local_wait, resolved.target.is_local()) {
            resolved.patience.operation = wait;
        }
        Ok(resolved)
    }
}

/// How the SDK is set up for `target`: region, credentials and the profiles to check.
fn sdk_setup(target: Target, settings: &Settings, env: impl Fn(&str) -> Option<String>) -> Resolved {
    let keys = env("AWS_ACCESS_KEY_ID").is_some();
    let named = match &settings.profile {
        Some(p) => Some((p.clone(), Origin::Flag("--profile"))),
        None => env("AWS_PROFILE").map(|p| (p, Origin::Var("AWS_PROFILE"))),
    };
    let region = match target {
        Target::Endpoint(_) => Some(
            settings
                .region
                .clone()
                .or_else(|| env("AWS_REGION"))
                .or_else(|| env("AWS_DEFAULT_REGION"))
                .unwrap_or_else(|| DEFAULT_LOCAL_REGION.into()),
        ),
        Target::Aws => settings.region.clone(),
    };
    // The files matter when credentials may come from them: the SDK's chain (AWS) without keys in
    // the environment, or a profile named on purpose.
    let chain = target.is_aws() || settings.profile.is_some();
    let profiles = (chain && (!keys || named.is_some()))
        .then(|| Profiles { selected: named, vars: PROFILE_VARS.iter().filter_map(|v| env(v).map(|x| (v.to_string(), x))).collect() });
    let test_credentials = !target.is_aws() && !keys && settings.profile.is_none();
    let patience = target.patience();
    Resolved { target, warnings: Vec::new(), region, test_credentials, profile: settings.profile.clone(), profiles, patience }
}

/// The variable that sets how many seconds a local endpoint may take to answer (default 10): a
/// DynamoDB Local on a loaded machine (the tests') answers, but late.
pub const LOCAL_TIMEOUT_ENV: &str = "DDB_LOCAL_TIMEOUT";

/// [`LOCAL_TIMEOUT_ENV`] from `env`: `None` when unset, an error when it is not a whole number
/// of seconds from 1 to 3600.
pub fn local_timeout(env: impl Fn(&str) -> Option<String>) -> Result<Option<std::time::Duration>> {
    let Some(v) = env(LOCAL_TIMEOUT_ENV) else {
        return Ok(None);
    };
    match v.trim().parse::<u64>() {
        Ok(s) if (1..=3600).contains(&s) => Ok(Some(std::time::Duration::from_secs(s))),
        _ => Err(Error::Input(format!(
            "{LOCAL_TIMEOUT_ENV}={} is not a number of seconds from 1 to 3600 (how long a local endpoint may take to answer)",
            quoted(&v)
        ))),
    }
}

/// Where one service's requests go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A fixed endpoint: DynamoDB Local, moto, or anything the user named.
    Endpoint(String),
    /// Real AWS, through the SDK's normal chain.
    Aws,
}

impl Target {
    /// Short text for messages: the endpoint (a password in it as `***`), or "AWS".
    pub fn label(&self) -> String {
        match self {
            Target::Endpoint(url) => redact_url(url),
            Target::Aws => "AWS".to_string(),
        }
    }

    /// True when the target is real AWS.
    pub fn is_aws(&self) -> bool {
        matches!(self, Target::Aws)
    }

    /// True for a loopback endpoint, where the local stack lives (see [`is_local`]).
    pub fn is_local(&self) -> bool {
        matches!(self, Target::Endpoint(url) if is_local(url))
    }

    /// How long a client waits for this target.
    pub fn patience(&self) -> Patience {
        if self.is_local() {
            Patience::LOCAL
        } else {
            Patience::REMOTE
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label())
    }
}

/// Where a value came from: a flag refused is a usage error (exit 2), a variable refused is bad
/// input (exit 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A command-line flag, as `--region`.
    Flag(&'static str),
    /// A variable of the environment, as `AWS_REGION`.
    Var(&'static str),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Flag(name) | Origin::Var(name) => f.write_str(name),
        }
    }
}

impl Origin {
    /// The error for a bad value from here: [`Error::Usage`] for a flag, else [`Error::Input`].
    pub fn refuse(self, message: String) -> Error {
        match self {
            Origin::Flag(_) => Error::Usage(message),
            Origin::Var(_) => Error::Input(message),
        }
    }
}

/// `url` with the password of a `user:password@` part as `***`, for messages. Works on text
/// that does not parse as a URL too: a malformed URL is printed in the error that refuses it.
pub fn redact_url(url: &str) -> String {
    let Some(start) = url.find("://").map(|i| i + 3) else {
        return url.to_string();
    };
    let end = url[start..].find(['/', '?', '#']).map_or(url.len(), |i| start + i);
    let Some(at) = url[start..end].rfind('@').map(|i| start + i) else {
        return url.to_string();
    };
    match url[start..at].find(':').map(|i| start + i) {
        Some(colon) => format!("{}***{}", &url[..=colon], &url[at..]),
        None => url.to_string(),
    }
}

/// Decides the target of `service` from the `prod` word, the `--endpoint-url` flag and the
/// environment (passed in, so that tests need not touch the process environment).
pub fn resolve(service: Service, prod: bool, endpoint_flag: Option<&str>, env: impl Fn(&str) -> Option<String>) -> Result<Target> {
    let fallback = match service {
        Service::DynamoDb => Target::Endpoint(LOCAL_ENDPOINT.to_string()),
        Service::Cognito => Target::Aws,
    };
    resolve_or(service, prod, endpoint_flag, env, fallback)
}

/// The target of a function running in AWS Lambda, and its SDK setup: AWS, unless the SDK's endpoint variables
/// name an endpoint (the tests run the function against DynamoDB Local that way). A local
/// endpoint waits [`LOCAL_TIMEOUT_ENV`] seconds when set, as the scripts do.
pub fn in_lambda(env: impl Fn(&str) -> Option<String>) -> Result<Resolved> {
    let env = |k: &str| env(k).filter(|v| !v.is_empty());
    let local_wait = local_timeout(env)?;
    let target = resolve_or(Service::DynamoDb, false, None, env, Target::Aws)?;
    let mut resolved = sdk_setup(target, &Settings::default(), env);
    // A function's credentials come from its role, not from config files.
    resolved.profiles = None;
    if let (Some(wait), true) = (local_wait, resolved.target.is_local()) {
        resolved.patience.operation = wait;
    }
    Ok(resolved)
}

fn resolve_or(service: Service, prod: bool, endpoint_flag: Option<&str>, env: impl Fn(&str) -> Option<String>, fallback: Target) -> Result<Target> {
    let nonempty = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    if let Some(url) = endpoint_flag {
        return Ok(Target::Endpoint(check_endpoint(url, Origin::Flag("--endpoint-url"))?));
    }
    if prod {
        return Ok(Target::Aws);
    }
    for var in [service.endpoint_env(), "AWS_ENDPOINT_URL"] {
        if let Some(url) = nonempty(var) {
            return Ok(Target::Endpoint(check_endpoint(&url, Origin::Var(var))?));
        }
    }
    Ok(fallback)
}

/// Checks that an endpoint is an http(s) URL with a host; returns it without a trailing slash.
pub fn check_endpoint(url: &str, origin: Origin) -> Result<String> {
    let shown = redact_url(url);
    let parsed = url::Url::parse(url.trim()).map_err(|e| {
        origin.refuse(format!("malformed endpoint URL {} (from {origin}): {e}; expected something like http://localhost:8000", quoted(&shown)))
    })?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none_or(str::is_empty) {
        return Err(origin.refuse(format!(
            "malformed endpoint URL {} (from {origin}): expected http:// or https:// and a host, like http://localhost:8000",
            quoted(&shown)
        )));
    }
    Ok(url.trim().trim_end_matches('/').to_string())
}

/// Checks that a region looks like one (`us-east-1`, `us-gov-west-1`): a typo such as `us east 1`
/// or `US-EAST-1` would otherwise surface as an obscure endpoint or DNS error.
pub fn check_region(region: &str, origin: Origin) -> Result<()> {
    let parts: Vec<&str> = region.split('-').collect();
    let ok = parts.len() >= 3
        && parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
        && parts[0].bytes().all(|b| b.is_ascii_lowercase())
        && parts.last().is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()));
    if ok {
        Ok(())
    } else {
        Err(origin.refuse(format!("malformed AWS region {} (from {origin}): expected something like us-east-1 or ca-central-1", quoted(region))))
    }
}

/// True for loopback endpoints, where the local stack lives.
pub fn is_local(url: &str) -> bool {
    url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .is_some_and(|h| h == "localhost" || h.starts_with("127.") || h == "[::1]" || h == "::1")
}

/// A warning for endpoints that are neither local nor AWS: requests, and with them any real
/// credentials' signatures, go to a third party.
pub fn endpoint_warning(target: &Target) -> Option<String> {
    let Target::Endpoint(url) = target else {
        return None;
    };
    let host = url::Url::parse(url).ok()?.host_str()?.to_string();
    if is_local(url) || host.ends_with(".amazonaws.com") || host.ends_with(".amazonaws.com.cn") {
        return None;
    }
    Some(format!("warning: endpoint {} is neither local nor AWS; requests go there", target.label()))
}

#[cfg(test)]
mod tests;
