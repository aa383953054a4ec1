//! The double-entry ledger in DynamoDB and the exactly-once application of transactions.
//!
//! # Data model
//!
//! Accounts table (key `pk` S, `sk` S):
//! - `pk = ACCT#<account>`, `sk = META`: `balance` N, `currency` S, `status` S (OPEN|CLOSED),
//!   `type` S, `created_at` S, `version` N, `owner` S (the `sub` of the token that opened it,
//!   or the `seed-accounts --owner`; never changes).
//! - `pk = ACCT#<account>`, `sk = ENTRY#<posting time, fixed-width UTC>#<transaction_id>#<DEBIT|CREDIT>`:
//!   `transaction_id`, `type`, `direction`, `amount` N, `currency`, `counterparty` (the other
//!   account or `EXTERNAL`), `posted_at`, `timestamp` (the client's). No `balance_after`: a
//!   TransactWriteItems cannot read.
//!
//! Transactions table (key `pk` S):
//! - `pk = TXN#<transaction_id>`: `status` (COMPLETED|DECLINED|REJECTED|HELD), `reason`,
//!   `reason_code`, `idempotency_key`, `type`, `amount` N, `currency`, `accounts` (L of S),
//!   `processed_at`, `timestamp`, `balance` N (BALANCE_CHECK), `principal` (when the message
//!   carried one).
//! - `pk = IDEM#<idempotency_key>`: `transaction_id`, `created_at`.
//!
//! # Exactly once
//!
//! A money movement is one TransactWriteItems ([`build_effect`]): the IDEM and TXN puts are
//! conditional on not existing, the account updates on the account being open, in the right
//! currency and (debits) holding enough money. Redelivery of the same message, or another
//! message with the same idempotency key or transaction id, fails the IDEM/TXN condition and
//! changes nothing ([`Outcome::Duplicate`]) — unless the key belongs to *another* transaction id:
//! that id then gets its own REJECTED result (`idempotency_key_reused`), so that its producer
//! sees a terminal status. A failed account condition is classified (from the
//! `ALL_OLD` item returned with the cancellation reason, or a consistent read) and the DECLINED
//! result is recorded with a second TransactWriteItems that is itself idempotent.
//!
//! # Conversions
//!
//! A TRANSFER or PAYMENT with a `target_currency` other than its `currency` is a conversion
//! (`conversion.rs` reads the rate valid at the posting time, [`build_conversion`] writes both
//! legs through the FX positions in one TransactWriteItems). No valid rate, or a result that is
//! not an amount, is DECLINED (`NO_RATE`, `CONVERSION_OUT_OF_RANGE`) before any write. A rate
//! replaced between the read and the write fails the request's ConditionCheck on the rate
//! ([`CancellationVerdict::RateChanged`]): the movement is planned again with the rate read
//! anew, so a stale rate is never applied.
//!
//! Rates and FX positions live in the accounts table: `pk = RATE#<base>#<quote>`,
//! `sk = FROM#<valid_from>` (and the pair's guard, `sk = PAIR`), and `pk = FX#<currency>`,
//! `sk = POSITION#<shard>` (`balance` N, `version` N, `currency`).
//!
//! # Ownership
//!
//! A message stamped with a `principal` (the ingest API does this) debits an account only if the
//! account's `owner` equals the principal: the condition is part of the debit update in the same
//! TransactWriteItems ([`DEBIT_OWNED_CONDITION`]), so no money moves otherwise, and the result is
//! DECLINED with `NOT_ACCOUNT_OWNER`. A BALANCE_CHECK with a principal is declined the same way
//! instead of revealing the balance. Credits need no ownership (anyone may pay into an account).
//! Messages without a principal come from trusted producers and are applied as before.
//!
//! # Risk
//!
//! With risk rules ([`Ledger::with_risk`]) every money movement is scored first and its
//! decision (approve, hold, decline) is one TransactWriteItems with the risk items attached
//! (`assess.rs`); a held movement is applied later by an operator's approval (`review.rs`).
//! See [`crate::risk`].
// Money and time: every operation is checked (no panic on any input); test code opts out.
#![deny(clippy::arithmetic_side_effects)]

