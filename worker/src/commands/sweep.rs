//! `ballast-worker sweep`: sends accepted transactions whose enqueueing never happened.

use std::io::Write;
use std::process::ExitCode;

use tokio_util::sync::CancellationToken;

use super::serve::{IngestParts, ServeError, ingest_parts};
use crate::api::sweep::{SweepReport, Sweeper};
use crate::cli::SweepArgs;

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
    let IngestParts {
        ledger,
        sqs,
        queue_url,
    } = ingest_parts(&args.target.config()).await?;
    let sweeper = Sweeper::new(ledger, sqs, queue_url, args.sweep_after);
    if args.watch {
        sweeper.run(args.sweep_interval, shutdown).await;
        return Ok(SweepReport::default());
    }
    Ok(sweeper.sweep_once(time::OffsetDateTime::now_utc()).await?)
}
