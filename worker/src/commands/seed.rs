//! `ballast-worker seed-accounts`: creates accounts and prints their numbers.

use std::io::Write;
use std::process::ExitCode;

use super::sdk;
use crate::cli::SeedArgs;
use crate::generate::{GenerateError, seed_accounts};
use crate::ledger::Ledger;
use crate::transaction::Currency;

/// `seed-accounts`: writes the new account numbers to standard output.
pub async fn run(args: &SeedArgs) -> Result<ExitCode, GenerateError> {
    seed_command(args, &mut std::io::stdout().lock()).await?;
    Ok(ExitCode::SUCCESS)
}

/// `seed-accounts`: creates the accounts and writes their numbers to `out`, one per line.
pub async fn seed_command(args: &SeedArgs, out: &mut impl Write) -> Result<(), GenerateError> {
    let currency = Currency::from_code(&args.currency)?;
    let (targets, sdk) = sdk(&args.target).await?;
    let (accounts, transactions) = targets.tables()?;
    let ledger = Ledger::new(aws_sdk_dynamodb::Client::new(&sdk), accounts, transactions);
    for account in seed_accounts(&ledger, args.count, args.balance, currency, &args.owner).await? {
        writeln!(out, "{account}")?;
    }
    out.flush()?;
    Ok(())
}
