//! The TransactWriteItems of a conversion: a TRANSFER or PAYMENT whose target is credited in
//! another currency (`target_currency`, see [`crate::fx`]).
//!
//! Double entry holds per currency because the movement goes through the bank's FX position of
//! each currency (`FX#<currency>`, one of [`FX_SHARDS`] shards chosen by the transaction id, so
//! that concurrent conversions do not all contend for one item):
//!
//! | item                  | base currency (USD) | quote currency (EUR) |
//! |-----------------------|---------------------|----------------------|
//! | source account        | − amount            |                      |
//! | FX position           | + amount            | − credited           |
//! | target account        |                     | + credited           |
//!
//! In one request, with the same exactly-once guarantees as [`super::build_effect`]: IDEM and
//! TXN puts (conditional on not existing; the TXN item records both legs, the rate, its id and
//! source, the rounding rule and residue), the source's debit (open, its currency is the
//! message's, enough money, owned by the principal when there is one), the target's credit
//! (open, in the target currency), the two position updates (positions may go negative: they
//! are the bank's, not a customer's), a **ConditionCheck on the rate item** (the version and
//! value that were read: a rate replaced meanwhile cancels the request, and the ledger reads it
//! again instead of using it stale), and one entry per customer account, each naming the rate.

use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, TransactWriteItem, Update};
use rust_decimal::Decimal;
use time::OffsetDateTime;

use super::items::{ResultRecord, balance_update, entry_item, idempotency_item};
use super::{ItemRole, Tables, WritePlan, put_new};
use crate::fx::{Converted, ROUNDING, Rate, VERSION_ATTRIBUTE};
use crate::ledger::LedgerError;
use crate::ledger::model::{Direction, Item, PK, ResultStatus, SK, n, s};
use crate::store::keys::{fx_pk, fx_position_sk};
use crate::transaction::{Currency, Transaction};

/// Shards of each currency's FX position.
pub const FX_SHARDS: u8 = 8;

/// Update of one FX position shard by `delta` (created on first use). No balance condition:
/// the position is the bank's and goes negative in the currency it pays out.
fn position_update(
    table: &str,
    currency: Currency,
    shard: u8,
    delta: Decimal,
) -> Result<Update, LedgerError> {
    Update::builder()
        .table_name(table)
        .key(PK, s(fx_pk(currency)))
        .key(SK, s(fx_position_sk(shard)))
        .update_expression("ADD #balance :delta, #version :one SET #currency = :ccy")
        .condition_expression("attribute_not_exists(pk) OR #currency = :ccy")
        .expression_attribute_names("#balance", "balance")
        .expression_attribute_names("#version", "version")
        .expression_attribute_names("#currency", "currency")
        .expression_attribute_values(":delta", n(delta))
        .expression_attribute_values(":one", AttributeValue::N("1".into()))
        .expression_attribute_values(":ccy", s(currency.code()))
        .build()
        .map_err(LedgerError::build)
}

/// The shard of a transaction's position updates.
fn shard_of(tx: &Transaction) -> u8 {
    let last = tx.transaction_id.as_bytes().last().copied().unwrap_or(0);
    last.checked_rem(FX_SHARDS).unwrap_or(0)
}

/// The conversion fields of the `TXN#` item and of the entries.
fn conversion_attributes(
    rate: &Rate,
    converted: &Converted,
) -> Result<Vec<(String, AttributeValue)>, LedgerError> {
    Ok(vec![
        ("target_currency".into(), s(rate.quote.code())),
        ("target_amount".into(), n(converted.amount)),
        ("fx_rate".into(), s(rate.rate.to_string())),
        ("fx_rate_id".into(), s(rate.id()?)),
        ("fx_rate_source".into(), s(rate.source.clone())),
        ("fx_rounding".into(), s(ROUNDING)),
        ("fx_residue".into(), n(converted.residue)),
    ])
}

