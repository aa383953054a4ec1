//! `POST /v1/transactions` and `GET /v1/transactions/{id}`: validation, durable idempotency
//! records and enqueueing.
//!
//! Ingest records live in the transactions table:
//! - `pk = INGEST#<idempotency key>`: `transaction_id`, `body_sha256` (of the canonical body),
//!   `subject`, `message` (the exact SQS body), `created_at`, `enqueued` (BOOL, set once
//!   SendMessage succeeded). Written with `attribute_not_exists(pk)` **before** enqueueing.
//! - `pk = INGESTID#<transaction id>`: `idempotency_key`, `created_at` (so that a status
//!   query can tell PENDING from unknown).
//!
//! A replay (same key, same canonical body, same client) answers with the stored transaction
//! id; it re-sends the stored message only if the first attempt never confirmed the
//! SendMessage (the ledger's own IDEM record makes a second delivery harmless).

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use axum::Extension;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ballast_aws::{SdkResultExt, classify};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use super::auth::{Principal, SCOPE_TRANSACTIONS_READ, SCOPE_TRANSACTIONS_WRITE};
use super::models::{Accepted, TransactionBody, TransactionStatus, parse_transaction_body};
use super::problem::{ApiError, Problem};
use super::{ApiState, authorize, read_body};
use crate::transaction::{IdempotencyKey, Transaction, ValidationError};

/// The idempotency header.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Set to `true` on answers that replay an earlier request.
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";

type Item = HashMap<String, AttributeValue>;

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn get_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

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
    let canonical = serde_json::Value::Object(map).to_string();
    hex::encode(Sha256::digest(canonical.as_bytes()))
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
         answer, enqueued once. Same key, other body: 409.")
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
        (status = 409, description = "Idempotency-Key reused with another body", body = Problem, content_type = "application/problem+json"),
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
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
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
    let bytes = read_body(&state, &headers, body).await?;
    let mut request = parse_transaction_body(&bytes)?;
    let transaction_id = Uuid::now_v7();
    let now = OffsetDateTime::now_utc();
    let timestamp = now
        .format(&Rfc3339)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    request.transaction_id = Some(transaction_id.hyphenated().to_string());
    request.timestamp = Some(timestamp.clone());
    request.idempotency_key = Some(key.as_str().to_owned());
    // Exactly the worker's validation.
    let mut tx = request
        .validate()
        .map_err(|e| ApiError::from_validation(&e))?;
    authorize::authorize_submission(&state, &principal, &mut tx).await?;
    let message = tx
        .to_json()
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let digest = canonical_sha256(&tx);

    match state
        .ingest_record(
            &key,
            transaction_id,
            &digest,
            &principal.subject,
            &message,
            &timestamp,
        )
        .await?
    {
        Recorded::New => {
            tracing::Span::current()
                .record("transaction_id", tracing::field::display(transaction_id));
            state.enqueue(&key, &message, &tx).await?;
            tracing::info!(kind = tx.kind.as_str(), "transaction accepted");
            Ok(accepted(transaction_id, false))
        }
        Recorded::Existing {
            transaction_id: existing,
            body_sha256,
            subject,
            message: stored,
            enqueued,
        } => {
            if body_sha256 != digest || subject != principal.subject {
                return Err(ApiError::IdempotencyKeyReused);
            }
            tracing::Span::current().record("transaction_id", tracing::field::display(existing));
            if !enqueued {
                tracing::info!(
                    "replay of an unconfirmed submission: enqueueing the stored message"
                );
                state.enqueue(&key, &stored, &tx).await?;
            }
            Ok(accepted(existing, true))
        }
    }
}

/// Result of the conditional ingest write.
enum Recorded {
    New,
    Existing {
        transaction_id: Uuid,
        body_sha256: String,
        subject: String,
        message: String,
        enqueued: bool,
    },
}

