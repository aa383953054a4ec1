//! Request and response bodies (their OpenAPI schemas are generated from these types) and the
//! strict body parsers.

use rust_decimal::Decimal;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::problem::ApiError;
use crate::ledger::{Account, LedgerEntry, TransactionResult};
use crate::transaction::{BodyError, Currency, TransactionRequest, parse_request_body};

/// `POST /v1/transactions` body. The server assigns `transaction_id` and `timestamp`; the
/// `Idempotency-Key` header becomes the message's `idempotency_key`. Unknown fields are
/// rejected.
#[derive(Debug, Clone, ToSchema)]
// Read by ToSchema only (the body has its own strict parser): `additionalProperties: false`.
#[serde(deny_unknown_fields)]
#[schema(example = json!({"type": "TRANSFER", "source_account": "1234567890",
    "target_account": "0987654321", "amount": "100.00", "currency": "USD"}))]
pub struct TransactionBody {
    /// TRANSFER, PAYMENT, DEPOSIT, WITHDRAWAL or BALANCE_CHECK.
    #[schema(
        rename = "type",
        example = "TRANSFER",
        pattern = "^(TRANSFER|PAYMENT|DEPOSIT|WITHDRAWAL|BALANCE_CHECK)$"
    )]
    pub kind: String,
    /// Debited account (TRANSFER, PAYMENT, WITHDRAWAL) or the BALANCE_CHECK account.
    #[schema(example = "1234567890", pattern = "^[0-9]{10,12}$")]
    pub source_account: Option<String>,
    /// Credited account (TRANSFER, PAYMENT, DEPOSIT).
    #[schema(example = "0987654321", pattern = "^[0-9]{10,12}$")]
    pub target_account: Option<String>,
    /// Positive exact decimal: a decimal string (recommended) or a JSON number, at most the
    /// currency's minor units. Absent for BALANCE_CHECK.
    #[schema(schema_with = amount_schema)]
    pub amount: Option<String>,
    /// ISO 4217 code.
    #[schema(example = "USD", pattern = "^[A-Z]{3}$")]
    pub currency: String,
    /// TRANSFER, PAYMENT: the ISO 4217 code the target is credited in, when it differs from
    /// `currency` (a conversion at the rate valid when the worker posts it; see
    /// docs/currency.md). Without it both accounts must hold `currency`.
    #[schema(example = "EUR", pattern = "^[A-Z]{3}$")]
    pub target_currency: Option<String>,
}

/// A decimal string as the amount grammar reads it (sign-less; exponents allowed).
pub const AMOUNT_PATTERN: &str = r"^(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$";

/// `amount` is a decimal string or a JSON number (read exactly either way), or null.
fn amount_schema() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([
            Type::String,
            Type::Number,
            Type::Null,
        ]))
        .pattern(Some(AMOUNT_PATTERN))
        .description(Some(
            "Positive exact decimal: a decimal string (recommended) or a JSON number, at most \
             the currency's minor units. Absent for BALANCE_CHECK.",
        ))
        .examples(["100.00"])
        .build()
}

/// The body fields a client may send.
pub const TRANSACTION_BODY_FIELDS: [&str; 6] = [
    "type",
    "source_account",
    "target_account",
    "amount",
    "currency",
    "target_currency",
];

/// `202 Accepted` answer to `POST /v1/transactions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Accepted {
    /// Server-assigned id (UUID v7).
    pub transaction_id: String,
    /// Always `PENDING`.
    #[schema(example = "PENDING")]
    pub status: String,
    /// Where to poll for the result.
    #[schema(example = "/v1/transactions/01890a5d-ac96-774b-bcce-b302099a8057")]
    pub status_url: String,
}