mod assess;
mod build;
mod conversion;
mod error;
mod model;
mod review;
#[cfg(test)]
mod tests;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use std::sync::Arc;

use rust_decimal::Decimal;
use time::OffsetDateTime;
use uuid::Uuid;

pub use assess::MAX_STALE_ATTEMPTS;
pub use build::{
    CLOSE_CONDITION, CLOSE_UPDATE, CREDIT_CONDITION, CREDIT_UPDATE, CancellationVerdict,
    DEBIT_CONDITION, DEBIT_OWNED_CONDITION, DEBIT_UPDATE, FX_SHARDS, FailedAccount, ItemRole,
    MAX_TRANSACT_ITEMS, NOT_EXISTS, ResultRecord, TRANSIENT_CANCELLATION_CODES, Tables, WritePlan,
    account_meta_key, balance_check_record, balance_update, build_conversion, build_create_account,
    build_effect, build_result, classify_account, decode_cursor, encode_cursor, entry_item,
    history_bounds, hold_checks, interpret_cancellation, owner_mismatch,
};
pub use error::{BoxError, LedgerError};
pub use model::{
    Account, AccountStatus, ConversionResult, DeclineReason, Direction, EXTERNAL, HistoryPage,
    Item, LedgerEntry, META, OPENING_BALANCE, OWNER, Outcome, PK, ResultStatus, SK,
    TransactionResult, account_pk, entry_sk, idempotency_pk, result_pk, rfc3339, sort_timestamp,
};
pub use review::{Review, ReviewAction, ReviewOutcome};

use crate::risk::RiskRules;
use crate::transaction::{
    AccountNumber, Currency, IdempotencyKey, Subject, Transaction, TransactionType, ValidationError,
};
use model::{n, s};

/// How often [`Ledger::apply`] re-runs a money movement whose failed account condition holds
/// again by the time it is classified (a concurrent change) before giving up as transient.
const MAX_ATTEMPTS: usize = 3;

/// `reason_code` of the REJECTED result of a transaction whose idempotency key was already
/// settled by another transaction id.
pub const IDEMPOTENCY_KEY_REUSED: &str = "idempotency_key_reused";

/// Largest history page.
pub const MAX_HISTORY_PAGE: i32 = 1000;
/// `reason_code` of the REJECTED result written when processing failed inside the worker.
pub const INTERNAL_ERROR: &str = "internal_error";

/// What a cancelled money movement leaves to its caller once [`Ledger::settle_cancelled`]
/// settled the rest.
enum Cancelled {
    /// Settled: the movement's outcome (a duplicate's).
    Settled(Outcome),
    /// The velocity read changed ([`CancellationVerdict::Stale`]).
    Stale,
    /// The conversion's rate was replaced ([`CancellationVerdict::RateChanged`]).
    RateChanged,
    /// Account conditions failed, debit side first ([`CancellationVerdict::Accounts`]).
    Accounts(Vec<FailedAccount>),
}

/// The ledger: a DynamoDB client, the two table names and, when configured, the risk rules
/// every money movement is scored with (see [`crate::risk`]).
#[derive(Debug, Clone)]
pub struct Ledger {
    client: Client,
    accounts_table: String,
    transactions_table: String,
    risk: Option<Arc<RiskRules>>,
}

impl Ledger {
    /// A ledger over the given tables.
    pub fn new(
        client: Client,
        accounts_table: impl Into<String>,
        transactions_table: impl Into<String>,
    ) -> Self {
        Ledger {
            client,
            accounts_table: accounts_table.into(),
            transactions_table: transactions_table.into(),
            risk: None,
        }
    }

    /// The same ledger, scoring every money movement with `rules`: each is approved, held for
    /// review or declined in its own TransactWriteItems (see [`crate::risk`]). Without rules the
    /// ledger applies movements as before.
    pub fn with_risk(mut self, rules: Arc<RiskRules>) -> Self {
        self.risk = Some(rules);
        self
    }

    /// The risk rules, when configured.
    pub fn risk(&self) -> Option<&RiskRules> {
        self.risk.as_deref()
    }

