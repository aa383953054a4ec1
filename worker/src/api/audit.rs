//! Audit records of money requests (`POST /v1/transactions`) and `GET /v1/audit`.
//!
//! Every request that reaches the handler (an authenticated caller within its rate limit) leaves
//! one record in the transactions table:
//!
//! - `pk = AUDIT#<audit id>` (a UUIDv7): `principal`, `client_address`, `idempotency_key`,
//!   `body_sha256`, `decision` (`accepted` | `replayed` | `refused` | `failed`), `reason_code`
//!   (refusals and failures: the problem `code`, or the validation reason), `http_status`,
//!   `transaction_id`, `at`.
//! - GSI keys: `audit_day` (`YYYY-MM-DD`) + `audit_sk` (`<fixed-width time>#<audit id>`) for
//!   [`AUDIT_TIME_INDEX`]; `audit_principal` + `audit_sk` for [`AUDIT_PRINCIPAL_INDEX`].
//!
//! An accepted request's record is one item of the ingest TransactWriteItems (no extra round
//! trip); a replay or a refusal costs one PutItem. Requests refused before the handler (no or a
//! bad token: 401; over the rate limit: 429) are only logged and counted: anyone can produce
//! them without credentials, so writing each one would let an attacker flood the table.
//! Records carry no `expires_at`: the table's TTL never removes them.
//!
//! `body_sha256` is the SHA-256 of the canonical body when the body validated (the same digest
//! as the idempotency record), else of the raw bytes received.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use aws_sdk_dynamodb::types::AttributeValue;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use ballast_aws::SdkResultExt;
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, Duration, OffsetDateTime};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::ApiState;
use super::extract::{AccountsAdmin, Authorized};
use super::problem::{ApiError, Problem};
use crate::ledger::sort_timestamp;
use crate::transaction::Subject;

/// GSI of audit records by day (`audit_day`, `audit_sk`).
pub const AUDIT_TIME_INDEX: &str = "audit-by-time";
/// GSI of audit records by principal (`audit_principal`, `audit_sk`).
pub const AUDIT_PRINCIPAL_INDEX: &str = "audit-by-principal";
/// Default and largest page of `GET /v1/audit`.
pub const DEFAULT_AUDIT_PAGE: i32 = 100;
/// Largest page of `GET /v1/audit`.
pub const MAX_AUDIT_PAGE: i32 = 1000;
/// Days one `GET /v1/audit` request walks at most (the cursor continues from there).
const MAX_DAYS_PER_PAGE: i64 = 31;

use crate::store::keys::{AUDIT_PREFIX, audit_pk};
use crate::store::{Item, opt_s, s};

fn get_s(item: &Item, name: &str) -> Option<String> {
    opt_s(item, name).map(str::to_owned)
}

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
}

impl Decision {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Accepted => "accepted",
            Decision::Replayed => "replayed",
            Decision::Refused => "refused",
            Decision::Failed => "failed",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "accepted" => Decision::Accepted,
            "replayed" => Decision::Replayed,
            "refused" => Decision::Refused,
            "failed" => Decision::Failed,
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

/// The day bucket and the sort key of an audit record at `at`.
fn audit_keys(at: OffsetDateTime, audit_id: Uuid) -> Result<(String, String), ApiError> {
    let day = day_of(at)?;
    let sk = sort_timestamp(at).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok((day, format!("{sk}#{}", audit_id.hyphenated())))
}

fn day_of(at: OffsetDateTime) -> Result<String, ApiError> {
    at.to_offset(time::UtcOffset::UTC)
        .format(format_description!("[year]-[month]-[day]"))
        .map_err(|e| ApiError::Internal(format!("cannot format {at}: {e}")))
}

/// What the handler learns about a request as it goes; becomes the audit record.
#[derive(Debug, Clone)]
pub struct AuditDraft {
    /// The record's id.
    pub audit_id: Uuid,
    /// When the request arrived.
    pub at: OffsetDateTime,
    /// The caller.
    pub principal: String,
    /// See [`client_address`].
    pub client_address: String,
    /// Set once the key parsed.
    pub idempotency_key: Option<String>,
    /// Raw, then canonical digest.
    pub body_sha256: Option<String>,
    /// Set once a transaction id is known.
    pub transaction_id: Option<Uuid>,
    /// Whether the record is already part of a write that succeeded.
    pub written: bool,
}

impl AuditDraft {
    /// A draft for a request of `principal` from `client_address`, arriving now.
    pub fn new(principal: &str, client_address: String) -> Self {
        AuditDraft {
            audit_id: Uuid::now_v7(),
            at: OffsetDateTime::now_utc(),
            principal: principal.to_owned(),
            client_address,
            idempotency_key: None,
            body_sha256: None,
            transaction_id: None,
            written: false,
        }
    }