/// A transaction's status: `PENDING` until the worker records a result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct TransactionStatus {
    /// The transaction.
    pub transaction_id: String,
    /// PENDING, COMPLETED, DECLINED, REJECTED, or HELD: held for review by the risk rules
    /// (an operator approves or rejects it through `/v1/reviews`).
    #[schema(example = "COMPLETED")]
    pub status: String,
    /// Transaction type.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    #[schema(rename = "type")]
    pub kind: Option<String>,
    /// Amount (decimal string).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "100.00")]
    pub amount: Option<String>,
    /// Currency code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// Accounts involved, source first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub accounts: Vec<String>,
    /// Why it was declined or rejected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Machine code of the reason, e.g. `INSUFFICIENT_FUNDS`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason_code: Option<String>,
    /// When the API accepted it (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub submitted_at: Option<String>,
    /// When the worker recorded the result (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub processed_at: Option<String>,
    /// BALANCE_CHECK: the balance read (decimal string).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub balance: Option<String>,
    /// A completed conversion: what the target was credited, at which rate and rounding.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversion: Option<ConversionView>,
}

/// The credited side of a completed conversion (`amount`/`currency` are the debited side).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ConversionView {
    /// The credited currency.
    #[schema(example = "EUR")]
    pub target_currency: String,
    /// The credited amount (decimal string, the target currency's minor units).
    #[schema(example = "92.15")]
    pub target_amount: String,
    /// The exchange rate used: target units per source unit (exact decimal string).
    #[schema(example = "0.9215")]
    pub rate: String,
    /// The rate's id: pair, start of validity and version.
    #[schema(example = "USD/EUR@2026-12-04T00:00:00Z#v1")]
    pub rate_id: String,
    /// Who published the rate.
    pub rate_source: String,
    /// The rounding rule: `HALF_EVEN` (banker's rounding to the target's minor units).
    #[schema(example = "HALF_EVEN")]
    pub rounding: String,
    /// `amount × rate − target_amount` (exact decimal string).
    #[schema(example = "0")]
    pub residue: String,
}

impl TransactionStatus {
    /// Not processed yet.
    pub fn pending(transaction_id: String, submitted_at: Option<String>) -> Self {
        TransactionStatus {
            transaction_id,
            status: "PENDING".into(),
            kind: None,
            amount: None,
            currency: None,
            accounts: Vec::new(),
            reason: None,
            reason_code: None,
            submitted_at,
            processed_at: None,
            balance: None,
            conversion: None,
        }
    }

    /// From a recorded result.
    pub fn from_result(r: TransactionResult) -> Self {
        let ccy = r.currency.clone();
        let fmt = |d: Option<Decimal>| d.map(|d| money(d, ccy.as_deref()));
        TransactionStatus {
            transaction_id: r.transaction_id.hyphenated().to_string(),
            status: r.status.as_str().to_owned(),
            kind: r.kind,
            amount: fmt(r.amount),
            currency: r.currency.clone(),
            accounts: r.accounts,
            reason: r.reason,
            reason_code: r.reason_code,
            submitted_at: None,
            processed_at: r.processed_at,
            balance: fmt(r.balance),
            conversion: r.conversion.map(|c| ConversionView {
                target_amount: money(c.target_amount, Some(&c.target_currency)),
                target_currency: c.target_currency,
                rate: c.rate,
                rate_id: c.rate_id,
                rate_source: c.rate_source,
                rounding: c.rounding,
                residue: c.residue.to_string(),
            }),
        }
    }
}

/// `POST /v1/accounts` body.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"currency": "USD", "type": "checking"}))]
pub struct CreateAccount {
    /// ISO 4217 code.
    #[schema(example = "USD", pattern = "^[A-Z]{3}$")]
    pub currency: String,
    /// Account type: 1-32 lowercase letters, digits or `_`, e.g. `checking`, `savings`.
    #[serde(rename = "type")]
    #[schema(
        rename = "type",
        example = "checking",
        pattern = "^[a-z][a-z0-9_]{0,31}$"
    )]
    pub kind: String,
}

/// An account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AccountView {
    /// Server-assigned account number (10-12 digits).
    #[schema(example = "481516234200", pattern = "^[0-9]{10,12}$")]
    pub account_id: String,
    /// Balance as a decimal string with the currency's minor units.
    #[schema(example = "0.00")]
    pub balance: String,
    /// ISO 4217 code.
    #[schema(pattern = "^[A-Z]{3}$")]
    pub currency: String,
    /// Account type.
    #[serde(rename = "type")]
    #[schema(rename = "type")]
    pub kind: String,
    /// OPEN or CLOSED.
    #[schema(example = "OPEN")]
    pub status: String,
    /// RFC 3339 creation time.
    pub created_at: String,
}

