//! The DynamoDB data model: keys, attribute names, and the typed views of items.

use std::fmt;

use aws_sdk_dynamodb::types::AttributeValue;
use rust_decimal::Decimal;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use uuid::Uuid;

use super::LedgerError;
use crate::transaction::{AccountNumber, Currency, parse_dynamo_number};

pub use crate::store::Item;
pub use crate::store::keys::{
    EXTERNAL, META, OPENING_BALANCE, OWNER, PK, SK, account_pk, idempotency_pk, result_pk,
};

/// Fixed-width UTC timestamp used inside sort keys, so that lexicographic order is
/// chronological: `2024-01-15T10:30:00.000000000Z`.
pub fn sort_timestamp(t: OffsetDateTime) -> Result<String, LedgerError> {
    // Checked: converting an extreme offset near the ends of the range (e.g.
    // 9999-12-31T23:59:59-23:59) leaves the representable years.
    let utc = match t.checked_to_offset(time::UtcOffset::UTC) {
        Some(utc) if (1..=9999).contains(&utc.year()) => utc,
        _ => {
            return Err(LedgerError::InvalidInput {
                detail: format!("timestamp {t} is outside years 0001-9999 in UTC"),
            });
        }
    };
    utc.format(format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:9]Z"
    ))
    .map_err(|e| LedgerError::InvalidInput {
        detail: format!("cannot format timestamp {t}: {e}"),
    })
}

/// RFC 3339 text of a timestamp (for plain attributes).
pub fn rfc3339(t: OffsetDateTime) -> Result<String, LedgerError> {
    t.format(&Rfc3339).map_err(|e| LedgerError::InvalidInput {
        detail: format!("cannot format timestamp {t}: {e}"),
    })
}

/// `ENTRY#<fixed-width UTC posting time>#<transaction_id>#<DEBIT|CREDIT>`.
pub fn entry_sk(
    posted_at: OffsetDateTime,
    transaction_id: Uuid,
    direction: Direction,
) -> Result<String, LedgerError> {
    Ok(format!(
        "ENTRY#{}#{}#{}",
        sort_timestamp(posted_at)?,
        transaction_id.hyphenated(),
        direction.as_str()
    ))
}

/// Side of a ledger entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Money leaves the account.
    Debit,
    /// Money enters the account.
    Credit,
}

impl Direction {
    /// `"DEBIT"` or `"CREDIT"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Direction::Debit => "DEBIT",
            Direction::Credit => "CREDIT",
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Account status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccountStatus {
    /// Accepts debits and credits.
    Open,
    /// Accepts nothing.
    Closed,
}

impl AccountStatus {
    /// `"OPEN"` or `"CLOSED"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            AccountStatus::Open => "OPEN",
            AccountStatus::Closed => "CLOSED",
        }
    }
}

/// Status of a recorded transaction result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResultStatus {
    /// Applied (or, for BALANCE_CHECK, answered).
    Completed,
    /// Valid but refused by the ledger (see [`DeclineReason`]).
    Declined,
    /// Failed validation.
    Rejected,
    /// Held for review by the risk rules: no money moved yet; an operator's approval turns it
    /// COMPLETED (or DECLINED), a rejection DECLINED (see [`crate::risk`]).
    Held,
}

impl ResultStatus {
    /// `"COMPLETED"`, `"DECLINED"`, `"REJECTED"` or `"HELD"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            ResultStatus::Completed => "COMPLETED",
            ResultStatus::Declined => "DECLINED",
            ResultStatus::Rejected => "REJECTED",
            ResultStatus::Held => "HELD",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [
            ResultStatus::Completed,
            ResultStatus::Declined,
            ResultStatus::Rejected,
            ResultStatus::Held,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }
}

