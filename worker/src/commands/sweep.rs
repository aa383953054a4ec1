//! `ballast-worker sweep`: sends accepted transactions whose enqueueing never happened.

use std::io::Write;
use std::process::ExitCode;

use tokio_util::sync::CancellationToken;

use super::serve::ServeError;
use crate::api::sweep::{SweepReport, Sweeper};
use crate::cli::SweepArgs;
use crate::config::{ConfigError, load_blueprint, resolve};
use crate::ledger::Ledger;

/// `sweep`: one pass (or passes until `shutdown` with `--watch`); prints the last report.
pub async fn run(args: &SweepArgs, shutdown: CancellationToken) -> Result<ExitCode, ServeError> {
    let report = sweep_command(args, shutdown).await?;
    writeln!(
        std::io::stdout().lock(),
        "sweep: {} sent again, {} settled, {} claimed elsewhere, {} failed",
        report.resent,
        report.settled,
        report.skipped,
        report.failed
    )
    .map_err(ServeError::Stdout)?;
    Ok(ExitCode::SUCCESS)
}

/// One sweep (or, with `--watch`, sweeps until `shutdown`); returns the last report.
pub async fn sweep_command(
    args: &SweepArgs,
    shutdown: CancellationToken,
) -> Result<SweepReport, ServeError> {
    let target = args.target.config();
    let blueprint = load_blueprint(&target)?;
    let targets = resolve(&target, blueprint.as_ref())?;
    let sdk = ballast_aws::load_sdk_config_with_default_region(
        &targets.aws,
        targets.default_region.as_deref(),
    )
    .await?;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let queue_url = targets
        .queue()?
        .url(&sqs)
        .await
        .map_err(ConfigError::from)?;
    let (accounts, transactions) = targets.tables()?;
    let sweeper = Sweeper::new(
        Ledger::new(ddb, accounts, transactions),
        sqs,
        queue_url,
        args.sweep_after,
    );
    if args.watch {
        sweeper.run(args.sweep_interval, shutdown).await;
        return Ok(SweepReport::default());
    }
    Ok(sweeper.sweep_once(time::OffsetDateTime::now_utc()).await?)
}
