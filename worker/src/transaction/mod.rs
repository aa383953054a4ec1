//! Transaction messages: strict parsing, validation and serialization.
//!
//! Wire format (JSON, one object per SQS message or HTTP request):
//!
//! ```json
//! {"transaction_id":"uuid","type":"TRANSFER","source_account":"1234567890",
//!  "target_account":"0987654321","amount":1000.00,"currency":"USD",
//!  "timestamp":"2024-01-15T10:30:00Z","idempotency_key":"unique-key"}
//! ```
//!
//! Rules:
//! - Unknown and duplicate fields are rejected; `null` counts as absent.
//! - `transaction_id`: hyphenated, non-nil UUID. Without one the message is
//!   [`ParseError::Malformed`]; with one, any other problem is [`ParseError::Invalid`].
//! - `amount`: a JSON number or a decimal string, read exactly (never through `f64`). Exponent
//!   forms are accepted when exact (`1e2` = 100, `1.5e1` = 15, `1e-2` = 0.01). It must be
//!   positive, below 10^18, and have at most as many decimal places *as written* (after applying
//!   the exponent) as the currency's minor units: `"10.000"` USD and `"100.0"` JPY are rejected.
//!   The validated amount is rescaled to exactly the currency's minor units (`1000` USD becomes
//!   `1000.00`).
//! - `BALANCE_CHECK` carries **no amount**: the field must be absent (or `null`); even `0` is
//!   rejected with `field_not_allowed`. It names exactly one account, in either field.
//! - `TRANSFER`/`PAYMENT` need distinct source and target; `DEPOSIT` only a target;
//!   `WITHDRAWAL` only a source.
//! - `timestamp`: RFC 3339, year 0001–9999 once converted to UTC.
//! - `target_currency` (optional, TRANSFER and PAYMENT only): the currency the target account is
//!   credited in. When it differs from `currency` the movement is a *conversion*: `amount` in
//!   `currency` is debited from the source and the target is credited `amount × rate` in
//!   `target_currency`, at the rate valid when the ledger posts it (see [`crate::fx`]). Without
//!   it both accounts must hold `currency` (a transfer into another currency is declined with
//!   `CURRENCY_MISMATCH`, never converted unasked).
//! - `principal` (optional): the authenticated caller the message acts for, stamped by the
//!   ingest API (1-255 characters, no control characters). The ledger then debits only
//!   accounts that principal owns. Trusted producers leave it out.
//!
//! [`parse_transaction`] reads raw bytes; [`TransactionRequest::validate`] and
//! [`Transaction::validate`] apply the same rules to an already-deserialized request (the HTTP
//! ingest API).

mod amount;
mod currency;
mod error;
mod ids;
mod request;
#[cfg(test)]
mod tests;

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::ser::{Error as _, SerializeStruct};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

pub(crate) use amount::parse_dynamo_number;
pub use amount::{DecimalError, MAX_AMOUNT_INTEGER_DIGITS};
pub use currency::{Currency, CurrencyError, ISO_4217};
pub use error::{MalformedError, ParseError, ValidationError};
pub use ids::{
    AccountNumber, AccountNumberError, IdempotencyKey, IdempotencyKeyError, Subject, SubjectError,
};
pub use request::{
    AmountText, BodyError, TransactionRequest, parse_request_body, parse_transaction,
};

/// The kind of a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransactionType {
    /// Move money between two accounts.
    Transfer,
    /// Pay from one account to another (a merchant's); same ledger effect as a transfer.
    Payment,
    /// Money arriving from outside: credit the target.
    Deposit,
    /// Money leaving to the outside: debit the source.
    Withdrawal,
    /// Read one account's balance.
    BalanceCheck,
}

impl TransactionType {
    /// All types.
    pub const ALL: [TransactionType; 5] = [
        TransactionType::Transfer,
        TransactionType::Payment,
        TransactionType::Deposit,
        TransactionType::Withdrawal,
        TransactionType::BalanceCheck,
    ];

    /// The wire name, e.g. `"BALANCE_CHECK"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            TransactionType::Transfer => "TRANSFER",
            TransactionType::Payment => "PAYMENT",
            TransactionType::Deposit => "DEPOSIT",
            TransactionType::Withdrawal => "WITHDRAWAL",
            TransactionType::BalanceCheck => "BALANCE_CHECK",
        }
    }
}

