//! The TransactWriteItems requests of the ledger: a money movement, a result, an account opening.

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};
use rust_decimal::Decimal;
use time::OffsetDateTime;
use uuid::Uuid;

use super::items::{ResultRecord, account_check, balance_update, entry_item, idempotency_item};
use super::{ItemRole, Tables, WritePlan, put_new};
use crate::ledger::LedgerError;
use crate::ledger::model::{
    AccountStatus, Direction, EXTERNAL, Item, META, OPENING_BALANCE, OWNER, PK, ResultStatus, SK,
    account_pk, n, rfc3339, s,
};
use crate::transaction::{AccountNumber, Currency, Subject, Transaction, check_amount};

fn push_records(
    plan: &mut WritePlan,
    tables: Tables<'_>,
    record: &ResultRecord,
    now: OffsetDateTime,
) -> Result<(), LedgerError> {
    if let Some(key) = &record.idempotency_key {
        plan.push(
            ItemRole::Idempotency,
            put_new(
                tables.transactions,
                idempotency_item(key, record.transaction_id, now)?,
            )?,
        );
    }
    plan.push(
        ItemRole::Result,
        put_new(tables.transactions, record.to_item(now)?)?,
    );
    Ok(())
}

/// IDEM (when the record has a key) + TXN puts, each conditional on not existing. Used for
/// DECLINED, REJECTED and BALANCE_CHECK results.
pub fn build_result(
    tables: Tables<'_>,
    record: &ResultRecord,
    now: OffsetDateTime,
) -> Result<WritePlan, LedgerError> {
    let mut plan = WritePlan::new();
    push_records(&mut plan, tables, record, now)?;
    Ok(plan)
}

/// The single TransactWriteItems request applying a money movement exactly once:
/// IDEM put, TXN put (COMPLETED), debit update, credit update, then one entry per side.
/// Entries are keyed by the posting time `now`; the client's timestamp is an attribute.
pub fn build_effect(
    tables: Tables<'_>,
    tx: &Transaction,
    now: OffsetDateTime,
) -> Result<WritePlan, LedgerError> {
    tx.validate().map_err(|e| LedgerError::InvalidInput {
        detail: e.to_string(),
    })?;
    let amount = tx.amount.ok_or_else(|| LedgerError::InvalidInput {
        detail: format!("{} has no ledger effect", tx.kind),
    })?;
    let mut plan = WritePlan::new();
    push_records(
        &mut plan,
        tables,
        &ResultRecord::for_transaction(tx, ResultStatus::Completed),
        now,
    )?;
    let debit = tx.debit_account();
    let credit = tx.credit_account();
    if let Some(account) = debit {
        let update = balance_update(
            tables.accounts,
            account,
            Direction::Debit,
            tx.currency,
            amount,
            tx.principal.as_ref(),
        )?;
        plan.push(
            ItemRole::Debit(account.clone()),
            TransactWriteItem::builder().update(update).build(),
        );
    }
    if let Some(account) = credit {
        let update = balance_update(
            tables.accounts,
            account,
            Direction::Credit,
            tx.currency,
            amount,
            None,
        )?;
        plan.push(
            ItemRole::Credit(account.clone()),
            TransactWriteItem::builder().update(update).build(),
        );
    }
    let sides = [
        (debit, Direction::Debit, credit),
        (credit, Direction::Credit, debit),
    ];
    for (account, direction, other) in sides {
        let Some(account) = account else { continue };
        let counterparty = other.map_or(EXTERNAL, AccountNumber::as_str);
        let item = entry_item(
            account,
            tx.transaction_id,
            tx.kind.as_str(),
            direction,
            amount,
            tx.currency,
            counterparty,
            now,
            Some(tx.timestamp),
        )?;
        plan.push(ItemRole::Entry, put_new(tables.accounts, item)?);
    }
    Ok(plan)
}

