//! The loosely-typed request as it arrives, and the strict path from bytes to [`Transaction`].

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use super::amount::{DecimalError, Grammar, parse_decimal};
use super::{
    AccountNumber, Currency, CurrencyError, IdempotencyKey, MalformedError, ParseError, Subject,
    Transaction, TransactionType, ValidationError, check_amount,
};

/// The exact text of an amount as sent: a JSON number's literal text or a decimal string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmountText(String);

impl AmountText {
    /// Wraps a text without checking it (checked by [`AmountText::to_decimal`]).
    pub fn new(text: impl Into<String>) -> Self {
        AmountText(text.into())
    }

    /// The exact text of a decimal (`1000.00` stays `1000.00`).
    pub fn from_decimal(d: Decimal) -> Self {
        AmountText(d.to_string())
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Parses the text exactly. A leading minus sign is reported as
    /// [`ValidationError::AmountNotPositive`], other problems as
    /// [`ValidationError::InvalidAmount`].
    pub fn to_decimal(&self) -> Result<Decimal, ValidationError> {
        match parse_decimal(&self.0, Grammar::Json) {
            Ok((_, true)) => Err(ValidationError::AmountNotPositive),
            Ok((d, false)) => Ok(d),
            Err(reason) => {
                // "-abc" is a syntax error; "-1e999" is negative before it is out of range.
                if self.0.starts_with('-') && reason != DecimalError::Syntax {
                    Err(ValidationError::AmountNotPositive)
                } else {
                    Err(ValidationError::InvalidAmount { reason })
                }
            }
        }
    }
}

impl Serialize for AmountText {
    /// As a JSON number with the exact text when the text is a valid JSON number (this needs
    /// serde_json's `arbitrary_precision`), otherwise as a string.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match serde_json::Number::from_str(&self.0) {
            Ok(n) => n.serialize(serializer),
            Err(_) => serializer.serialize_str(&self.0),
        }
    }
}

impl<'de> Deserialize<'de> for AmountText {
    /// Accepts a JSON number (its literal text is kept, never converted to `f64`) or a string.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Value::deserialize(deserializer)? {
            Value::Number(n) => Ok(AmountText(n.as_str().to_owned())),
            Value::String(s) => Ok(AmountText(s)),
            _ => Err(de::Error::custom(
                "`amount` must be a JSON number or a decimal string",
            )),
        }
    }
}

/// A transaction request before validation, as deserialized from JSON. `null` fields are
/// `None`. [`TransactionRequest::validate`] turns it into a [`Transaction`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransactionRequest {
    /// `transaction_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<String>,
    /// `type`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// `source_account`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_account: Option<String>,
    /// `target_account`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_account: Option<String>,
    /// `amount`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<AmountText>,
    /// `currency`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// `timestamp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    /// `idempotency_key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// `target_currency`: the currency of the credit, for a conversion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_currency: Option<String>,
    /// `principal`: who the message acts for (set by the ingest API, never by its clients).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
}

/// The fields of the wire format.
pub const FIELDS: [&str; 10] = [
    "transaction_id",
    "type",
    "source_account",
    "target_account",
    "amount",
    "currency",
    "timestamp",
    "idempotency_key",
    "principal",
    "target_currency",
];

/// Parses a transaction id: hyphenated UUID (any case), not nil.
pub(crate) fn parse_transaction_id(s: &str) -> Option<Uuid> {
    if s.len() != 36 {
        return None;
    }
    Uuid::try_parse(s).ok().filter(|u| !u.is_nil())
}

impl TransactionRequest {
    /// Validates every field and the type-specific rules, first error wins.
    pub fn validate(&self) -> Result<Transaction, ValidationError> {
        let missing = |field| ValidationError::MissingField { field, kind: None };

        let id_text = self
            .transaction_id
            .as_deref()
            .ok_or(missing("transaction_id"))?;
        let transaction_id =
            parse_transaction_id(id_text).ok_or_else(|| ValidationError::InvalidTransactionId {
                value: id_text.to_owned(),
            })?;

        let kind: TransactionType = self.kind.as_deref().ok_or(missing("type"))?.parse()?;

        let account = |field: &'static str, value: &Option<String>| {
            value
                .as_deref()
                .map(|s| {
                    AccountNumber::parse(s)
                        .map_err(|reason| ValidationError::InvalidAccountNumber { field, reason })
                })
                .transpose()
        };
        let source_account = account("source_account", &self.source_account)?;
        let target_account = account("target_account", &self.target_account)?;

