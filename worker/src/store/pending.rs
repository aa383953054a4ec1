//! The sweeper's pending marker on `INGEST#` records and its DynamoDB calls: `pending_shard`
//! (`P#0`..`P#7`) and `pending_due` (fixed-width UTC time), indexed by the sparse GSI
//! [`PENDING_INDEX`]. The sweeper ([`crate::api::sweep`]) says how they are used.

use std::time::Duration;

use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::AttributeValue;
use ballast_aws::{SdkResultExt, classify};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use uuid::Uuid;

use super::keys::PK;
use super::{Item, StoreError, opt_s, s};
use crate::ledger::{Ledger, sort_timestamp};
use crate::transaction::IdempotencyKey;

/// The sparse GSI of ingest records not yet known to be settled.
pub const PENDING_INDEX: &str = "pending";
/// Number of `pending_shard` values.
pub const PENDING_SHARDS: u8 = 8;

/// The pending shard of a key: `P#<n>`, n from the key's SHA-256.
pub fn pending_shard(key: &IdempotencyKey) -> String {
    let digest = Sha256::digest(key.as_str().as_bytes());
    let n = digest.first().copied().unwrap_or(0) % PENDING_SHARDS;
    shard_key(n)
}

fn shard_key(shard: u8) -> String {
    format!("P#{shard}")
}

/// `pending_due` for a record written (or claimed) at `at`, due `after` later.
pub fn pending_due(at: OffsetDateTime, after: Duration) -> Result<String, StoreError> {
    let due = time::Duration::try_from(after)
        .ok()
        .and_then(|d| at.checked_add(d))
        .ok_or(StoreError::TimeOutOfRange { at, after })?;
    Ok(sort_timestamp(due)?)
}

/// An ingest record that is due, as the sweeper needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingRecord {
    /// Its `pk` (`INGEST#<key>`).
    pub pk: String,
    /// The transaction it carries.
    pub transaction_id: Uuid,
    /// The `pending_due` read: the claim and the settlement are conditional on it.
    pub pending_due: String,
    /// How often it was sent again.
    pub sweeps: u32,
    /// The stored SQS body (checked only once the record is claimed).
    pub message: Option<String>,
    /// The stored FIFO message group.
    pub group: Option<String>,
}

impl PendingRecord {
    fn from_item(item: &Item) -> Result<Self, StoreError> {
        let pk = opt_s(item, PK).unwrap_or_default().to_owned();
        let corrupt = |field| StoreError::Corrupt {
            pk: pk.clone(),
            field,
        };
        let transaction_id = opt_s(item, "transaction_id")
            .and_then(|t| Uuid::try_parse(t).ok())
            .ok_or_else(|| corrupt("transaction_id"))?;
        let pending_due = opt_s(item, "pending_due")
            .ok_or_else(|| corrupt("pending_due"))?
            .to_owned();
        let sweeps = item
            .get("sweeps")
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse::<u32>().ok())
            .unwrap_or(0);
        Ok(PendingRecord {
            transaction_id,
            pending_due,
            sweeps,
            message: opt_s(item, "message").map(str::to_owned),
            group: opt_s(item, "message_group").map(str::to_owned),
            pk,
        })
    }
}

/// One page of a shard's records due at `now_key` (a [`sort_timestamp`]); each record parsed
/// on its own (a corrupt one does not hide the others), and where the next page starts.
pub type DuePage = (Vec<Result<PendingRecord, StoreError>>, Option<Item>);

/// One Query of [`PENDING_INDEX`]: records of `shard` with `pending_due <= now_key`.
#[tracing::instrument(skip(ledger, start))]
pub async fn due(
    ledger: &Ledger,
    shard: u8,
    now_key: &str,
    limit: i32,
    start: Option<Item>,
) -> Result<DuePage, StoreError> {
    let out = ledger
        .client()
        .query()
        .table_name(ledger.tables().transactions)
        .index_name(PENDING_INDEX)
        .key_condition_expression("pending_shard = :s AND pending_due <= :now")
        .expression_attribute_values(":s", s(shard_key(shard)))
        .expression_attribute_values(":now", s(now_key))
        .limit(limit)
        .set_exclusive_start_key(start)
        .send()
        .await
        .classify("dynamodb:Query")?;
    let records = out.items().iter().map(PendingRecord::from_item).collect();
    Ok((records, out.last_evaluated_key().cloned()))
}

/// Whether a conditional update on a record won.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// The condition held: the update is done.
    Won,
    /// `pending_due` had changed: another sweeper got there first.
    Lost,
}

async fn conditional(
    ledger: &Ledger,
    record: &PendingRecord,
    update: &str,
    values: Vec<(&str, AttributeValue)>,
) -> Result<Claim, StoreError> {
    let mut request = ledger
        .client()
        .update_item()
        .table_name(ledger.tables().transactions)
        .key(PK, s(&record.pk))
        .update_expression(update)
        .condition_expression("pending_due = :seen")
        .expression_attribute_values(":seen", s(&record.pending_due));
    for (name, value) in values {
        request = request.expression_attribute_values(name, value);
    }
    match request.send().await {
        Ok(_) => Ok(Claim::Won),
        Err(err) => match err.as_service_error() {
            Some(UpdateItemError::ConditionalCheckFailedException(_)) => Ok(Claim::Lost),
            _ => Err(classify("dynamodb:UpdateItem", err).into()),
        },
    }
}

/// One UpdateItem: removes the pending marker of a settled record, if `pending_due` is still
/// the one read.
#[tracing::instrument(skip_all, fields(transaction_id = %record.transaction_id))]
pub async fn settle(ledger: &Ledger, record: &PendingRecord) -> Result<Claim, StoreError> {
    conditional(
        ledger,
        record,
        "REMOVE pending_shard, pending_due",
        Vec::new(),
    )
    .await
}

/// One UpdateItem: moves `pending_due` to `next` and counts the sweep, if `pending_due` is
/// still the one read (of several sweepers exactly one wins).
#[tracing::instrument(skip_all, fields(transaction_id = %record.transaction_id))]
pub async fn claim(
    ledger: &Ledger,
    record: &PendingRecord,
    next: String,
) -> Result<Claim, StoreError> {
    conditional(
        ledger,
        record,
        "SET pending_due = :next, sweeps = if_not_exists(sweeps, :zero) + :one",
        vec![
            (":next", s(next)),
            (":zero", AttributeValue::N("0".into())),
            (":one", AttributeValue::N("1".into())),
        ],
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_and_due_times() {
        for k in ["a", "b", "key-1", "x".repeat(128).as_str()] {
            let shard = pending_shard(&IdempotencyKey::parse(k).unwrap());
            let n: u8 = shard.strip_prefix("P#").unwrap().parse().unwrap();
            assert!(n < PENDING_SHARDS);
        }
        let at = OffsetDateTime::UNIX_EPOCH;
        let a = pending_due(at, Duration::from_secs(1)).unwrap();
        let b = pending_due(at, Duration::from_secs(10)).unwrap();
        assert!(a < b, "fixed-width times sort as strings");
        assert!(pending_due(at, Duration::MAX).is_err());
    }

    #[test]
    fn a_record_without_a_transaction_id_is_corrupt_and_named() {
        let item = Item::from([
            (PK.to_owned(), s("INGEST#k")),
            ("pending_due".to_owned(), s("x")),
        ]);
        let err = PendingRecord::from_item(&item).unwrap_err();
        assert!(
            matches!(&err, StoreError::Corrupt { pk, field: "transaction_id" } if pk == "INGEST#k"),
            "{err:?}"
        );
    }
}
