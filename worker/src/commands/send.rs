//! `ballast-worker send`: enqueues generated transactions among existing accounts.

use std::io::BufRead;
use std::process::ExitCode;

use super::sdk;
use crate::cli::SendArgs;
use rand::seq::SliceRandom;

use crate::generate::{
    GenerateError, Holdings, Mix, generate_bill_payments, generate_conversions, generate_messages,
    read_accounts, send_messages,
};
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
    let mut rng = rand::rng();
    let (conversions, foreign) = match (&args.fx_accounts_file, &args.fx_currency) {
        (Some(path), Some(code)) => {
            if !(0.0..=1.0).contains(&args.conversions) {
                return Err(GenerateError::Argument(
                    "--conversions must be between 0 and 1",
                ));
            }
            let foreign = read_accounts(std::io::BufReader::new(std::fs::File::open(path)?))?;
            // Rounded down: at most `count` messages in all.
            #[allow(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                clippy::cast_precision_loss,
                reason = "a fraction in 0..=1 of a message count, rounded down"
            )]
            let n = ((args.count as f64) * args.conversions) as usize;
            (
                n.min(args.count),
                Some((foreign, Currency::from_code(code)?)),
            )
        }
        _ => (0, None),
    };
    if !(0.0..=1.0).contains(&args.bill_payments) {
        return Err(GenerateError::Argument(
            "--bill-payments must be between 0 and 1",
        ));
    }
    // Rounded down, and never more than what the conversions leave.
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss,
        reason = "a fraction in 0..=1 of a message count, rounded down"
    )]
    let bills = (((args.count as f64) * args.bill_payments) as usize)
        .min(args.count.saturating_sub(conversions));
    let mut bodies = generate_messages(
        &mut rng,
        &accounts,
        args.count.saturating_sub(conversions).saturating_sub(bills),
        mix,
        currency,
    )?;
    if bills > 0 {
        bodies.extend(generate_bill_payments(
            &mut rng, &accounts, currency, bills,
        )?);
        bodies.shuffle(&mut rng);
    }
    if let Some((foreign, foreign_currency)) = &foreign {
        let home = Holdings {
            accounts: &accounts,
            currency,
        };
        let other = Holdings {
            accounts: foreign,
            currency: *foreign_currency,
        };
        bodies.extend(generate_conversions(&mut rng, home, other, conversions)?);
        bodies.shuffle(&mut rng);
    }
    let (targets, sdk) = sdk(&args.target).await?;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let queue_url = targets.queue()?.url(&sqs).await?;
    send_messages(&sqs, &queue_url, &bodies, args.rate).await
}