/// Why a valid transaction was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeclineReason {
    /// No such account.
    #[error("account {account} does not exist")]
    AccountNotFound {
        /// The account.
        account: AccountNumber,
    },
    /// The account is closed.
    #[error("account {account} is closed")]
    AccountClosed {
        /// The account.
        account: AccountNumber,
    },
    /// The account holds another currency.
    #[error(
        "account {account} holds {account_currency}, the transaction is in {transaction_currency}"
    )]
    CurrencyMismatch {
        /// The account.
        account: AccountNumber,
        /// The account's currency as stored.
        account_currency: String,
        /// The transaction's currency.
        transaction_currency: Currency,
    },
    /// The debited account's balance is below the amount.
    #[error("insufficient funds in account {account}")]
    InsufficientFunds {
        /// The account.
        account: AccountNumber,
    },
    /// A conversion found no rate of its pair valid at the posting time.
    #[error("no {base}/{quote} exchange rate is valid at {at}")]
    NoRate {
        /// The debited currency.
        base: Currency,
        /// The credited currency.
        quote: Currency,
        /// The posting time (RFC 3339).
        at: String,
    },
    /// A conversion's result is not an amount (zero after rounding, or 10^18 or more).
    #[error("cannot convert: {detail}")]
    ConversionOutOfRange {
        /// Why (the amount, the rate and the currency).
        detail: String,
    },
    /// The message's principal does not own the account it debits (or balance-checks).
    #[error("the message's principal does not own account {account}")]
    NotAccountOwner {
        /// The account.
        account: AccountNumber,
    },
    /// The risk rules scored the transaction at or above the decline threshold.
    #[error("declined by the risk rules (score {score})")]
    RiskDeclined {
        /// The risk score.
        score: u32,
    },
    /// An operator rejected the held transaction.
    #[error("rejected on review by {operator}")]
    ReviewRejected {
        /// The operator's principal.
        operator: String,
    },
}

impl DeclineReason {
    /// Stable machine code, stored as `reason_code` on the result item.
    pub fn code(&self) -> &'static str {
        match self {
            DeclineReason::AccountNotFound { .. } => "ACCOUNT_NOT_FOUND",
            DeclineReason::AccountClosed { .. } => "ACCOUNT_CLOSED",
            DeclineReason::CurrencyMismatch { .. } => "CURRENCY_MISMATCH",
            DeclineReason::InsufficientFunds { .. } => "INSUFFICIENT_FUNDS",
            DeclineReason::NotAccountOwner { .. } => "NOT_ACCOUNT_OWNER",
            DeclineReason::RiskDeclined { .. } => "RISK_DECLINED",
            DeclineReason::ReviewRejected { .. } => "REVIEW_REJECTED",
            DeclineReason::NoRate { .. } => "NO_RATE",
            DeclineReason::ConversionOutOfRange { .. } => "CONVERSION_OUT_OF_RANGE",
        }
    }
}

/// What applying a message did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Applied, and the COMPLETED result recorded.
    Completed,
    /// Refused; the DECLINED result recorded.
    Declined(DeclineReason),
    /// Invalid; the REJECTED result recorded (the reason text).
    Rejected(String),
    /// Already processed (same idempotency key or same transaction id): nothing changed.
    Duplicate,
    /// Held for review by the risk rules; the HELD result recorded, no money moved.
    Held,
}

/// An account's META item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The account number.
    pub account_id: AccountNumber,
    /// Current balance.
    pub balance: Decimal,
    /// Currency code as stored.
    pub currency: String,
    /// OPEN or CLOSED.
    pub status: AccountStatus,
    /// Free-form account type, e.g. `CHECKING`.
    pub account_type: String,
    /// RFC 3339 creation time.
    pub created_at: String,
    /// Incremented by every balance or status change.
    pub version: u64,
    /// The owner (JWT `sub` of the opener, or the `seed-accounts --owner`); `None` for
    /// accounts opened before owners were recorded, which only `accounts:admin` can see.
    pub owner: Option<String>,
}

/// A recorded transaction result (`TXN#<id>` item).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionResult {
    /// The transaction.
    pub transaction_id: Uuid,
    /// COMPLETED, DECLINED or REJECTED.
    pub status: ResultStatus,
    /// Human-readable reason (DECLINED, REJECTED).
    pub reason: Option<String>,
    /// Machine code of the reason.
    pub reason_code: Option<String>,
    /// The idempotency key, when known.
    pub idempotency_key: Option<String>,
    /// Transaction type (absent for some REJECTED results).
    pub kind: Option<String>,
    /// Amount.
    pub amount: Option<Decimal>,
    /// Currency code.
    pub currency: Option<String>,
    /// Accounts involved, source first.
    pub accounts: Vec<String>,
    /// When the worker recorded the result (RFC 3339).
    pub processed_at: Option<String>,
    /// BALANCE_CHECK: the balance read.
    pub balance: Option<Decimal>,
    /// The principal the message acted for, if it carried one.
    pub principal: Option<String>,
    /// A completed conversion's second leg, rate and rounding.
    pub conversion: Option<ConversionResult>,
}

