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
//! unless the user sets their own.

use crate::error::{Error, Result};
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use std::time::Duration;

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

/// A resolved target, with what deserves a warning about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// Where requests go.
    pub target: Target,
    /// Lines for stderr: a third-party endpoint, an endpoint variable that `prod` lets the SDK use.
    pub warnings: Vec<String>,
}

impl Settings {
    /// Decides the target of `service` from these settings and the process environment, after
    /// checking the regions given by flag or variable.
    pub fn resolve(&self, service: Service) -> Result<Resolved> {
        self.resolve_in(service, |k| std::env::var(k).ok())
    }

    /// [`Settings::resolve`] with the environment passed in.
    pub fn resolve_in(&self, service: Service, env: impl Fn(&str) -> Option<String>) -> Result<Resolved> {
        if let Some(r) = &self.region {
            check_region(r, "--region")?;
        }
        for var in ["AWS_REGION", "AWS_DEFAULT_REGION"] {
            if let Some(r) = env(var).filter(|r| !r.is_empty()) {
                check_region(&r, var)?;
            }
        }
        local_timeout(&env)?;
        let target = resolve(service, self.prod, self.endpoint_url.as_deref(), &env)?;
        let mut warnings: Vec<String> = endpoint_warning(&target).into_iter().collect();
        if self.prod && self.endpoint_url.is_none() {
            for var in [service.endpoint_env(), "AWS_ENDPOINT_URL"] {
                if env(var).is_some_and(|v| !v.is_empty()) {
                    warnings.push(format!("note: {var} is set; the AWS SDK sends prod requests there"));
                }
            }
        }
        Ok(Resolved { target, warnings })
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
    /// Short text for messages: the endpoint, or "AWS".
    pub fn label(&self) -> String {
        match self {
            Target::Endpoint(url) => url.clone(),
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

/// The target of a function running in AWS Lambda: AWS, unless the SDK's endpoint variables
/// name an endpoint (the tests run the function against DynamoDB Local that way).
pub fn in_lambda(env: impl Fn(&str) -> Option<String>) -> Result<Target> {
    resolve_or(Service::DynamoDb, false, None, env, Target::Aws)
}

fn resolve_or(service: Service, prod: bool, endpoint_flag: Option<&str>, env: impl Fn(&str) -> Option<String>, fallback: Target) -> Result<Target> {
    let nonempty = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    if let Some(url) = endpoint_flag {
        return Ok(Target::Endpoint(check_endpoint(url, "--endpoint-url")?));
    }
    if prod {
        return Ok(Target::Aws);
    }
    for var in [service.endpoint_env(), "AWS_ENDPOINT_URL"] {
        if let Some(url) = nonempty(var) {
            return Ok(Target::Endpoint(check_endpoint(&url, var)?));
        }
    }
    Ok(fallback)
}

/// A bad value from `origin`: a usage error when it is a flag (`--region`), else bad input (a
/// variable of the environment).
fn bad_value(origin: &str, message: String) -> Error {
    if origin.starts_with("--") {
        Error::Usage(message)
    } else {
        Error::Input(message)
    }
}

/// Checks that an endpoint is an http(s) URL with a host; returns it without a trailing slash.
pub fn check_endpoint(url: &str, origin: &str) -> Result<String> {
    let parsed = url::Url::parse(url.trim()).map_err(|e| {
        bad_value(origin, format!("malformed endpoint URL {url:?} (from {origin}): {e}; expected something like http://localhost:8000"))
    })?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none_or(str::is_empty) {
        return Err(bad_value(
            origin,
            format!("malformed endpoint URL {url:?} (from {origin}): expected http:// or https:// and a host, like http://localhost:8000"),
        ));
    }
    Ok(url.trim().trim_end_matches('/').to_string())
}

/// Checks that a region looks like one (`us-east-1`, `us-gov-west-1`): a typo such as `us east 1`
/// or `US-EAST-1` would otherwise surface as an obscure endpoint or DNS error.
pub fn check_region(region: &str, origin: &str) -> Result<()> {
    let parts: Vec<&str> = region.split('-').collect();
    let ok = parts.len() >= 3
        && parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
        && parts[0].bytes().all(|b| b.is_ascii_lowercase())
        && parts.last().is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()));
    if ok {
        Ok(())
    } else {
        Err(bad_value(origin, format!("malformed AWS region {region:?} (from {origin}): expected something like us-east-1 or ca-central-1")))
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
    Some(format!("warning: endpoint {url} is neither local nor AWS; requests go there"))
}

/// The variable that sets how many seconds a local endpoint may take to answer (default 10).
pub const LOCAL_TIMEOUT_ENV: &str = "DDB_LOCAL_TIMEOUT";

/// [`LOCAL_TIMEOUT_ENV`] from `env`: `None` when unset, an error when it is not a whole number
/// of seconds from 1 to 3600.
pub fn local_timeout(env: impl Fn(&str) -> Option<String>) -> Result<Option<Duration>> {
    let Some(v) = env(LOCAL_TIMEOUT_ENV).filter(|v| !v.trim().is_empty()) else {
        return Ok(None);
    };
    match v.trim().parse::<u64>() {
        Ok(s) if (1..=3600).contains(&s) => Ok(Some(Duration::from_secs(s))),
        _ => Err(Error::Input(format!("{LOCAL_TIMEOUT_ENV}={v:?} is not a number of seconds from 1 to 3600 (how long a local endpoint may take to answer)"))),
    }
}

/// How long a client waits for a server before it gives up, by target.
///
/// Without limits the SDK waits for an answer for as long as the socket stays open: a server
/// that accepts connections and never answers (a hung DynamoDB Local, the wrong program on the
/// port) held `list-tables` for three minutes and the seed forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Patience {
    /// Until the TCP connection is up.
    pub connect: Duration,
    /// One request with all its retries, from the first byte sent to the last byte of the answer.
    pub operation: Duration,
}

impl Patience {
    /// Loopback endpoints (DynamoDB Local, moto): they answer in milliseconds when they answer
    /// at all; 10 s leaves room for a DynamoDB Local slowed down by many stream records (SPEC.md).
    pub const LOCAL: Patience = Patience { connect: Duration::from_secs(2), operation: Duration::from_secs(10) };
    /// AWS and any other endpoint: generous (adaptive retries may pace a throttled call for
    /// minutes), but bounded.
    pub const REMOTE: Patience = Patience { connect: Duration::from_secs(5), operation: Duration::from_secs(300) };

    /// The patience for a target, by its label (an endpoint URL, or "AWS"). For a local endpoint,
    /// [`LOCAL_TIMEOUT_ENV`] lengthens the wait for an answer (a DynamoDB Local on a loaded
    /// machine, the tests').
    pub fn of(label: &str) -> Patience {
        if is_local(label) {
            let operation = local_timeout(|k| std::env::var(k).ok()).ok().flatten().unwrap_or(Patience::LOCAL.operation);
            Patience { operation, ..Patience::LOCAL }
        } else {
            Patience::REMOTE
        }
    }

    /// The SDK's timeouts for this patience. One attempt may take the whole operation's time:
    /// cutting attempts shorter would only turn a slow answer into a repeated request.
    pub fn timeout_config(self) -> TimeoutConfig {
        TimeoutConfig::builder().connect_timeout(self.connect).operation_attempt_timeout(self.operation).operation_timeout(self.operation).build()
    }
}

/// An SDK configuration for `target`, shared by all service clients of one run.
pub async fn sdk_config(target: &Target, args: &Settings) -> SdkConfig {
    // rustls with ring for HTTPS (AWS itself, SSO, STS): the SDK's default aws-lc needs a C build
    // that was 40 s of a cold build (issue 14). Certificates are read on the first HTTPS request.
    use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
    let https = aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https();
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).http_client(https);
    match target {
        Target::Endpoint(url) => {
            let region = args
                .region
                .clone()
                .or_else(|| std::env::var("AWS_REGION").ok().filter(|r| !r.is_empty()))
                .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok().filter(|r| !r.is_empty()))
                .unwrap_or_else(|| DEFAULT_LOCAL_REGION.to_string());
            loader = loader.endpoint_url(url).region(Region::new(region));
            // A plain-HTTP endpoint (DynamoDB Local, moto) needs no TLS: the default HTTPS client
            // would read and parse the machine's whole CA store at start, about half of a local
            // script's run time.
            if url.starts_with("http://") {
                loader = loader.http_client(aws_smithy_http_client::Builder::new().build_http());
            }
            // Emulators accept any keys. Real ones from the environment are used when present,
            // so that a user pointing --endpoint-url at an AWS VPC endpoint still signs properly.
            if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() && args.profile.is_none() {
                loader = loader.test_credentials();
            }
            let patience = Patience::of(url);
            loader = loader
                // Few, quick retries: an absent server must be reported within seconds.
                .retry_config(RetryConfig::standard().with_max_attempts(3).with_initial_backoff(Duration::from_millis(50)))
                .timeout_config(patience.timeout_config());
        }
        Target::Aws => {
            if let Some(region) = &args.region {
                loader = loader.region(Region::new(region.clone()));
            }
            // Adaptive retries pace the client down when AWS throttles, instead of failing.
            loader = loader.retry_config(RetryConfig::adaptive().with_max_attempts(10)).timeout_config(Patience::REMOTE.timeout_config());
        }
    }
    if let Some(profile) = &args.profile {
        loader = loader.profile_name(profile);
    }
    loader.load().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn regions_are_checked() {
        for ok in ["us-east-1", "ca-central-1", "us-gov-west-1", "ap-southeast-2"] {
            assert!(check_region(ok, "test").is_ok(), "{ok}");
        }
        for bad in ["", "us east 1", "US-EAST-1", "useast1", "us-east-", "us-east-x", "1s-east-1"] {
            assert!(check_region(bad, "test").unwrap_err().to_string().contains("malformed AWS region"), "{bad}");
        }
    }

