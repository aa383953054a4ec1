//! `ballast-worker bills run-due`: one pass of the bill-payment runner.

use std::io::Write;
use std::process::ExitCode;

use super::serve::{IngestParts, ServeError, ingest_parts};
use crate::bills::runner::{BillRunner, RunReport};
use crate::cli::{BillsCommand, BillsRunDueArgs};

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
    let IngestParts {
        ledger,
        sqs,
        queue_url,
    } = ingest_parts(&args.target.config()).await?;
    let runner = BillRunner::new(ledger, sqs, queue_url, args.sweep_after);
    Ok(runner.run_due(now).await?)
}
