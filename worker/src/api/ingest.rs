//! `POST /v1/transactions` and `GET /v1/transactions/{id}`: validation, durable idempotency
//! records, audit records and enqueueing.
//!
//! # Exactly once at the front door, in two AWS calls
//!
//! An accepted request costs one TransactWriteItems and one SendMessage. The transaction writes,
//! all or nothing, to the transactions table:
//! - `pk = INGEST#<idempotency key>` with `attribute_not_exists(pk)`: `transaction_id`,
//!   `body_sha256` (of the canonical body), `subject`, `message` (the exact SQS body),
//!   `message_group` (FIFO queues), `created_at`, and the sweeper's pending marker
//!   `pending_shard` + `pending_due` (see [`super::sweep`]).
//! - `pk = INGESTID#<transaction id>`: `idempotency_key`, `created_at` (so that a status query
//!   can tell PENDING from unknown).
//! - `pk = AUDIT#<audit id>`: the audit record of the request (see [`super::audit`]).
//!
//! The condition on `INGEST#` elects exactly one winner per key, whatever the concurrency; only
//! the winner sends the message. Every other request with that key answers from the winner's
//! record: the same transaction id with `Idempotent-Replayed: true` (same client, same canonical
//! body), `409 idempotency_key_reused` (other body) or `409 idempotency_key_foreign` (another
//! client). A loser never re-sends: if the winner died between its record and its SendMessage
//! (or SendMessage failed), the sweeper sends the stored message once `pending_due` has passed;
//! the ledger's own `IDEM#` record makes a second delivery harmless.
//!
//! The items and the DynamoDB calls live in [`crate::store::ingest`]; this module validates,
//! authorizes, decides the answer and sends the message. The body is read by
//! [`super::body::JsonBody`], whose refusals (413, 415) are answered, and audited, only after
//! the `Idempotency-Key` is checked, as before the extractor existed.

use std::net::SocketAddr;

use axum::Extension;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ballast_aws::SdkResultExt;
use sha2::{Digest, Sha256};
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use super::ApiState;
use super::audit::{AuditDraft, Decision, client_address};
use super::auth::{Principal, SCOPE_TRANSACTIONS_WRITE};
use super::authorize;
use super::body::{BodyRejection, JsonBody};
use super::extract::{Authorized, TransactionsRead};
use super::models::{Accepted, TransactionBody, TransactionStatus, parse_transaction_body};
use super::problem::{ApiError, Problem};
use crate::store::ingest::{self as ingest_store, IngestRecord, Recorded};
use crate::transaction::{IdempotencyKey, Transaction, ValidationError};

/// The idempotency header.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Set to `true` on answers that replay an earlier request.
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";