    #[test]
    fn default_is_dynamodb_local() {
        let t = resolve(Service::DynamoDb, false, None, env_of(&[])).unwrap();
        assert_eq!(t, Target::Endpoint("http://localhost:8000".into()));
    }

    #[test]
    fn prod_means_aws() {
        assert_eq!(resolve(Service::DynamoDb, true, None, env_of(&[])).unwrap(), Target::Aws);
        // A local endpoint variable left in the shell does not turn prod into local.
        let env = env_of(&[("AWS_ENDPOINT_URL", "http://localhost:9")]);
        assert_eq!(resolve(Service::DynamoDb, true, None, env).unwrap(), Target::Aws);
    }

    #[test]
    fn flag_beats_everything() {
        let env = env_of(&[("AWS_ENDPOINT_URL", "http://a:1"), ("AWS_ENDPOINT_URL_DYNAMODB", "http://b:2")]);
        let t = resolve(Service::DynamoDb, true, Some("http://c:3/"), env).unwrap();
        assert_eq!(t, Target::Endpoint("http://c:3".into()));
    }

    #[test]
    fn service_variable_beats_generic_one() {
        let env = env_of(&[("AWS_ENDPOINT_URL", "http://a:1"), ("AWS_ENDPOINT_URL_DYNAMODB", "http://b:2")]);
        assert_eq!(resolve(Service::DynamoDb, false, None, &env).unwrap(), Target::Endpoint("http://b:2".into()));
        // The DynamoDB variable is not Cognito's.
        assert_eq!(resolve(Service::Cognito, false, None, &env).unwrap(), Target::Endpoint("http://a:1".into()));
    }

