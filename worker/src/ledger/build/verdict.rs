//! What a cancelled TransactWriteItems means for a [`WritePlan`](super::WritePlan), and why an
//! account declines.

use aws_sdk_dynamodb::types::CancellationReason;
use rust_decimal::Decimal;

use super::ItemRole;
use super::items::ResultRecord;
use crate::ledger::LedgerError;
use crate::ledger::model::{
    AccountStatus, DeclineReason, Direction, Item, OWNER, ResultStatus, get_n, get_s, opt_s,
};
use crate::transaction::{AccountNumber, Currency, Subject, Transaction, TransactionType};

/// An account whose condition failed in a cancelled transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct FailedAccount {
    /// The account.
    pub account: AccountNumber,
    /// Whether it was being debited or credited.
    pub direction: Direction,
    /// The item as it was (`ReturnValuesOnConditionCheckFailure::AllOld`), if returned.
    /// `None` means "not returned": the account may or may not exist.
    pub item: Option<Item>,
}

/// What a `TransactionCanceledException` means for a [`WritePlan`].
#[derive(Debug, Clone, PartialEq)]
pub enum CancellationVerdict {
    /// The idempotency or result item already exists: the transaction was processed before.
    /// (For a review's decision: the review is no longer pending, someone decided it.)
    Duplicate,
    /// The risk velocity state changed since it was read (another worker counted a debit of
    /// the same account first): read it again, score again and retry. Never a duplicate nor a
    /// decline: nothing about this transaction was decided.
    Stale,
    /// Conflict with a concurrent transaction or throttling: retry later.
    Transient {
        /// The non-condition failure codes seen.
        codes: Vec<String>,
    },
    /// The exchange rate a conversion read was replaced before the write: read it again.
    RateChanged,
    /// Account conditions failed, debit side first: classify into a decline.
    Accounts(Vec<FailedAccount>),
    /// Anything else (e.g. an entry item already exists without a result item).
    Fatal {
        /// What happened.
        detail: String,
    },
}

/// Cancellation reason codes that mean "try again".
pub const TRANSIENT_CANCELLATION_CODES: &[&str] = &[
    "TransactionConflict",
    "ThrottlingError",
    "ProvisionedThroughputExceeded",
    "RequestLimitExceeded",
    "InternalServerError",
];

/// Interprets per-item cancellation reasons (same order as `roles`).
pub fn interpret_cancellation(
    roles: &[ItemRole],
    reasons: &[CancellationReason],
) -> CancellationVerdict {
    if roles.len() != reasons.len() {
        return CancellationVerdict::Fatal {
            detail: format!(
                "{} cancellation reasons for {} items",
                reasons.len(),
                roles.len()
            ),
        };
    }
    let failed: Vec<(&ItemRole, &CancellationReason, &str)> = roles
        .iter()
        .zip(reasons)
        .filter_map(|(role, reason)| match reason.code() {
            None | Some("None") => None,
            Some(code) => Some((role, reason, code)),
        })
        .collect();
    let condition_failed =
        |(_, _, code): &&(&ItemRole, &CancellationReason, &str)| *code == "ConditionalCheckFailed";
    if failed.iter().filter(condition_failed).any(|(role, _, _)| {
        matches!(
            role,
            ItemRole::Idempotency | ItemRole::Result | ItemRole::Review
        )
    }) {
        return CancellationVerdict::Duplicate;
    }
    let transient: Vec<String> = failed
        .iter()
        .filter(|(_, _, code)| TRANSIENT_CANCELLATION_CODES.contains(code))
        .map(|(_, _, code)| (*code).to_owned())
        .collect();
    if !transient.is_empty() {
        return CancellationVerdict::Transient { codes: transient };
    }
    // Before the accounts: a decline must come from a score on fresh velocity, and a debit
    // that failed beside a stale velocity is classified again on the next attempt.
    if failed
        .iter()
        .filter(condition_failed)
        .any(|(role, _, _)| **role == ItemRole::Velocity)
    {
        return CancellationVerdict::Stale;
    }
    if failed
        .iter()
        .filter(condition_failed)
        .any(|(role, _, _)| **role == ItemRole::RateCheck)
    {
        return CancellationVerdict::RateChanged;
    }
    let mut accounts = Vec::new();
    for (role, reason, code) in &failed {
        match (role, *code) {
            (ItemRole::Debit(account), "ConditionalCheckFailed") => accounts.push(FailedAccount {
                account: account.clone(),
                direction: Direction::Debit,
                item: reason.item().cloned(),
            }),
            (ItemRole::Credit(account), "ConditionalCheckFailed") => accounts.push(FailedAccount {
                account: account.clone(),
                direction: Direction::Credit,
                item: reason.item().cloned(),
            }),
            (ItemRole::AccountCheck { account, direction }, "ConditionalCheckFailed") => {
                accounts.push(FailedAccount {
                    account: account.clone(),
                    direction: *direction,
                    item: reason.item().cloned(),
                });
            }
            (role, code) => {
                return CancellationVerdict::Fatal {
                    detail: format!(
                        "{role:?} failed with {code}: {}",
                        reason.message().unwrap_or("")
                    ),
                };
            }
        }
    }
    if accounts.is_empty() {
        return CancellationVerdict::Fatal {
            detail: "transaction cancelled without a failed item".into(),
        };
    }
    accounts.sort_by_key(|f| f.direction == Direction::Credit);
    CancellationVerdict::Accounts(accounts)
}

