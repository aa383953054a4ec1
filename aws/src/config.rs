//! Loading the shared [`SdkConfig`] for every AWS client Ballast builds, with client-side
//! timeouts ([`AwsTimeouts`]) so that no AWS call can wait forever on a silent connection.

use std::time::Duration;

use aws_config::default_provider::region::DefaultRegionChain;
use aws_config::stalled_stream_protection::StalledStreamProtectionConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_types::SdkConfig;

/// Hint shown whenever no region could be resolved.
pub const REGION_HINT: &str = "set --region, AWS_REGION, or metadata.region";

/// Command-line / blueprint overrides for AWS client configuration.
///
/// Every field is optional: anything left as `None` is resolved by the standard AWS
/// chains (environment variables such as `AWS_REGION`, `AWS_PROFILE` and
/// `AWS_ENDPOINT_URL`, the shared config/credentials files, IMDS, ...).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AwsOptions {
    /// Explicit region (`--region`); wins over every other source.
    pub region: Option<String>,
    /// Explicit endpoint URL (`--endpoint-url`), e.g. a local moto server. When `None`,
    /// aws-config still honours `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_<SERVICE>`.
    pub endpoint_url: Option<String>,
    /// Named profile from the shared config files (`--profile`); `None` means the
    /// standard resolution (`AWS_PROFILE`, then `default`).
    pub profile: Option<String>,
    /// Client-side timeouts of every call.
    pub timeouts: AwsTimeouts,
}

/// Client-side timeouts of every AWS call (`--aws-*-timeout`).
///
/// Without them an SDK call on a connection that stays silent waits forever: one hung
/// ReceiveMessage stops a worker while it still looks healthy. Every client both binaries
/// build gets these through the shared [`SdkConfig`]; long-polling calls widen the read and
/// attempt bounds by their wait ([`AwsTimeouts::long_poll`]). They are also the only bound on a
/// response that stalls mid-body: the SDK's stalled-stream protection is off
/// ([`load_sdk_config_with_default_region`] says why).
///
/// The command-line flags that fill it (`--aws-connect-timeout` …) are
/// `ballast_runtime::aws::AwsTimeoutArgs`, parsed with the one duration grammar of both
/// binaries; this crate stays free of the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AwsTimeouts {
    /// Bound on opening a connection (TCP + TLS) to an AWS endpoint.
    pub connect: Duration,
    /// Bound on waiting for the first byte of a response once the request is sent.
    pub read: Duration,
    /// Bound on one attempt of an AWS call (the SDK retries a timed-out attempt).
    pub attempt: Duration,
    /// Bound on a whole AWS call, retries included.
    pub operation: Duration,
    /// Extra time a long-polling call (SQS ReceiveMessage) gets on top of its wait time, for
    /// its read and attempt bounds.
    pub long_poll_margin: Duration,
}

impl Default for AwsTimeouts {
    /// The command-line defaults (`ballast_runtime::aws::AwsTimeoutArgs` shows the same).
    fn default() -> Self {
        AwsTimeouts {
            connect: Duration::from_secs(3),
            read: Duration::from_secs(20),
            attempt: Duration::from_secs(30),
            operation: Duration::from_secs(90),
            long_poll_margin: Duration::from_secs(10),
        }
    }
}

impl AwsTimeouts {
    /// The SDK timeout configuration of ordinary calls.
    pub fn timeout_config(&self) -> TimeoutConfig {
        TimeoutConfig::builder()
            .connect_timeout(self.connect)
            .read_timeout(self.read)
            .operation_attempt_timeout(self.attempt)
            .operation_timeout(self.operation)
            .build()
    }

    /// The timeout configuration of a long poll that may legitimately stay silent for `wait`
    /// (SQS ReceiveMessage with `WaitTimeSeconds`): read and attempt bounds of at least
    /// `wait` + margin, and an operation bound at least as long as one such attempt.
    pub fn long_poll(&self, wait: Duration) -> TimeoutConfig {
        let quiet = wait.saturating_add(self.long_poll_margin);
        TimeoutConfig::builder()
            .connect_timeout(self.connect)
            .read_timeout(self.read.max(quiet))
            .operation_attempt_timeout(self.attempt.max(quiet))
            .operation_timeout(self.operation.max(quiet))
            .build()
    }

    /// The longest a long poll of `wait` can take before it fails: its operation bound.
    pub fn long_poll_bound(&self, wait: Duration) -> Duration {
        self.operation
            .max(wait.saturating_add(self.long_poll_margin))
    }
}

/// Failure to build an [`SdkConfig`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// No region from the options, the environment, the profile, IMDS, or the fallback.
    #[error("no AWS region configured: {hint}")]
    MissingRegion {
        /// What the user can do about it.
        hint: &'static str,
    },
}

/// Loads the shared SDK configuration using the standard credential chain and region
/// resolution, with `opts` taking precedence.
///
/// Returns [`ConfigError::MissingRegion`] when no region can be resolved.
pub async fn load_sdk_config(opts: &AwsOptions) -> Result<SdkConfig, ConfigError> {
    load_sdk_config_with_default_region(opts, None).await
}

