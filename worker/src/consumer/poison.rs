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

use aws_sdk_dynamodb::types::AttributeValue;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::ledger::{Ledger, LedgerError, PK, sort_timestamp};
use crate::transaction::MalformedError;

/// Partition key prefix of poison records in the transactions table.
pub const POISON_PREFIX: &str = "POISON#";

/// `POISON#<message id>`.
pub fn poison_pk(message_id: &str) -> String {
    format!("{POISON_PREFIX}{message_id}")
}

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
) -> Result<(), LedgerError> {
    let now = sort_timestamp(OffsetDateTime::now_utc())?;
    ledger
        .client()
        .update_item()
        .table_name(ledger.tables().transactions)
        .key(PK, AttributeValue::S(poison_pk(message_id)))
        .update_expression(
            "SET reason_code = :code, reason = :reason, body_sha256 = :sha, \
             last_seen = :now, receive_count = :count, \
             first_seen = if_not_exists(first_seen, :now)",
        )
        .expression_attribute_values(":code", AttributeValue::S(error.code().to_owned()))
        .expression_attribute_values(":reason", AttributeValue::S(error.to_string()))
        .expression_attribute_values(":sha", AttributeValue::S(body_sha256(body)))
        .expression_attribute_values(":now", AttributeValue::S(now))
        .expression_attribute_values(":count", AttributeValue::N(receive_count.to_string()))
        .send()
        .await
        .map_err(|e| LedgerError::from_sdk("dynamodb:UpdateItem", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_hashes() {
        assert_eq!(poison_pk("m-1"), "POISON#m-1");
        assert_eq!(
            body_sha256(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
