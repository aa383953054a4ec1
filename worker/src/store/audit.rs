//! Audit records (`AUDIT#<audit id>` in the transactions table) and their DynamoDB calls. The
//! API's module docs ([`crate::api::audit`]) say what is recorded when.
//!
//! Item: `pk`, `principal`, `client_address`, `idempotency_key`, `body_sha256`, `decision`,
//! `reason_code`, `http_status` N, `transaction_id`, `at`; GSI keys `audit_day` (`YYYY-MM-DD`) +
//! `audit_sk` (`<fixed-width time>#<audit id>`) for [`AUDIT_TIME_INDEX`], `audit_principal` +
//! `audit_sk` for [`AUDIT_PRINCIPAL_INDEX`].

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use ballast_aws::SdkResultExt;
use serde::{Deserialize, Serialize};
use time::macros::format_description;
use time::{Date, OffsetDateTime};
use utoipa::ToSchema;

use super::keys::{AUDIT_PREFIX, PK, audit_pk};
use super::{Item, StoreError, opt_s, s};
use crate::ledger::{Ledger, sort_timestamp};

/// GSI of audit records by day (`audit_day`, `audit_sk`).
pub const AUDIT_TIME_INDEX: &str = "audit-by-time";
/// GSI of audit records by principal (`audit_principal`, `audit_sk`).
pub const AUDIT_PRINCIPAL_INDEX: &str = "audit-by-principal";

/// What happened to a money request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// A new transaction was recorded (and enqueued, or left to the sweeper).
    Accepted,
    /// The same key and body again: the first answer was repeated.
    Replayed,
    /// Refused (4xx); `reason_code` says why.
    Refused,
    /// A dependency failed (5xx); the client may retry.
    Failed,
    /// An operator approved a held transaction (`reason_code` set when the ledger then
    /// declined it, e.g. `INSUFFICIENT_FUNDS`).
    ReviewApproved,
    /// An operator rejected a held transaction.
    ReviewRejected,
}

impl Decision {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Accepted => "accepted",
            Decision::Replayed => "replayed",
            Decision::Refused => "refused",
            Decision::Failed => "failed",
            Decision::ReviewApproved => "review_approved",
            Decision::ReviewRejected => "review_rejected",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "accepted" => Decision::Accepted,
            "replayed" => Decision::Replayed,
            "refused" => Decision::Refused,
            "failed" => Decision::Failed,
            "review_approved" => Decision::ReviewApproved,
            "review_rejected" => Decision::ReviewRejected,
            _ => return None,
        })
    }
}

/// One audit record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuditRecord {
    /// The record's id (UUIDv7).
    pub audit_id: String,
    /// When the request was decided (RFC 3339, UTC).
    pub at: String,
    /// The caller (JWT `sub`).
    pub principal: String,
    /// The peer address, or the `X-Forwarded-For` client of a trusted proxy.
    pub client_address: String,
    /// The `Idempotency-Key`, when it was valid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// SHA-256 (hex) of the canonical body, or of the raw body if it did not validate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_sha256: Option<String>,
    /// accepted, replayed, refused or failed.
    pub decision: Decision,
    /// Why it was refused or failed (a problem `code` or a validation reason).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason_code: Option<String>,
    /// The HTTP status answered.
    pub http_status: u16,
    /// The transaction id answered (accepted and replayed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<String>,
}

/// `YYYY-MM-DD` of a day bucket.
pub fn day_text(day: Date) -> Result<String, StoreError> {
    Ok(day.format(format_description!("[year]-[month]-[day]"))?)
}