        let parse_currency = |text: &str| {
            Currency::from_code(text).map_err(|e| match e {
                CurrencyError::Malformed => ValidationError::InvalidCurrency {
                    value: text.to_owned(),
                },
                CurrencyError::Unknown => ValidationError::UnknownCurrency {
                    value: text.to_owned(),
                },
            })
        };
        let currency = parse_currency(self.currency.as_deref().ok_or(missing("currency"))?)?;
        let target_currency = self
            .target_currency
            .as_deref()
            .map(parse_currency)
            .transpose()?;

        let amount = match (&self.amount, kind) {
            (None, _) => None,
            (Some(_), TransactionType::BalanceCheck) => {
                return Err(ValidationError::FieldNotAllowed {
                    field: "amount",
                    kind,
                });
            }
            (Some(text), _) => Some(check_amount(text.to_decimal()?, currency)?),
        };

        let ts_text = self.timestamp.as_deref().ok_or(missing("timestamp"))?;
        let invalid_ts = || ValidationError::InvalidTimestamp {
            value: ts_text.to_owned(),
        };
        // The `time` crate also takes a space between date and time; RFC 3339 section 5.6
        // wants `T` (or `t`).
        if !matches!(ts_text.as_bytes().get(10), Some(b'T' | b't')) {
            return Err(invalid_ts());
        }
        let timestamp = OffsetDateTime::parse(ts_text, &Rfc3339).map_err(|_| invalid_ts())?;
        // Reported with the text as sent (Transaction::validate checks it again).
        super::check_timestamp(timestamp).map_err(|()| invalid_ts())?;

        let key_text = self
            .idempotency_key
            .as_deref()
            .ok_or(missing("idempotency_key"))?;
        let idempotency_key = IdempotencyKey::parse(key_text)
            .map_err(|reason| ValidationError::InvalidIdempotencyKey { reason })?;

        let principal = self
            .principal
            .as_deref()
            .map(Subject::parse)
            .transpose()
            .map_err(|reason| ValidationError::InvalidPrincipal { reason })?;

        let tx = Transaction {
            principal,
            target_currency,
            transaction_id,
            kind,
            source_account,
            target_account,
            amount,
            currency,
            timestamp,
            idempotency_key,
        };
        tx.validate()?;
        Ok(tx)
    }

    /// Builds a request from the members of a JSON object, rejecting unknown and duplicate
    /// fields and fields of the wrong JSON type.
    fn from_members(members: Vec<(String, Value)>) -> Result<Self, ValidationError> {
        Self::from_fields(members, &FIELDS)
    }

    /// Builds a request from the members of a JSON object, accepting only the fields in
    /// `allowed` (a subset of [`FIELDS`]: the HTTP body leaves out the fields the server sets).
    /// The one place that maps JSON members onto a request, for queue messages and API bodies.
    pub fn from_fields(
        members: Vec<(String, Value)>,
        allowed: &[&'static str],
    ) -> Result<Self, ValidationError> {
        let mut seen = vec![false; allowed.len()];
        let mut req = TransactionRequest::default();
        for (name, value) in members {
            let Some((&field, already)) = allowed
                .iter()
                .zip(seen.iter_mut())
                .find(|(f, _)| **f == name)
            else {
                return Err(ValidationError::UnknownField { field: name });
            };
            if std::mem::replace(already, true) {
                return Err(ValidationError::DuplicateField { field: name });
            }
            if field == "amount" {
                req.amount = match value {
                    Value::Null => None,
                    Value::Number(n) => Some(AmountText(n.as_str().to_owned())),
                    Value::String(s) => Some(AmountText(s)),
                    _ => {
                        return Err(ValidationError::WrongType {
                            field,
                            expected: "a JSON number or a decimal string",
                        });
                    }
                };
                continue;
            }
            let text = match value {
                Value::Null => None,
                Value::String(s) => Some(s),
                _ => {
                    return Err(ValidationError::WrongType {
                        field,
                        expected: "a string",
                    });
                }
            };
            let slot = match field {
                "transaction_id" => &mut req.transaction_id,
                "type" => &mut req.kind,
                "source_account" => &mut req.source_account,
                "target_account" => &mut req.target_account,
                "currency" => &mut req.currency,
                "timestamp" => &mut req.timestamp,
                "principal" => &mut req.principal,
                "target_currency" => &mut req.target_currency,
                "idempotency_key" => &mut req.idempotency_key,
                // `allowed` names a field the request does not have: refuse it like any other.
                _ => return Err(ValidationError::UnknownField { field: name }),
            };
            *slot = text;
        }
        Ok(req)
    }
}

