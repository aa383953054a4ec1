//! `ballast-worker report`: what the ledger holds, for demos and checks. Transactions by
//! recorded result and the money in the accounts, read with paginated scans (never strongly
//! consistent with a running worker; run it once the queue is drained).
//!
//! Money is conserved **per currency**. A conversion moves money between currencies only
//! through the bank's FX positions (`FX#<currency>`, see
//! [`crate::ledger::build_conversion`]), so in each currency
//! `customer balances + FX position = opening balances + deposits − withdrawals`, and each FX
//! position equals what the completed conversions recorded: `received` (amounts debited in that
//! currency) `− paid` (amounts credited in it). Both are checked.
#![deny(clippy::arithmetic_side_effects)]

use std::collections::BTreeMap;

use aws_sdk_dynamodb::Client;
use ballast_aws::SdkResultExt;
use rust_decimal::Decimal;
use serde::Serialize;

use crate::generate::GenerateError;
use crate::ledger::{Account, Item, LedgerError, META, OPENING_BALANCE, PK, SK, TransactionResult};
use crate::store::keys::{FX_POSITION_PREFIX, FX_PREFIX};

/// Totals of one ledger.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Results by status (`COMPLETED`, `DECLINED`, `REJECTED`), opening balances excluded.
    pub results: BTreeMap<String, u64>,
    /// Decline and rejection reasons by code.
    pub reasons: BTreeMap<String, u64>,
    /// Open and closed accounts.
    pub accounts: u64,
    /// Sum of balances by currency.
    pub balances: BTreeMap<String, Decimal>,
    /// Money that entered (DEPOSIT) and left (WITHDRAWAL) the bank, by currency, from
    /// completed results: balances = opening balances + deposits − withdrawals.
    pub deposited: BTreeMap<String, Decimal>,
    pub withdrawn: BTreeMap<String, Decimal>,
    /// Sum of opening balances by currency.
    pub opening: BTreeMap<String, Decimal>,
    /// The FX positions by currency (the sum of their shards), as stored.
    pub fx_positions: BTreeMap<String, Decimal>,
    /// Completed conversions: what they debited, by source currency (the positions received).
    pub fx_received: BTreeMap<String, Decimal>,
    /// Completed conversions: what they credited, by target currency (the positions paid).
    pub fx_paid: BTreeMap<String, Decimal>,
    /// Completed conversions.
    pub conversions: u64,
}

impl Report {
    /// Whether money was conserved: every balance is explained by opening balances,
    /// deposits and withdrawals, currency by currency.
    pub fn money_conserved(&self) -> bool {
        self.currencies().into_iter().all(|ccy| {
            let get = |m: &BTreeMap<String, Decimal>| m.get(ccy).copied().unwrap_or_default();
            // An overflowing sum cannot be explained by the others: not conserved.
            let explained = get(&self.opening)
                .checked_add(get(&self.deposited))
                .and_then(|sum| sum.checked_sub(get(&self.withdrawn)));
            let held = get(&self.balances).checked_add(get(&self.fx_positions));
            let converted = get(&self.fx_received).checked_sub(get(&self.fx_paid));
            explained.is_some() && explained == held && converted == Some(get(&self.fx_positions))
        })
    }

    /// Every currency the report mentions.
    pub fn currencies(&self) -> std::collections::BTreeSet<&String> {
        [
            &self.balances,
            &self.opening,
            &self.deposited,
            &self.withdrawn,
            &self.fx_positions,
            &self.fx_received,
            &self.fx_paid,
        ]
        .into_iter()
        .flat_map(BTreeMap::keys)
        .collect()
    }

    fn add_result(&mut self, result: &TransactionResult) -> Result<(), GenerateError> {
        let kind = result.kind.as_deref().unwrap_or("");
        let currency = result.currency.clone().unwrap_or_default();
        let amount = result.amount.unwrap_or_default();
        if kind == OPENING_BALANCE {
            return add_money(&mut self.opening, currency, amount);
        }
        count(&mut self.results, result.status.as_str());
        if let Some(code) = &result.reason_code {
            count(&mut self.reasons, code);
        }
        if result.status.as_str() == "COMPLETED" {
            if let Some(fx) = &result.conversion {
                self.conversions = self.conversions.saturating_add(1);
                add_money(&mut self.fx_received, currency.clone(), amount)?;
                add_money(
                    &mut self.fx_paid,
                    fx.target_currency.clone(),
                    fx.target_amount,
                )?;
            }
            match kind {
                "DEPOSIT" => add_money(&mut self.deposited, currency, amount)?,
                "WITHDRAWAL" => add_money(&mut self.withdrawn, currency, amount)?,
                _ => {}
            }
        }
        Ok(())
    }

    /// One shard of an FX position (`FX#<currency>`, `POSITION#<n>`).
    fn add_position(&mut self, item: &Item) -> Result<(), GenerateError> {
        let currency = get_s(item, "currency")?.to_owned();
        add_money(&mut self.fx_positions, currency, get_n(item, "balance")?)
    }

    fn add_account(&mut self, account: &Account) -> Result<(), GenerateError> {
        self.accounts = self.accounts.saturating_add(1);
        add_money(
            &mut self.balances,
            account.currency.clone(),
            account.balance,
        )
    }
}

fn corrupt(item: &Item, field: &str) -> GenerateError {
    let pk = item
        .get(PK)
        .and_then(|v| v.as_s().ok())
        .map_or("?", String::as_str);
    GenerateError::Ledger(LedgerError::CorruptItem {
        key: pk.to_owned(),
        detail: format!("missing or invalid `{field}`"),
    })
}

fn get_s<'a>(item: &'a Item, field: &str) -> Result<&'a str, GenerateError> {
    item.get(field)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
        .ok_or_else(|| corrupt(item, field))
}