/// Like [`load_sdk_config`], but falls back to `default_region` (typically the blueprint's
/// `metadata.region`) when neither `opts.region` nor the standard region chain yields one.
///
/// Precedence: `opts.region` > `AWS_REGION` / profile / IMDS > `default_region`.
pub async fn load_sdk_config_with_default_region(
    opts: &AwsOptions,
    default_region: Option<&str>,
) -> Result<SdkConfig, ConfigError> {
    let region = resolve_region(opts, default_region).await?;

    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(region)
        .timeout_config(opts.timeouts.timeout_config())
        // The SDK's stalled-stream protection is off because the timeouts above already bound a
        // stalled call: no operation Ballast calls streams its body (no S3), so the SDK sends
        // the request and reads the whole response inside the attempt timeout, and a stall
        // anywhere in it fails the attempt (retried) within `attempt` (a long poll: its wait
        // plus the margin). The protection duplicated that bound (after its 20 s grace period)
        // at a cost: it wakes every in-flight request every 100 ms to sample its throughput,
        // a ReceiveMessage long poll included (docs/benchmarks.md).
        .stalled_stream_protection(StalledStreamProtectionConfig::disabled());
    if let Some(profile) = non_empty(opts.profile.as_deref()) {
        loader = loader.profile_name(profile);
    }
    if let Some(endpoint_url) = non_empty(opts.endpoint_url.as_deref()) {
        loader = loader.endpoint_url(endpoint_url);
    }
    Ok(loader.load().await)
}

async fn resolve_region(
    opts: &AwsOptions,
    default_region: Option<&str>,
) -> Result<Region, ConfigError> {
    if let Some(region) = non_empty(opts.region.as_deref()) {
        return Ok(Region::new(region.to_owned()));
    }
    let mut chain = DefaultRegionChain::builder();
    if let Some(profile) = non_empty(opts.profile.as_deref()) {
        chain = chain.profile_name(profile);
    }
    let from_chain = chain.build().region().await;
    region_or_default(from_chain, default_region)
}

/// Picks the resolved region, else the fallback, else a typed [`ConfigError::MissingRegion`].
fn region_or_default(
    resolved: Option<Region>,
    default_region: Option<&str>,
) -> Result<Region, ConfigError> {
    resolved
        .filter(|r| !r.as_ref().trim().is_empty())
        .or_else(|| non_empty(default_region).map(|r| Region::new(r.to_owned())))
        .ok_or(ConfigError::MissingRegion { hint: REGION_HINT })
}

fn non_empty(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolved_region_wins_over_default() {
        let region = region_or_default(Some(Region::new("eu-west-1")), Some("us-east-1")).unwrap();
        assert_eq!(region.as_ref(), "eu-west-1");
    }

    #[test]
    fn default_region_is_the_fallback() {
        let region = region_or_default(None, Some("us-west-2")).unwrap();
        assert_eq!(region.as_ref(), "us-west-2");
    }

    #[test]
    fn missing_region_is_a_typed_error_with_a_hint() {
        let err = region_or_default(None, Some("  ")).unwrap_err();
        assert!(matches!(err, ConfigError::MissingRegion { .. }));
        let text = err.to_string();
        assert!(text.contains("--region"), "{text}");
        assert!(text.contains("AWS_REGION"), "{text}");
        assert!(text.contains("metadata.region"), "{text}");
    }

    #[tokio::test]
    async fn explicit_options_are_applied() {
        let opts = AwsOptions {
            region: Some("ap-southeast-2".into()),
            endpoint_url: Some("http://127.0.0.1:1".into()),
            profile: None,
            timeouts: AwsTimeouts::default(),
        };
        let config = load_sdk_config(&opts).await.unwrap();
        assert_eq!(config.region().map(|r| r.as_ref()), Some("ap-southeast-2"));
        assert_eq!(config.endpoint_url(), Some("http://127.0.0.1:1"));
        let timeouts = config.timeout_config().unwrap();
        assert_eq!(timeouts.connect_timeout(), Some(Duration::from_secs(3)));
        assert_eq!(timeouts.read_timeout(), Some(Duration::from_secs(20)));
        assert_eq!(
            timeouts.operation_attempt_timeout(),
            Some(Duration::from_secs(30))
        );
        assert_eq!(timeouts.operation_timeout(), Some(Duration::from_secs(90)));
        // The timeouts bound a stalled call; the SDK's throughput sampling is off.
        let stalled = config.stalled_stream_protection().unwrap();
        assert!(!stalled.is_enabled());
    }

    #[test]
    fn long_polls_get_their_wait_plus_the_margin() {
        let t = AwsTimeouts {
            read: Duration::from_secs(5),
            attempt: Duration::from_secs(6),
            operation: Duration::from_secs(8),
            ..AwsTimeouts::default()
        };
        let poll = t.long_poll(Duration::from_secs(20));
        assert_eq!(poll.read_timeout(), Some(Duration::from_secs(30)));
        assert_eq!(
            poll.operation_attempt_timeout(),
            Some(Duration::from_secs(30))
        );
        assert_eq!(poll.operation_timeout(), Some(Duration::from_secs(30)));
        assert_eq!(
            t.long_poll_bound(Duration::from_secs(20)),
            Duration::from_secs(30)
        );
        // A short wait keeps the ordinary bounds.
        let poll = t.long_poll(Duration::ZERO);
        assert_eq!(poll.read_timeout(), Some(Duration::from_secs(10)));
        assert_eq!(poll.operation_timeout(), Some(Duration::from_secs(10)));
    }
}