/// What a completed conversion recorded on its `TXN#` item (see
/// [`crate::ledger::build_conversion`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversionResult {
    /// The credited currency.
    pub target_currency: String,
    /// The credited amount.
    pub target_amount: Decimal,
    /// The rate used (exact text).
    pub rate: String,
    /// The rate's id (`USD/EUR@<valid_from>#v<version>`).
    pub rate_id: String,
    /// Who published the rate.
    pub rate_source: String,
    /// The rounding rule (`HALF_EVEN`).
    pub rounding: String,
    /// `amount × rate − target_amount`.
    pub residue: Decimal,
}

/// One ledger entry (history item).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    /// The account the entry belongs to.
    pub account_id: AccountNumber,
    /// The sort key (unique per account).
    pub sk: String,
    /// The transaction that caused it.
    pub transaction_id: Uuid,
    /// Transaction type (or `OPENING_BALANCE`).
    pub kind: String,
    /// DEBIT or CREDIT.
    pub direction: Direction,
    /// Positive amount.
    pub amount: Decimal,
    /// Currency code.
    pub currency: String,
    /// The other account, or `EXTERNAL`.
    pub counterparty: Option<String>,
    /// When it was posted (RFC 3339).
    pub posted_at: Option<String>,
}

/// One page of [`super::Ledger::history`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryPage {
    /// Entries in chronological order.
    pub entries: Vec<LedgerEntry>,
    /// Pass back to get the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

// ----- item decoding -----

pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(crate) fn n(d: Decimal) -> AttributeValue {
    AttributeValue::N(d.to_string())
}

fn key_of(item: &Item) -> String {
    let pk = item
        .get(PK)
        .and_then(|v| v.as_s().ok())
        .map_or("?", |s| s.as_str());
    match item.get(SK).and_then(|v| v.as_s().ok()) {
        Some(sk) => format!("{pk}/{sk}"),
        None => pk.to_owned(),
    }
}

fn corrupt(item: &Item, detail: impl Into<String>) -> LedgerError {
    LedgerError::CorruptItem {
        key: key_of(item),
        detail: detail.into(),
    }
}

pub(crate) fn get_s<'a>(item: &'a Item, name: &str) -> Result<&'a str, LedgerError> {
    opt_s(item, name)?.ok_or_else(|| corrupt(item, format!("missing string attribute `{name}`")))
}

pub(crate) fn opt_s<'a>(item: &'a Item, name: &str) -> Result<Option<&'a str>, LedgerError> {
    match item.get(name) {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(AttributeValue::S(s)) => Ok(Some(s)),
        Some(_) => Err(corrupt(item, format!("attribute `{name}` is not a string"))),
    }
}

pub(crate) fn get_n(item: &Item, name: &str) -> Result<Decimal, LedgerError> {
    opt_n(item, name)?.ok_or_else(|| corrupt(item, format!("missing number attribute `{name}`")))
}

pub(crate) fn opt_n(item: &Item, name: &str) -> Result<Option<Decimal>, LedgerError> {
    match item.get(name) {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(AttributeValue::N(text)) => parse_dynamo_number(text)
            .map(Some)
            .map_err(|e| corrupt(item, format!("attribute `{name}` = {text:?}: {e}"))),
        Some(_) => Err(corrupt(item, format!("attribute `{name}` is not a number"))),
    }
}

fn strip<'a>(item: &Item, value: &'a str, prefix: &str) -> Result<&'a str, LedgerError> {
    value.strip_prefix(prefix).ok_or_else(|| {
        corrupt(
            item,
            format!("key {value:?} does not start with {prefix:?}"),
        )
    })
}