    /// The record for `decision`.
    pub fn record(&self, decision: Decision, error: Option<&ApiError>) -> AuditRecord {
        let (reason_code, http_status) = match error {
            Some(err) => {
                let problem: Problem = err.problem();
                (Some(problem.reason.unwrap_or(problem.code)), problem.status)
            }
            None => (None, 202),
        };
        AuditRecord {
            audit_id: self.audit_id.hyphenated().to_string(),
            at: self
                .at
                .format(&Rfc3339)
                .unwrap_or_else(|_| self.at.unix_timestamp().to_string()),
            principal: self.principal.clone(),
            client_address: self.client_address.clone(),
            idempotency_key: self.idempotency_key.clone(),
            body_sha256: self.body_sha256.clone(),
            decision,
            reason_code,
            http_status,
            transaction_id: self.transaction_id.map(|t| t.hyphenated().to_string()),
        }
    }

    /// The DynamoDB item of the record for `decision`.
    pub fn item(&self, decision: Decision, error: Option<&ApiError>) -> Result<Item, ApiError> {
        let record = self.record(decision, error);
        let (day, sk) = audit_keys(self.at, self.audit_id)?;
        let mut item = Item::from([
            ("pk".to_owned(), s(audit_pk(&record.audit_id))),
            ("audit_day".to_owned(), s(day)),
            ("audit_sk".to_owned(), s(sk)),
            ("audit_principal".to_owned(), s(&record.principal)),
            ("at".to_owned(), s(&record.at)),
            ("principal".to_owned(), s(&record.principal)),
            ("client_address".to_owned(), s(&record.client_address)),
            ("decision".to_owned(), s(decision.as_str())),
            (
                "http_status".to_owned(),
                AttributeValue::N(record.http_status.to_string()),
            ),
        ]);
        for (name, value) in [
            ("idempotency_key", record.idempotency_key),
            ("body_sha256", record.body_sha256),
            ("reason_code", record.reason_code),
            ("transaction_id", record.transaction_id),
        ] {
            if let Some(v) = value {
                item.insert(name.to_owned(), s(v));
            }
        }
        Ok(item)
    }
}

/// Reads an audit item back.
pub fn record_from_item(item: &Item) -> Result<AuditRecord, ApiError> {
    let corrupt = |what: &str| ApiError::Internal(format!("corrupt audit record: {what}"));
    let pk = get_s(item, "pk").ok_or_else(|| corrupt("pk"))?;
    let audit_id = pk
        .strip_prefix(AUDIT_PREFIX)
        .ok_or_else(|| corrupt("pk"))?
        .to_owned();
    let decision = get_s(item, "decision")
        .as_deref()
        .and_then(Decision::parse)
        .ok_or_else(|| corrupt("decision"))?;
    let http_status = item
        .get("http_status")
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse::<u16>().ok())
        .ok_or_else(|| corrupt("http_status"))?;
    Ok(AuditRecord {
        audit_id,
        at: get_s(item, "at").ok_or_else(|| corrupt("at"))?,
        principal: get_s(item, "principal").ok_or_else(|| corrupt("principal"))?,
        client_address: get_s(item, "client_address").unwrap_or_default(),
        idempotency_key: get_s(item, "idempotency_key"),
        body_sha256: get_s(item, "body_sha256"),
        decision,
        reason_code: get_s(item, "reason_code"),
        http_status,
        transaction_id: get_s(item, "transaction_id"),
    })
}

