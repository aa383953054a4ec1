//! Validation and parse errors with stable machine-readable codes.

use uuid::Uuid;

use super::TransactionType;
use super::amount::DecimalError;
use super::currency::Currency;
use super::ids::{AccountNumberError, IdempotencyKey, IdempotencyKeyError, SubjectError};

/// Why a (parseable) transaction request is not acceptable.
///
/// Every variant names the offending field ([`ValidationError::field`]), carries a stable
/// machine code ([`ValidationError::code`]) and displays as a human message with a hint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    /// A required field is absent (or `null`).
    #[error("missing required field `{field}`{}", required_because(*.kind))]
    MissingField {
        /// The missing field.
        field: &'static str,
        /// The transaction type that requires it, if the requirement is type-specific.
        kind: Option<TransactionType>,
    },
    /// A field that is not part of the message format.
    #[error(
        "unknown field `{field}`; hint: allowed fields are transaction_id, type, source_account, \
         target_account, amount, currency, target_currency, timestamp, idempotency_key (and \
         principal, set by \
         the ingest API)"
    )]
    UnknownField {
        /// The field name as sent.
        field: String,
    },
    /// A field appears more than once in the JSON object.
    #[error("field `{field}` appears more than once; hint: send each field once")]
    DuplicateField {
        /// The repeated field.
        field: String,
    },
    /// A field has the wrong JSON type.
    #[error("field `{field}` must be {expected}")]
    WrongType {
        /// The offending field.
        field: &'static str,
        /// What was expected, e.g. "a string".
        expected: &'static str,
    },
    /// `transaction_id` is not a UUID.
    #[error(
        "`transaction_id` {value:?} is not a UUID; hint: use the hyphenated form, e.g. \
         \"0b9d2c5e-6a7f-4c1e-9a0b-3f2d1c4e5a6b\""
    )]
    InvalidTransactionId {
        /// The value as sent.
        value: String,
    },
    /// `type` is not one of the known transaction types.
    #[error(
        "unknown transaction type {value:?}; hint: use one of TRANSFER, PAYMENT, DEPOSIT, \
         WITHDRAWAL, BALANCE_CHECK (uppercase)"
    )]
    UnknownTransactionType {
        /// The value as sent.
        value: String,
    },
    /// An account number is malformed.
    #[error(
        "`{field}` is not a valid account number: {reason}; hint: send 10 to 12 digits without spaces or dashes"
    )]
    InvalidAccountNumber {
        /// `source_account` or `target_account`.
        field: &'static str,
        /// What is wrong with it.
        reason: AccountNumberError,
    },
    /// Source and target are the same account.
    #[error("`target_account` must differ from `source_account`")]
    SameAccount,
    /// A field that this transaction type must not carry.
    #[error("field `{field}` is not allowed for {kind}{}", not_allowed_hint(.field, *.kind))]
    FieldNotAllowed {
        /// The field.
        field: &'static str,
        /// The transaction type.
        kind: TransactionType,
    },
    /// BALANCE_CHECK names neither account.
    #[error(
        "BALANCE_CHECK needs exactly one account; hint: set `source_account` or `target_account`"
    )]
    MissingAccount,
    /// BALANCE_CHECK names both accounts.
    #[error(
        "BALANCE_CHECK needs exactly one account, got both `source_account` and `target_account`; hint: send only one"
    )]
    AmbiguousAccount,
    /// The amount is not a decimal number.
    #[error(
        "`amount` is not an exact decimal number: {reason}; hint: send a JSON number or a \
         decimal string such as 1000.00 or \"1000.00\""
    )]
    InvalidAmount {
        /// What is wrong with it.
        reason: DecimalError,
    },
    /// The amount is zero or negative.
    #[error(
        "`amount` must be greater than zero; hint: the direction is given by `type`, not by the sign"
    )]
    AmountNotPositive,
    /// The amount has more decimal places than the currency's minor unit.
    #[error(
        "`amount` has {got} decimal places but {currency} allows at most {max}; hint: round to the currency's minor unit"
    )]
    TooManyDecimalPlaces {
        /// The currency.
        currency: Currency,
        /// Its minor units.
        max: u32,
        /// Decimal places as written.
        got: u32,
    },
    /// The amount is too large.
    #[error("`amount` is too large; hint: amounts must be below 10^18")]
    AmountOutOfRange,
    /// `currency` is not three uppercase letters.
    #[error(
        "`currency` {value:?} is not an ISO 4217 code; hint: use three uppercase letters such as \"USD\""
    )]
    InvalidCurrency {
        /// The value as sent.
        value: String,
    },
    /// `currency` is three letters but not an active ISO 4217 code.
    #[error(
        "`currency` {value:?} is not an active ISO 4217 currency; hint: check the code, e.g. \"EUR\", \"JPY\""
    )]
    UnknownCurrency {
        /// The value as sent.
        value: String,
    },
    /// `timestamp` is not RFC 3339.
    #[error(
        "`timestamp` {value:?} is not an RFC 3339 date-time in years 0001-9999 (UTC); hint: e.g. \
         \"2024-01-15T10:30:00Z\""
    )]
    InvalidTimestamp {
        /// The value as sent.
        value: String,
    },
    /// `idempotency_key` is malformed.
    #[error("`idempotency_key` {reason}; hint: 1 to 128 printable ASCII characters")]
    InvalidIdempotencyKey {
        /// What is wrong with it.
        reason: IdempotencyKeyError,
    },
    /// `principal` is malformed.
    #[error(
        "`principal` {reason}; hint: the principal is the caller's token `sub` (1 to 255 \
         characters, no control characters), stamped by the ingest API"
    )]
    InvalidPrincipal {
        /// What is wrong with it.
        reason: SubjectError,
    },
}