/// Why an account refuses a debit (`direction = Some(Debit)` with `amount`), a credit
/// (`Some(Credit)`), or a balance check (`None`). `Ok(None)` means the conditions hold on this
/// item (e.g. it changed since the cancelled attempt).
pub fn classify_account(
    account: &AccountNumber,
    item: Option<&Item>,
    direction: Option<Direction>,
    currency: Currency,
    amount: Option<Decimal>,
) -> Result<Option<DeclineReason>, LedgerError> {
    let Some(item) = item else {
        return Ok(Some(DeclineReason::AccountNotFound {
            account: account.clone(),
        }));
    };
    if get_s(item, "status")? != AccountStatus::Open.as_str() {
        return Ok(Some(DeclineReason::AccountClosed {
            account: account.clone(),
        }));
    }
    let account_currency = get_s(item, "currency")?;
    if account_currency != currency.code() {
        return Ok(Some(DeclineReason::CurrencyMismatch {
            account: account.clone(),
            account_currency: account_currency.to_owned(),
            transaction_currency: currency,
        }));
    }
    if let (Some(Direction::Debit), Some(amount)) = (direction, amount)
        && get_n(item, "balance")? < amount
    {
        return Ok(Some(DeclineReason::InsufficientFunds {
            account: account.clone(),
        }));
    }
    Ok(None)
}

/// [`DeclineReason::NotAccountOwner`] when `principal` is set and the account item's `owner`
/// differs (or is absent: accounts opened before owners existed are reachable only by trusted
/// producers). A missing item is not a mismatch: [`classify_account`] reports it.
pub fn owner_mismatch(
    account: &AccountNumber,
    item: Option<&Item>,
    principal: Option<&Subject>,
) -> Result<Option<DeclineReason>, LedgerError> {
    let (Some(item), Some(principal)) = (item, principal) else {
        return Ok(None);
    };
    let owner = opt_s(item, OWNER)?;
    Ok(
        (owner != Some(principal.as_str())).then(|| DeclineReason::NotAccountOwner {
            account: account.clone(),
        }),
    )
}

/// The BALANCE_CHECK result for `tx` given the account item read (consistently).
pub fn balance_check_record(
    tx: &Transaction,
    item: Option<&Item>,
) -> Result<ResultRecord, LedgerError> {
    let account = tx
        .balance_account()
        .ok_or_else(|| LedgerError::InvalidInput {
            detail: "not a BALANCE_CHECK".into(),
        })?;
    if tx.kind != TransactionType::BalanceCheck {
        return Err(LedgerError::InvalidInput {
            detail: "not a BALANCE_CHECK".into(),
        });
    }
    match (
        classify_account(account, item, None, tx.currency, None)?,
        item,
    ) {
        (Some(reason), _) => Ok(ResultRecord::declined(tx, &reason)),
        (None, Some(item)) => Ok(ResultRecord {
            balance: Some(get_n(item, "balance")?),
            ..ResultRecord::for_transaction(tx, ResultStatus::Completed)
        }),
        (None, None) => Err(LedgerError::InvalidInput {
            detail: "no account item".into(),
        }),
    }
}
