//! The AWS flags every command that calls AWS takes, and the [`SdkConfig`] they yield.
//! Credentials always come from the standard AWS chain; these flags only pick where the
//! calls go and how long they may take.

use aws_types::SdkConfig;
use ballast_aws::{AwsOptions, AwsTimeouts, ConfigError};

/// Where AWS calls go (`--region`, `--endpoint-url`, `--profile`) and their client-side
/// timeouts (`--aws-*-timeout`).
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
pub struct AwsArgs {
    /// AWS region; default: AWS_REGION / the profile, then the blueprint's `metadata.region`.
    #[arg(long)]
    pub region: Option<String>,
    /// Send every AWS call to this endpoint (e.g. a local emulator). `AWS_ENDPOINT_URL` also works.
    #[arg(long)]
    pub endpoint_url: Option<String>,
    /// Named profile from the shared AWS config files.
    #[arg(long)]
    pub profile: Option<String>,
    /// Client-side timeouts of every AWS call.
    #[command(flatten)]
    pub timeouts: AwsTimeouts,
}

impl AwsArgs {
    /// The options for [`ballast_aws::load_sdk_config`].
    pub fn options(&self) -> AwsOptions {
        AwsOptions {
            region: self.region.clone(),
            endpoint_url: self.endpoint_url.clone(),
            profile: self.profile.clone(),
            timeouts: self.timeouts,
        }
    }

    /// The shared SDK configuration; `default_region` (the blueprint's `metadata.region`) is
    /// used when neither `--region` nor the AWS chain names one.
    pub async fn sdk_config(&self, default_region: Option<&str>) -> Result<SdkConfig, ConfigError> {
        ballast_aws::load_sdk_config_with_default_region(&self.options(), default_region).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use std::time::Duration;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        aws: AwsArgs,
    }

    #[test]
    fn the_flags_fill_the_options() {
        let cli = Cli::parse_from([
            "t",
            "--region",
            "eu-west-1",
            "--endpoint-url",
            "http://127.0.0.1:1",
            "--profile",
            "dev",
            "--aws-read-timeout",
            "5s",
        ]);
        let opts = cli.aws.options();
        assert_eq!(opts.region.as_deref(), Some("eu-west-1"));
        assert_eq!(opts.endpoint_url.as_deref(), Some("http://127.0.0.1:1"));
        assert_eq!(opts.profile.as_deref(), Some("dev"));
        assert_eq!(opts.timeouts.read, Duration::from_secs(5));
        assert_eq!(opts.timeouts.connect, AwsTimeouts::default().connect);
    }

    #[tokio::test]
    async fn the_blueprint_region_is_the_fallback_only() {
        let args = AwsArgs {
            endpoint_url: Some("http://127.0.0.1:1".into()),
            ..AwsArgs::default()
        };
        let explicit = AwsArgs {
            region: Some("ap-southeast-2".into()),
            ..args.clone()
        };
        let config = explicit.sdk_config(Some("us-west-2")).await.unwrap();
        assert_eq!(config.region().map(|r| r.as_ref()), Some("ap-southeast-2"));
        assert_eq!(config.endpoint_url(), Some("http://127.0.0.1:1"));
    }
}