fn required_because(kind: Option<TransactionType>) -> String {
    match kind {
        Some(kind) => format!(
            " for {kind}; hint: {}",
            match kind {
                TransactionType::Transfer | TransactionType::Payment =>
                    "TRANSFER and PAYMENT need both `source_account` and `target_account`",
                TransactionType::Deposit => "DEPOSIT needs `target_account` (and no source)",
                TransactionType::Withdrawal => "WITHDRAWAL needs `source_account` (and no target)",
                TransactionType::BalanceCheck => "BALANCE_CHECK needs exactly one account",
            }
        ),
        None => String::from("; hint: see the message format"),
    }
}

fn not_allowed_hint(field: &str, kind: TransactionType) -> &'static str {
    match (field, kind) {
        ("amount", _) => "; hint: BALANCE_CHECK carries no amount, omit the field",
        (_, TransactionType::Deposit) => "; hint: a DEPOSIT credits `target_account` only",
        (_, TransactionType::Withdrawal) => "; hint: a WITHDRAWAL debits `source_account` only",
        _ => "",
    }
}

impl ValidationError {
    /// The field the error is about.
    pub fn field(&self) -> &str {
        match self {
            ValidationError::MissingField { field, .. }
            | ValidationError::WrongType { field, .. }
            | ValidationError::InvalidAccountNumber { field, .. }
            | ValidationError::FieldNotAllowed { field, .. } => field,
            ValidationError::UnknownField { field } | ValidationError::DuplicateField { field } => {
                field
            }
            ValidationError::InvalidTransactionId { .. } => "transaction_id",
            ValidationError::UnknownTransactionType { .. } => "type",
            ValidationError::SameAccount => "target_account",
            ValidationError::MissingAccount | ValidationError::AmbiguousAccount => "source_account",
            ValidationError::InvalidAmount { .. }
            | ValidationError::AmountNotPositive
            | ValidationError::TooManyDecimalPlaces { .. }
            | ValidationError::AmountOutOfRange => "amount",
            ValidationError::InvalidCurrency { .. } | ValidationError::UnknownCurrency { .. } => {
                "currency"
            }
            ValidationError::InvalidTimestamp { .. } => "timestamp",
            ValidationError::InvalidIdempotencyKey { .. } => "idempotency_key",
            ValidationError::InvalidPrincipal { .. } => "principal",
        }
    }

    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ValidationError::MissingField { .. } => "missing_field",
            ValidationError::UnknownField { .. } => "unknown_field",
            ValidationError::DuplicateField { .. } => "duplicate_field",
            ValidationError::WrongType { .. } => "wrong_type",
            ValidationError::InvalidTransactionId { .. } => "invalid_transaction_id",
            ValidationError::UnknownTransactionType { .. } => "unknown_transaction_type",
            ValidationError::InvalidAccountNumber { .. } => "invalid_account_number",
            ValidationError::SameAccount => "same_account",
            ValidationError::FieldNotAllowed { .. } => "field_not_allowed",
            ValidationError::MissingAccount => "missing_account",
            ValidationError::AmbiguousAccount => "ambiguous_account",
            ValidationError::InvalidAmount {
                reason: DecimalError::NotExact,
            } => "amount_not_exact",
            ValidationError::InvalidAmount {
                reason: DecimalError::OutOfRange,
            }
            | ValidationError::AmountOutOfRange => "amount_out_of_range",
            ValidationError::InvalidAmount { .. } => "invalid_amount",
            ValidationError::AmountNotPositive => "amount_not_positive",
            ValidationError::TooManyDecimalPlaces { .. } => "too_many_decimal_places",
            ValidationError::InvalidCurrency { .. } => "invalid_currency",
            ValidationError::UnknownCurrency { .. } => "unknown_currency",
            ValidationError::InvalidTimestamp { .. } => "invalid_timestamp",
            ValidationError::InvalidIdempotencyKey { .. } => "invalid_idempotency_key",
            ValidationError::InvalidPrincipal { .. } => "invalid_principal",
        }
    }
}

