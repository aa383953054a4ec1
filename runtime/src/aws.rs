//! The AWS flags every command that calls AWS takes, and the [`SdkConfig`] they yield.
//! Credentials always come from the standard AWS chain; these flags only pick where the
//! calls go and how long they may take.

use std::time::Duration;

use aws_types::SdkConfig;
use ballast_aws::{AwsOptions, AwsTimeouts, ConfigError};

use crate::duration::parse_positive_duration;

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
    pub timeouts: AwsTimeoutArgs,
}

/// The `--aws-*-timeout` flags: [`AwsTimeouts`] on the command line, in the one duration
/// grammar ([`parse_positive_duration`]: `500ms`, `3s`, `2m`, `1d`; zero would fail every call).
/// The defaults are [`AwsTimeouts::default`]'s (a test keeps them equal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::Args)]
pub struct AwsTimeoutArgs {
    /// Bound on opening a connection (TCP + TLS) to an AWS endpoint.
    #[arg(
        long = "aws-connect-timeout",
        default_value = "3s",
        value_parser = parse_positive_duration,
        env = "BALLAST_AWS_CONNECT_TIMEOUT"
    )]
    pub connect: Duration,
    /// Bound on waiting for the first byte of a response once the request is sent.
    #[arg(
        long = "aws-read-timeout",
        default_value = "20s",
        value_parser = parse_positive_duration,
        env = "BALLAST_AWS_READ_TIMEOUT"
    )]
    pub read: Duration,
    /// Bound on one attempt of an AWS call (the SDK retries a timed-out attempt).
    #[arg(
        long = "aws-attempt-timeout",
        default_value = "30s",
        value_parser = parse_positive_duration,
        env = "BALLAST_AWS_ATTEMPT_TIMEOUT"
    )]
    pub attempt: Duration,
    /// Bound on a whole AWS call, retries included.
    #[arg(
        long = "aws-operation-timeout",
        default_value = "90s",
        value_parser = parse_positive_duration,
        env = "BALLAST_AWS_OPERATION_TIMEOUT"
    )]
    pub operation: Duration,
    /// Extra time a long-polling call (SQS ReceiveMessage) gets on top of its wait time, for
    /// its read and attempt bounds.
    #[arg(
        long = "aws-long-poll-margin",
        default_value = "10s",
        value_parser = parse_positive_duration,
        env = "BALLAST_AWS_LONG_POLL_MARGIN"
    )]
    pub long_poll_margin: Duration,
}

impl Default for AwsTimeoutArgs {
    fn default() -> Self {
        AwsTimeouts::default().into()
    }
}

impl From<AwsTimeoutArgs> for AwsTimeouts {
    fn from(args: AwsTimeoutArgs) -> Self {
        AwsTimeouts {
            connect: args.connect,
            read: args.read,
            attempt: args.attempt,
            operation: args.operation,
            long_poll_margin: args.long_poll_margin,
        }
    }
}

impl From<AwsTimeouts> for AwsTimeoutArgs {
    fn from(t: AwsTimeouts) -> Self {
        AwsTimeoutArgs {
            connect: t.connect,
            read: t.read,
            attempt: t.attempt,
            operation: t.operation,
            long_poll_margin: t.long_poll_margin,
        }
    }
}

impl AwsArgs {
    /// The options for [`ballast_aws::load_sdk_config`].
    pub fn options(&self) -> AwsOptions {
        AwsOptions {
            region: self.region.clone(),
            endpoint_url: self.endpoint_url.clone(),
            profile: self.profile.clone(),
            timeouts: self.timeouts.into(),
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

    #[test]
    fn timeout_defaults_match_the_library_and_use_the_one_grammar() {
        let cli = Cli::parse_from(["t"]);
        assert_eq!(cli.aws.options().timeouts, AwsTimeouts::default());
        let cli = Cli::parse_from([
            "t",
            "--aws-connect-timeout",
            "250ms",
            "--aws-operation-timeout",
            "1d",
            "--aws-attempt-timeout",
            "7",
        ]);
        let timeouts = cli.aws.options().timeouts;
        assert_eq!(timeouts.connect, Duration::from_millis(250));
        assert_eq!(timeouts.operation, Duration::from_secs(86_400));
        assert_eq!(timeouts.attempt, Duration::from_secs(7));
        for bad in ["0s", "abc", "5w", "0"] {
            let err = Cli::try_parse_from(["t", "--aws-read-timeout", bad]).unwrap_err();
            assert!(err.to_string().contains("--aws-read-timeout"), "{err}");
        }
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
