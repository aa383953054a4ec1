//! `ballast-worker report`: what the ledger holds, for demos and checks. Transactions by
//! recorded result and the money in the accounts, read with paginated scans (never strongly
//! consistent with a running worker; run it once the queue is drained).
#![deny(clippy::arithmetic_side_effects)]

use std::collections::BTreeMap;

use aws_sdk_dynamodb::Client;
use ballast_aws::SdkResultExt;
use rust_decimal::Decimal;
use serde::Serialize;

use crate::generate::GenerateError;
use crate::ledger::{Account, Item, META, OPENING_BALANCE, PK, SK, TransactionResult};

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
}

impl Report {
    /// Whether money was conserved: every balance is explained by opening balances,
    /// deposits and withdrawals, currency by currency.
    pub fn money_conserved(&self) -> bool {
        let currencies = self
            .balances
            .keys()
            .chain(self.opening.keys())
            .collect::<std::collections::BTreeSet<_>>();
        currencies.into_iter().all(|ccy| {
            let get = |m: &BTreeMap<String, Decimal>| m.get(ccy).copied().unwrap_or_default();
            // An overflowing sum cannot be explained by the others: not conserved.
            get(&self.opening)
                .checked_add(get(&self.deposited))
                .and_then(|sum| sum.checked_sub(get(&self.withdrawn)))
                .is_some_and(|expected| expected == get(&self.balances))
        })
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
            match kind {
                "DEPOSIT" => add_money(&mut self.deposited, currency, amount)?,
                "WITHDRAWAL" => add_money(&mut self.withdrawn, currency, amount)?,
                _ => {}
            }
        }
        Ok(())
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
    for item in scan(client, accounts_table, Some(("sk", META))).await? {
        report.add_account(&Account::from_item(&item)?)?;
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

async fn scan(
    client: &Client,
    table: &str,
    sort_key_equals: Option<(&str, &str)>,
) -> Result<Vec<Item>, GenerateError> {
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let mut request = client
            .scan()
            .table_name(table)
            .set_exclusive_start_key(start.take());
        if let Some((_, value)) = sort_key_equals {
            request = request
                .filter_expression("#sk = :sk")
                .expression_attribute_names("#sk", SK)
                .expression_attribute_values(
                    ":sk",
                    aws_sdk_dynamodb::types::AttributeValue::S(value.to_string()),
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