/// The client's address: the TCP peer, or — only when the peer is one of `trusted_proxies` —
/// the right-most `X-Forwarded-For` entry that is not itself a trusted proxy (entries further
/// left are written by the client and cannot be believed).
pub fn client_address(
    peer: Option<SocketAddr>,
    headers: &HeaderMap,
    trusted_proxies: &[IpAddr],
) -> String {
    let Some(peer) = peer else {
        return "unknown".to_owned();
    };
    if !trusted_proxies.contains(&peer.ip()) {
        return peer.ip().to_string();
    }
    let forwarded = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect::<Vec<_>>();
    for entry in forwarded.iter().rev() {
        match entry.parse::<IpAddr>() {
            Ok(ip) if trusted_proxies.contains(&ip) => continue,
            Ok(ip) => return ip.to_string(),
            // Garbage from the proxy chain: do not trust anything left of it.
            Err(_) => break,
        }
    }
    peer.ip().to_string()
}

impl ApiState {
    /// One PutItem of an audit record (replays and refusals; accepted requests write theirs in
    /// the ingest transaction).
    #[tracing::instrument(skip_all, fields(decision = decision.as_str()))]
    pub(crate) async fn put_audit(
        &self,
        draft: &AuditDraft,
        decision: Decision,
        error: Option<&ApiError>,
    ) -> Result<(), ApiError> {
        self.ledger()
            .client()
            .put_item()
            .table_name(self.ledger().tables().transactions)
            .set_item(Some(draft.item(decision, error)?))
            .send()
            .await
            .classify("dynamodb:PutItem")?;
        Ok(())
    }
}

/// Query of `GET /v1/audit`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Records at or after this time (RFC 3339). Default: 24 hours ago.
    pub since: Option<String>,
    /// Only this principal's records.
    pub principal: Option<String>,
    /// Page size, 1..=1000 (default 100).
    pub limit: Option<i32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A page of audit records, oldest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditPage {
    /// The records.
    pub records: Vec<AuditRecord>,
    /// Pass as `cursor` for the next page; absent at the end (records written later can be
    /// read with a later `since`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Where a page continues: the day bucket (time index only) and the last key read.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Cursor {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    day: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last: Option<HashMap<String, String>>,
}

fn encode_cursor(cursor: &Cursor) -> Option<String> {
    serde_json::to_vec(cursor).ok().map(hex::encode)
}

fn bad_cursor() -> ApiError {
    ApiError::invalid(
        "cursor",
        "invalid_cursor",
        "`cursor` is not a cursor of this endpoint; hint: pass `next_cursor` unchanged",
    )
}

fn decode_cursor(text: &str) -> Result<Cursor, ApiError> {
    let bytes = hex::decode(text).map_err(|_| bad_cursor())?;
    serde_json::from_slice(&bytes).map_err(|_| bad_cursor())
}

/// A cursor's last key must be a key of the index being read, in the partition being read
/// (anything else would be a DynamoDB validation error, or a read of another partition).
fn check_last_key(
    last: Option<HashMap<String, String>>,
    partition: (&str, &str),
) -> Result<Option<Item>, ApiError> {
    let Some(last) = last else {
        return Ok(None);
    };
    let (name, value) = partition;
    let expected = ["pk", "audit_sk", name];
    if last.len() != expected.len()
        || expected.iter().any(|k| !last.contains_key(*k))
        || last.get(name).map(String::as_str) != Some(value)
    {
        return Err(bad_cursor());
    }
    Ok(Some(strings_to_key(last)))
}

/// Keeps only string attributes (every key attribute of the audit indexes is a string).
fn key_to_strings(key: &Item) -> HashMap<String, String> {
    key.iter()
        .filter_map(|(k, v)| v.as_s().ok().map(|v| (k.clone(), v.clone())))
        .collect()
}

fn strings_to_key(key: HashMap<String, String>) -> Item {
    key.into_iter().map(|(k, v)| (k, s(v))).collect()
}