impl fmt::Display for TransactionType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TransactionType {
    type Err = ValidationError;

    /// Exact, uppercase wire names only.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TransactionType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| ValidationError::UnknownTransactionType {
                value: s.to_owned(),
            })
    }
}

/// A validated transaction.
///
/// Fields are public so that callers can build one directly; [`Transaction::validate`] re-checks
/// every rule and the ledger calls it before writing anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    /// Unique id of this transaction.
    pub transaction_id: Uuid,
    /// What to do.
    pub kind: TransactionType,
    /// Account debited (TRANSFER, PAYMENT, WITHDRAWAL) or inspected (BALANCE_CHECK).
    pub source_account: Option<AccountNumber>,
    /// Account credited (TRANSFER, PAYMENT, DEPOSIT) or inspected (BALANCE_CHECK).
    pub target_account: Option<AccountNumber>,
    /// Positive amount with exactly the currency's minor units; `None` for BALANCE_CHECK.
    pub amount: Option<Decimal>,
    /// Currency of the amount (and of the accounts involved).
    pub currency: Currency,
    /// When the client issued the transaction.
    pub timestamp: OffsetDateTime,
    /// Client-chosen key: a second message with the same key changes nothing.
    pub idempotency_key: IdempotencyKey,
    /// The currency the target is credited in, when the sender asks for a conversion
    /// (TRANSFER, PAYMENT); `None` (or `Some(currency)`) is a same-currency movement.
    pub target_currency: Option<Currency>,
    /// Who the message acts for (stamped by the ingest API from the caller's token). When
    /// present, the ledger debits (and balance-checks) an account only if its owner is this
    /// principal; `None` is a trusted producer (seed, load generator, batch jobs).
    pub principal: Option<Subject>,
}

impl Transaction {
    /// Checks the type-specific and amount rules (see the module documentation).
    pub fn validate(&self) -> Result<(), ValidationError> {
        use TransactionType as T;
        let kind = self.kind;
        let missing = |field| ValidationError::MissingField {
            field,
            kind: Some(kind),
        };
        let not_allowed = |field| ValidationError::FieldNotAllowed { field, kind };
        match kind {
            T::Transfer | T::Payment => {
                let source = self
                    .source_account
                    .as_ref()
                    .ok_or(missing("source_account"))?;
                let target = self
                    .target_account
                    .as_ref()
                    .ok_or(missing("target_account"))?;
                if source == target {
                    return Err(ValidationError::SameAccount);
                }
            }
            T::Deposit => {
                if self.source_account.is_some() {
                    return Err(not_allowed("source_account"));
                }
                if self.target_account.is_none() {
                    return Err(missing("target_account"));
                }
            }
            T::Withdrawal => {
                if self.source_account.is_none() {
                    return Err(missing("source_account"));
                }
                if self.target_account.is_some() {
                    return Err(not_allowed("target_account"));
                }
            }
            T::BalanceCheck => match (&self.source_account, &self.target_account) {
                (None, None) => return Err(ValidationError::MissingAccount),
                (Some(_), Some(_)) => return Err(ValidationError::AmbiguousAccount),
                _ => {}
            },
        }
        if self.target_currency.is_some() && !matches!(kind, T::Transfer | T::Payment) {
            return Err(not_allowed("target_currency"));
        }
        match (kind, self.amount) {
            (T::BalanceCheck, Some(_)) => Err(not_allowed("amount")),
            (T::BalanceCheck, None) => Ok(()),
            (_, None) => Err(missing("amount")),
            (_, Some(amount)) => check_amount(amount, self.currency).map(|_| ()),
        }?;
        check_timestamp(self.timestamp).map_err(|()| ValidationError::InvalidTimestamp {
            value: self
                .timestamp
                .format(&Rfc3339)
                .unwrap_or_else(|_| self.timestamp.to_string()),
        })
    }

    /// The account whose balance goes down, if any.
    pub fn debit_account(&self) -> Option<&AccountNumber> {
        match self.kind {
            TransactionType::Transfer | TransactionType::Payment | TransactionType::Withdrawal => {
                self.source_account.as_ref()
            }
            TransactionType::Deposit | TransactionType::BalanceCheck => None,
        }
    }

