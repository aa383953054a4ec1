//! The ingest items of the transactions table and their DynamoDB calls: `INGEST#<key>` (the
//! idempotency record, with the sweeper's pending marker) and `INGESTID#<transaction id>`.
//! The API's module docs ([`crate::api::ingest`]) say why they exist and how they are used.

use std::time::Duration;

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem};
use ballast_aws::{SdkResultExt, classify};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use super::keys::{PK, ingest_id_pk, ingest_pk};
use super::pending::{pending_due, pending_shard};
use super::{Item, StoreError, opt_s, s};
use crate::ledger::Ledger;
use crate::transaction::IdempotencyKey;

/// How often the ingest transaction is retried when DynamoDB cancels it for a conflict with a
/// concurrent transaction on the same key (the retry then finds the winner's record).
const CONFLICT_ATTEMPTS: u32 = 4;

/// What the ingest transaction writes.
#[derive(Debug, Clone)]
pub struct IngestRecord<'a> {
    /// The idempotency key.
    pub key: &'a IdempotencyKey,
    /// The id the server assigned.
    pub transaction_id: Uuid,
    /// SHA-256 (hex) of the canonical body.
    pub digest: &'a str,
    /// The caller's `sub`.
    pub subject: &'a str,
    /// The exact SQS message body.
    pub message: &'a str,
    /// The FIFO message group.
    pub group: &'a str,
    /// When the request arrived.
    pub created_at: OffsetDateTime,
    /// When the sweeper may send the message again if no result exists by then.
    pub sweep_after: Duration,
}

/// Result of the conditional ingest write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// This request's record (and its audit item) is durable.
    New,
    /// Another request holds the key: its record.
    Existing {
        /// The winner's transaction id.
        transaction_id: Uuid,
        /// The winner's canonical body digest.
        body_sha256: String,
        /// The winner's `sub`.
        subject: String,
    },
}

fn put(table: &str, item: Item, condition: Option<&str>) -> Result<TransactWriteItem, StoreError> {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .set_condition_expression(condition.map(str::to_owned))
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .build()
        .map_err(StoreError::build("ingest write"))?;
    Ok(TransactWriteItem::builder().put(put).build())
}

