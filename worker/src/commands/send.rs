//! `ballast-worker send`: enqueues generated transactions among existing accounts.

use std::io::BufRead;
use std::process::ExitCode;

use super::sdk;
use crate::cli::SendArgs;
use crate::generate::{GenerateError, Mix, generate_messages, read_accounts, send_messages};
use crate::transaction::Currency;

/// `send`: reads the accounts (file or standard input) and enqueues the messages.
pub async fn run(args: &SendArgs) -> Result<ExitCode, GenerateError> {
    let sent = send_command(args, std::io::stdin().lock()).await?;
    tracing::info!(sent, "messages enqueued");
    Ok(ExitCode::SUCCESS)
}

/// `send`: generates and enqueues the messages; returns how many SQS accepted.
pub async fn send_command(args: &SendArgs, accounts: impl BufRead) -> Result<usize, GenerateError> {
    let currency = Currency::from_code(&args.currency)?;
    let accounts = match &args.accounts_file {
        Some(path) => read_accounts(std::io::BufReader::new(std::fs::File::open(path)?))?,
        None => read_accounts(accounts)?,
    };
    let mix = Mix {
        duplicates: args.duplicates,
        invalid: args.invalid,
        large: args.large,
        bursts: args.bursts,
    };
    let bodies = generate_messages(&mut rand::rng(), &accounts, args.count, mix, currency)?;
    let (targets, sdk) = sdk(&args.target).await?;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let queue_url = targets.queue()?.url(&sqs).await?;
    send_messages(&sqs, &queue_url, &bodies, args.rate).await
}
