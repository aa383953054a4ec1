//! One module per `ballast-worker` command: each builds the plain configuration of the modules
//! below from its clap arguments (only this layer and `main` know [`crate::cli`]) and returns
//! the process exit code.

pub mod bills;
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

use std::sync::Arc;

use ballast_aws::load_sdk_config_with_default_region;

use crate::cli::{RiskArgs, TargetArgs};
use crate::config;
use crate::generate::GenerateError;
use crate::ledger::Ledger;
use crate::risk::{RiskRules, RulesError};

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

/// The command's `--risk-rules`, loaded and checked (every problem of the file, positioned),
/// before anything runs; `None` without the flag.
pub(crate) fn load_risk(args: &RiskArgs) -> Result<Option<Arc<RiskRules>>, RulesError> {
    let Some(path) = &args.risk_rules else {
        return Ok(None);
    };
    let rules = crate::risk::load(path)?;
    tracing::info!(
        file = %path.display(),
        hold_at = rules.hold_at,
        decline_at = rules.decline_at,
        "risk rules loaded"
    );
    Ok(Some(Arc::new(rules)))
}

/// `ledger`, scoring with `rules` when there are any.
pub(crate) fn with_risk(ledger: Ledger, rules: Option<&Arc<RiskRules>>) -> Ledger {
    match rules {
        Some(rules) => ledger.with_risk(rules.clone()),
        None => ledger,
    }
}
