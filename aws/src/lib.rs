//! AWS plumbing shared by the `ballast` controller and the `ballast-worker` binary:
//! loading [`aws_types::SdkConfig`] from the standard chains plus command-line overrides
//! ([`load_sdk_config`]), and classifying SDK failures into a small typed taxonomy
//! ([`classify`], [`AwsError`]), every call named by one label, `service:Operation`
//! ([`operation_label`]).

mod calls;
mod config;
mod error;
mod label;

pub use calls::{CallKey, CallRecorder, MutationRefused, ReadOnlyGuard, is_read_only_operation};
pub use config::{
    AwsOptions, AwsTimeouts, ConfigError, REGION_HINT, load_sdk_config,
    load_sdk_config_with_default_region,
};
pub use error::{
    AwsError, AwsErrorKind, BoxError, BuildResultExt, SdkFailure, SdkResultExt, classify,
    kind_for_code,
};
pub use label::{operation_label, operation_name, service_prefix};