fn get_n(item: &Item, field: &str) -> Result<Decimal, GenerateError> {
    item.get(field)
        .and_then(|v| v.as_n().ok())
        .and_then(|n| crate::transaction::parse_dynamo_number(n).ok())
        .ok_or_else(|| corrupt(item, field))
}

/// Counts one more `key` (saturating: a count cannot realistically reach `u64::MAX`).
fn count(counts: &mut BTreeMap<String, u64>, key: &str) {
    let n = counts.entry(key.to_owned()).or_default();
    *n = n.saturating_add(1);
}

/// Adds `amount` to the `currency` total; a total beyond `Decimal`'s range is an error, never a
/// panic or a wrapped value.
fn add_money(
    totals: &mut BTreeMap<String, Decimal>,
    currency: String,
    amount: Decimal,
) -> Result<(), GenerateError> {
    let total = totals.entry(currency).or_default();
    *total = total
        .checked_add(amount)
        .ok_or_else(|| GenerateError::Overflow {
            what: "a currency total of the report",
        })?;
    Ok(())
}

/// Scans both tables.
#[tracing::instrument(skip(client))]
pub async fn report(
    client: &Client,
    accounts_table: &str,
    transactions_table: &str,
) -> Result<Report, GenerateError> {
    let mut report = Report::default();
    for item in scan(client, accounts_table, Some(META)).await? {
        let pk = item.get(PK).and_then(|v| v.as_s().ok());
        if pk.is_some_and(|pk| pk.starts_with(FX_PREFIX)) {
            report.add_position(&item)?;
        } else {
            report.add_account(&Account::from_item(&item)?)?;
        }
    }
    for item in scan(client, transactions_table, None).await? {
        let is_result = item
            .get(PK)
            .and_then(|v| v.as_s().ok())
            .is_some_and(|pk| pk.starts_with(crate::store::keys::RESULT_PREFIX));
        if is_result {
            report.add_result(&TransactionResult::from_item(&item)?)?;
        }
    }
    Ok(report)
}

/// Every item of `table`; with `accounts_meta`, only the accounts' META items and the FX
/// positions' shards.
async fn scan(
    client: &Client,
    table: &str,
    accounts_meta: Option<&str>,
) -> Result<Vec<Item>, GenerateError> {
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let mut request = client
            .scan()
            .table_name(table)
            .set_exclusive_start_key(start.take());
        if let Some(meta) = accounts_meta {
            request = request
                .filter_expression("#sk = :sk OR begins_with(#sk, :position)")
                .expression_attribute_names("#sk", SK)
                .expression_attribute_values(
                    ":sk",
                    aws_sdk_dynamodb::types::AttributeValue::S(meta.to_string()),
                )
                .expression_attribute_values(
                    ":position",
                    aws_sdk_dynamodb::types::AttributeValue::S(FX_POSITION_PREFIX.to_string()),
                );
        }
        let page = request.send().await.classify("dynamodb:Scan")?;
        items.extend(page.items.unwrap_or_default());
        match page.last_evaluated_key {
            Some(key) if !key.is_empty() => start = Some(key),
            _ => break,
        }
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn balances_are_explained_by_openings_deposits_and_withdrawals() {
        let mut report = Report::default();
        report.opening.insert("USD".into(), dec("200.00"));
        report.deposited.insert("USD".into(), dec("10.00"));
        report.withdrawn.insert("USD".into(), dec("2.50"));
        report.balances.insert("USD".into(), dec("207.50"));
        assert!(report.money_conserved());
        report.balances.insert("USD".into(), dec("207.49"));
        assert!(!report.money_conserved());
        report.balances.insert("USD".into(), dec("207.50"));
        report.balances.insert("EUR".into(), dec("1.00"));
        assert!(!report.money_conserved(), "money from nowhere in EUR");
    }

    #[test]
    fn conversions_are_explained_by_the_fx_positions_currency_by_currency() {
        let mut report = Report::default();
        report.opening.insert("USD".into(), dec("100.00"));
        report.opening.insert("EUR".into(), dec("0.00"));
        // 10.00 USD converted into 9.22 EUR.
        report.balances.insert("USD".into(), dec("90.00"));
        report.balances.insert("EUR".into(), dec("9.22"));
        report.fx_positions.insert("USD".into(), dec("10.00"));
        report.fx_positions.insert("EUR".into(), dec("-9.22"));
        report.fx_received.insert("USD".into(), dec("10.00"));
        report.fx_paid.insert("EUR".into(), dec("9.22"));
        assert!(report.money_conserved());
        // A position the recorded conversions do not explain.
        report.fx_positions.insert("EUR".into(), dec("-9.21"));
        report.balances.insert("EUR".into(), dec("9.21"));
        assert!(!report.money_conserved());
        // Without the positions, the balances alone are not conserved.
        let mut bare = report.clone();
        bare.fx_positions.clear();
        bare.balances.insert("EUR".into(), dec("9.22"));
        assert!(!bare.money_conserved());
    }

    #[test]
    fn overflowing_totals_are_errors_not_panics() {
        let mut totals = BTreeMap::new();
        add_money(&mut totals, "USD".into(), Decimal::MAX).unwrap();
        let err = add_money(&mut totals, "USD".into(), Decimal::ONE).unwrap_err();
        assert!(matches!(err, GenerateError::Overflow { .. }), "{err}");
        assert_eq!(totals.get("USD"), Some(&Decimal::MAX), "nothing changed");
        let mut report = Report::default();
        report.opening.insert("USD".into(), Decimal::MAX);
        report.deposited.insert("USD".into(), Decimal::MAX);
        report.balances.insert("USD".into(), Decimal::MAX);
        assert!(!report.money_conserved());
    }
}