    #[test]
    fn generic_variable_and_empty_values() {
        let env = env_of(&[("AWS_ENDPOINT_URL", "http://a:1"), ("AWS_ENDPOINT_URL_DYNAMODB", "")]);
        assert_eq!(resolve(Service::DynamoDb, false, None, env).unwrap(), Target::Endpoint("http://a:1".into()));
    }

    #[test]
    fn cognito_defaults_to_aws() {
        assert_eq!(resolve(Service::Cognito, false, None, env_of(&[])).unwrap(), Target::Aws);
        let env = env_of(&[("AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER", "http://127.0.0.1:5000")]);
        assert_eq!(resolve(Service::Cognito, false, None, env).unwrap(), Target::Endpoint("http://127.0.0.1:5000".into()));
    }

    #[test]
    fn malformed_endpoints_are_input_errors() {
        for bad in ["localhost:8000", "ftp://x", "http://", "not a url", ""] {
            let err = resolve(Service::DynamoDb, false, Some(bad), env_of(&[])).unwrap_err();
            assert!(err.to_string().contains("malformed endpoint URL"), "{bad}: {err}");
        }
        let err = resolve(Service::DynamoDb, false, None, env_of(&[("AWS_ENDPOINT_URL", "nope")])).unwrap_err();
        assert!(err.to_string().contains("AWS_ENDPOINT_URL"), "{err}");
        // A flag's bad value is a usage error; a variable's is bad input.
        assert_eq!(err.kind(), crate::ErrorKind::Input);
        assert_eq!(resolve(Service::DynamoDb, false, Some("ftp://x"), env_of(&[])).unwrap_err().kind(), crate::ErrorKind::Usage);
        assert_eq!(check_region("us east 1", "--region").unwrap_err().kind(), crate::ErrorKind::Usage);
        assert_eq!(check_region("us east 1", "AWS_REGION").unwrap_err().kind(), crate::ErrorKind::Input);
    }

