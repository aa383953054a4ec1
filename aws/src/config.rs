//! Loading the shared [`SdkConfig`] for every AWS client Ballast builds.

use aws_config::default_provider::region::DefaultRegionChain;
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

    let mut loader = aws_config::defaults(BehaviorVersion::latest()).region(region);
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
        };
        let config = load_sdk_config(&opts).await.unwrap();
        assert_eq!(config.region().map(|r| r.as_ref()), Some("ap-southeast-2"));
        assert_eq!(config.endpoint_url(), Some("http://127.0.0.1:1"));
    }
}
