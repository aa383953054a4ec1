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
//!
//! The item layout and the DynamoDB calls live in [`crate::store::audit`].

use std::net::{IpAddr, SocketAddr};

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, Duration, OffsetDateTime};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::ApiState;
use super::extract::{AccountsAdmin, Authorized};
use super::paging::bad_cursor;
use super::problem::{ApiError, Problem};
use crate::ledger::sort_timestamp;
use crate::store::Item;
use crate::store::audit::{self as audit_store, PageKey, day_text};
pub use crate::store::audit::{AUDIT_PRINCIPAL_INDEX, AUDIT_TIME_INDEX, AuditRecord, Decision};
use crate::transaction::Subject;
/// The server's clock is too close to year 1 to look back a day.
#[derive(Debug, thiserror::Error)]
#[error("the clock is out of range")]
struct ClockOutOfRange;

/// Default and largest page of `GET /v1/audit`.
pub const DEFAULT_AUDIT_PAGE: i32 = 100;
/// Largest page of `GET /v1/audit`.
pub const MAX_AUDIT_PAGE: i32 = 1000;
/// Days one `GET /v1/audit` request walks at most (the cursor continues from there).
const MAX_DAYS_PER_PAGE: i64 = 31;

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
        Ok(audit_store::item(&self.record(decision, error), self.at)?)
    }
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
        audit_store::put(self.ledger(), draft.item(decision, error)?).await?;
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
    last: Option<PageKey>,
}

fn encode_cursor(cursor: &Cursor) -> Option<String> {
    serde_json::to_vec(cursor).ok().map(hex::encode)
}

fn decode_cursor(text: &str) -> Result<Cursor, ApiError> {
    let bytes = hex::decode(text).map_err(|_| bad_cursor())?;
    serde_json::from_slice(&bytes).map_err(|_| bad_cursor())
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
            .ok_or_else(|| ApiError::internal(ClockOutOfRange))?,
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
        let start = cursor.and_then(|c| c.last);
        let page = audit_store::by_principal(self.ledger(), principal, lower, limit, start).await?;
        let next_cursor = page.next.and_then(|last| {
            encode_cursor(&Cursor {
                day: None,
                last: Some(last),
            })
        });
        Ok(AuditPage {
            records: page.records,
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
                last,
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
                    last: start,
                });
                return Ok(AuditPage {
                    records,
                    next_cursor: next,
                });
            }
            let page = audit_store::by_day(
                self.ledger(),
                &day_text(day)?,
                lower,
                remaining,
                start.take(),
            )
            .await?;
            records.extend(page.records);
            match page.next {
                Some(key) => start = Some(key),
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
        let record = audit_store::record_from_item(&item).unwrap();
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
    }
}