    /// The table names, for the pure builders.
    pub fn tables(&self) -> Tables<'_> {
        Tables {
            accounts: &self.accounts_table,
            transactions: &self.transactions_table,
        }
    }

    /// The DynamoDB client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Applies a validated transaction exactly once and records its result.
    ///
    /// `Ok` means the message can be deleted; `Err(Transient)` means leave it for redelivery.
    pub async fn apply(&self, tx: &Transaction) -> Result<Outcome, LedgerError> {
        tx.validate().map_err(|e| LedgerError::InvalidInput {
            detail: e.to_string(),
        })?;
        if tx.kind == TransactionType::BalanceCheck {
            return self.balance_check(tx).await;
        }
        if let Some(rules) = self.risk.clone() {
            return self.apply_assessed(tx, &rules).await;
        }
        for attempt in 1..=MAX_ATTEMPTS {
            // A conversion reads its rate first; it may be declined before any write.
            let plan = match self.movement_plan(tx, OffsetDateTime::now_utc()).await? {
                Ok(plan) => plan,
                Err(reason) => return self.decline_before_any_write(tx, reason).await,
            };
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(plan.items))
                .send()
                .await;
            let err = match result {
                Ok(_) => {
                    tracing::debug!(transaction_id = %tx.transaction_id, "transaction applied");
                    return Ok(Outcome::Completed);
                }
                Err(err) => err,
            };
            match self.settle_cancelled(tx, &plan.roles, err).await? {
                Cancelled::Settled(outcome) => return Ok(outcome),
                // A plan without risk items has no velocity item to be stale.
                Cancelled::Stale => {
                    return Err(LedgerError::Fatal {
                        operation: "dynamodb:TransactWriteItems",
                        detail: "velocity condition failed in a plan without one".into(),
                        source: None,
                    });
                }
                // The rate was replaced after it was read: read it again, never use it stale.
                Cancelled::RateChanged => {
                    tracing::debug!(
                        transaction_id = %tx.transaction_id,
                        attempt,
                        "exchange rate replaced while converting; reading it again"
                    );
                }
                Cancelled::Accounts(failed) => {
                    if let Some(reason) = self.decline_reason(tx, failed).await? {
                        tracing::info!(
                            transaction_id = %tx.transaction_id,
                            reason = reason.code(),
                            "transaction declined"
                        );
                        let record = ResultRecord::declined(tx, &reason);
                        return match self.write_result(&record).await? {
                            true => Ok(Outcome::Declined(reason)),
                            false => self.settle_duplicate(&record).await,
                        };
                    }
                    tracing::debug!(
                        transaction_id = %tx.transaction_id,
                        attempt,
                        "account conditions hold again after a cancelled attempt; retrying"
                    );
                }
            }
        }
        Err(LedgerError::Transient {
            operation: "dynamodb:TransactWriteItems",
            detail: "account state kept changing while applying the transaction".into(),
            source: None,
        })
    }

    /// Settles what every cancelled money movement settles the same way (the ledger's and the
    /// risk path's, one place): an error that is not a cancellation, a duplicate (this id's own
    /// result exists: a redelivery, settled without another read; else the key belongs to
    /// another id, see [`Ledger::settle_duplicate`]), a transient or a fatal cancellation.
    /// What is left is the caller's to retry or classify.
    async fn settle_cancelled(
        &self,
        tx: &Transaction,
        roles: &[ItemRole],
        err: aws_sdk_dynamodb::error::SdkError<TransactWriteItemsError>,
    ) -> Result<Cancelled, LedgerError> {
        let Some(TransactWriteItemsError::TransactionCanceledException(e)) = err.as_service_error()
        else {
            return Err(LedgerError::from_sdk("dynamodb:TransactWriteItems", err));
        };
        let reasons = e.cancellation_reasons();
        let own_result_exists = roles.iter().zip(reasons).any(|(role, reason)| {
            *role == ItemRole::Result && reason.code() == Some("ConditionalCheckFailed")
        });
        match interpret_cancellation(roles, reasons) {
            CancellationVerdict::Duplicate if own_result_exists => {
                Ok(Cancelled::Settled(Outcome::Duplicate))
            }
            CancellationVerdict::Duplicate => self
                .settle_duplicate(&ResultRecord::for_transaction(tx, ResultStatus::Rejected))
                .await
                .map(Cancelled::Settled),
            CancellationVerdict::Transient { codes } => Err(LedgerError::Transient {
                operation: "dynamodb:TransactWriteItems",
                detail: format!("transaction cancelled: {}", codes.join(", ")),
                source: Some(Box::new(err)),
            }),
            CancellationVerdict::Fatal { detail } => Err(LedgerError::Fatal {
                operation: "dynamodb:TransactWriteItems",
                detail,
                source: Some(Box::new(err)),
            }),
            CancellationVerdict::Stale => Ok(Cancelled::Stale),
            CancellationVerdict::RateChanged => Ok(Cancelled::RateChanged),
            CancellationVerdict::Accounts(failed) => Ok(Cancelled::Accounts(failed)),
        }
    }

    /// Records `tx` as declined for `reason`, found before anything was written (a conversion
    /// without a valid rate): its result alone, or the duplicate's if one was recorded first.
    pub(super) async fn decline_before_any_write(
        &self,
        tx: &Transaction,
        reason: DeclineReason,
    ) -> Result<Outcome, LedgerError> {
        tracing::info!(
            transaction_id = %tx.transaction_id,
            reason = reason.code(),
            "transaction declined"
        );
        let record = ResultRecord::declined(tx, &reason);
        match self.write_result(&record).await? {
            true => Ok(Outcome::Declined(reason)),
            false => self.settle_duplicate(&record).await,
        }
    }

    /// Why the failed accounts of a cancelled movement refuse it (debit side first), or `None`
    /// when their conditions hold again (they changed since the attempt: retry).
    async fn decline_reason(
        &self,
        tx: &Transaction,
        failed: Vec<FailedAccount>,
    ) -> Result<Option<DeclineReason>, LedgerError> {
        for f in failed {
            let item = match f.item {
                Some(item) => Some(item),
                None => self.get_account_item(&f.account).await?,
            };
            // Ownership first, so a stranger learns nothing about the balance.
            let not_owner = match f.direction {
                Direction::Debit => {
                    owner_mismatch(&f.account, item.as_ref(), tx.principal.as_ref())?
                }
                Direction::Credit => None,
            };
            let reason = match not_owner {
                Some(reason) => Some(reason),
                None => classify_account(
                    &f.account,
                    item.as_ref(),
                    Some(f.direction),
                    match f.direction {
                        Direction::Debit => tx.currency,
                        Direction::Credit => tx.credit_currency(),
                    },
                    tx.amount,
                )?,
            };
            if reason.is_some() {
                return Ok(reason);
            }
        }
        Ok(None)
    }

    async fn balance_check(&self, tx: &Transaction) -> Result<Outcome, LedgerError> {
        let account = tx
            .balance_account()
            .ok_or_else(|| LedgerError::InvalidInput {
                detail: "BALANCE_CHECK without an account".into(),
            })?;
        let item = self.get_account_item(account).await?;
        if let Some(reason) = owner_mismatch(account, item.as_ref(), tx.principal.as_ref())? {
            tracing::info!(
                transaction_id = %tx.transaction_id,
                reason = reason.code(),
                "balance check declined"
            );
            let record = ResultRecord::declined(tx, &reason);
            return Ok(match self.write_result(&record).await? {
                true => Outcome::Declined(reason),
                false => Outcome::Duplicate,
            });
        }
        let record = balance_check_record(tx, item.as_ref())?;
        let outcome = match (&record.status, item.as_ref()) {
            (ResultStatus::Completed, _) => Outcome::Completed,
            _ => Outcome::Declined(
                classify_account(account, item.as_ref(), None, tx.currency, None)?.ok_or_else(
                    || LedgerError::InvalidInput {
                        detail: "declined without a reason".into(),
                    },
                )?,
            ),
        };
        match self.write_result(&record).await? {
            true => Ok(outcome),
            false => self.settle_duplicate(&record).await,
        }
    }

    /// Records a REJECTED result for a message that failed validation but has a transaction id
    /// (see [`crate::transaction::ParseError::Invalid`]). Returns [`Outcome::Rejected`], or
    /// [`Outcome::Duplicate`] if the id or key was already recorded.
    pub async fn record_rejection(
        &self,
        transaction_id: Uuid,
        idempotency_key: Option<&IdempotencyKey>,
        error: &ValidationError,
    ) -> Result<Outcome, LedgerError> {
        let reason = error.to_string();
        let record = ResultRecord {
            transaction_id,
            idempotency_key: idempotency_key.map(|k| k.as_str().to_owned()),
            status: ResultStatus::Rejected,
            reason: Some(reason.clone()),
            reason_code: Some(error.code().to_owned()),
            kind: None,
            amount: None,
            currency: None,
            accounts: Vec::new(),
            balance: None,
            timestamp: None,
            principal: None,
        };
        match self.write_result(&record).await? {
            true => Ok(Outcome::Rejected(reason)),
            false => self.settle_duplicate(&record).await,
        }
    }

    /// The IDEM or TXN record of `base` already exists. If the idempotency key was settled by
    /// *another* transaction id, this id gets a terminal result of its own (REJECTED,
    /// [`IDEMPOTENCY_KEY_REUSED`]; a `TXN#` put only, the key stays with its first owner), so a
    /// producer polling it does not wait forever. A redelivery of the same transaction stays
    /// [`Outcome::Duplicate`].
    async fn settle_duplicate(&self, base: &ResultRecord) -> Result<Outcome, LedgerError> {
        let Some(key) = base.idempotency_key.as_deref() else {
            return Ok(Outcome::Duplicate);
        };
        let owner = self
            .client
            .get_item()
            .table_name(&self.transactions_table)
            .key(PK, s(idempotency_pk(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| LedgerError::from_sdk("dynamodb:GetItem", e))?
            .item;
        let owner_id = owner
            .as_ref()
            .and_then(|item| item.get("transaction_id"))
            .and_then(|v| v.as_s().ok());
        let own_id = base.transaction_id.hyphenated().to_string();
        match owner_id {
            Some(owner_id) if *owner_id != own_id => {}
            // Our own key record (a redelivery), or only the TXN# record exists.
            _ => return Ok(Outcome::Duplicate),
        }
        let reason = "the idempotency key was already used by another transaction".to_owned();
        let record = ResultRecord {
            status: ResultStatus::Rejected,
            reason: Some(reason.clone()),
            reason_code: Some(IDEMPOTENCY_KEY_REUSED.to_owned()),
            balance: None,
            ..base.clone()
        };
        let result = self
            .client
            .put_item()
            .table_name(&self.transactions_table)
            .set_item(Some(record.to_item(OffsetDateTime::now_utc())?))
            .condition_expression(NOT_EXISTS)
            .send()
            .await;
        match result {
            Ok(_) => {
                tracing::warn!(
                    transaction_id = %base.transaction_id,
                    "idempotency key reused by another transaction id: rejected"
                );
                Ok(Outcome::Rejected(reason))
            }
            Err(err) => match err.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(_)) => Ok(Outcome::Duplicate),
                _ => Err(LedgerError::from_sdk("dynamodb:PutItem", err)),
            },
        }
    }

    /// Records a REJECTED result with reason code [`INTERNAL_ERROR`] for a transaction whose
    /// processing failed inside the worker (a panic) on its last delivery, so that the client
    /// gets an answer instead of the message disappearing into the dead-letter queue.
    ///
    /// Like every result it is written only if the transaction and its idempotency key have
    /// none yet: when the effect was in fact committed before the failure, this returns
    /// [`Outcome::Duplicate`] and the committed result stands.
    pub async fn record_internal_error(
        &self,
        transaction_id: Uuid,
        idempotency_key: Option<&IdempotencyKey>,
    ) -> Result<Outcome, LedgerError> {
        let reason = String::from(
            "internal error while processing the transaction; it was not applied \
             (hint: send it again with a new idempotency key, or contact the operator)",
        );
        let record = ResultRecord {
            transaction_id,
            idempotency_key: idempotency_key.map(|k| k.as_str().to_owned()),
            status: ResultStatus::Rejected,
            reason: Some(reason.clone()),
            reason_code: Some(INTERNAL_ERROR.to_owned()),
            kind: None,
            amount: None,
            currency: None,
            accounts: Vec::new(),
            balance: None,
            timestamp: None,
            principal: None,
        };
        Ok(match self.write_result(&record).await? {
            true => Outcome::Rejected(reason),
            false => Outcome::Duplicate,
        })
    }

    /// Writes IDEM + TXN for `record`; `Ok(false)` if either already exists.
    async fn write_result(&self, record: &ResultRecord) -> Result<bool, LedgerError> {
        let plan = build_result(self.tables(), record, OffsetDateTime::now_utc())?;
        self.write_plan(plan).await
    }

    /// Runs a plan that records a decision without moving money; `Ok(false)` if its IDEM or
    /// TXN record (or, for a review's decision, the pending review) is no longer as expected.
    async fn write_plan(&self, plan: WritePlan) -> Result<bool, LedgerError> {
        plan.check_size()?;
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(plan.items))
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(err) => match err.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(e)) => {
                    match interpret_cancellation(&plan.roles, e.cancellation_reasons()) {
                        CancellationVerdict::Duplicate => Ok(false),
                        CancellationVerdict::Transient { codes } => Err(LedgerError::Transient {
                            operation: "dynamodb:TransactWriteItems",
                            detail: format!("result write cancelled: {}", codes.join(", ")),
                            source: Some(Box::new(err)),
                        }),
                        other => Err(LedgerError::Fatal {
                            operation: "dynamodb:TransactWriteItems",
                            detail: format!("result write cancelled: {other:?}"),
                            source: Some(Box::new(err)),
                        }),
                    }
                }
                _ => Err(LedgerError::from_sdk("dynamodb:TransactWriteItems", err)),
            },
        }
    }

    async fn get_account_item(&self, account: &AccountNumber) -> Result<Option<Item>, LedgerError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.accounts_table)
            .set_key(Some(account_meta_key(account)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| LedgerError::from_sdk("dynamodb:GetItem", e))?;
        Ok(out.item)
    }

    /// Creates an OPEN account. A positive opening balance is also written as a CREDIT entry
    /// from `EXTERNAL` (type `OPENING_BALANCE`, with its own COMPLETED result), so that the
    /// sum of entries always equals the balance. `owner` is recorded on the account (see the
    /// module documentation on ownership). Fails with [`LedgerError::Conflict`] if the account
    /// exists.
    pub async fn create_account(
        &self,
        account_id: &AccountNumber,
        currency: Currency,
        account_type: &str,
        opening_balance: Decimal,
        owner: &Subject,
    ) -> Result<Account, LedgerError> {
        let now = OffsetDateTime::now_utc();
        let plan = build_create_account(
            self.tables(),
            account_id,
            currency,
            account_type,
            opening_balance,
            owner,
            Uuid::now_v7(),
            now,
        )?;
        if let Err(err) = self
            .client
            .transact_write_items()
            .set_transact_items(Some(plan.items))
            .send()
            .await
        {
            if let Some(TransactWriteItemsError::TransactionCanceledException(e)) =
                err.as_service_error()
            {
                let meta_failed = plan
                    .roles
                    .iter()
                    .zip(e.cancellation_reasons())
                    .any(|(r, c)| {
                        *r == ItemRole::AccountMeta && c.code() == Some("ConditionalCheckFailed")
                    });
                if meta_failed {
                    return Err(LedgerError::Conflict {
                        account: account_id.to_string(),
                        reason: "account already exists".into(),
                    });
                }
            }
            return Err(LedgerError::from_sdk("dynamodb:TransactWriteItems", err));
        }
        self.get_account(account_id)
            .await?
            .ok_or_else(|| LedgerError::Fatal {
                operation: "dynamodb:GetItem",
                detail: format!("account {account_id} missing right after creation"),
                source: None,
            })
    }

    /// Reads an account (strongly consistent).
    pub async fn get_account(
        &self,
        account_id: &AccountNumber,
    ) -> Result<Option<Account>, LedgerError> {
        self.get_account_item(account_id)
            .await?
            .map(|item| Account::from_item(&item))
            .transpose()
    }

    /// Reads a recorded result (strongly consistent).
    pub async fn get_result(
        &self,
        transaction_id: Uuid,
    ) -> Result<Option<TransactionResult>, LedgerError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.transactions_table)
            .key("pk", s(result_pk(transaction_id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| LedgerError::from_sdk("dynamodb:GetItem", e))?;
        out.item
            .map(|item| TransactionResult::from_item(&item))
            .transpose()
    }

    /// Ledger entries of an account posted between `from` and `to` (inclusive), oldest first,
    /// at most `limit` (1..=1000) per page. Pass the returned `next_cursor` to continue.
    pub async fn history(
        &self,
        account_id: &AccountNumber,
        from: OffsetDateTime,
        to: OffsetDateTime,
        limit: i32,
        cursor: Option<&str>,
    ) -> Result<HistoryPage, LedgerError> {
        if !(1..=MAX_HISTORY_PAGE).contains(&limit) {
            return Err(LedgerError::InvalidInput {
                detail: format!("history limit must be 1..={MAX_HISTORY_PAGE}"),
            });
        }
        let (lower, upper) = history_bounds(from, to)?;
        let start = cursor.map(|c| decode_cursor(account_id, c)).transpose()?;
        let out = self
            .client
            .query()
            .table_name(&self.accounts_table)
            .key_condition_expression("pk = :pk AND sk BETWEEN :from AND :to")
            .expression_attribute_values(":pk", s(account_pk(account_id)))
            .expression_attribute_values(":from", s(lower))
            .expression_attribute_values(":to", s(upper))
            .consistent_read(true)
            .limit(limit)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| LedgerError::from_sdk("dynamodb:Query", e))?;
        let entries = out
            .items()
            .iter()
            .map(LedgerEntry::from_item)
            .collect::<Result<Vec<_>, _>>()?;
        let next_cursor = out.last_evaluated_key().and_then(encode_cursor);
        Ok(HistoryPage {
            entries,
            next_cursor,
        })
    }

    /// Closes an account whose balance is zero. Fails with [`LedgerError::Conflict`] if the
    /// account does not exist, is already closed, or holds money.
    pub async fn close_account(&self, account_id: &AccountNumber) -> Result<(), LedgerError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.accounts_table)
            .set_key(Some(account_meta_key(account_id)))
            .condition_expression(CLOSE_CONDITION)
            .update_expression(CLOSE_UPDATE)
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#balance", "balance")
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":open", s(AccountStatus::Open.as_str()))
            .expression_attribute_values(":closed", s(AccountStatus::Closed.as_str()))
            .expression_attribute_values(":zero", n(Decimal::ZERO))
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let err = match result {
            Ok(_) => return Ok(()),
            Err(err) => err,
        };
        let old = match err.as_service_error() {
            Some(UpdateItemError::ConditionalCheckFailedException(e)) => e.item().cloned(),
            _ => return Err(LedgerError::from_sdk("dynamodb:UpdateItem", err)),
        };
        let item = match old {
            Some(item) => Some(item),
            None => self.get_account_item(account_id).await?,
        };
        let reason = match item.map(|i| Account::from_item(&i)).transpose()? {
            None => "account does not exist".to_owned(),
            Some(a) if a.status == AccountStatus::Closed => "account is already closed".to_owned(),
            Some(a) if !a.balance.is_zero() => {
                format!("balance is {} {}, not zero", a.balance, a.currency)
            }
            Some(_) => {
                return Err(LedgerError::Transient {
                    operation: "dynamodb:UpdateItem",
                    detail: "account changed while closing; retry".into(),
                    source: Some(Box::new(err)),
                });
            }
        };
        Err(LedgerError::Conflict {
            account: account_id.to_string(),
            reason,
        })
    }
}