impl From<Account> for AccountView {
    fn from(a: Account) -> Self {
        AccountView {
            account_id: a.account_id.to_string(),
            balance: money(a.balance, Some(&a.currency)),
            currency: a.currency,
            kind: a.account_type,
            status: a.status.as_str().to_owned(),
            created_at: a.created_at,
        }
    }
}

/// `GET /v1/accounts/{id}/transactions` query.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// Earliest posting time, RFC 3339 (default: 30 days before `to`).
    pub from: Option<String>,
    /// Latest posting time, RFC 3339 (default: now).
    pub to: Option<String>,
    /// Page size, 1-1000 (default 50).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// One ledger entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EntryView {
    /// The transaction that caused it.
    pub transaction_id: String,
    /// Transaction type (or OPENING_BALANCE).
    #[serde(rename = "type")]
    #[schema(rename = "type")]
    pub kind: String,
    /// DEBIT or CREDIT.
    pub direction: String,
    /// Positive amount (decimal string).
    #[schema(example = "100.00")]
    pub amount: String,
    /// Currency code.
    pub currency: String,
    /// The other account, or EXTERNAL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counterparty: Option<String>,
    /// Posting time (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub posted_at: Option<String>,
}

impl From<LedgerEntry> for EntryView {
    fn from(e: LedgerEntry) -> Self {
        EntryView {
            transaction_id: e.transaction_id.hyphenated().to_string(),
            kind: e.kind,
            direction: e.direction.as_str().to_owned(),
            amount: money(e.amount, Some(&e.currency)),
            currency: e.currency,
            counterparty: e.counterparty,
            posted_at: e.posted_at,
        }
    }
}

/// A page of an account's ledger history, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HistoryView {
    /// The account.
    #[schema(pattern = "^[0-9]{10,12}$")]
    pub account_id: String,
    /// Entries, oldest first.
    pub entries: Vec<EntryView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// `/readyz` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Readiness {
    /// `ready`.
    pub status: String,
}

/// Renders an amount with exactly the currency's minor units (`0` USD → `"0.00"`).
pub fn money(amount: Decimal, currency: Option<&str>) -> String {
    let mut d = amount;
    if let Some(c) = currency.and_then(|c| Currency::from_code(c).ok())
        && d.scale() <= c.minor_units()
    {
        d.rescale(c.minor_units());
    }
    d.to_string()
}

/// Parses a `POST /v1/transactions` body into a [`TransactionRequest`] without the server's
/// fields, with the worker's codes for unknown, duplicate and mistyped fields (the parser is the
/// worker's own, [`crate::transaction::parse_request_body`]).
pub fn parse_transaction_body(body: &[u8]) -> Result<TransactionRequest, ApiError> {
    parse_request_body(body, &TRANSACTION_BODY_FIELDS).map_err(|error| match error {
        BodyError::NotAnObject(e) => {
            ApiError::MalformedJson(format!("the body must be a JSON object: {e}"))
        }
        BodyError::Invalid(e) => ApiError::from_validation(&e),
    })
}

/// A body type [`parse_strict`] reads: its JSON field names, and which of them are required.
/// (A test per type checks the lists against the type's own `Deserialize`.)
pub trait StrictBody: DeserializeOwned {
    /// Every field a client may send.
    const FIELDS: &'static [&'static str];
    /// The fields a client must send.
    const REQUIRED: &'static [&'static str];
}

impl StrictBody for CreateAccount {
    const FIELDS: &'static [&'static str] = &["currency", "type"];
    const REQUIRED: &'static [&'static str] = &["currency", "type"];
}

/// `POST /v1/payees` body.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"biller_id": "UTILITYCO", "account": "900000000001", "name": "Electricity"}))]
pub struct CreatePayee {
    /// The biller's id: 1-64 letters, digits, `_`, `-` or `.`.
    #[schema(example = "UTILITYCO", pattern = "^[A-Za-z0-9_.-]{1,64}$")]
    pub biller_id: String,
    /// The biller's account (10-12 digits), credited by each payment.
    #[schema(example = "900000000001", pattern = "^[0-9]{10,12}$")]
    pub account: String,
    /// Your name for the payee: 1-100 characters, no control characters.
    #[schema(example = "Electricity")]
    pub name: String,
}

