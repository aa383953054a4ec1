//! Per-account authorization: who may debit, read, close an account and read a transaction.
//!
//! Every account has an owner, the `sub` of the token that opened it (see
//! [`crate::ledger::OWNER`]). The rules:
//!
//! - Reading an account, its history, closing it, and debiting it (the source of a TRANSFER,
//!   PAYMENT or WITHDRAWAL, or the account of a BALANCE_CHECK) need the caller to own it, or the
//!   operator scope [`SCOPE_ACCOUNTS_ADMIN`].
//! - Crediting a foreign account (paying someone, a DEPOSIT to another account) is allowed.
//! - A transaction's status is visible to the principal that submitted it, to the owner of its
//!   first account (the source, or the target of a DEPOSIT), and to `accounts:admin`.
//! - Whatever the caller may not see is answered exactly like something that does not exist
//!   (404, same body), so account numbers and transaction ids cannot be probed.
//!
//! The API check is the first line; the ledger enforces the debit rule again on the message's
//! `principal` inside the money-moving TransactWriteItems (see [`crate::ledger`]), so a message
//! that reaches the queue some other way cannot move someone else's money either.

use uuid::Uuid;

use super::ApiState;
use super::auth::{Principal, SCOPE_ACCOUNTS_ADMIN};
use super::problem::ApiError;
use crate::ledger::{Account, Ledger, TransactionResult};
use crate::store::ingest::{Submitted, submitter};
use crate::transaction::{AccountNumber, Transaction};

/// The 404 for an account the caller may not see, identical to a missing account's.
pub fn account_not_found(number: &AccountNumber) -> ApiError {
    ApiError::NotFound(format!("no account {number}"))
}

/// The 404 for a transaction the caller may not see, identical to an unknown id's.
pub fn transaction_not_found(transaction_id: Uuid) -> ApiError {
    ApiError::NotFound(format!("no transaction {transaction_id}"))
}

/// Whether `principal` holds the operator scope.
pub fn is_admin(principal: &Principal) -> bool {
    principal.has_scope(SCOPE_ACCOUNTS_ADMIN)
}

/// Whether `principal` may see and act on an account owned by `owner` (`None`: an account from
/// before owners were recorded, visible to operators only).
pub fn may_access(principal: &Principal, owner: Option<&str>) -> bool {
    is_admin(principal) || owner == Some(principal.subject.as_str())
}

/// The account if it exists and `principal` may access it, else the same 404 as a missing one.
#[tracing::instrument(skip_all, fields(sub = %principal.subject, account_id = %number))]
pub async fn visible_account(
    state: &ApiState,
    principal: &Principal,
    number: &AccountNumber,
) -> Result<Account, ApiError> {
    account_of(state.ledger(), principal, number).await
}

/// [`visible_account`] on a ledger (the ingest path outside the API, e.g. the bill runner).
pub async fn account_of(
    ledger: &Ledger,
    principal: &Principal,
    number: &AccountNumber,
) -> Result<Account, ApiError> {
    match ledger.get_account(number).await? {
        Some(account) if may_access(principal, account.owner.as_deref()) => Ok(account),
        Some(_) => {
            tracing::info!(sub = %principal.subject, account_id = %number, "account hidden from a non-owner");
            Err(account_not_found(number))
        }
        None => Err(account_not_found(number)),
    }
}

/// Authorizes a validated submission and stamps its principal.
///
/// The account the transaction debits (or balance-checks) must exist and be the caller's
/// (or the caller is an operator), else 404 as for a missing account; nothing is recorded or
/// enqueued then. Credited accounts are not checked: paying someone is allowed and a missing
/// target ends DECLINED (`ACCOUNT_NOT_FOUND`) as before.
///
/// A non-operator's message is stamped with `principal = sub`, which the ledger checks again
/// against the debited account's owner. An operator's message carries no principal: operators
/// act as a trusted producer (the ingest record still names the `sub`).
#[tracing::instrument(skip_all, fields(sub = %principal.subject))]
pub async fn authorize_submission(
    ledger: &Ledger,
    principal: &Principal,
    tx: &mut Transaction,
) -> Result<(), ApiError> {
    if let Some(account) = tx.debit_account().or(tx.balance_account()) {
        account_of(ledger, principal, account).await?;
    }
    tx.principal = if is_admin(principal) {
        None
    } else {
        Some(principal.owner().clone())
    };
    Ok(())
}

/// `Ok` when `principal` may read the recorded result, else the unknown-transaction 404.
#[tracing::instrument(skip_all, fields(sub = %principal.subject, transaction_id = %result.transaction_id))]
pub async fn authorize_result(
    state: &ApiState,
    principal: &Principal,
    result: &TransactionResult,
) -> Result<(), ApiError> {
    if is_admin(principal) || result.principal.as_deref() == Some(principal.subject.as_str()) {
        return Ok(());
    }
    // Source first in `accounts`, so the first account is the debited one, or a DEPOSIT's
    // target, or the BALANCE_CHECK account.
    let first = result
        .accounts
        .first()
        .and_then(|a| AccountNumber::parse(a).ok());
    if let Some(number) = first
        && let Some(account) = state.ledger().get_account(&number).await?
        && may_access(principal, account.owner.as_deref())
    {
        return Ok(());
    }
    Err(transaction_not_found(result.transaction_id))
}

/// `Ok` when `principal` may see a transaction that has no result yet: the caller submitted it
/// (the `subject` of its ingest record) or is an operator. `submitted` is what its
/// `INGESTID#<id>` item says, which names the idempotency key of the `INGEST#<key>` record.
#[tracing::instrument(skip_all, fields(sub = %principal.subject, %transaction_id))]
pub async fn authorize_pending(
    state: &ApiState,
    principal: &Principal,
    transaction_id: Uuid,
    submitted: &Submitted,
) -> Result<(), ApiError> {
    if is_admin(principal) {
        return Ok(());
    }
    let Some(key) = submitted.idempotency_key.as_deref() else {
        return Err(transaction_not_found(transaction_id));
    };
    let subject = submitter(state.ledger(), key).await?;
    if subject.as_deref() == Some(principal.subject.as_str()) {
        Ok(())
    } else {
        Err(transaction_not_found(transaction_id))
    }
}
