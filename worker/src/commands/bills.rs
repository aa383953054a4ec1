//! `ballast-worker bills run-due`: one pass of the bill-payment runner.

use std::io::Write;
use std::process::ExitCode;

use super::serve::ServeError;
use crate::bills::runner::{BillRunner, RunReport};
use crate::cli::{BillsCommand, BillsRunDueArgs};
use crate::config::{ConfigError, load_blueprint, resolve};
use crate::ledger::Ledger;

/// `bills …`.
pub async fn run(command: &BillsCommand) -> Result<ExitCode, ServeError> {
    match command {
        BillsCommand::RunDue(args) => {
            let report = run_due(args, time::OffsetDateTime::now_utc()).await?;
            writeln!(
                std::io::stdout().lock(),
                "bills: {} enqueued, {} already enqueued, {} refused, {} advanced elsewhere, {} stale, {} failed",
                report.enqueued,
                report.replayed,
                report.refused,
                report.lost,
                report.stale,
                report.failed
            )
            .map_err(ServeError::Stdout)?;
            // A failed occurrence is retried by the next pass; cron should hear of it.
            Ok(if report.failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

/// One pass as of `now`.
pub async fn run_due(
    args: &BillsRunDueArgs,
    now: time::OffsetDateTime,
) -> Result<RunReport, ServeError> {
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
    let runner = BillRunner::new(
        Ledger::new(ddb, accounts, transactions),
        sqs,
        queue_url,
        args.sweep_after,
    );
    Ok(runner.run_due(now).await?)
}
