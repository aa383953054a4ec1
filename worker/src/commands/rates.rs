//! `ballast-worker rates load|list`: the operator's exchange rates ([`crate::fx::file`] reads
//! and validates the file, [`crate::fx::admin`] writes and lists).

use std::io::Write;
use std::process::ExitCode;

use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::sdk;
use crate::cli::{OutputFormat, RatesCommand, RatesListArgs, RatesLoadArgs};
use crate::fx::admin::{self as rates, RatesError};
use crate::fx::file::{self, RatesFileError};
use crate::generate::GenerateError;
use crate::ledger::Ledger;

/// Why a `rates` command failed.
#[derive(Debug, thiserror::Error)]
pub enum RatesCommandError {
    /// The file is unreadable or invalid (nothing was written).
    #[error(transparent)]
    File(#[from] RatesFileError),
    /// The load or the listing failed.
    #[error(transparent)]
    Store(#[from] RatesError),
    /// Configuration or AWS setup failed.
    #[error(transparent)]
    Setup(#[from] GenerateError),
    /// The output could not be written.
    #[error("cannot write the output: {0}")]
    Io(#[from] std::io::Error),
}

/// Runs a `rates` subcommand.
pub async fn run(command: &RatesCommand) -> Result<ExitCode, RatesCommandError> {
    let mut out = std::io::stdout().lock();
    match command {
        RatesCommand::Load(args) => load_command(args, &mut out).await?,
        RatesCommand::List(args) => list_command(args, &mut out).await?,
    }
    Ok(ExitCode::SUCCESS)
}

async fn ledger(target: &crate::cli::TargetArgs) -> Result<Ledger, RatesCommandError> {
    let (targets, sdk) = sdk(target).await?;
    let (accounts, transactions) = targets.tables().map_err(GenerateError::from)?;
    Ok(Ledger::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        accounts,
        transactions,
    ))
}

/// `rates load FILE`: validates the whole file, then writes it in one transaction.
pub async fn load_command(
    args: &RatesLoadArgs,
    out: &mut impl Write,
) -> Result<(), RatesCommandError> {
    let loaded = file::load(&args.file)?;
    if args.check {
        writeln!(
            out,
            "{}: {} rates, valid",
            args.file.display(),
            loaded.len()
        )?;
        return Ok(());
    }
    let ledger = ledger(&args.target).await?;
    let name = args.file.display().to_string();
    let summary = rates::load(&ledger, &name, &loaded, OffsetDateTime::now_utc()).await?;
    writeln!(
        out,
        "{name}: {} added, {} replaced, {} unchanged",
        summary.added, summary.replaced, summary.unchanged
    )?;
    out.flush()?;
    Ok(())
}

/// `rates list`.
pub async fn list_command(
    args: &RatesListArgs,
    out: &mut impl Write,
) -> Result<(), RatesCommandError> {
    let ledger = ledger(&args.target).await?;
    for rate in rates::list(&ledger).await? {
        let from = rate.valid_from.format(&Rfc3339).unwrap_or_default();
        let until = rate.valid_until.format(&Rfc3339).unwrap_or_default();
        match args.output {
            OutputFormat::Json => {
                let line = json!({
                    "base": rate.base.code(),
                    "quote": rate.quote.code(),
                    "rate": rate.rate.to_string(),
                    "source": rate.source,
                    "valid_from": from,
                    "valid_until": until,
                    "version": rate.version,
                });
                writeln!(out, "{line}")?;
            }
            OutputFormat::Text => writeln!(
                out,
                "{}  {:>18}  {from} .. {until}  v{}  {}",
                rate.pair(),
                rate.rate.to_string(),
                rate.version,
                rate.source
            )?,
        }
    }
    out.flush()?;
    Ok(())
}