/// Why a message could not be identified at all (no usable `transaction_id`): such a message
/// cannot have a result recorded and goes straight to the dead-letter queue.
#[derive(Debug, thiserror::Error)]
pub enum MalformedError {
    /// Not JSON (or trailing garbage, invalid UTF-8, ...).
    #[error("not valid JSON: {0}")]
    NotJson(#[source] serde_json::Error),
    /// JSON, but not an object.
    #[error("the message is JSON but not an object")]
    NotAnObject,
    /// No `transaction_id`.
    #[error("the message has no `transaction_id`")]
    MissingTransactionId,
    /// `transaction_id` is present more than once.
    #[error("`transaction_id` appears more than once")]
    DuplicateTransactionId,
    /// `transaction_id` is not a string holding a hyphenated, non-nil UUID.
    #[error("`transaction_id` is not a UUID: {0}")]
    InvalidTransactionId(String),
}

impl MalformedError {
    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            MalformedError::NotJson(_) => "malformed_json",
            MalformedError::NotAnObject => "not_an_object",
            MalformedError::MissingTransactionId => "missing_transaction_id",
            MalformedError::DuplicateTransactionId => "duplicate_field",
            MalformedError::InvalidTransactionId(_) => "invalid_transaction_id",
        }
    }
}

/// Result of parsing a raw message.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// Cannot be parsed at all: dead-letter it at once.
    #[error("malformed message: {0}")]
    Malformed(#[from] MalformedError),
    /// Identified by its `transaction_id` but invalid: record a REJECTED result.
    #[error("transaction {transaction_id} is invalid: {error}")]
    Invalid {
        /// The message's transaction id.
        transaction_id: Uuid,
        /// The idempotency key, if the message carried a valid one.
        idempotency_key: Option<IdempotencyKey>,
        /// The first validation error found.
        #[source]
        error: ValidationError,
    },
}

impl ParseError {
    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ParseError::Malformed(m) => m.code(),
            ParseError::Invalid { error, .. } => error.code(),
        }
    }
}