/// One TransactWriteItems: `INGEST#` (conditional), `INGESTID#`, and `audit` (the request's
/// audit item, see [`super::audit`]). On a lost race, the winner's record (one more GetItem
/// only if DynamoDB did not return the old item with the cancellation).
#[tracing::instrument(skip_all, fields(transaction_id = %record.transaction_id))]
pub async fn record(
    ledger: &Ledger,
    record: &IngestRecord<'_>,
    audit: Item,
) -> Result<Recorded, StoreError> {
    let ddb = ledger.client();
    let table = ledger.tables().transactions.to_owned();
    let id = record.transaction_id.hyphenated().to_string();
    let created_at = record.created_at.format(&Rfc3339)?;
    let due = pending_due(record.created_at, record.sweep_after)?;
    let ingest_pk = ingest_pk(record.key.as_str());
    let ingest = Item::from([
        (PK.to_owned(), s(&ingest_pk)),
        ("transaction_id".to_owned(), s(&id)),
        ("body_sha256".to_owned(), s(record.digest)),
        ("subject".to_owned(), s(record.subject)),
        ("message".to_owned(), s(record.message)),
        ("message_group".to_owned(), s(record.group)),
        ("created_at".to_owned(), s(&created_at)),
        ("pending_shard".to_owned(), s(pending_shard(record.key))),
        ("pending_due".to_owned(), s(due)),
    ]);
    let by_id = Item::from([
        (PK.to_owned(), s(ingest_id_pk(record.transaction_id))),
        ("idempotency_key".to_owned(), s(record.key.as_str())),
        ("created_at".to_owned(), s(&created_at)),
    ]);
    let items = vec![
        put(&table, ingest, Some("attribute_not_exists(pk)"))?,
        put(&table, by_id, Some("attribute_not_exists(pk)"))?,
        put(&table, audit, None)?,
    ];
    let mut attempt = 0u32;
    let old = loop {
        attempt = attempt.saturating_add(1);
        // The token makes an SDK retry of a transaction that did commit succeed again
        // instead of failing its own condition.
        let result = ddb
            .transact_write_items()
            .set_transact_items(Some(items.clone()))
            .client_request_token(&id)
            .send()
            .await;
        let err = match result {
            Ok(_) => return Ok(Recorded::New),
            Err(err) => err,
        };
        let reasons = match err.as_service_error() {
            Some(TransactWriteItemsError::TransactionCanceledException(e)) => {
                e.cancellation_reasons().to_vec()
            }
            _ => return Err(classify("dynamodb:TransactWriteItems", err).into()),
        };
        let first = reasons.first();
        if first.and_then(|r| r.code()) == Some("ConditionalCheckFailed") {
            break first.and_then(|r| r.item()).cloned();
        }
        let conflict = reasons
            .iter()
            .any(|r| matches!(r.code(), Some("TransactionConflict" | "ThrottlingError")));
        if conflict && attempt < CONFLICT_ATTEMPTS {
            // Backoff between retries, not synchronisation: the concurrent writer's outcome
            // is read from DynamoDB on the next attempt.
            let pause = Duration::from_millis(10u64.saturating_mul(u64::from(attempt)));
            tokio::time::sleep(pause).await;
            continue;
        }
        if conflict {
            return Err(StoreError::IngestContended);
        }
        return Err(StoreError::IngestCancelled {
            transaction_id: record.transaction_id,
            codes: reasons
                .iter()
                .map(|r| r.code().map(str::to_owned))
                .collect(),
        });
    };
    let item = match old {
        Some(item) => item,
        None => ddb
            .get_item()
            .table_name(&table)
            .key(PK, s(&ingest_pk))
            .consistent_read(true)
            .send()
            .await
            .classify("dynamodb:GetItem")?
            .item
            .ok_or(StoreError::IngestVanished)?,
    };
    let corrupt = |field| StoreError::Corrupt {
        pk: ingest_pk.clone(),
        field,
    };
    let existing = opt_s(&item, "transaction_id")
        .and_then(|t| Uuid::try_parse(t).ok())
        .ok_or_else(|| corrupt("transaction_id"))?;
    if existing == record.transaction_id {
        // Our own write, committed by an attempt whose answer was lost.
        return Ok(Recorded::New);
    }
    Ok(Recorded::Existing {
        transaction_id: existing,
        body_sha256: opt_s(&item, "body_sha256")
            .ok_or_else(|| corrupt("body_sha256"))?
            .to_owned(),
        subject: opt_s(&item, "subject").unwrap_or_default().to_owned(),
    })
}

/// What `INGESTID#<transaction id>` says about a transaction that may have no result yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submitted {
    /// The idempotency key it was submitted with (names its `INGEST#` record).
    pub idempotency_key: Option<String>,
    /// When the API accepted it (RFC 3339).
    pub created_at: Option<String>,
}

/// One consistent GetItem of `INGESTID#<transaction_id>`; `None` when the API never accepted
/// that id.
#[tracing::instrument(skip(ledger))]
pub async fn submitted(
    ledger: &Ledger,
    transaction_id: Uuid,
) -> Result<Option<Submitted>, StoreError> {
    let item = ledger
        .client()
        .get_item()
        .table_name(ledger.tables().transactions)
        .key(PK, s(ingest_id_pk(transaction_id)))
        .consistent_read(true)
        .send()
        .await
        .classify("dynamodb:GetItem")?
        .item;
    Ok(item.map(|item| Submitted {
        idempotency_key: opt_s(&item, "idempotency_key").map(str::to_owned),
        created_at: opt_s(&item, "created_at").map(str::to_owned),
    }))
}

/// The `sub` that submitted the request with idempotency key `key` (one consistent GetItem of
/// `INGEST#<key>`, projected to `subject`); `None` when there is no record or no subject.
#[tracing::instrument(skip_all)]
pub async fn submitter(ledger: &Ledger, key: &str) -> Result<Option<String>, StoreError> {
    let item = ledger
        .client()
        .get_item()
        .table_name(ledger.tables().transactions)
        .key(PK, s(ingest_pk(key)))
        .projection_expression("#subject")
        .expression_attribute_names("#subject", "subject")
        .consistent_read(true)
        .send()
        .await
        .classify("dynamodb:GetItem")?
        .item;
    Ok(item.and_then(|i| opt_s(&i, "subject").map(str::to_owned)))
}