/// SHA-256 (hex) of the canonical form of a validated body: the client-supplied fields in a
/// fixed order, the amount as validated (so `100`, `"100.00"` and `1e2` are the same body).
pub fn canonical_sha256(tx: &Transaction) -> String {
    let mut map = serde_json::Map::new();
    map.insert("type".into(), tx.kind.as_str().into());
    if let Some(a) = &tx.source_account {
        map.insert("source_account".into(), a.as_str().into());
    }
    if let Some(a) = &tx.target_account {
        map.insert("target_account".into(), a.as_str().into());
    }
    if let Some(a) = tx.amount {
        map.insert("amount".into(), a.to_string().into());
    }
    map.insert("currency".into(), tx.currency.code().into());
    // Only when present, so that the hashes of bodies without it stay what they were.
    if let Some(c) = tx.target_currency {
        map.insert("target_currency".into(), c.code().into());
    }
    let canonical = serde_json::Value::Object(map).to_string();
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

/// The FIFO message group of a transaction: its first account.
pub fn message_group(tx: &Transaction) -> String {
    tx.accounts()
        .next()
        .map_or_else(|| "none".to_owned(), |a| a.to_string())
}

fn status_url(id: Uuid) -> String {
    format!("/v1/transactions/{}", id.hyphenated())
}

fn accepted(id: Uuid, replayed: bool) -> Response {
    let url = status_url(id);
    let body = Accepted {
        transaction_id: id.hyphenated().to_string(),
        status: "PENDING".into(),
        status_url: url.clone(),
    };
    let mut response = (StatusCode::ACCEPTED, axum::Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&url) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    if replayed {
        response
            .headers_mut()
            .insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    }
    response
}

/// Submit a transaction for asynchronous processing.
#[utoipa::path(
    post,
    path = "/v1/transactions",
    tag = "transactions",
    params(
        ("Idempotency-Key" = String, Header,
         description = "Unique per transaction (1-128 printable ASCII). Same key and body: same \
         answer, enqueued once. Same key, other body: 409 `idempotency_key_reused`; a key of \
         another client: 409 `idempotency_key_foreign`.")
    ),
    request_body(content = TransactionBody, content_type = "application/json"),
    responses(
        (status = 202, description = "Accepted; poll `status_url`", body = Accepted,
         headers(("Location" = String, description = "The status URL"))),
        (status = 400, description = "Validation failed, malformed JSON or missing Idempotency-Key",
         body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "The debited (or balance-checked) account does not exist or is not the caller's", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Idempotency-Key reused with another body, or owned by another client", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "AWS unavailable; retry", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["transactions:write"]))
)]
#[tracing::instrument(skip_all, fields(sub = %principal.subject, transaction_id))]
pub async fn submit_transaction(
    State(state): State<ApiState>,
    Extension(principal): Extension<Principal>,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    // The rejection is answered (and audited) only after the Idempotency-Key is checked.
    body: Result<JsonBody, BodyRejection>,
) -> Result<Response, ApiError> {
    let peer = connect.map(|Extension(ConnectInfo(addr))| addr);
    let client = client_address(peer, &headers, &state.config().trusted_proxies);
    let mut audit = AuditDraft::new(&principal.subject, client);
    let result = submit(&state, &principal, &headers, body, &mut audit).await;
    if let Err(err) = &result
        && !audit.written
    {
        let decision = if err.status().is_server_error() {
            Decision::Failed
        } else {
            Decision::Refused
        };
        // Best effort: the refusal stands even if its record cannot be written.
        if let Err(error) = state.put_audit(&audit, decision, Some(err)).await {
            tracing::error!(%error, code = err.code(), "could not write the audit record of a refused request");
        }
    }
    result
}

async fn submit(
    state: &ApiState,
    principal: &Principal,
    headers: &HeaderMap,
    body: Result<JsonBody, BodyRejection>,
    audit: &mut AuditDraft,
) -> Result<Response, ApiError> {
    // By hand, not with `Authorized`: a missing scope is a refusal this handler audits.
    principal.require(SCOPE_TRANSACTIONS_WRITE)?;
    let key_text = headers
        .get(IDEMPOTENCY_KEY)
        .ok_or(ApiError::IdempotencyKeyMissing)?
        .to_str()
        .map_err(|_| {
            ApiError::invalid(
                "Idempotency-Key",
                "invalid_idempotency_key",
                "Idempotency-Key must be printable ASCII",
            )
        })?;
    let key = IdempotencyKey::parse(key_text).map_err(|reason| {
        let err = ValidationError::InvalidIdempotencyKey { reason };
        ApiError::invalid("Idempotency-Key", err.code(), err.to_string())
    })?;
    audit.idempotency_key = Some(key.as_str().to_owned());
    let JsonBody(bytes) = body?;
    audit.body_sha256 = Some(hex::encode(Sha256::digest(&bytes)));
    let mut request = parse_transaction_body(&bytes)?;
    let transaction_id = Uuid::now_v7();
    let now = audit.at;
    let timestamp = now.format(&Rfc3339).map_err(ApiError::internal)?;
    request.transaction_id = Some(transaction_id.hyphenated().to_string());
    request.timestamp = Some(timestamp.clone());
    request.idempotency_key = Some(key.as_str().to_owned());
    // Exactly the worker's validation.
    let mut tx = request
        .validate()
        .map_err(|e| ApiError::from_validation(&e))?;
    authorize::authorize_submission(state, principal, &mut tx).await?;
    let message = tx.to_json().map_err(ApiError::internal)?;
    let digest = canonical_sha256(&tx);
    audit.body_sha256 = Some(digest.clone());

    let group = message_group(&tx);
    let record = IngestRecord {
        key: &key,
        transaction_id,
        digest: &digest,
        subject: &principal.subject,
        message: &message,
        group: &group,
        created_at: now,
        sweep_after: state.config().sweep_after,
    };
    // The audit record of an accepted request is one item of the ingest transaction.
    audit.transaction_id = Some(transaction_id);
    let audit_item = audit.item(Decision::Accepted, None)?;
    let recorded = ingest_store::record(state.ledger(), &record, audit_item).await?;
    match recorded {
        Recorded::New => {
            audit.written = true;
            tracing::Span::current()
                .record("transaction_id", tracing::field::display(transaction_id));
            // The record (with its audit record) is durable: the transaction is accepted even
            // if this send fails, because the sweeper sends the stored message later.
            if let Err(error) = send_message(
                state.sqs(),
                state.queue_url(),
                &message,
                &group,
                transaction_id,
            )
            .await
            {
                tracing::warn!(%error, "SendMessage failed after the ingest record; the sweeper will send it");
            }
            tracing::info!(kind = tx.kind.as_str(), "transaction accepted");
            Ok(accepted(transaction_id, false))
        }
        Recorded::Existing {
            transaction_id: existing,
            body_sha256,
            subject,
        } => {
            audit.transaction_id = None;
            if subject != principal.subject {
                return Err(ApiError::IdempotencyKeyForeign);
            }
            if body_sha256 != digest {
                return Err(ApiError::IdempotencyKeyReused);
            }
            tracing::Span::current().record("transaction_id", tracing::field::display(existing));
            audit.transaction_id = Some(existing);
            // A replay is answered only once it is audited (the client can simply retry).
            state.put_audit(audit, Decision::Replayed, None).await?;
            audit.written = true;
            Ok(accepted(existing, true))
        }
    }
}

/// SendMessage of a stored message (the API and the sweeper).
#[tracing::instrument(skip_all, fields(%transaction_id))]
pub async fn send_message(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    message: &str,
    group: &str,
    transaction_id: Uuid,
) -> Result<(), ballast_aws::AwsError> {
    let mut send = sqs
        .send_message()
        .queue_url(queue_url)
        .message_body(message);
    if queue_url.ends_with(".fifo") {
        send = send
            .message_group_id(group)
            .message_deduplication_id(transaction_id.simple().to_string());
    }
    send.send().await.classify("sqs:SendMessage")?;
    Ok(())
}

/// A transaction's status and result.
#[utoipa::path(
    get,
    path = "/v1/transactions/{id}",
    tag = "transactions",
    params(("id" = String, Path, description = "The transaction id")),
    responses(
        (status = 200, description = "PENDING, or the recorded result", body = TransactionStatus),
        (status = 400, description = "Not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown transaction, or not the caller's (same answer)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["transactions:read"]))
)]
#[tracing::instrument(skip_all, fields(sub = %principal.subject, transaction_id = %id))]
pub async fn get_transaction(
    State(state): State<ApiState>,
    Authorized { principal, .. }: Authorized<TransactionsRead>,
    Path(id): Path<String>,
) -> Result<axum::Json<TransactionStatus>, ApiError> {
    let transaction_id = Uuid::try_parse(&id)
        .ok()
        .filter(|u| !u.is_nil() && id.len() == 36)
        .ok_or_else(|| {
            ApiError::invalid(
                "id",
                "invalid_transaction_id",
                "the transaction id is not a UUID",
            )
        })?;
    if let Some(result) = state.ledger().get_result(transaction_id).await? {
        authorize::authorize_result(&state, &principal, &result).await?;
        return Ok(axum::Json(TransactionStatus::from_result(result)));
    }
    let submitted = ingest_store::submitted(state.ledger(), transaction_id)
        .await?
        .ok_or_else(|| authorize::transaction_not_found(transaction_id))?;
    authorize::authorize_pending(&state, &principal, transaction_id, &submitted).await?;
    Ok(axum::Json(TransactionStatus::pending(
        transaction_id.hyphenated().to_string(),
        submitted.created_at,
    )))
}
