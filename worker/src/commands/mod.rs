//! One module per `ballast-worker` command: each builds the plain configuration of the modules
//! below from its clap arguments (only this layer and `main` know [`crate::cli`]) and returns
//! the process exit code.

pub mod consume;
pub mod dlq;
pub mod rates;
pub mod report;
pub mod rescue;
pub mod seed;
pub mod send;
pub mod serve;
pub mod sweep;
pub mod token;

use ballast_aws::load_sdk_config_with_default_region;

use crate::cli::TargetArgs;
use crate::config;
use crate::generate::GenerateError;

/// The resolved targets and the SDK configuration of a command's `--blueprint`/target flags.
pub(crate) async fn sdk(
    args: &TargetArgs,
) -> Result<(config::Targets, aws_types::SdkConfig), GenerateError> {
    let target = args.config();
    let blueprint = config::load_blueprint(&target)?;
    let targets = config::resolve(&target, blueprint.as_ref())?;
    let sdk = load_sdk_config_with_default_region(&targets.aws, targets.default_region.as_deref())
        .await?;
    Ok((targets, sdk))
}
