//! The SDK configuration for a [`Resolved`] target, how long its clients wait, and the one helper
//! that builds every service client for a target.

use super::{Origin, Profiles, Resolved, Target};
use crate::error::{Error, Result};
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use std::time::Duration;

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

    /// The SDK's timeouts for this patience. One attempt may take the whole operation's time:
    /// cutting attempts shorter would only turn a slow answer into a repeated request.
    pub fn timeout_config(self) -> TimeoutConfig {
        TimeoutConfig::builder().connect_timeout(self.connect).operation_attempt_timeout(self.operation).operation_timeout(self.operation).build()
    }
}

/// An SDK configuration for `resolved`, shared by all service clients of one run. It reads
/// nothing of the environment that [`Resolved`] has not read already; the SDK's own chain (AWS,
/// or a named profile) does, and the AWS config files it will read are checked first, so that a
/// malformed file or a missing profile is said as such, not as "no credentials found".
pub async fn sdk_config(resolved: &Resolved) -> Result<SdkConfig> {
    if let Some(profiles) = &resolved.profiles {
        check_profiles(profiles).await?;
    }
    // rustls with ring for HTTPS (AWS itself, SSO, STS): the SDK's default aws-lc needs a C build
    // that was 40 s of a cold build (issue 14). Certificates are read on the first HTTPS request.
    use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
    let https = aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https();
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).http_client(https);
    if let Some(region) = &resolved.region {
        loader = loader.region(Region::new(region.clone()));
    }
    match &resolved.target {
        Target::Endpoint(url) => {
            loader = loader.endpoint_url(url);
            // A plain-HTTP endpoint (DynamoDB Local, moto) needs no TLS: the default HTTPS client
            // would read and parse the machine's whole CA store at start, about half of a local
            // script's run time.
            if url.starts_with("http://") {
                loader = loader.http_client(aws_smithy_http_client::Builder::new().build_http());
            }
            // Emulators accept any keys. Real ones from the environment are used when present,
            // so that a user pointing --endpoint-url at an AWS VPC endpoint still signs properly.
            if resolved.test_credentials {
                loader = loader.test_credentials();
            }
            loader = loader
                // Few, quick retries: an absent server must be reported within seconds.
                .retry_config(RetryConfig::standard().with_max_attempts(3).with_initial_backoff(Duration::from_millis(50)))
                .timeout_config(resolved.patience.timeout_config());
        }
        Target::Aws => {
            // Adaptive retries pace the client down when AWS throttles, instead of failing.
            loader = loader.retry_config(RetryConfig::adaptive().with_max_attempts(10)).timeout_config(Patience::REMOTE.timeout_config());
        }
    }
    if let Some(profile) = &resolved.profile {
        loader = loader.profile_name(profile);
    }
    Ok(loader.load().await)
}

/// Reads the AWS config and credentials files as the SDK will: a file that does not parse is
/// named with its line and what is wrong there; a profile named by `--profile` or `AWS_PROFILE`
/// that is in neither file is named with the ones that are.
async fn check_profiles(profiles: &Profiles) -> Result<()> {
    use aws_runtime::env_config::file::EnvConfigFiles;
    use aws_types::os_shim_internal::{Env, Fs};
    let env = Env::from(profiles.vars.iter().cloned().collect::<std::collections::HashMap<_, _>>());
    let var = |name: &str| profiles.vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let config = var("AWS_CONFIG_FILE").unwrap_or_else(|| "~/.aws/config".into());
    let credentials = var("AWS_SHARED_CREDENTIALS_FILE").unwrap_or_else(|| "~/.aws/credentials".into());
    for (path, variable) in [(&config, "AWS_CONFIG_FILE"), (&credentials, "AWS_SHARED_CREDENTIALS_FILE")] {
        unreadable_file(path, var("HOME").as_deref()).map_or(Ok(()), |why| {
            Err(Error::Input(format!("cannot use the AWS config file {path}: {why}; fix it, or point {variable} at a file")))
        })?;
    }
    let selected = profiles.selected.as_ref().map(|(name, _)| name.clone().into());
    let set = aws_config::profile::load(&Fs::real(), &env, &EnvConfigFiles::default(), selected).await.map_err(|e| {
        Error::Input(format!(
            "cannot use the AWS config files: {}; fix the file, or point AWS_CONFIG_FILE / AWS_SHARED_CREDENTIALS_FILE at another",
            chain_text(&e)
        ))
    })?;
    let Some((name, origin)) = &profiles.selected else {
        return Ok(());
    };
    if set.get_profile(name).is_some() {
        return Ok(());
    }
    let mut known: Vec<&str> = set.profiles().collect();
    known.sort_unstable();
    let known = if known.is_empty() { "it has none".to_string() } else { format!("it has {}", known.join(", ")) };
    let unset = if matches!(origin, Origin::Var(_)) { ", or unset AWS_PROFILE" } else { "" };
    Err(origin.refuse(format!(
        "AWS profile {name} (from {origin}) is not in {config} or {credentials} ({known}): create it with `aws configure --profile {name}` (or `aws configure sso`){unset}"
    )))
}

/// Why `path` (`~/` meaning `home`) cannot be read as an AWS config file, when it exists but is
/// not a readable file: the SDK takes such a file as absent and then fails for want of a region
/// or of credentials, which names neither the file nor the reason.
fn unreadable_file(path: &str, home: Option<&str>) -> Option<String> {
    let full = match (path.strip_prefix("~/"), home) {
        (Some(rest), Some(home)) => std::path::Path::new(home).join(rest),
        _ => std::path::PathBuf::from(path),
    };
    let meta = std::fs::metadata(&full).ok()?;
    if !meta.is_file() {
        return Some(if meta.is_dir() { "it is a directory, not a file".into() } else { "it is not a regular file".into() });
    }
    std::fs::File::open(&full).err().map(|e| e.to_string())
}

/// An error and its sources on one line: the SDK's parse error keeps the file and line below a
/// bare "could not parse profile file".
fn chain_text(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![err.to_string()];
    let mut source = err.source();
    while let Some(s) = source {
        parts.push(s.to_string());
        source = s.source();
    }
    crate::error::one_line(&parts.join(": "))
}

/// A service client that [`client`] builds: each service crate's `Client`.
pub trait SdkClient: Sized {
    /// The client for `config`, sending to `endpoint` when there is one.
    fn at(config: &SdkConfig, endpoint: Option<&str>) -> Self;
}

/// The lines that build one service's client, written once for every service.
macro_rules! sdk_client {
    ($krate:ident) => {
        impl SdkClient for $krate::Client {
            fn at(config: &SdkConfig, endpoint: Option<&str>) -> Self {
                let mut builder = $krate::config::Builder::from(config);
                if let Some(url) = endpoint {
                    builder = builder.endpoint_url(url);
                }
                $krate::Client::from_conf(builder.build())
            }
        }
    };
}

sdk_client!(aws_sdk_dynamodb);
#[cfg(feature = "cognito")]
sdk_client!(aws_sdk_cognitoidentityprovider);
#[cfg(feature = "streams")]
sdk_client!(aws_sdk_dynamodbstreams);

/// A client of any service for `target`, configured by `config` (see [`sdk_config`]). For an
/// endpoint our resolution has decided: the SDK must not prefer its own variables
/// (`AWS_ENDPOINT_URL_DYNAMODB` would otherwise win over `--endpoint-url`).
pub fn client<C: SdkClient>(config: &SdkConfig, target: &Target) -> C {
    match target {
        Target::Endpoint(url) => C::at(config, Some(url)),
        Target::Aws => C::at(config, None),
    }
}
