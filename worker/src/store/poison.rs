//! The durable record of a poison (malformed) message.
//!
//! With a redrive policy on the queue, the consumer does not copy a poison message to the
//! dead-letter queue itself (a copy followed by a delete repeats the copy whenever the delete
//! or the answer to the copy is lost). It records why the message cannot be processed here and
//! gives the message straight back (visibility 0); SQS's redrive then *moves* it to the DLQ
//! after `maxReceiveCount` receives: exactly one DLQ entry per poison message.
//!
//! The record is an item of the transactions table keyed `POISON#<SQS message id>` (the DLQ
//! entry keeps its message id when SQS moves it, so an operator reading the DLQ finds the
//! reason with one GetItem). It holds the parse error's code and text, the SHA-256 of the body
//! and how often it was received. Writing it is idempotent (the same message id always gets
//! the same error), so every receive may write it again. Items outside `TXN#`/`IDEM#` are
//! ignored by `ballast-worker report`.

use ballast_aws::SdkResultExt;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::keys::{PK, poison_pk};
use super::{StoreError, opt_s, s};
use crate::ledger::{Ledger, sort_timestamp};
use crate::transaction::MalformedError;

/// Attribute of a poison record holding the parse error's code.
const REASON_CODE: &str = "reason_code";

/// Hex SHA-256 of a message body (the record never stores the body itself: it may be huge
/// or hold data that does not belong in the ledger).
pub fn body_sha256(body: &str) -> String {
    hex::encode(Sha256::digest(body.as_bytes()))
}

/// Writes (or rewrites) the poison record of `message_id`.
#[tracing::instrument(skip(ledger, body, error), fields(code = error.code()))]
pub async fn record(
    ledger: &Ledger,
    message_id: &str,
    body: &str,
    error: &MalformedError,
    receive_count: u32,
) -> Result<(), StoreError> {
    let now = sort_timestamp(OffsetDateTime::now_utc())?;
    ledger
        .client()
        .update_item()
        .table_name(ledger.tables().transactions)
        .key(PK, s(poison_pk(message_id)))
        .update_expression(
            "SET reason_code = :code, reason = :reason, body_sha256 = :sha, \
             last_seen = :now, receive_count = :count, \
             first_seen = if_not_exists(first_seen, :now)",
        )
        .expression_attribute_values(":code", s(error.code()))
        .expression_attribute_values(":reason", s(error.to_string()))
        .expression_attribute_values(":sha", s(body_sha256(body)))
        .expression_attribute_values(":now", s(now))
        .expression_attribute_values(
            ":count",
            aws_sdk_dynamodb::types::AttributeValue::N(receive_count.to_string()),
        )
        .send()
        .await
        .classify("dynamodb:UpdateItem")?;
    Ok(())
}

/// A poison record as an operator reads it (`ballast-worker dlq list|show`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PoisonRecord {
    /// The parse error's stable code, e.g. `malformed_json`.
    pub reason_code: String,
    /// The parse error's text.
    pub reason: Option<String>,
    /// Hex SHA-256 of the body the consumer saw.
    pub body_sha256: Option<String>,
    /// The receive count at the last write.
    pub receive_count: Option<u32>,
    /// When the consumer first recorded it (the ledger's sort timestamp).
    pub first_seen: Option<String>,
}

/// The poison record of `message_id`, if the consumer wrote one (a strongly consistent read:
/// the record is written before the message is given back).
#[tracing::instrument(skip(ledger), level = "debug")]
pub async fn read(ledger: &Ledger, message_id: &str) -> Result<Option<PoisonRecord>, StoreError> {
    let out = ledger
        .client()
        .get_item()
        .table_name(ledger.tables().transactions)
        .key(PK, s(poison_pk(message_id)))
        .consistent_read(true)
        .send()
        .await
        .classify("dynamodb:GetItem")?;
    Ok(out.item.map(|item| PoisonRecord {
        reason_code: opt_s(&item, REASON_CODE)
            .unwrap_or("poison record")
            .to_owned(),
        reason: opt_s(&item, "reason").map(str::to_owned),
        body_sha256: opt_s(&item, "body_sha256").map(str::to_owned),
        receive_count: item
            .get("receive_count")
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok()),
        first_seen: opt_s(&item, "first_seen").map(str::to_owned),
    }))
}

/// The reason code of the poison record of `message_id`, if the consumer wrote one.
pub async fn recorded_reason(
    ledger: &Ledger,
    message_id: &str,
) -> Result<Option<String>, StoreError> {
    Ok(read(ledger, message_id).await?.map(|r| r.reason_code))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_recorded_by_their_hash() {
        assert_eq!(
            body_sha256(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