    /// The account whose balance goes up, if any.
    pub fn credit_account(&self) -> Option<&AccountNumber> {
        match self.kind {
            TransactionType::Transfer | TransactionType::Payment | TransactionType::Deposit => {
                self.target_account.as_ref()
            }
            TransactionType::Withdrawal | TransactionType::BalanceCheck => None,
        }
    }

    /// The currency the credited account is credited in.
    pub fn credit_currency(&self) -> Currency {
        self.target_currency.unwrap_or(self.currency)
    }

    /// The currency to convert into, when this is a conversion (a `target_currency` other
    /// than `currency`).
    pub fn conversion(&self) -> Option<Currency> {
        self.target_currency.filter(|c| *c != self.currency)
    }

    /// The single account a BALANCE_CHECK reads.
    pub fn balance_account(&self) -> Option<&AccountNumber> {
        match self.kind {
            TransactionType::BalanceCheck => self
                .source_account
                .as_ref()
                .or(self.target_account.as_ref()),
            _ => None,
        }
    }

    /// The accounts named by the transaction, source first.
    pub fn accounts(&self) -> impl Iterator<Item = &AccountNumber> {
        self.source_account.iter().chain(self.target_account.iter())
    }

    /// Serializes to the wire format (amount as a JSON number with its exact decimal text).
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }
}

/// Checks an amount against the currency and rescales it to exactly the currency's minor units.
pub fn check_amount(amount: Decimal, currency: Currency) -> Result<Decimal, ValidationError> {
    if amount <= Decimal::ZERO {
        return Err(ValidationError::AmountNotPositive);
    }
    if amount::integer_digits(amount) > MAX_AMOUNT_INTEGER_DIGITS {
        return Err(ValidationError::AmountOutOfRange);
    }
    let max = currency.minor_units();
    if amount.scale() > max {
        return Err(ValidationError::TooManyDecimalPlaces {
            currency,
            max,
            got: amount.scale(),
        });
    }
    let mut rescaled = amount;
    rescaled.rescale(max);
    Ok(rescaled)
}

/// `Ok` when the timestamp, converted to UTC, falls in years 0001-9999.
///
/// The conversion is checked: a valid RFC 3339 text such as `9999-12-31T23:59:59-23:59` is
/// past the end of year 9999 in UTC, and `OffsetDateTime::to_offset` would panic on it.
pub(crate) fn check_timestamp(ts: OffsetDateTime) -> Result<(), ()> {
    match ts.checked_to_offset(time::UtcOffset::UTC) {
        Some(utc) if (1..=9999).contains(&utc.year()) => Ok(()),
        _ => Err(()),
    }
}

impl Serialize for Transaction {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let len = 6
            + usize::from(self.principal.is_some())
            + usize::from(self.target_currency.is_some())
            + usize::from(self.source_account.is_some())
            + usize::from(self.target_account.is_some())
            + usize::from(self.amount.is_some());
        let mut s = serializer.serialize_struct("Transaction", len)?;
        s.serialize_field(
            "transaction_id",
            &self.transaction_id.hyphenated().to_string(),
        )?;
        s.serialize_field("type", self.kind.as_str())?;
        if let Some(source) = &self.source_account {
            s.serialize_field("source_account", source)?;
        }
        if let Some(target) = &self.target_account {
            s.serialize_field("target_account", target)?;
        }
        if let Some(amount) = self.amount {
            s.serialize_field("amount", &AmountText::from_decimal(amount))?;
        }
        s.serialize_field("currency", &self.currency)?;
        if let Some(target_currency) = &self.target_currency {
            s.serialize_field("target_currency", target_currency)?;
        }
        let ts = self.timestamp.format(&Rfc3339).map_err(S::Error::custom)?;
        s.serialize_field("timestamp", &ts)?;
        s.serialize_field("idempotency_key", &self.idempotency_key)?;
        if let Some(principal) = &self.principal {
            s.serialize_field("principal", principal)?;
        }
        s.end()
    }
}

impl<'de> Deserialize<'de> for Transaction {
    /// Deserializes a [`TransactionRequest`] and validates it.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        TransactionRequest::deserialize(deserializer)?
            .validate()
            .map_err(serde::de::Error::custom)
    }
}