/// Audit records of money requests (operators only: scope `accounts:admin`).
#[utoipa::path(
    get,
    path = "/v1/audit",
    tag = "audit",
    params(AuditQuery),
    responses(
        (status = 200, description = "Audit records, oldest first", body = AuditPage),
        (status = 400, description = "Bad `since`, `limit` or `cursor`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an operator (scope `accounts:admin`)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "AWS unavailable; retry", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["accounts:admin"]))
)]
#[tracing::instrument(skip_all, fields(sub = %principal.subject))]
pub async fn list_audit(
    State(state): State<ApiState>,
    Authorized { principal, .. }: Authorized<AccountsAdmin>,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<axum::Json<AuditPage>, ApiError> {
    let Query(query) =
        query.map_err(|e| ApiError::invalid("query", "invalid_query", e.body_text()))?;
    let now = OffsetDateTime::now_utc();
    let since = match query.since.as_deref() {
        Some(text) => OffsetDateTime::parse(text, &Rfc3339).map_err(|_| {
            ApiError::invalid(
                "since",
                "invalid_timestamp",
                "`since` is not an RFC 3339 time; hint: e.g. 2025-11-01T00:00:00Z",
            )
        })?,
        None => now
            .checked_sub(Duration::days(1))
            .ok_or_else(|| ApiError::Internal("clock out of range".into()))?,
    };
    let limit = query.limit.unwrap_or(DEFAULT_AUDIT_PAGE);
    if !(1..=MAX_AUDIT_PAGE).contains(&limit) {
        return Err(ApiError::invalid(
            "limit",
            "limit_out_of_range",
            format!("`limit` must be 1..={MAX_AUDIT_PAGE}"),
        ));
    }
    let cursor = query.cursor.as_deref().map(decode_cursor).transpose()?;
    let lower = sort_timestamp(since).map_err(|_| {
        ApiError::invalid(
            "since",
            "invalid_timestamp",
            "`since` is outside years 0001-9999",
        )
    })?;
    // A principal is a token `sub`; anything else (the empty string above all, which DynamoDB
    // refuses as an index key) can have no records and is the caller's mistake.
    let principal = query
        .principal
        .as_deref()
        .map(Subject::parse)
        .transpose()
        .map_err(|e| {
            ApiError::invalid(
                "principal",
                "invalid_principal",
                format!("`principal` {e}; hint: pass a token subject (`sub`), e.g. alice"),
            )
        })?;
    let page = match &principal {
        Some(p) => {
            state
                .audit_by_principal(p.as_str(), &lower, limit, cursor)
                .await?
        }
        None => {
            state
                .audit_by_time(since, now, &lower, limit, cursor)
                .await?
        }
    };
    Ok(axum::Json(page))
}

impl ApiState {
    #[tracing::instrument(skip_all)]
    async fn audit_by_principal(
        &self,
        principal: &str,
        lower: &str,
        limit: i32,
        cursor: Option<Cursor>,
    ) -> Result<AuditPage, ApiError> {
        let out = self
            .ledger()
            .client()
            .query()
            .table_name(self.ledger().tables().transactions)
            .index_name(AUDIT_PRINCIPAL_INDEX)
            .key_condition_expression("audit_principal = :p AND audit_sk >= :lower")
            .expression_attribute_values(":p", s(principal))
            .expression_attribute_values(":lower", s(lower))
            .limit(limit)
            .set_exclusive_start_key(check_last_key(
                cursor.and_then(|c| c.last),
                ("audit_principal", principal),
            )?)
            .send()
            .await
            .classify("dynamodb:Query")?;
        let records = out
            .items()
            .iter()
            .map(record_from_item)
            .collect::<Result<Vec<_>, _>>()?;
        let next_cursor = out.last_evaluated_key().and_then(|k| {
            encode_cursor(&Cursor {
                day: None,
                last: Some(key_to_strings(k)),
            })
        });
        Ok(AuditPage {
            records,
            next_cursor,
        })
    }

    /// Walks the day buckets from `since` (or the cursor's day) up to today.
    #[tracing::instrument(skip_all)]
    async fn audit_by_time(
        &self,
        since: OffsetDateTime,
        now: OffsetDateTime,
        lower: &str,
        limit: i32,
        cursor: Option<Cursor>,
    ) -> Result<AuditPage, ApiError> {
        let (mut day, mut start) = match cursor {
            Some(Cursor {
                day: Some(day),
                last,
            }) => (
                Date::parse(&day, format_description!("[year]-[month]-[day]"))
                    .map_err(|_| bad_cursor())?,
                check_last_key(last, ("audit_day", &day))?,
            ),
            Some(Cursor { day: None, .. }) => return Err(bad_cursor()),
            None => (since.to_offset(time::UtcOffset::UTC).date(), None),
        };
        let today = now.to_offset(time::UtcOffset::UTC).date();
        let mut records = Vec::new();
        let mut walked = 0;
        while day <= today {
            let remaining = limit.saturating_sub(i32::try_from(records.len()).unwrap_or(limit));
            if remaining <= 0 || walked >= MAX_DAYS_PER_PAGE {
                let next = encode_cursor(&Cursor {
                    day: Some(day_text(day)?),
                    last: start.as_ref().map(key_to_strings),
                });
                return Ok(AuditPage {
                    records,
                    next_cursor: next,
                });
            }
            let out = self
                .ledger()
                .client()
                .query()
                .table_name(self.ledger().tables().transactions)
                .index_name(AUDIT_TIME_INDEX)
                .key_condition_expression("audit_day = :d AND audit_sk >= :lower")
                .expression_attribute_values(":d", s(day_text(day)?))
                .expression_attribute_values(":lower", s(lower))
                .limit(remaining)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .classify("dynamodb:Query")?;
            for item in out.items() {
                records.push(record_from_item(item)?);
            }
            match out.last_evaluated_key() {
                Some(key) => start = Some(key.clone()),
                None => {
                    walked += 1;
                    day = match day.next_day() {
                        Some(d) => d,
                        None => break,
                    };
                }
            }
        }
        Ok(AuditPage {
            records,
            next_cursor: None,
        })
    }
}

fn day_text(day: Date) -> Result<String, ApiError> {
    day.format(format_description!("[year]-[month]-[day]"))
        .map_err(|e| ApiError::Internal(format!("cannot format {day}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn peer(ip: &str) -> Option<SocketAddr> {
        Some(SocketAddr::new(ip.parse().unwrap(), 4711))
    }

    #[test]
    fn forwarded_for_is_believed_only_from_a_trusted_proxy() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            HeaderValue::from_static("6.6.6.6, 203.0.113.7, 10.0.0.2"),
        );
        let trusted: Vec<IpAddr> = vec!["10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap()];
        // Untrusted peer: its header is ignored.
        assert_eq!(
            client_address(peer("198.51.100.9"), &headers, &trusted),
            "198.51.100.9"
        );
        // Trusted peer: the right-most untrusted entry, never the spoofable left-most one.
        assert_eq!(
            client_address(peer("10.0.0.1"), &headers, &trusted),
            "203.0.113.7"
        );
        // No trusted proxies configured: the peer.
        assert_eq!(client_address(peer("10.0.0.1"), &headers, &[]), "10.0.0.1");
        // Garbage in the chain: stop there and keep the peer.
        headers.insert(
            "x-forwarded-for",
            HeaderValue::from_static("1.2.3.4, nonsense"),
        );
        assert_eq!(
            client_address(peer("10.0.0.1"), &headers, &trusted),
            "10.0.0.1"
        );
        assert_eq!(client_address(None, &headers, &trusted), "unknown");
    }

    #[test]
    fn audit_items_read_back() {
        let mut draft = AuditDraft::new("alice", "192.0.2.1".into());
        draft.idempotency_key = Some("k-1".into());
        draft.body_sha256 = Some("ab".repeat(32));
        let err = ApiError::IdempotencyKeyReused;
        let item = draft.item(Decision::Refused, Some(&err)).unwrap();
        let record = record_from_item(&item).unwrap();
        assert_eq!(record.decision, Decision::Refused);
        assert_eq!(
            record.reason_code.as_deref(),
            Some("idempotency_key_reused")
        );
        assert_eq!(record.http_status, 409);
        assert_eq!(record.principal, "alice");
        assert_eq!(record.idempotency_key.as_deref(), Some("k-1"));
        assert!(item["audit_sk"].as_s().unwrap().ends_with(&record.audit_id));
        let cursor = Cursor {
            day: Some("2026-01-02".into()),
            last: None,
        };
        let text = encode_cursor(&cursor).unwrap();
        assert_eq!(
            decode_cursor(&text).unwrap().day.as_deref(),
            Some("2026-01-02")
        );
        assert!(decode_cursor("zz").is_err());
        let key = |p: &str| {
            HashMap::from([
                ("pk".to_owned(), "AUDIT#x".to_owned()),
                ("audit_sk".to_owned(), "t#x".to_owned()),
                ("audit_principal".to_owned(), p.to_owned()),
            ])
        };
        assert!(check_last_key(Some(key("alice")), ("audit_principal", "alice")).is_ok());
        // Another principal's partition, or another index's key: refused.
        assert!(check_last_key(Some(key("bob")), ("audit_principal", "alice")).is_err());
        assert!(check_last_key(Some(key("alice")), ("audit_day", "2026-01-02")).is_err());
    }
}