/// The item of `record`, decided at `at` (which sets its day bucket and sort key).
pub fn item(record: &AuditRecord, at: OffsetDateTime) -> Result<Item, StoreError> {
    let day = day_text(at.to_offset(time::UtcOffset::UTC).date())?;
    let sk = format!("{}#{}", sort_timestamp(at)?, record.audit_id);
    let mut item = Item::from([
        (PK.to_owned(), s(audit_pk(&record.audit_id))),
        ("audit_day".to_owned(), s(day)),
        ("audit_sk".to_owned(), s(sk)),
        ("audit_principal".to_owned(), s(&record.principal)),
        ("at".to_owned(), s(&record.at)),
        ("principal".to_owned(), s(&record.principal)),
        ("client_address".to_owned(), s(&record.client_address)),
        ("decision".to_owned(), s(record.decision.as_str())),
        (
            "http_status".to_owned(),
            AttributeValue::N(record.http_status.to_string()),
        ),
    ]);
    for (name, value) in [
        ("idempotency_key", &record.idempotency_key),
        ("body_sha256", &record.body_sha256),
        ("reason_code", &record.reason_code),
        ("transaction_id", &record.transaction_id),
    ] {
        if let Some(v) = value {
            item.insert(name.to_owned(), s(v));
        }
    }
    Ok(item)
}

/// Reads an audit item back.
pub fn record_from_item(item: &Item) -> Result<AuditRecord, StoreError> {
    let pk = opt_s(item, PK).unwrap_or_default();
    let corrupt = |field| StoreError::Corrupt {
        pk: pk.to_owned(),
        field,
    };
    let get = |name| opt_s(item, name).map(str::to_owned);
    let audit_id = pk
        .strip_prefix(AUDIT_PREFIX)
        .ok_or_else(|| corrupt(PK))?
        .to_owned();
    let decision = opt_s(item, "decision")
        .and_then(Decision::parse)
        .ok_or_else(|| corrupt("decision"))?;
    let http_status = item
        .get("http_status")
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse::<u16>().ok())
        .ok_or_else(|| corrupt("http_status"))?;
    Ok(AuditRecord {
        at: get("at").ok_or_else(|| corrupt("at"))?,
        principal: get("principal").ok_or_else(|| corrupt("principal"))?,
        client_address: get("client_address").unwrap_or_default(),
        idempotency_key: get("idempotency_key"),
        body_sha256: get("body_sha256"),
        decision,
        reason_code: get("reason_code"),
        http_status,
        transaction_id: get("transaction_id"),
        audit_id,
    })
}

/// One PutItem of an audit item (replays and refusals; accepted requests write theirs in the
/// ingest transaction, see [`super::ingest::record`]).
#[tracing::instrument(skip_all)]
pub async fn put(ledger: &Ledger, item: Item) -> Result<(), StoreError> {
    ledger
        .client()
        .put_item()
        .table_name(ledger.tables().transactions)
        .set_item(Some(item))
        .send()
        .await
        .classify("dynamodb:PutItem")?;
    Ok(())
}

/// Where a query continues: the last key read, as strings (every key attribute of the audit
/// indexes is a string), so that a client can carry it in an opaque cursor.
pub type PageKey = HashMap<String, String>;

/// A page of records and where the next one starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// The records, oldest first.
    pub records: Vec<AuditRecord>,
    /// The last key read when the partition has more.
    pub next: Option<PageKey>,
}

/// A client-supplied page key must be a key of the index being read, in the partition being
/// read (anything else would be a DynamoDB validation error, or a read of another partition).
fn start_key(start: Option<PageKey>, partition: (&str, &str)) -> Result<Option<Item>, StoreError> {
    let Some(start) = start else {
        return Ok(None);
    };
    let (name, value) = partition;
    let expected = [PK, "audit_sk", name];
    if start.len() != expected.len()
        || expected.iter().any(|k| !start.contains_key(*k))
        || start.get(name).map(String::as_str) != Some(value)
    {
        return Err(StoreError::BadPageKey);
    }
    Ok(Some(start.into_iter().map(|(k, v)| (k, s(v))).collect()))
}

fn page_key(key: &Item) -> PageKey {
    key.iter()
        .filter_map(|(k, v)| v.as_s().ok().map(|v| (k.clone(), v.clone())))
        .collect()
}