impl Account {
    /// Decodes an account META item.
    pub fn from_item(item: &Item) -> Result<Self, LedgerError> {
        let id = strip(item, get_s(item, PK)?, "ACCT#")?;
        let account_id =
            AccountNumber::parse(id).map_err(|e| corrupt(item, format!("account id: {e}")))?;
        let status = match get_s(item, "status")? {
            "OPEN" => AccountStatus::Open,
            "CLOSED" => AccountStatus::Closed,
            other => return Err(corrupt(item, format!("unknown status {other:?}"))),
        };
        let version = get_n(item, "version")?;
        let version = u64::try_from(version)
            .ok()
            .filter(|_| version.fract().is_zero())
            .ok_or_else(|| corrupt(item, format!("bad version {version}")))?;
        Ok(Account {
            account_id,
            balance: get_n(item, "balance")?,
            currency: get_s(item, "currency")?.to_owned(),
            status,
            account_type: get_s(item, "type")?.to_owned(),
            created_at: get_s(item, "created_at")?.to_owned(),
            version,
            owner: opt_s(item, OWNER)?.map(str::to_owned),
        })
    }
}

impl TransactionResult {
    /// Decodes a `TXN#` item.
    pub fn from_item(item: &Item) -> Result<Self, LedgerError> {
        let id = strip(item, get_s(item, PK)?, "TXN#")?;
        let transaction_id =
            Uuid::try_parse(id).map_err(|e| corrupt(item, format!("transaction id: {e}")))?;
        let status_text = get_s(item, "status")?;
        let status = ResultStatus::parse(status_text)
            .ok_or_else(|| corrupt(item, format!("unknown status {status_text:?}")))?;
        let accounts = match item.get("accounts") {
            None => Vec::new(),
            Some(AttributeValue::L(list)) => list
                .iter()
                .map(|v| {
                    v.as_s()
                        .cloned()
                        .map_err(|_| corrupt(item, "`accounts` holds a non-string"))
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(corrupt(item, "`accounts` is not a list")),
        };
        let owned = |name| opt_s(item, name).map(|o| o.map(str::to_owned));
        Ok(TransactionResult {
            transaction_id,
            status,
            reason: owned("reason")?,
            reason_code: owned("reason_code")?,
            idempotency_key: owned("idempotency_key")?,
            kind: owned("type")?,
            amount: opt_n(item, "amount")?,
            currency: owned("currency")?,
            accounts,
            processed_at: owned("processed_at")?,
            balance: opt_n(item, "balance")?,
            principal: owned("principal")?,
            conversion: match opt_s(item, "fx_rate")? {
                None => None,
                Some(rate) => Some(ConversionResult {
                    target_currency: get_s(item, "target_currency")?.to_owned(),
                    target_amount: get_n(item, "target_amount")?,
                    rate: rate.to_owned(),
                    rate_id: get_s(item, "fx_rate_id")?.to_owned(),
                    rate_source: get_s(item, "fx_rate_source")?.to_owned(),
                    rounding: get_s(item, "fx_rounding")?.to_owned(),
                    residue: get_n(item, "fx_residue")?,
                }),
            },
        })
    }
}

impl LedgerEntry {
    /// Decodes an `ENTRY#` item.
    pub fn from_item(item: &Item) -> Result<Self, LedgerError> {
        let id = strip(item, get_s(item, PK)?, "ACCT#")?;
        let account_id =
            AccountNumber::parse(id).map_err(|e| corrupt(item, format!("account id: {e}")))?;
        let direction = match get_s(item, "direction")? {
            "DEBIT" => Direction::Debit,
            "CREDIT" => Direction::Credit,
            other => return Err(corrupt(item, format!("unknown direction {other:?}"))),
        };
        let tid = get_s(item, "transaction_id")?;
        Ok(LedgerEntry {
            account_id,
            sk: get_s(item, SK)?.to_owned(),
            transaction_id: Uuid::try_parse(tid)
                .map_err(|e| corrupt(item, format!("transaction id: {e}")))?,
            kind: get_s(item, "type")?.to_owned(),
            direction,
            amount: get_n(item, "amount")?,
            currency: get_s(item, "currency")?.to_owned(),
            counterparty: opt_s(item, "counterparty")?.map(str::to_owned),
            posted_at: opt_s(item, "posted_at")?.map(str::to_owned),
        })
    }
}
