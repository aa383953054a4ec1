//! AWS plumbing shared by the `ballast` controller and the `ballast-worker` binary:
//! loading [`aws_types::SdkConfig`] from the standard chains plus command-line overrides
//! ([`load_sdk_config`]), and classifying SDK failures into a small typed taxonomy
//! ([`classify`], [`AwsError`]).

mod calls;
mod config;
mod error;

pub use calls::{CallKey, CallRecorder, MutationRefused, ReadOnlyGuard, is_read_only_operation};
pub use config::{
    AwsOptions, AwsTimeouts, ConfigError, REGION_HINT, load_sdk_config,
    load_sdk_config_with_default_region, parse_timeout,
};
pub use error::{
    AwsError, AwsErrorKind, BoxError, BuildResultExt, SdkResultExt, classify, kind_for_code,
};