    #[test]
    fn settings_check_regions_and_warn() {
        let bad = Settings { region: Some("us east 1".into()), ..Settings::default() };
        assert!(bad.resolve_in(Service::DynamoDb, env_of(&[])).unwrap_err().to_string().contains("--region"));
        let err = Settings::default().resolve_in(Service::DynamoDb, env_of(&[("AWS_REGION", "EU")])).unwrap_err();
        assert!(err.to_string().contains("AWS_REGION"), "{err}");
        let prod = Settings { prod: true, ..Settings::default() };
        let r = prod.resolve_in(Service::DynamoDb, env_of(&[("AWS_ENDPOINT_URL", "http://localhost:9")])).unwrap();
        assert_eq!(r.target, Target::Aws);
        assert_eq!(r.warnings, ["note: AWS_ENDPOINT_URL is set; the AWS SDK sends prod requests there"]);
        let third = Settings { endpoint_url: Some("http://evil.example".into()), ..Settings::default() };
        assert_eq!(third.resolve_in(Service::DynamoDb, env_of(&[])).unwrap().warnings.len(), 1);
    }

    #[test]
    fn lambda_goes_to_aws_unless_an_endpoint_is_set() {
        assert_eq!(in_lambda(env_of(&[])).unwrap(), Target::Aws);
        assert_eq!(in_lambda(env_of(&[("AWS_ENDPOINT_URL", "http://127.0.0.1:8001")])).unwrap(), Target::Endpoint("http://127.0.0.1:8001".into()));
        assert!(Target::Endpoint("http://[::1]:8000".into()).is_local() && !Target::Aws.is_local());
    }

    #[test]
    fn warns_only_for_third_party_endpoints() {
        assert!(endpoint_warning(&Target::Endpoint("http://localhost:8000".into())).is_none());
        assert!(endpoint_warning(&Target::Endpoint("http://127.0.0.1:8000".into())).is_none());
        assert!(endpoint_warning(&Target::Endpoint("https://dynamodb.eu-west-1.amazonaws.com".into())).is_none());
        assert!(endpoint_warning(&Target::Aws).is_none());
        assert!(endpoint_warning(&Target::Endpoint("http://evil.example:80".into())).is_some());
    }
}