impl StrictBody for CreatePayee {
    const FIELDS: &'static [&'static str] = &["biller_id", "account", "name"];
    const REQUIRED: &'static [&'static str] = &["biller_id", "account", "name"];
}

/// A payee.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PayeeView {
    /// Server-assigned id.
    pub payee_id: String,
    /// The biller's id.
    pub biller_id: String,
    /// The biller's account.
    pub account: String,
    /// Your name for it.
    pub name: String,
    /// RFC 3339 creation time.
    pub created_at: String,
}

impl From<crate::bills::Payee> for PayeeView {
    fn from(p: crate::bills::Payee) -> Self {
        PayeeView {
            payee_id: p.payee_id.hyphenated().to_string(),
            biller_id: p.biller_id,
            account: p.account.to_string(),
            name: p.name,
            created_at: p.created_at,
        }
    }
}

/// A page of your payees (`GET /v1/payees`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PayeePage {
    /// Payees in id order (ids are time-ordered: oldest first).
    pub payees: Vec<PayeeView>,
    /// Pass as `cursor` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// A page of a payee's schedules (`GET /v1/payees/{id}/schedules`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SchedulePage {
    /// Schedules in id order (oldest first); a page may hold fewer than `limit`, even none,
    /// while `next_cursor` is present.
    pub schedules: Vec<ScheduleView>,
    /// Pass as `cursor` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Query of the bill listings (`GET /v1/payees`, `GET /v1/payees/{id}/schedules`).
#[derive(Debug, Clone, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BillsPageQuery {
    /// Page size, 1..=500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i32>,
    /// `next_cursor` of the previous page, unchanged.
    pub cursor: Option<String>,
}

/// `POST /v1/payees/{id}/schedules` body.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"source_account": "1234567890", "amount": "42.50", "currency": "USD",
    "first_due": "2027-01-31", "recurrence": "MONTHLY", "count": 12}))]
pub struct CreateSchedule {
    /// The debited account: yours, in `currency`.
    #[schema(example = "1234567890", pattern = "^[0-9]{10,12}$")]
    pub source_account: String,
    /// Each payment: a positive decimal string with at most the currency's minor units.
    #[schema(example = "42.50", pattern = r"^(0|[1-9][0-9]*)(\.[0-9]+)?$")]
    pub amount: String,
    /// ISO 4217 code.
    #[schema(example = "USD", pattern = "^[A-Z]{3}$")]
    pub currency: String,
    /// The first due date, `YYYY-MM-DD` (UTC), today or later.
    #[schema(example = "2027-01-31", pattern = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$")]
    pub first_due: String,
    /// ONCE, WEEKLY or MONTHLY (the first due date's day, clamped to the month's last day).
    #[schema(example = "MONTHLY", pattern = "^(ONCE|WEEKLY|MONTHLY)$")]
    pub recurrence: String,
    /// At most this many payments (1-1200).
    #[schema(example = 12, minimum = 1, maximum = 1200)]
    pub count: Option<u32>,
    /// No payment after this date, `YYYY-MM-DD`, on or after `first_due`.
    #[schema(example = "2027-12-31", pattern = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$")]
    pub until: Option<String>,
}

impl StrictBody for CreateSchedule {
    const FIELDS: &'static [&'static str] = &[
        "source_account",
        "amount",
        "currency",
        "first_due",
        "recurrence",
        "count",
        "until",
    ];
    const REQUIRED: &'static [&'static str] = &[
        "source_account",
        "amount",
        "currency",
        "first_due",
        "recurrence",
    ];
}

/// One handled occurrence of a schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OccurrenceView {
    /// Its due date.
    pub date: String,
    /// The PAYMENT enqueued for it (poll `/v1/transactions/{id}`).
    pub transaction_id: Option<String>,
    /// The problem code, when the payment was refused at enqueue time.
    pub refused: Option<String>,
}

