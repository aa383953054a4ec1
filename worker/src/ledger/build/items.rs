//! Item layouts of the ledger and the conditions on them.

use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, ReturnValuesOnConditionCheckFailure, Update,
};
use rust_decimal::Decimal;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::ledger::LedgerError;
use crate::ledger::model::{
    AccountStatus, DeclineReason, Direction, Item, META, OWNER, PK, ResultStatus, SK, account_pk,
    entry_sk, idempotency_pk, n, result_pk, rfc3339, s,
};
use crate::transaction::{AccountNumber, Currency, Subject, Transaction};

/// Condition on items that must not exist yet (idempotency, result and entry puts).
pub const NOT_EXISTS: &str = "attribute_not_exists(pk)";
/// Condition on the debited account.
pub const DEBIT_CONDITION: &str =
    "attribute_exists(pk) AND #status = :open AND #currency = :ccy AND #balance >= :amount";
/// Condition on the debited account of a message that carries a principal: the same as
/// [`DEBIT_CONDITION`], and the account's owner is the principal. Checked inside the same
/// TransactWriteItems, so there is no window between an ownership read and the debit.
pub const DEBIT_OWNED_CONDITION: &str = "attribute_exists(pk) AND #status = :open AND \
     #currency = :ccy AND #balance >= :amount AND #owner = :principal";
/// Update of the debited account.
pub const DEBIT_UPDATE: &str = "SET #balance = #balance - :amount, #version = #version + :one";
/// Condition on the credited account.
pub const CREDIT_CONDITION: &str = "attribute_exists(pk) AND #status = :open AND #currency = :ccy";
/// Update of the credited account.
pub const CREDIT_UPDATE: &str = "SET #balance = #balance + :amount, #version = #version + :one";
/// Condition for closing an account.
pub const CLOSE_CONDITION: &str = "attribute_exists(pk) AND #status = :open AND #balance = :zero";
/// Update closing an account.
pub const CLOSE_UPDATE: &str = "SET #status = :closed, #version = #version + :one";

pub(super) fn account_key(account: &AccountNumber) -> Item {
    Item::from([(PK.into(), s(account_pk(account))), (SK.into(), s(META))])
}

/// The key of an account's META item.
pub fn account_meta_key(account: &AccountNumber) -> Item {
    account_key(account)
}

/// Conditional balance update of one account (see [`DEBIT_CONDITION`], [`CREDIT_CONDITION`]).
/// A debit with a `principal` also requires the account's owner to be that principal
/// ([`DEBIT_OWNED_CONDITION`]); credits never do (anyone may pay into an account).
pub fn balance_update(
    table: &str,
    account: &AccountNumber,
    direction: Direction,
    currency: Currency,
    amount: Decimal,
    principal: Option<&Subject>,
) -> Result<Update, LedgerError> {
    let (condition, update, principal) = match (direction, principal) {
        (Direction::Debit, None) => (DEBIT_CONDITION, DEBIT_UPDATE, None),
        (Direction::Debit, Some(p)) => (DEBIT_OWNED_CONDITION, DEBIT_UPDATE, Some(p)),
        (Direction::Credit, _) => (CREDIT_CONDITION, CREDIT_UPDATE, None),
    };
    let builder = match principal {
        Some(p) => Update::builder()
            .expression_attribute_names("#owner", OWNER)
            .expression_attribute_values(":principal", s(p.as_str())),
        None => Update::builder(),
    };
    builder
        .table_name(table)
        .set_key(Some(account_key(account)))
        .condition_expression(condition)
        .update_expression(update)
        .expression_attribute_names("#status", "status")
        .expression_attribute_names("#currency", "currency")
        .expression_attribute_names("#balance", "balance")
        .expression_attribute_names("#version", "version")
        .expression_attribute_values(":open", s(AccountStatus::Open.as_str()))
        .expression_attribute_values(":ccy", s(currency.code()))
        .expression_attribute_values(":amount", n(amount))
        .expression_attribute_values(":one", AttributeValue::N("1".into()))
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .build()
        .map_err(LedgerError::build)
}

/// The condition a movement's debit (or credit) would check on `account`, as a ConditionCheck
/// that changes nothing: a movement held for review is checked when it is held against what
/// its application would check now (see [`crate::risk`], "Holds"), in the TransactWriteItems
/// that holds it. The names and values are the ones [`balance_update`] uses, minus the update's.
pub fn account_check(
    table: &str,
    account: &AccountNumber,
    direction: Direction,
    currency: Currency,
    amount: Decimal,
    principal: Option<&Subject>,
) -> Result<ConditionCheck, LedgerError> {
    let builder = ConditionCheck::builder()
        .table_name(table)
        .set_key(Some(account_key(account)))
        .expression_attribute_names("#status", "status")
        .expression_attribute_names("#currency", "currency")
        .expression_attribute_values(":open", s(AccountStatus::Open.as_str()))
        .expression_attribute_values(":ccy", s(currency.code()))
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
    let builder = match (direction, principal) {
        (Direction::Credit, _) => builder.condition_expression(CREDIT_CONDITION),
        (Direction::Debit, principal) => {
            let builder = builder
                .expression_attribute_names("#balance", "balance")
                .expression_attribute_values(":amount", n(amount));
            match principal {
                None => builder.condition_expression(DEBIT_CONDITION),
                Some(p) => builder
                    .condition_expression(DEBIT_OWNED_CONDITION)
                    .expression_attribute_names("#owner", OWNER)
                    .expression_attribute_values(":principal", s(p.as_str())),
            }
        }
    };
    builder.build().map_err(LedgerError::build)
}