impl ApiState {
    async fn ingest_record(
        &self,
        key: &IdempotencyKey,
        transaction_id: Uuid,
        digest: &str,
        subject: &str,
        message: &str,
        created_at: &str,
    ) -> Result<Recorded, ApiError> {
        let ddb = self.ledger().client();
        let table = self.ledger().tables().transactions.to_owned();
        let id = transaction_id.hyphenated().to_string();
        // The id record first: an orphan (crash before the next put) is harmless.
        ddb.put_item()
            .table_name(&table)
            .item("pk", s(format!("INGESTID#{id}")))
            .item("idempotency_key", s(key.as_str()))
            .item("created_at", s(created_at))
            .send()
            .await
            .classify("dynamodb:PutItem")?;
        let result = ddb
            .put_item()
            .table_name(&table)
            .item("pk", s(format!("INGEST#{}", key.as_str())))
            .item("transaction_id", s(&id))
            .item("body_sha256", s(digest))
            .item("subject", s(subject))
            .item("message", s(message))
            .item("created_at", s(created_at))
            .item("enqueued", AttributeValue::Bool(false))
            .condition_expression("attribute_not_exists(pk)")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let err = match result {
            Ok(_) => return Ok(Recorded::New),
            Err(err) => err,
        };
        let old = match err.as_service_error() {
            Some(PutItemError::ConditionalCheckFailedException(e)) => e.item().cloned(),
            _ => return Err(classify("dynamodb:PutItem", err).into()),
        };
        let item = match old {
            Some(item) => item,
            None => ddb
                .get_item()
                .table_name(&table)
                .key("pk", s(format!("INGEST#{}", key.as_str())))
                .consistent_read(true)
                .send()
                .await
                .classify("dynamodb:GetItem")?
                .item
                .ok_or_else(|| ApiError::Unavailable("ingest record changed; retry".into()))?,
        };
        let corrupt = || ApiError::Internal(format!("corrupt ingest record for key {key}"));
        let existing = get_s(&item, "transaction_id")
            .and_then(|t| Uuid::try_parse(t).ok())
            .ok_or_else(corrupt)?;
        Ok(Recorded::Existing {
            transaction_id: existing,
            body_sha256: get_s(&item, "body_sha256").ok_or_else(corrupt)?.to_owned(),
            subject: get_s(&item, "subject").unwrap_or_default().to_owned(),
            message: get_s(&item, "message").ok_or_else(corrupt)?.to_owned(),
            enqueued: matches!(item.get("enqueued"), Some(AttributeValue::Bool(true))),
        })
    }

    /// SendMessage, then marks the ingest record as enqueued (best effort: a failure there only
    /// means a replay would enqueue a duplicate that the ledger ignores).
    async fn enqueue(
        &self,
        key: &IdempotencyKey,
        message: &str,
        tx: &Transaction,
    ) -> Result<(), ApiError> {
        let mut send = self
            .sqs()
            .send_message()
            .queue_url(self.queue_url())
            .message_body(message);
        if self.queue_url().ends_with(".fifo") {
            let group = tx
                .accounts()
                .next()
                .map_or_else(|| "none".to_owned(), |a| a.to_string());
            send = send
                .message_group_id(group)
                .message_deduplication_id(tx.transaction_id.simple().to_string());
        }
        send.send().await.classify("sqs:SendMessage")?;
        let marked = self
            .ledger()
            .client()
            .update_item()
            .table_name(self.ledger().tables().transactions)
            .key("pk", s(format!("INGEST#{}", key.as_str())))
            .update_expression("SET enqueued = :t")
            .expression_attribute_values(":t", AttributeValue::Bool(true))
            .send()
            .await
            .classify("dynamodb:UpdateItem");
        if let Err(error) = marked {
            tracing::warn!(%error, "could not mark the ingest record as enqueued");
        }
        Ok(())
    }
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
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<axum::Json<TransactionStatus>, ApiError> {
    principal.require(SCOPE_TRANSACTIONS_READ)?;
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
    let item = state
        .ledger()
        .client()
        .get_item()
        .table_name(state.ledger().tables().transactions)
        .key("pk", s(format!("INGESTID#{}", transaction_id.hyphenated())))
        .consistent_read(true)
        .send()
        .await
        .classify("dynamodb:GetItem")?
        .item
        .ok_or_else(|| ApiError::NotFound(format!("no transaction {transaction_id}")))?;
    authorize::authorize_pending(&state, &principal, transaction_id, &item).await?;
    Ok(axum::Json(TransactionStatus::pending(
        transaction_id.hyphenated().to_string(),
        get_s(&item, "created_at").map(str::to_owned),
    )))
}