/// The condition checks a held movement adds to the TransactWriteItems that holds it: each
/// account's condition as the movement's application would check it now (the debit in
/// `currency` for the amount and, with a principal, its ownership; the credit in the credited
/// currency). A check that fails cancels the hold ([`ItemRole::AccountCheck`]), and the ledger
/// declines the movement with the account's reason instead of queuing a review it could not
/// pay; the approval checks again.
pub fn hold_checks(
    tables: Tables<'_>,
    tx: &Transaction,
) -> Result<Vec<(ItemRole, TransactWriteItem)>, LedgerError> {
    let amount = tx.amount.ok_or_else(|| LedgerError::InvalidInput {
        detail: format!("{} has no ledger effect", tx.kind),
    })?;
    let sides = [
        (tx.debit_account(), Direction::Debit, tx.currency),
        (tx.credit_account(), Direction::Credit, tx.credit_currency()),
    ];
    let mut out = Vec::with_capacity(2);
    for (account, direction, currency) in sides {
        let Some(account) = account else { continue };
        let principal = match direction {
            Direction::Debit => tx.principal.as_ref(),
            Direction::Credit => None,
        };
        let check = account_check(
            tables.accounts,
            account,
            direction,
            currency,
            amount,
            principal,
        )?;
        out.push((
            ItemRole::AccountCheck {
                account: account.clone(),
                direction,
            },
            TransactWriteItem::builder().condition_check(check).build(),
        ));
    }
    Ok(out)
}

/// Account creation: META put (+ an opening-balance CREDIT entry from `EXTERNAL` and its
/// COMPLETED result, so that entry sums reconcile with the balance). `owner` is stored as the
/// META item's `owner` and never changes.
#[allow(clippy::too_many_arguments)]
pub fn build_create_account(
    tables: Tables<'_>,
    account: &AccountNumber,
    currency: Currency,
    account_type: &str,
    opening_balance: Decimal,
    owner: &Subject,
    opening_transaction_id: Uuid,
    now: OffsetDateTime,
) -> Result<WritePlan, LedgerError> {
    if account_type.is_empty() || account_type.len() > 64 {
        return Err(LedgerError::InvalidInput {
            detail: "account type must be 1 to 64 characters".into(),
        });
    }
    let opening = if opening_balance.is_zero() {
        let mut zero = Decimal::ZERO;
        zero.rescale(currency.minor_units());
        zero
    } else {
        check_amount(opening_balance, currency).map_err(|e| LedgerError::InvalidInput {
            detail: format!("opening balance: {e}"),
        })?
    };
    let mut plan = WritePlan::new();
    let meta = Item::from([
        (PK.into(), s(account_pk(account))),
        (SK.into(), s(META)),
        ("balance".into(), n(opening)),
        ("currency".into(), s(currency.code())),
        ("status".into(), s(AccountStatus::Open.as_str())),
        ("type".into(), s(account_type)),
        ("created_at".into(), s(rfc3339(now)?)),
        ("version".into(), AttributeValue::N("1".into())),
        (OWNER.into(), s(owner.as_str())),
    ]);
    plan.push(ItemRole::AccountMeta, put_new(tables.accounts, meta)?);
    if !opening.is_zero() {
        let entry = entry_item(
            account,
            opening_transaction_id,
            OPENING_BALANCE,
            Direction::Credit,
            opening,
            currency,
            EXTERNAL,
            now,
            None,
        )?;
        plan.push(ItemRole::Entry, put_new(tables.accounts, entry)?);
        let record = ResultRecord {
            transaction_id: opening_transaction_id,
            idempotency_key: None,
            status: ResultStatus::Completed,
            reason: None,
            reason_code: None,
            kind: Some(OPENING_BALANCE.into()),
            amount: Some(opening),
            currency: Some(currency),
            accounts: vec![account.as_str().to_owned()],
            balance: None,
            timestamp: None,
            principal: None,
        };
        push_records(&mut plan, tables, &record, now)?;
    }
    Ok(plan)
}
