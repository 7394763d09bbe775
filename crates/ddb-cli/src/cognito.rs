//! The flags of the scripts that read the Cognito user pool, and the client they connect.
//!
//! Cognito's target flags are a struct of their own rather than [`TargetArgs`] with its help
//! rewritten at run time: their defaults differ (AWS, or Cognito's endpoint variables, never
//! DynamoDB Local), and a doc comment is checked by the compiler where an argument's id string is not.

use crate::flags::TargetArgs;
use ddb_core::target::{Resolved, Service, Settings};

crate::flags::target_flags! {
    /// Where the Cognito scripts send requests: [`TargetArgs`]' flags, with Cognito's defaults.
    CognitoTargetArgs {
        endpoint_url: "Send requests to this endpoint (default: AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER or AWS_ENDPOINT_URL when set, else AWS)",
        region: "AWS region (default: the AWS config chain; with an endpoint, AWS_REGION or us-east-1)",
        profile: "Named profile from your AWS config files",
    }
}

impl CognitoTargetArgs {
    /// The same flags as [`TargetArgs`], which turns them into the library's settings.
    pub fn flags(&self) -> TargetArgs {
        TargetArgs { endpoint_url: self.endpoint_url.clone(), region: self.region.clone(), profile: self.profile.clone() }
    }

    /// [`TargetArgs::settings`].
    pub fn settings(&self, prod: bool) -> Settings {
        self.flags().settings(prod)
    }

    /// [`TargetArgs::resolve`].
    pub fn resolve(&self, service: Service, prod: bool) -> anyhow::Result<Resolved> {
        self.flags().resolve(service, prod)
    }
}

/// The flags of the scripts that read the Cognito user pool.
#[derive(clap::Args, Debug, Clone)]
pub struct CognitoArgs {
    /// Where requests go, with Cognito's defaults.
    #[command(flatten)]
    pub target: CognitoTargetArgs,
    /// The pool (default: $AWS_COGNITO_USER_POOL_ID)
    #[arg(long, value_name = "ID")]
    pub user_pool_id: Option<String>,
}

impl CognitoArgs {
    /// Checks the pool id (flag or variable), resolves the target and builds the client.
    pub async fn connect(&self) -> anyhow::Result<ddb_core::cognito::Cognito> {
        let pool = ddb_core::cognito::pool_id(self.user_pool_id.as_deref())?;
        let resolved = self.target.resolve(Service::Cognito, false)?;
        Ok(ddb_core::cognito::Cognito::connect(&resolved, &pool).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    #[derive(Parser)]
    struct Script {
        #[command(flatten)]
        cognito: CognitoArgs,
    }

    #[test]
    fn the_flags_say_cognitos_defaults_and_reach_the_settings() {
        let help = Script::command().render_long_help().to_string().split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(help.contains("AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER or AWS_ENDPOINT_URL when set, else AWS"), "{help}");
        assert!(!help.contains("localhost:8000"), "{help}");
        let s = Script::parse_from(["x", "--endpoint-url", "http://127.0.0.1:5000", "--region", "eu-west-1", "--profile", "p"]);
        let settings = s.cognito.target.settings(false);
        assert_eq!(
            (settings.endpoint_url.as_deref(), settings.region.as_deref(), settings.profile.as_deref()),
            (Some("http://127.0.0.1:5000"), Some("eu-west-1"), Some("p"))
        );
    }
}