/// A payment schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ScheduleView {
    /// Server-assigned id.
    pub schedule_id: String,
    /// The payee.
    pub payee_id: String,
    /// The debited account.
    pub source_account: String,
    /// The credited account (the payee's when the schedule was made).
    pub target_account: String,
    /// Each payment.
    pub amount: String,
    /// ISO 4217 code.
    pub currency: String,
    /// ONCE, WEEKLY or MONTHLY.
    pub recurrence: String,
    /// The first due date.
    pub first_due: String,
    /// At most this many payments.
    pub count: Option<u32>,
    /// No payment after this date.
    pub until: Option<String>,
    /// ACTIVE, CANCELLED or COMPLETED.
    pub status: String,
    /// The next due date (ACTIVE only).
    pub next_due: Option<String>,
    /// Handled occurrences, oldest first.
    pub past: Vec<OccurrenceView>,
    /// RFC 3339 creation time.
    pub created_at: String,
}

impl From<crate::bills::Schedule> for ScheduleView {
    fn from(s: crate::bills::Schedule) -> Self {
        use crate::bills::format_date;
        ScheduleView {
            schedule_id: s.schedule_id.hyphenated().to_string(),
            payee_id: s.payee_id.hyphenated().to_string(),
            source_account: s.source_account.to_string(),
            target_account: s.target_account.to_string(),
            amount: money(s.amount, Some(s.currency.code())),
            currency: s.currency.code().to_owned(),
            recurrence: s.recurrence.as_str().to_owned(),
            first_due: format_date(s.first_due),
            count: s.count,
            until: s.until.map(format_date),
            status: s.status.as_str().to_owned(),
            next_due: s.next_due.map(format_date),
            past: s
                .past
                .into_iter()
                .map(|o| OccurrenceView {
                    date: format_date(o.date),
                    transaction_id: o.transaction_id.map(|t| t.hyphenated().to_string()),
                    refused: o.refused,
                })
                .collect(),
            created_at: s.created_at,
        }
    }
}

/// A JSON object's members in order, duplicates kept (a map would keep only the last).
struct Members(Vec<(String, serde_json::Value)>);