/// The single TransactWriteItems applying a conversion exactly once (see the module
/// documentation). `rate` must be the pair's rate valid at `now` as read, and `converted` the
/// result of [`crate::fx::convert`] of the message's amount with it.
pub fn build_conversion(
    tables: Tables<'_>,
    tx: &Transaction,
    rate: &Rate,
    converted: &Converted,
    now: OffsetDateTime,
) -> Result<WritePlan, LedgerError> {
    let invalid = |detail: String| LedgerError::InvalidInput { detail };
    tx.validate().map_err(|e| invalid(e.to_string()))?;
    let quote = tx
        .conversion()
        .ok_or_else(|| invalid("not a conversion (no other target currency)".into()))?;
    if (rate.base, rate.quote) != (tx.currency, quote) {
        return Err(invalid(format!(
            "rate {} does not convert {} into {quote}",
            rate.pair(),
            tx.currency
        )));
    }
    if !rate.valid_at(now) {
        return Err(invalid(format!(
            "rate {} is not valid at {now}",
            rate.id()?
        )));
    }
    let (Some(amount), Some(source), Some(target)) =
        (tx.amount, tx.debit_account(), tx.credit_account())
    else {
        return Err(invalid(format!("{} cannot be a conversion", tx.kind)));
    };
    if converted.amount <= Decimal::ZERO || converted.amount.scale() != quote.minor_units() {
        return Err(invalid(format!(
            "converted amount {} is not a {quote} amount",
            converted.amount
        )));
    }
    let fx = conversion_attributes(rate, converted)?;
    let mut plan = WritePlan::new();
    let record = ResultRecord::for_transaction(tx, ResultStatus::Completed);
    if let Some(key) = &record.idempotency_key {
        plan.push(
            ItemRole::Idempotency,
            put_new(
                tables.transactions,
                idempotency_item(key, tx.transaction_id, now)?,
            )?,
        );
    }
    let mut result = record.to_item(now)?;
    result.extend(fx.iter().cloned());
    plan.push(ItemRole::Result, put_new(tables.transactions, result)?);
    plan.result_attributes = fx.clone();

    let debit = balance_update(
        tables.accounts,
        source,
        Direction::Debit,
        tx.currency,
        amount,
        tx.principal.as_ref(),
    )?;
    plan.push(
        ItemRole::Debit(source.clone()),
        TransactWriteItem::builder().update(debit).build(),
    );
    let credit = balance_update(
        tables.accounts,
        target,
        Direction::Credit,
        quote,
        converted.amount,
        None,
    )?;
    plan.push(
        ItemRole::Credit(target.clone()),
        TransactWriteItem::builder().update(credit).build(),
    );
    let shard = shard_of(tx);
    let paid_out = Decimal::ZERO
        .checked_sub(converted.amount)
        .ok_or_else(|| invalid("converted amount cannot be negated".into()))?;
    for (currency, delta) in [(tx.currency, amount), (quote, paid_out)] {
        let update = position_update(tables.accounts, currency, shard, delta)?;
        plan.push(
            ItemRole::FxPosition,
            TransactWriteItem::builder().update(update).build(),
        );
    }
    let check = ConditionCheck::builder()
        .table_name(tables.accounts)
        .set_key(Some(rate.key()?))
        .condition_expression("#version = :version AND #rate = :rate")
        .expression_attribute_names("#version", VERSION_ATTRIBUTE)
        .expression_attribute_names("#rate", "rate")
        .expression_attribute_values(":version", AttributeValue::N(rate.version.to_string()))
        .expression_attribute_values(":rate", s(rate.rate.to_string()))
        .build()
        .map_err(LedgerError::build)?;
    plan.push(
        ItemRole::RateCheck,
        TransactWriteItem::builder().condition_check(check).build(),
    );
    let sides = [
        (source, Direction::Debit, amount, tx.currency, target),
        (target, Direction::Credit, converted.amount, quote, source),
    ];
    for (account, direction, value, currency, other) in sides {
        let mut item: Item = entry_item(
            account,
            tx.transaction_id,
            tx.kind.as_str(),
            direction,
            value,
            currency,
            other.as_str(),
            now,
            Some(tx.timestamp),
        )?;
        item.extend(fx.iter().cloned());
        plan.push(ItemRole::Entry, put_new(tables.accounts, item)?);
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fx::convert;
    use crate::transaction::{AccountNumber, IdempotencyKey, TransactionType};

    fn ccy(code: &str) -> Currency {
        Currency::from_code(code).unwrap()
    }

    fn conversion_tx() -> Transaction {
        Transaction {
            transaction_id: uuid::Uuid::now_v7(),
            kind: TransactionType::Transfer,
            source_account: Some(AccountNumber::parse("1234567890").unwrap()),
            target_account: Some(AccountNumber::parse("0987654321").unwrap()),
            amount: Some("100.00".parse().unwrap()),
            currency: ccy("USD"),
            target_currency: Some(ccy("EUR")),
            timestamp: OffsetDateTime::now_utc(),
            idempotency_key: IdempotencyKey::parse("k-1").unwrap(),
            principal: None,
        }
    }

    fn rate() -> Rate {
        Rate {
            base: ccy("USD"),
            quote: ccy("EUR"),
            rate: "0.9215".parse().unwrap(),
            source: "ECB".into(),
            valid_from: OffsetDateTime::UNIX_EPOCH,
            valid_until: time::macros::datetime!(9999-01-01 00:00 UTC),
            version: 2,
        }
    }

    const TABLES: Tables<'static> = Tables {
        accounts: "accounts",
        transactions: "transactions",
    };

    #[test]
    fn both_legs_the_positions_and_the_rate_check_are_one_request() {
        let tx = conversion_tx();
        let converted = convert("100.00".parse().unwrap(), rate().rate, ccy("EUR")).unwrap();
        let plan =
            build_conversion(TABLES, &tx, &rate(), &converted, OffsetDateTime::now_utc()).unwrap();
        let roles: Vec<_> = plan.roles.iter().map(|r| format!("{r:?}")).collect();
        assert_eq!(
            roles,
            [
                "Idempotency",
                "Result",
                "Debit(AccountNumber(\"1234567890\"))",
                "Credit(AccountNumber(\"0987654321\"))",
                "FxPosition",
                "FxPosition",
                "RateCheck",
                "Entry",
                "Entry"
            ]
        );
        let result = plan.items[1].put().unwrap().item();
        assert_eq!(result["target_amount"].as_n().unwrap(), "92.15");
        assert_eq!(result["fx_rate"].as_s().unwrap(), "0.9215");
        assert_eq!(result["fx_rounding"].as_s().unwrap(), "HALF_EVEN");
        let credit = plan.items[3].update().unwrap();
        let values = credit.expression_attribute_values().unwrap();
        assert_eq!(values[":ccy"].as_s().unwrap(), "EUR");
        assert_eq!(values[":amount"].as_n().unwrap(), "92.15");
        let usd = plan.items[4]
            .update()
            .unwrap()
            .expression_attribute_values()
            .unwrap();
        let eur = plan.items[5]
            .update()
            .unwrap()
            .expression_attribute_values()
            .unwrap();
        assert_eq!(usd[":delta"].as_n().unwrap(), "100.00");
        assert_eq!(eur[":delta"].as_n().unwrap(), "-92.15");
        let check = plan.items[6].condition_check().unwrap();
        assert_eq!(
            check.expression_attribute_values().unwrap()[":version"]
                .as_n()
                .unwrap(),
            "2"
        );
    }

    #[test]
    fn a_rate_of_another_pair_or_time_is_refused() {
        let tx = conversion_tx();
        let converted = convert("100.00".parse().unwrap(), rate().rate, ccy("EUR")).unwrap();
        let other = Rate {
            quote: ccy("GBP"),
            ..rate()
        };
        assert!(
            build_conversion(TABLES, &tx, &other, &converted, OffsetDateTime::now_utc()).is_err()
        );
        let expired = Rate {
            valid_until: time::macros::datetime!(2000-01-01 00:00 UTC),
            ..rate()
        };
        assert!(
            build_conversion(TABLES, &tx, &expired, &converted, OffsetDateTime::now_utc()).is_err()
        );
        let same = Transaction {
            target_currency: Some(ccy("USD")),
            ..tx
        };
        assert!(
            build_conversion(
                TABLES,
                &same,
                &rate(),
                &converted,
                OffsetDateTime::now_utc()
            )
            .is_err()
        );
    }
}
