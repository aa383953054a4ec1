//! `ballast-worker report`: what the ledger holds, for demos and checks. Transactions by
//! recorded result and the money in the accounts, read with paginated scans (never strongly
//! consistent with a running worker; run it once the queue is drained).

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
            get(&self.balances) == get(&self.opening) + get(&self.deposited) - get(&self.withdrawn)
        })
    }

    fn add_result(&mut self, result: &TransactionResult) {
        let kind = result.kind.as_deref().unwrap_or("");
        let currency = result.currency.clone().unwrap_or_default();
        let amount = result.amount.unwrap_or_default();
        if kind == OPENING_BALANCE {
            *self.opening.entry(currency).or_default() += amount;
            return;
        }
        *self
            .results
            .entry(result.status.as_str().to_string())
            .or_default() += 1;
        if let Some(code) = &result.reason_code {
            *self.reasons.entry(code.clone()).or_default() += 1;
        }
        if result.status.as_str() == "COMPLETED" {
            match kind {
                "DEPOSIT" => *self.deposited.entry(currency).or_default() += amount,
                "WITHDRAWAL" => *self.withdrawn.entry(currency).or_default() += amount,
                _ => {}
            }
        }
    }

    fn add_account(&mut self, account: &Account) {
        self.accounts += 1;
        *self.balances.entry(account.currency.clone()).or_default() += account.balance;
    }
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
        report.add_account(&Account::from_item(&item)?);
    }
    for item in scan(client, transactions_table, None).await? {
        let is_result = item
            .get(PK)
            .and_then(|v| v.as_s().ok())
            .is_some_and(|pk| pk.starts_with("TXN#"));
        if is_result {
            report.add_result(&TransactionResult::from_item(&item)?);
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
}
