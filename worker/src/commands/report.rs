//! `ballast-worker report`: summarizes the ledger; exit 1 when money was not conserved.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;

use aws_sdk_dynamodb::Client;
use rust_decimal::Decimal;

use super::sdk;
use crate::cli::ReportArgs;
use crate::generate::GenerateError;
use crate::report::report;

/// `report`: prints the summary to standard output; fails when money was not conserved.
pub async fn run(args: &ReportArgs) -> Result<ExitCode, GenerateError> {
    if report_command(args, &mut std::io::stdout().lock()).await? {
        Ok(ExitCode::SUCCESS)
    } else {
        Ok(ExitCode::FAILURE)
    }
}

/// `report`: prints the summary (or JSON); exits non-zero when money is not conserved.
pub async fn report_command(
    args: &ReportArgs,
    out: &mut impl Write,
) -> Result<bool, GenerateError> {
    let (targets, sdk) = sdk(&args.target).await?;
    let (accounts, transactions) = targets.tables()?;
    let report = report(&Client::new(&sdk), accounts, transactions).await?;
    if args.json {
        serde_json::to_writer(&mut *out, &report)?;
        writeln!(out)?;
    } else {
        let total: u64 = report.results.values().sum();
        writeln!(out, "transactions with a result: {total}")?;
        for (status, count) in &report.results {
            writeln!(out, "  {status:<10} {count}")?;
        }
        for (code, count) in &report.reasons {
            writeln!(out, "    {code:<28} {count}")?;
        }
        writeln!(out, "accounts: {}", report.accounts)?;
        for ccy in report.currencies() {
            let get = |m: &BTreeMap<String, Decimal>| m.get(ccy).copied().unwrap_or_default();
            let position = get(&report.fx_positions);
            if position.is_zero() && !report.fx_received.contains_key(ccy) {
                writeln!(
                    out,
                    "  {ccy}: balances {} = opening {} + deposits {} - withdrawals {}",
                    get(&report.balances),
                    get(&report.opening),
                    get(&report.deposited),
                    get(&report.withdrawn)
                )?;
            } else {
                writeln!(
                    out,
                    "  {ccy}: balances {} + fx position {position} = opening {} + deposits {} - \
                     withdrawals {}",
                    get(&report.balances),
                    get(&report.opening),
                    get(&report.deposited),
                    get(&report.withdrawn)
                )?;
            }
        }
        if report.conversions > 0 {
            writeln!(out, "conversions: {}", report.conversions)?;
            for ccy in report.currencies() {
                let get = |m: &BTreeMap<String, Decimal>| m.get(ccy).copied().unwrap_or_default();
                let (received, paid) = (get(&report.fx_received), get(&report.fx_paid));
                if received.is_zero() && paid.is_zero() {
                    continue;
                }
                writeln!(
                    out,
                    "  {ccy}: fx position {} = received {received} - paid {paid}",
                    get(&report.fx_positions)
                )?;
            }
        }
        writeln!(
            out,
            "money conserved: {}",
            if report.money_conserved() {
                "yes"
            } else {
                "NO"
            }
        )?;
    }
    out.flush()?;
    Ok(report.money_conserved())
}