/// Why a request body is not a transaction request.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// Not JSON, or JSON but not an object.
    #[error("the body must be a JSON object: {0}")]
    NotAnObject(#[source] serde_json::Error),
    /// An object with an unknown, duplicate or mistyped field.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
}

/// Parses a JSON object body into a request, accepting only the fields in `allowed` (see
/// [`TransactionRequest::from_fields`]); nothing is validated beyond the JSON types.
pub fn parse_request_body(
    body: &[u8],
    allowed: &[&'static str],
) -> Result<TransactionRequest, BodyError> {
    let JsonObject(members) = serde_json::from_slice(body).map_err(BodyError::NotAnObject)?;
    Ok(TransactionRequest::from_fields(members, allowed)?)
}

/// A JSON object's members in order, duplicates kept (serde_json's map would keep the last).
struct JsonObject(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for JsonObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = JsonObject;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<JsonObject, A::Error> {
                let mut members = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Value>()? {
                    members.push((k, v));
                }
                Ok(JsonObject(members))
            }
        }
        deserializer.deserialize_map(V)
    }
}

/// A top-level JSON value: an object's members in order, or something else.
enum TopLevel {
    Object(Vec<(String, Value)>),
    Other,
}

impl<'de> Deserialize<'de> for TopLevel {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = TopLevel;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TopLevel, A::Error> {
                let mut members = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Value>()? {
                    members.push((k, v));
                }
                Ok(TopLevel::Object(members))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<TopLevel, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(TopLevel::Other)
            }

            fn visit_bool<E: de::Error>(self, _: bool) -> Result<TopLevel, E> {
                Ok(TopLevel::Other)
            }

            fn visit_i64<E: de::Error>(self, _: i64) -> Result<TopLevel, E> {
                Ok(TopLevel::Other)
            }

            fn visit_u64<E: de::Error>(self, _: u64) -> Result<TopLevel, E> {
                Ok(TopLevel::Other)
            }

            fn visit_f64<E: de::Error>(self, _: f64) -> Result<TopLevel, E> {
                Ok(TopLevel::Other)
            }

            fn visit_str<E: de::Error>(self, _: &str) -> Result<TopLevel, E> {
                Ok(TopLevel::Other)
            }

            fn visit_unit<E: de::Error>(self) -> Result<TopLevel, E> {
                Ok(TopLevel::Other)
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// Parses and validates one raw message.
///
/// - Not JSON, not an object, or no usable `transaction_id` → [`ParseError::Malformed`].
/// - Otherwise any problem → [`ParseError::Invalid`] carrying the transaction id and the
///   idempotency key (when the message has a valid one), so a REJECTED result can be recorded.
pub fn parse_transaction(bytes: &[u8]) -> Result<Transaction, ParseError> {
    let members =
        match serde_json::from_slice::<TopLevel>(bytes).map_err(MalformedError::NotJson)? {
            TopLevel::Object(members) => members,
            TopLevel::Other => return Err(MalformedError::NotAnObject.into()),
        };

    let mut ids = members.iter().filter(|(k, _)| k == "transaction_id");
    let transaction_id = match (ids.next(), ids.next()) {
        (None, _) | (Some((_, Value::Null)), None) => {
            return Err(MalformedError::MissingTransactionId.into());
        }
        (Some(_), Some(_)) => return Err(MalformedError::DuplicateTransactionId.into()),
        (Some((_, Value::String(s))), None) => parse_transaction_id(s)
            .ok_or_else(|| MalformedError::InvalidTransactionId(s.clone()))?,
        (Some((_, other)), None) => {
            return Err(MalformedError::InvalidTransactionId(other.to_string()).into());
        }
    };

    let mut keys = members.iter().filter(|(k, _)| k == "idempotency_key");
    let idempotency_key = match (keys.next(), keys.next()) {
        (Some((_, Value::String(s))), None) => IdempotencyKey::parse(s).ok(),
        _ => None,
    };

    TransactionRequest::from_members(members)
        .and_then(|req| req.validate())
        .map_err(|error| ParseError::Invalid {
            transaction_id,
            idempotency_key,
            error,
        })
}