/// One Query of one partition of an audit index from `audit_sk >= lower`.
async fn query(
    ledger: &Ledger,
    index: &str,
    partition: (&str, &str),
    lower: &str,
    limit: i32,
    start: Option<PageKey>,
) -> Result<Page, StoreError> {
    let (name, value) = partition;
    let out = ledger
        .client()
        .query()
        .table_name(ledger.tables().transactions)
        .index_name(index)
        .key_condition_expression(format!("{name} = :p AND audit_sk >= :lower"))
        .expression_attribute_values(":p", s(value))
        .expression_attribute_values(":lower", s(lower))
        .limit(limit)
        .set_exclusive_start_key(start_key(start, partition)?)
        .send()
        .await
        .classify("dynamodb:Query")?;
    Ok(Page {
        records: out
            .items()
            .iter()
            .map(record_from_item)
            .collect::<Result<_, _>>()?,
        next: out.last_evaluated_key().map(page_key),
    })
}

/// Records of `principal` from sort key `lower` on ([`AUDIT_PRINCIPAL_INDEX`]).
#[tracing::instrument(skip(ledger, start))]
pub async fn by_principal(
    ledger: &Ledger,
    principal: &str,
    lower: &str,
    limit: i32,
    start: Option<PageKey>,
) -> Result<Page, StoreError> {
    let partition = ("audit_principal", principal);
    query(
        ledger,
        AUDIT_PRINCIPAL_INDEX,
        partition,
        lower,
        limit,
        start,
    )
    .await
}

/// Records of the day bucket `day` (`YYYY-MM-DD`) from sort key `lower` on
/// ([`AUDIT_TIME_INDEX`]).
#[tracing::instrument(skip(ledger, start))]
pub async fn by_day(
    ledger: &Ledger,
    day: &str,
    lower: &str,
    limit: i32,
    start: Option<PageKey>,
) -> Result<Page, StoreError> {
    query(
        ledger,
        AUDIT_TIME_INDEX,
        ("audit_day", day),
        lower,
        limit,
        start,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> AuditRecord {
        AuditRecord {
            audit_id: "0190a6f2-7b1c-7def-8abc-0123456789ab".into(),
            at: "2026-01-02T03:04:05Z".into(),
            principal: "alice".into(),
            client_address: "192.0.2.1".into(),
            idempotency_key: Some("k-1".into()),
            body_sha256: Some("ab".repeat(32)),
            decision: Decision::Refused,
            reason_code: Some("idempotency_key_reused".into()),
            http_status: 409,
            transaction_id: None,
        }
    }

    #[test]
    fn items_read_back_with_their_index_keys() {
        let at = OffsetDateTime::from_unix_timestamp(1_767_323_045).unwrap();
        let item = item(&record(), at).unwrap();
        assert_eq!(record_from_item(&item).unwrap(), record());
        assert_eq!(
            item["pk"].as_s().unwrap(),
            "AUDIT#0190a6f2-7b1c-7def-8abc-0123456789ab"
        );
        assert_eq!(item["audit_day"].as_s().unwrap(), "2026-01-02");
        assert!(
            item["audit_sk"]
                .as_s()
                .unwrap()
                .ends_with("#0190a6f2-7b1c-7def-8abc-0123456789ab")
        );
        let mut broken = item.clone();
        broken.remove("decision");
        assert!(matches!(
            record_from_item(&broken),
            Err(StoreError::Corrupt {
                field: "decision",
                ..
            })
        ));
    }

    #[test]
    fn page_keys_must_belong_to_the_partition_read() {
        let key = |p: &str| {
            PageKey::from([
                ("pk".to_owned(), "AUDIT#x".to_owned()),
                ("audit_sk".to_owned(), "t#x".to_owned()),
                ("audit_principal".to_owned(), p.to_owned()),
            ])
        };
        assert!(start_key(Some(key("alice")), ("audit_principal", "alice")).is_ok());
        // Another principal's partition, or another index's key: refused.
        assert!(start_key(Some(key("bob")), ("audit_principal", "alice")).is_err());
        assert!(start_key(Some(key("alice")), ("audit_day", "2026-01-02")).is_err());
        assert!(
            start_key(None, ("audit_day", "2026-01-02"))
                .unwrap()
                .is_none()
        );
    }
}
