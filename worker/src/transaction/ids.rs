//! Account numbers and idempotency keys.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A bank account number: 10 to 12 ASCII digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountNumber(String);

/// Why a string is not an [`AccountNumber`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountNumberError {
    /// Wrong length (in characters).
    #[error("must be 10 to 12 digits long, got {0} characters")]
    Length(usize),
    /// Contains something other than ASCII digits.
    #[error("must contain only the digits 0-9")]
    NotDigits,
}

impl AccountNumber {
    /// Shortest valid account number.
    pub const MIN_LEN: usize = 10;
    /// Longest valid account number.
    pub const MAX_LEN: usize = 12;

    /// Validates `s` as an account number.
    pub fn parse(s: &str) -> Result<Self, AccountNumberError> {
        if !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(AccountNumberError::NotDigits);
        }
        if !(Self::MIN_LEN..=Self::MAX_LEN).contains(&s.len()) {
            return Err(AccountNumberError::Length(s.chars().count()));
        }
        Ok(AccountNumber(s.to_owned()))
    }

    /// The digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccountNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for AccountNumber {
    type Err = AccountNumberError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AccountNumber::parse(s)
    }
}

impl Serialize for AccountNumber {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for AccountNumber {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        AccountNumber::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A client-chosen idempotency key: 1 to 128 printable ASCII characters (0x20–0x7E).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IdempotencyKey(String);

/// Why a string is not an [`IdempotencyKey`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdempotencyKeyError {
    /// The empty string.
    #[error("must not be empty")]
    Empty,
    /// Longer than [`IdempotencyKey::MAX_LEN`].
    #[error("must be at most 128 characters, got {0}")]
    TooLong(usize),
    /// Contains a control character or non-ASCII character.
    #[error("must contain only printable ASCII characters (space to '~')")]
    NotPrintable,
}

impl IdempotencyKey {
    /// Longest accepted key.
    pub const MAX_LEN: usize = 128;

    /// Validates `s` as an idempotency key.
    pub fn parse(s: &str) -> Result<Self, IdempotencyKeyError> {
        if s.is_empty() {
            return Err(IdempotencyKeyError::Empty);
        }
        if !s.bytes().all(|b| (0x20..=0x7E).contains(&b)) {
            return Err(IdempotencyKeyError::NotPrintable);
        }
        if s.len() > Self::MAX_LEN {
            return Err(IdempotencyKeyError::TooLong(s.len()));
        }
        Ok(IdempotencyKey(s.to_owned()))
    }

    /// The key.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for IdempotencyKey {
    type Err = IdempotencyKeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        IdempotencyKey::parse(s)
    }
}

impl Serialize for IdempotencyKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for IdempotencyKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        IdempotencyKey::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// The authenticated caller a message acts for (the JWT `sub` of the API client that submitted
/// it, or the owner given to `seed-accounts`): 1 to 255 characters, no control characters.
///
/// Stored as the owner of an account and stamped on messages as `principal`; the ledger only
/// debits an account for a stamped message when its owner equals the principal.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Subject(String);

/// Why a string is not a [`Subject`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubjectError {
    /// The empty string.
    #[error("must not be empty")]
    Empty,
    /// Longer than [`Subject::MAX_LEN`] bytes.
    #[error("must be at most 255 bytes, got {0}")]
    TooLong(usize),
    /// Contains a control character.
    #[error("must not contain control characters")]
    Control,
}

impl Subject {
    /// Longest accepted subject in bytes (DynamoDB attribute values and log lines stay small).
    pub const MAX_LEN: usize = 255;

    /// Validates `s` as a subject.
    pub fn parse(s: &str) -> Result<Self, SubjectError> {
        if s.is_empty() {
            return Err(SubjectError::Empty);
        }
        if s.len() > Self::MAX_LEN {
            return Err(SubjectError::TooLong(s.len()));
        }
        if s.chars().any(char::is_control) {
            return Err(SubjectError::Control);
        }
        Ok(Subject(s.to_owned()))
    }

    /// The subject.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Subject {
    type Err = SubjectError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Subject::parse(s)
    }
}

impl Serialize for Subject {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Subject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Subject::parse(&s).map_err(serde::de::Error::custom)
    }
}