/// A ledger entry item.
#[allow(clippy::too_many_arguments)]
pub fn entry_item(
    account: &AccountNumber,
    transaction_id: Uuid,
    kind: &str,
    direction: Direction,
    amount: Decimal,
    currency: Currency,
    counterparty: &str,
    posted_at: OffsetDateTime,
    timestamp: Option<OffsetDateTime>,
) -> Result<Item, LedgerError> {
    let mut item = Item::from([
        (PK.into(), s(account_pk(account))),
        (
            SK.into(),
            s(entry_sk(posted_at, transaction_id, direction)?),
        ),
        (
            "transaction_id".into(),
            s(transaction_id.hyphenated().to_string()),
        ),
        ("type".into(), s(kind)),
        ("direction".into(), s(direction.as_str())),
        ("amount".into(), n(amount)),
        ("currency".into(), s(currency.code())),
        ("counterparty".into(), s(counterparty)),
        ("posted_at".into(), s(rfc3339(posted_at)?)),
    ]);
    if let Some(ts) = timestamp {
        item.insert("timestamp".into(), s(rfc3339(ts)?));
    }
    Ok(item)
}

/// The content of a `TXN#<id>` result item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultRecord {
    /// The transaction.
    pub transaction_id: Uuid,
    /// Also written as `IDEM#<key>` when present.
    pub idempotency_key: Option<String>,
    /// COMPLETED, DECLINED or REJECTED.
    pub status: ResultStatus,
    /// Human-readable reason.
    pub reason: Option<String>,
    /// Machine code of the reason.
    pub reason_code: Option<String>,
    /// Transaction type.
    pub kind: Option<String>,
    /// Amount.
    pub amount: Option<Decimal>,
    /// Currency.
    pub currency: Option<Currency>,
    /// Accounts involved, source first.
    pub accounts: Vec<String>,
    /// Balance read by a BALANCE_CHECK.
    pub balance: Option<Decimal>,
    /// The client's timestamp.
    pub timestamp: Option<OffsetDateTime>,
    /// The principal the message acted for, if it carried one.
    pub principal: Option<String>,
}

impl ResultRecord {
    /// A record describing `tx` with the given status.
    pub fn for_transaction(tx: &Transaction, status: ResultStatus) -> Self {
        ResultRecord {
            transaction_id: tx.transaction_id,
            idempotency_key: Some(tx.idempotency_key.as_str().to_owned()),
            status,
            reason: None,
            reason_code: None,
            kind: Some(tx.kind.as_str().to_owned()),
            amount: tx.amount,
            currency: Some(tx.currency),
            accounts: tx.accounts().map(|a| a.as_str().to_owned()).collect(),
            balance: None,
            timestamp: Some(tx.timestamp),
            principal: tx.principal.as_ref().map(|p| p.as_str().to_owned()),
        }
    }

    /// A DECLINED record for `tx`.
    pub fn declined(tx: &Transaction, reason: &DeclineReason) -> Self {
        ResultRecord {
            reason: Some(reason.to_string()),
            reason_code: Some(reason.code().to_owned()),
            ..ResultRecord::for_transaction(tx, ResultStatus::Declined)
        }
    }

    /// The `TXN#<id>` item.
    pub fn to_item(&self, processed_at: OffsetDateTime) -> Result<Item, LedgerError> {
        let mut item = Item::from([
            (PK.into(), s(result_pk(self.transaction_id))),
            (
                "transaction_id".into(),
                s(self.transaction_id.hyphenated().to_string()),
            ),
            ("status".into(), s(self.status.as_str())),
            ("processed_at".into(), s(rfc3339(processed_at)?)),
        ]);
        let mut opt = |name: &str, v: Option<AttributeValue>| {
            if let Some(v) = v {
                item.insert(name.to_owned(), v);
            }
        };
        opt("idempotency_key", self.idempotency_key.clone().map(s));
        opt("reason", self.reason.clone().map(s));
        opt("reason_code", self.reason_code.clone().map(s));
        opt("type", self.kind.clone().map(s));
        opt("amount", self.amount.map(n));
        opt("currency", self.currency.map(|c| s(c.code())));
        opt("balance", self.balance.map(n));
        opt("principal", self.principal.clone().map(s));
        if !self.accounts.is_empty() {
            opt(
                "accounts",
                Some(AttributeValue::L(
                    self.accounts.iter().cloned().map(s).collect(),
                )),
            );
        }
        if let Some(ts) = self.timestamp {
            item.insert("timestamp".into(), s(rfc3339(ts)?));
        }
        Ok(item)
    }
}

pub(super) fn idempotency_item(
    key: &str,
    transaction_id: Uuid,
    now: OffsetDateTime,
) -> Result<Item, LedgerError> {
    Ok(Item::from([
        (PK.into(), s(idempotency_pk(key))),
        (
            "transaction_id".into(),
            s(transaction_id.hyphenated().to_string()),
        ),
        ("created_at".into(), s(rfc3339(now)?)),
    ]))
}