impl<'de> Deserialize<'de> for Members {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Members;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Members, A::Error> {
                let mut members = Vec::new();
                while let Some(member) = map.next_entry()? {
                    members.push(member);
                }
                Ok(Members(members))
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

fn expected(fields: &[&str]) -> String {
    fields
        .iter()
        .map(|f| format!("`{f}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Parses a strict JSON body into `T`, or a problem naming the field at fault.
///
/// The checks are by kind, not by an error's text: the body is first read as an object's
/// members (not JSON, or not an object: `malformed_json`); a member `T` does not declare is
/// `unknown_field`, a member sent twice `duplicate_field`, a required one absent
/// `missing_field`; only then is `T` deserialized, so what fails there is a value of the wrong
/// type (`wrong_type`, the field named by the error's path).
pub fn parse_strict<T: StrictBody>(body: &[u8]) -> Result<T, ApiError> {
    let Members(members) = serde_json::from_slice(body)
        .map_err(|e| ApiError::MalformedJson(format!("the body must be a JSON object: {e}")))?;
    let mut object = serde_json::Map::new();
    for (name, value) in members {
        if !T::FIELDS.contains(&name.as_str()) {
            let detail = format!(
                "unknown field `{name}`, expected one of {}",
                expected(T::FIELDS)
            );
            return Err(ApiError::invalid(&name, "unknown_field", detail));
        }
        if object.contains_key(&name) {
            let detail = format!("duplicate field `{name}`");
            return Err(ApiError::invalid(&name, "duplicate_field", detail));
        }
        object.insert(name, value);
    }
    if let Some(missing) = T::REQUIRED.iter().find(|f| !object.contains_key(**f)) {
        let detail = format!("missing field `{missing}`");
        return Err(ApiError::invalid(missing, "missing_field", detail));
    }
    // The path names the member whose value did not fit its type.
    serde_path_to_error::deserialize(serde_json::Value::Object(object)).map_err(|e| {
        let field = match e.path().to_string() {
            path if path.is_empty() || path == "." => "body".to_owned(),
            path => path,
        };
        let detail = format!("`{field}`: {}", e.inner());
        ApiError::invalid(&field, "wrong_type", detail)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_uses_minor_units() {
        assert_eq!(money(Decimal::ZERO, Some("USD")), "0.00");
        assert_eq!(money(Decimal::new(5, 0), Some("JPY")), "5");
        assert_eq!(money(Decimal::new(12345, 3), Some("USD")), "12.345");
        assert_eq!(money(Decimal::new(1, 0), None), "1");
    }

    #[test]
    fn transaction_body_codes() {
        let code = |b: &str| match parse_transaction_body(b.as_bytes()) {
            Ok(_) => "ok".to_owned(),
            Err(ApiError::Validation { field, reason, .. }) => format!("{field}:{reason}"),
            Err(e) => e.code().to_owned(),
        };
        assert_eq!(code(r#"{"type":"DEPOSIT","amount":1.5}"#), "ok");
        assert_eq!(code(r#"{"x":1}"#), "x:unknown_field");
        assert_eq!(
            code(r#"{"transaction_id":"a"}"#),
            "transaction_id:unknown_field"
        );
        assert_eq!(code(r#"{"type":"A","type":"B"}"#), "type:duplicate_field");
        assert_eq!(code(r#"{"type":5}"#), "type:wrong_type");
        assert_eq!(code(r#"{"amount":true}"#), "amount:wrong_type");
        assert_eq!(code("[1]"), "malformed_json");
        assert_eq!(code("{"), "malformed_json");
    }

    fn strict_code(body: &str) -> String {
        match parse_strict::<CreateAccount>(body.as_bytes()) {
            Ok(_) => "ok".to_owned(),
            Err(ApiError::Validation { field, reason, .. }) => format!("{field}:{reason}"),
            Err(e) => e.code().to_owned(),
        }
    }

    #[test]
    fn strict_parse_classifies_by_kind() {
        assert_eq!(strict_code(r#"{"currency":"USD","type":"c"}"#), "ok");
        assert_eq!(
            strict_code(r#"{"currency":"USD","currency":"EUR","type":"c"}"#),
            "currency:duplicate_field"
        );
        assert_eq!(strict_code(r#"{"currency":"USD"}"#), "type:missing_field");
        assert_eq!(
            strict_code(r#"{"currency":5,"type":"c"}"#),
            "currency:wrong_type"
        );
        assert_eq!(
            strict_code(r#"{"currency":"USD","type":[]}"#),
            "type:wrong_type"
        );
        assert_eq!(strict_code("[]"), "malformed_json");
        assert_eq!(strict_code("{"), "malformed_json");
        assert_eq!(strict_code("null"), "malformed_json");
    }

    /// The declared field lists agree with the type's `Deserialize`: every field accepted, the
    /// required ones required, nothing else accepted.
    #[test]
    fn strict_field_lists_match_the_types() {
        fn check<T: StrictBody>() {
            let all: serde_json::Map<_, _> = T::FIELDS
                .iter()
                .map(|f| ((*f).to_owned(), serde_json::Value::from("x")))
                .collect();
            serde_json::from_value::<T>(all.clone().into()).unwrap();
            for f in T::FIELDS {
                let mut fewer = all.clone();
                fewer.remove(*f);
                let ok = serde_json::from_value::<T>(fewer.into()).is_ok();
                assert_eq!(ok, !T::REQUIRED.contains(f), "{f}");
            }
            let mut more = all;
            more.insert("zz_not_a_field".into(), 1.into());
            assert!(serde_json::from_value::<T>(more.into()).is_err());
        }
        check::<CreateAccount>();
        check::<CreatePayee>();
    }

    #[test]
    fn strict_parse_names_the_field() {
        let err =
            parse_strict::<CreateAccount>(br#"{"currency":"USD","type":"c","x":1}"#).unwrap_err();
        assert!(
            matches!(&err, ApiError::Validation { field, reason, .. } if field == "x" && reason == "unknown_field"),
            "{err:?}"
        );
    }
}
