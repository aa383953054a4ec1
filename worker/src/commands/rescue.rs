//! `ballast-worker rescue-dlq`: one rescue pass over the dead-letter queue, for an operator.
//!
//! The same pass runs periodically inside `consume` ([`crate::consumer::rescue`]); this command
//! is for draining a DLQ by hand after an incident, or (`--dry-run`) for seeing what it holds.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use ballast_aws::{AwsError, load_sdk_config_with_default_region};
use tokio_util::sync::CancellationToken;

use super::consume::Clients;
use crate::cli::RescueDlqArgs;
use crate::config::{self, ConfigError, QueueRef};
use crate::consumer::rescue::{RescueConfig, RescueError, RescueReport, Rescuer, Verdict};
use crate::consumer::{ConsumerError, discover_queue};
use crate::ledger::Ledger;
use crate::observability::Metrics;

/// Why `rescue-dlq` could not run.
#[derive(Debug, thiserror::Error)]
pub enum RescueCommandError {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// No usable AWS configuration.
    #[error(transparent)]
    AwsConfig(#[from] ballast_aws::ConfigError),
    /// An AWS call failed.
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// The queue's attributes could not be read.
    #[error(transparent)]
    Queue(#[from] ConsumerError),
    /// The pass could not read the DLQ.
    #[error(transparent)]
    Rescue(#[from] RescueError),
    /// The `--risk-rules` file cannot be used.
    #[error(transparent)]
    RiskRules(#[from] crate::risk::RulesError),
    /// Neither `--dlq-url` nor a RedrivePolicy names a DLQ.
    #[error(
        "no dead-letter queue: the queue has no RedrivePolicy and --dlq-url is not set; \
         hint: pass --dlq-url (or BALLAST_DLQ_URL)"
    )]
    NoDlq,
    /// The report could not be written.
    #[error("cannot write the report: {0}")]
    Output(#[from] std::io::Error),
}

/// `rescue-dlq`: one pass, the report on stdout. Messages left for the next pass (transient
/// failures) make the run fail, so a script knows to run it again.
pub async fn run(
    args: &RescueDlqArgs,
    shutdown: CancellationToken,
) -> Result<ExitCode, RescueCommandError> {
    let report = rescue_dlq(args, shutdown, &mut std::io::stdout().lock()).await?;
    if report.count(Verdict::Transient) > 0 {
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs one pass and writes one line per DLQ message plus a summary to `out`.
pub async fn rescue_dlq(
    args: &RescueDlqArgs,
    shutdown: CancellationToken,
    out: &mut impl Write,
) -> Result<RescueReport, RescueCommandError> {
    let target = args.target.config();
    let blueprint = config::load_blueprint(&target)?;
    let targets = config::resolve(&target, blueprint.as_ref())?;
    let sdk = load_sdk_config_with_default_region(&targets.aws, targets.default_region.as_deref())
        .await?;
    let metrics = Arc::new(Metrics::new());
    let clients = Clients::new(&sdk, &metrics);
    let dlq_url = match &targets.dlq {
        Some(QueueRef::Url(url)) => url.clone(),
        Some(name @ QueueRef::Name(_)) => name.url(&clients.sqs).await?,
        None => {
            let queue_url = targets.queue()?.url(&clients.sqs).await?;
            discover_queue(&clients.sqs, &queue_url)
                .await?
                .dlq_url
                .ok_or(RescueCommandError::NoDlq)?
        }
    };
    let (accounts_table, transactions_table) = targets.tables()?;
    let ledger = super::with_risk(
        Ledger::new(clients.dynamodb.clone(), accounts_table, transactions_table),
        super::load_risk(&args.risk)?.as_ref(),
    );
    let config = RescueConfig {
        poison_hold: args.poison_hold,
        max_per_pass: args.max_messages,
        dry_run: args.dry_run,
        ..RescueConfig::new(dlq_url)
    };
    let rescuer = Rescuer::new(clients.sqs.clone(), ledger, config, metrics);
    let report = rescuer.pass(&shutdown).await?;
    write_report(&report, args.dry_run, args.json, out)?;
    Ok(report)
}

/// The report: one line per message, then the counts.
pub fn write_report(
    report: &RescueReport,
    dry_run: bool,
    json: bool,
    out: &mut impl Write,
) -> std::io::Result<()> {
    for message in &report.messages {
        if json {
            let line = serde_json::json!({
                "message_id": message.message_id,
                "transaction_id": message.transaction_id,
                "verdict": message.verdict.label(),
                "detail": message.detail,
                "dry_run": dry_run,
            });
            writeln!(out, "{line}")?;
        } else {
            let id = message
                .transaction_id
                .map(|id| id.to_string())
                .unwrap_or_else(|| "-".to_owned());
            let detail = message.detail.as_deref().unwrap_or("");
            writeln!(
                out,
                "{} {} {} {}",
                message.message_id,
                id,
                message.verdict.label(),
                detail
            )?;
        }
    }
    if !json {
        let verdicts = [
            Verdict::Completed,
            Verdict::Declined,
            Verdict::Rejected,
            Verdict::Settled,
            Verdict::WouldApply,
            Verdict::WouldReject,
            Verdict::Poison,
            Verdict::Failed,
            Verdict::Transient,
        ];
        let counts: Vec<String> = verdicts
            .iter()
            .map(|v| (v.label(), report.count(*v)))
            .filter(|(_, n)| *n > 0)
            .map(|(label, n)| format!("{n} {label}"))
            .collect();
        writeln!(
            out,
            "rescue-dlq{}: {} read, {} rescued{}{}",
            if dry_run { " (dry run)" } else { "" },
            report.messages.len(),
            report.rescued(),
            if counts.is_empty() { "" } else { "; " },
            counts.join(", ")
        )?;
    }
    Ok(())
}
