//! `ballast-worker dlq list|show|redrive|purge`: the operator's hands on the dead-letter queue
//! ([`crate::dlq`] does the work; this module resolves the queues, asks for confirmation and
//! renders).

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;

use ballast_aws::{AwsError, load_sdk_config_with_default_region};

use super::consume::Clients;
use crate::cli::{DlqCommand, DlqCommonArgs, OutputFormat};
use crate::config::{self, ConfigError, QueueRef};
use crate::consumer::{ConsumerError, discover_queue};
use crate::dlq::{DeadLetter, DeadLetterQueue, DlqError, RedriveOutcome, Redriven, Selection};
use crate::ledger::Ledger;
use crate::observability::Metrics;

/// Why a `dlq` command could not run.
#[derive(Debug, thiserror::Error)]
pub enum DlqCommandError {
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
    /// The operation failed.
    #[error(transparent)]
    Dlq(#[from] DlqError),
    /// Neither `--dlq-url` nor a RedrivePolicy names a DLQ.
    #[error(
        "no dead-letter queue: the queue has no RedrivePolicy and --dlq-url is not set; \
         hint: pass --dlq-url (or BALLAST_DLQ_URL)"
    )]
    NoDlq,
    /// `show` of a message id the DLQ does not hold.
    #[error(
        "message {0} is not in the dead-letter queue; hint: `ballast-worker dlq list` prints \
         the message ids (a message another reader holds is invisible for up to 30 s)"
    )]
    NotFound(String),
    /// `purge` without a terminal to ask on and without `--yes`.
    #[error(
        "refusing to purge {dlq_url} without confirmation: standard input is not a terminal; \
         hint: pass --yes to delete every message without asking"
    )]
    Unconfirmed {
        /// The DLQ.
        dlq_url: String,
    },
    /// The output could not be written, or the confirmation read.
    #[error("cannot write the output or read the confirmation: {0}")]
    Io(#[from] std::io::Error),
    /// A message could not be rendered as JSON.
    #[error("cannot render JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// Runs one `dlq` subcommand, output on stdout.
pub async fn run(command: &DlqCommand) -> Result<ExitCode, DlqCommandError> {
    let out = &mut std::io::stdout().lock();
    match command {
        DlqCommand::List(args) => {
            let dlq = open(&args.common).await?;
            let letters = dlq.list().await?;
            write_list(&letters, args.common.output, out)?;
            Ok(ExitCode::SUCCESS)
        }
        DlqCommand::Show(args) => {
            let dlq = open(&args.common).await?;
            let letter = dlq
                .show(&args.message_id)
                .await?
                .ok_or_else(|| DlqCommandError::NotFound(args.message_id.clone()))?;
            write_show(&letter, args.common.output, out)?;
            Ok(ExitCode::SUCCESS)
        }
        DlqCommand::Redrive(args) => {
            let dlq = open(&args.common).await?;
            let selection = if args.all && args.message_ids.is_empty() {
                Selection::All
            } else {
                Selection::Ids(args.message_ids.clone())
            };
            let lines = dlq.redrive(&selection, args.include_poison).await?;
            write_redrive(&lines, args.common.output, out)?;
            let all_moved = lines.iter().all(|l| {
                matches!(
                    l.outcome,
                    RedriveOutcome::Redriven | RedriveOutcome::RefusedPoison
                )
            });
            // Refused poison is what `--all` is expected to leave behind; a message named on
            // the command line and refused is a failure the caller should see.
            let named_refused = matches!(selection, Selection::Ids(_))
                && lines
                    .iter()
                    .any(|l| matches!(l.outcome, RedriveOutcome::RefusedPoison));
            Ok(if all_moved && !named_refused {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        DlqCommand::Purge(args) => {
            let stdin = std::io::stdin();
            let terminal = stdin.is_terminal();
            purge(
                &args.common,
                args.yes,
                terminal,
                &mut stdin.lock(),
                &mut std::io::stderr(),
                out,
            )
            .await
        }
    }
}

/// `dlq purge`: with `yes`, deletes at once; else asks on `prompt`/`answer` when `terminal`;
/// else refuses before any call that changes the queue.
pub async fn purge(
    args: &DlqCommonArgs,
    yes: bool,
    terminal: bool,
    answer: &mut impl BufRead,
    prompt: &mut impl Write,
    out: &mut impl Write,
) -> Result<ExitCode, DlqCommandError> {
    let dlq = open(args).await?;
    if !yes {
        if !terminal {
            return Err(DlqCommandError::Unconfirmed {
                dlq_url: dlq.url().to_owned(),
            });
        }
        let depth = dlq.approximate_depth().await?;
        write!(
            prompt,
            "Delete all (about {depth}) messages of {}? This cannot be undone. Type `yes`: ",
            dlq.url()
        )?;
        prompt.flush()?;
        let mut line = String::new();
        answer.read_line(&mut line)?;
        if line.trim() != "yes" {
            writeln!(prompt, "purge cancelled; nothing was deleted")?;
            return Ok(ExitCode::FAILURE);
        }
    }
    let deleted = dlq.purge().await?;
    match args.output {
        OutputFormat::Text => writeln!(out, "purged {deleted} messages from {}", dlq.url())?,
        OutputFormat::Json => writeln!(
            out,
            "{}",
            serde_json::json!({"dlq_url": dlq.url(), "deleted": deleted})
        )?,
    }
    Ok(ExitCode::SUCCESS)
}

/// The DLQ (`--dlq-url`, else the queue's RedrivePolicy) and the main queue of `args`.
async fn open(args: &DlqCommonArgs) -> Result<DeadLetterQueue, DlqCommandError> {
    let target = args.target.config();
    let blueprint = config::load_blueprint(&target)?;
    let targets = config::resolve(&target, blueprint.as_ref())?;
    let sdk = load_sdk_config_with_default_region(&targets.aws, targets.default_region.as_deref())
        .await?;
    let clients = Clients::new(&sdk, &Arc::new(Metrics::new()));
    let queue_url = targets.queue()?.url(&clients.sqs).await?;
    let dlq_url = match &targets.dlq {
        Some(QueueRef::Url(url)) => url.clone(),
        Some(name @ QueueRef::Name(_)) => name.url(&clients.sqs).await?,
        None => discover_queue(&clients.sqs, &queue_url)
            .await?
            .dlq_url
            .ok_or(DlqCommandError::NoDlq)?,
    };
    let (accounts_table, transactions_table) = targets.tables()?;
    let ledger = Ledger::new(clients.dynamodb.clone(), accounts_table, transactions_table);
    Ok(
        DeadLetterQueue::new(clients.sqs, ledger, dlq_url, queue_url)
            .with_max_messages(args.max_messages),
    )
}

/// `1h02m`, `3m05s`, `42s`.
fn age(seconds: i64) -> String {
    let (h, m, s) = (seconds / 3600, (seconds % 3600) / 60, seconds % 60);
    if h > 0 {
        format!("{h}h{m:02}m")
    } else if m > 0 {
        format!("{m}m{s:02}s")
    } else {
        format!("{s}s")
    }
}

/// `list`: one line per message (JSON without the body).
pub fn write_list(
    letters: &[DeadLetter],
    output: OutputFormat,
    out: &mut impl Write,
) -> Result<(), DlqCommandError> {
    match output {
        OutputFormat::Json => {
            for letter in letters {
                let mut value = serde_json::to_value(letter)?;
                if let Some(object) = value.as_object_mut() {
                    object.remove("body");
                }
                writeln!(out, "{value}")?;
            }
        }
        OutputFormat::Text => {
            writeln!(
                out,
                "{:<36}  {:<36}  {:>7}  {:>8}  REASON",
                "MESSAGE ID", "TRANSACTION ID", "AGE", "RECEIVES"
            )?;
            for letter in letters {
                let transaction = letter
                    .transaction_id
                    .map(|id| id.to_string())
                    .unwrap_or_else(|| "-".to_owned());
                let reason = letter
                    .reason
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_else(|| "valid transaction, no reason recorded".to_owned());
                writeln!(
                    out,
                    "{:<36}  {:<36}  {:>7}  {:>8}  {}{reason}",
                    letter.message_id,
                    transaction,
                    letter
                        .age_seconds
                        .map(age)
                        .unwrap_or_else(|| "-".to_owned()),
                    letter.receive_count,
                    if letter.poison { "poison: " } else { "" },
                )?;
            }
            writeln!(
                out,
                "{} messages (listing is a receive: counts include it)",
                letters.len()
            )?;
        }
    }
    Ok(())
}

/// `show`: everything about one message, the body pretty-printed when it is JSON.
pub fn write_show(
    letter: &DeadLetter,
    output: OutputFormat,
    out: &mut impl Write,
) -> Result<(), DlqCommandError> {
    if output == OutputFormat::Json {
        writeln!(out, "{}", serde_json::to_string(letter)?)?;
        return Ok(());
    }
    let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".to_owned());
    writeln!(out, "message id:     {}", letter.message_id)?;
    writeln!(
        out,
        "transaction id: {}",
        or_dash(letter.transaction_id.map(|id| id.to_string()))
    )?;
    writeln!(
        out,
        "sent at:        {}",
        or_dash(letter.sent_at.and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        }))
    )?;
    writeln!(
        out,
        "age:            {}",
        or_dash(letter.age_seconds.map(age))
    )?;
    writeln!(out, "receives:       {}", letter.receive_count)?;
    writeln!(
        out,
        "poison:         {}",
        if letter.poison { "yes" } else { "no" }
    )?;
    writeln!(
        out,
        "reason:         {}",
        or_dash(letter.reason.as_ref().map(ToString::to_string))
    )?;
    if let Some(crate::dlq::Reason::PoisonRecord(record)) = &letter.reason {
        writeln!(
            out,
            "  body sha256:  {}",
            or_dash(record.body_sha256.clone())
        )?;
        writeln!(
            out,
            "  first seen:   {}",
            or_dash(record.first_seen.clone())
        )?;
    }
    writeln!(out, "attributes:")?;
    for (name, value) in &letter.attributes {
        writeln!(out, "  {name}: {value}")?;
    }
    writeln!(out, "body:")?;
    let pretty = serde_json::from_str::<serde_json::Value>(&letter.body)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok());
    writeln!(out, "{}", pretty.as_deref().unwrap_or(&letter.body))?;
    Ok(())
}

/// `redrive`: one line per message.
pub fn write_redrive(
    lines: &[Redriven],
    output: OutputFormat,
    out: &mut impl Write,
) -> Result<(), DlqCommandError> {
    for line in lines {
        let error = line.outcome.error().map(ToString::to_string);
        match output {
            OutputFormat::Json => writeln!(
                out,
                "{}",
                serde_json::json!({
                    "message_id": line.message_id,
                    "transaction_id": line.transaction_id,
                    "outcome": line.outcome.label(),
                    "error": error,
                })
            )?,
            OutputFormat::Text => {
                let transaction = line
                    .transaction_id
                    .map(|id| id.to_string())
                    .unwrap_or_else(|| "-".to_owned());
                let hint = match &line.outcome {
                    RedriveOutcome::RefusedPoison => {
                        " (the worker recorded it as poison; --include-poison moves it anyway)"
                    }
                    RedriveOutcome::RedrivenCopyKept { .. } => {
                        " (sent; the DLQ copy remains: redriving it again is a harmless duplicate)"
                    }
                    _ => "",
                };
                writeln!(
                    out,
                    "{} {} {}{hint}{}",
                    line.message_id,
                    transaction,
                    line.outcome.label(),
                    error.map(|e| format!(": {e}")).unwrap_or_default()
                )?;
            }
        }
    }
    if output == OutputFormat::Text {
        let moved = lines
            .iter()
            .filter(|l| {
                matches!(
                    l.outcome,
                    RedriveOutcome::Redriven | RedriveOutcome::RedrivenCopyKept { .. }
                )
            })
            .count();
        writeln!(out, "redrive: {moved} of {} messages moved", lines.len())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::age;

    #[test]
    fn ages_read_like_durations() {
        assert_eq!(age(0), "0s");
        assert_eq!(age(185), "3m05s");
        assert_eq!(age(3_725), "1h02m");
    }
}
