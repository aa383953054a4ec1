//! The sweeper: sends ingest records whose SendMessage never happened.
//!
//! The API answers `202` once its ingest record is durable and sends the message right after.
//! If the process dies between the two (or SendMessage fails), the record still carries its
//! pending marker: `pending_shard` (`P#0`..`P#7`, from a hash of the key) and `pending_due`
//! (fixed-width UTC time, record time + `--sweep-after`). The sparse GSI [`PENDING_INDEX`]
//! (`pending_shard`, `pending_due`) holds only records that carry the marker, so the sweeper
//! finds candidates with one Query per shard and never scans the table; the shards spread the
//! index's write load over several partitions.
//!
//! For each record that is due the sweeper reads the ledger result (`TXN#<id>`, consistent):
//! - a result exists: the transaction is settled, the marker is removed (conditional on
//!   `pending_due` being unchanged);
//! - none yet: it claims the record by moving `pending_due` forward (conditional update, so that
//!   of several sweepers exactly one sends; the delay doubles with every attempt, up to one
//!   hour, so that a long queue backlog does not grow by re-sends), then sends the stored
//!   message. A re-send of a message that was in fact delivered is harmless: the ledger applies
//!   each idempotency key once.
//!
//! Settled records are therefore cleaned lazily, off the request path: one GetItem and one
//! UpdateItem per accepted transaction, `--sweep-after` after it was accepted.

use std::time::Duration;

use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::AttributeValue;
use ballast_aws::{AwsError, SdkResultExt, classify};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::ingest::send_message;
use crate::ledger::{Ledger, LedgerError, sort_timestamp};
use crate::transaction::IdempotencyKey;

/// The sparse GSI of ingest records not yet known to be settled.
pub const PENDING_INDEX: &str = "pending";
/// Number of `pending_shard` values.
pub const PENDING_SHARDS: u8 = 8;
/// Default grace period before a record without a result is sent again.
pub const DEFAULT_SWEEP_AFTER: Duration = Duration::from_secs(30);
/// Default pause between two sweeps.
pub const DEFAULT_SWEEP_INTERVAL: Duration = Duration::from_secs(10);
/// Longest delay between two re-sends of the same record.
pub const MAX_SWEEP_BACKOFF: Duration = Duration::from_secs(3600);
/// Records handled per sweep at most (the next sweep continues).
const MAX_PER_SWEEP: usize = 1000;
/// Query page size.
const PAGE: i32 = 100;

use crate::store::{Item, s};

/// Why a sweep failed.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// An AWS call failed.
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// Reading the ledger result failed.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// A time outside the representable range.
    #[error("time out of range: {0}")]
    Time(String),
    /// An ingest record without a field the sweeper needs.
    #[error("corrupt ingest record {pk}: missing or invalid `{field}`")]
    Corrupt {
        /// The record.
        pk: String,
        /// The field.
        field: &'static str,
    },
}

/// The pending shard of a key: `P#<n>`, n from the key's SHA-256.
pub fn pending_shard(key: &IdempotencyKey) -> String {
    let digest = Sha256::digest(key.as_str().as_bytes());
    let n = digest.first().copied().unwrap_or(0) % PENDING_SHARDS;
    format!("P#{n}")
}

/// `pending_due` for a record written (or claimed) at `at`, due `after` later.
pub fn pending_due(at: OffsetDateTime, after: Duration) -> Result<String, SweepError> {
    let due = time::Duration::try_from(after)
        .ok()
        .and_then(|d| at.checked_add(d))
        .ok_or_else(|| SweepError::Time(format!("{at} + {after:?}")))?;
    sort_timestamp(due).map_err(|e| SweepError::Time(e.to_string()))
}

/// The delay before the next re-send after `sweeps` earlier ones: `after`·2^sweeps, capped.
pub fn backoff(after: Duration, sweeps: u32) -> Duration {
    let backoff = ballast_runtime::Backoff {
        base: after,
        max: MAX_SWEEP_BACKOFF,
    };
    backoff.delay(sweeps.saturating_add(1))
}

/// What one sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Records sent again.
    pub resent: u64,
    /// Records found settled; their marker was removed.
    pub settled: u64,
    /// Records another sweeper claimed first.
    pub skipped: u64,
    /// Records that failed (logged; retried by a later sweep).
    pub failed: u64,
}

/// Finds and re-sends unsettled ingest records (see the module docs).
#[derive(Debug, Clone)]
pub struct Sweeper {
    ledger: Ledger,
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    after: Duration,
}

enum Handled {
    Resent,
    Settled,
    Skipped,
}

impl Sweeper {
    /// A sweeper over the ledger's transactions table and the queue; records are re-sent once
    /// they are `after` old (then with a doubling delay).
    pub fn new(
        ledger: Ledger,
        sqs: aws_sdk_sqs::Client,
        queue_url: impl Into<String>,
        after: Duration,
    ) -> Self {
        Sweeper {
            ledger,
            sqs,
            queue_url: queue_url.into(),
            after,
        }
    }

    /// One pass over every shard, as of `now` (injected so that tests need not wait).
    #[tracing::instrument(skip_all)]
    pub async fn sweep_once(&self, now: OffsetDateTime) -> Result<SweepReport, SweepError> {
        let now_key = sort_timestamp(now).map_err(|e| SweepError::Time(e.to_string()))?;
        let mut report = SweepReport::default();
        let mut handled = 0usize;
        for shard in 0..PENDING_SHARDS {
            let mut start = None;
            loop {
                let out = self
                    .ledger
                    .client()
                    .query()
                    .table_name(self.ledger.tables().transactions)
                    .index_name(PENDING_INDEX)
                    .key_condition_expression("pending_shard = :s AND pending_due <= :now")
                    .expression_attribute_values(":s", s(format!("P#{shard}")))
                    .expression_attribute_values(":now", s(&now_key))
                    .limit(PAGE)
                    .set_exclusive_start_key(start.take())
                    .send()
                    .await
                    .classify("dynamodb:Query")?;
                for item in out.items() {
                    handled += 1;
                    match self.handle(item, now).await {
                        Ok(Handled::Resent) => report.resent += 1,
                        Ok(Handled::Settled) => report.settled += 1,
                        Ok(Handled::Skipped) => report.skipped += 1,
                        Err(error) => {
                            tracing::warn!(%error, "sweeping an ingest record failed");
                            report.failed += 1;
                        }
                    }
                }
                start = out.last_evaluated_key().cloned();
                if start.is_none() || handled >= MAX_PER_SWEEP {
                    break;
                }
            }
            if handled >= MAX_PER_SWEEP {
                break;
            }
        }
        Ok(report)
    }

    async fn handle(&self, item: &Item, now: OffsetDateTime) -> Result<Handled, SweepError> {
        let pk = item
            .get("pk")
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default();
        let corrupt = |field| SweepError::Corrupt {
            pk: pk.clone(),
            field,
        };
        let field = |name: &'static str| {
            item.get(name)
                .and_then(|v| v.as_s().ok())
                .ok_or_else(|| corrupt(name))
        };
        let transaction_id =
            Uuid::try_parse(field("transaction_id")?).map_err(|_| corrupt("transaction_id"))?;
        let seen = field("pending_due")?.clone();
        let sweeps = item
            .get("sweeps")
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse::<u32>().ok())
            .unwrap_or(0);
        if self.ledger.get_result(transaction_id).await?.is_some() {
            let removed = self
                .ledger
                .client()
                .update_item()
                .table_name(self.ledger.tables().transactions)
                .key("pk", s(&pk))
                .update_expression("REMOVE pending_shard, pending_due")
                .condition_expression("pending_due = :seen")
                .expression_attribute_values(":seen", s(&seen))
                .send()
                .await;
            return match removed {
                Ok(_) => Ok(Handled::Settled),
                Err(err) => match err.as_service_error() {
                    Some(UpdateItemError::ConditionalCheckFailedException(_)) => {
                        Ok(Handled::Skipped)
                    }
                    _ => Err(classify("dynamodb:UpdateItem", err).into()),
                },
            };
        }
        let next = pending_due(now, backoff(self.after, sweeps.saturating_add(1)))?;
        // Claim before sending: of several sweepers exactly one passes the condition. A crash
        // after the claim only delays the send to the next due time.
        let claimed = self
            .ledger
            .client()
            .update_item()
            .table_name(self.ledger.tables().transactions)
            .key("pk", s(&pk))
            .update_expression(
                "SET pending_due = :next, sweeps = if_not_exists(sweeps, :zero) + :one",
            )
            .condition_expression("pending_due = :seen")
            .expression_attribute_values(":seen", s(&seen))
            .expression_attribute_values(":next", s(next))
            .expression_attribute_values(":zero", AttributeValue::N("0".into()))
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .send()
            .await;
        if let Err(err) = claimed {
            return match err.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(_)) => Ok(Handled::Skipped),
                _ => Err(classify("dynamodb:UpdateItem", err).into()),
            };
        }
        let message = field("message")?;
        let group = item
            .get("message_group")
            .and_then(|v| v.as_s().ok())
            .map_or("none", String::as_str);
        send_message(&self.sqs, &self.queue_url, message, group, transaction_id).await?;
        tracing::info!(%transaction_id, sweeps = sweeps + 1, "sent an unsettled ingest record again");
        Ok(Handled::Resent)
    }

    /// Sweeps every `interval` until `shutdown` fires.
    pub async fn run(&self, interval: Duration, shutdown: CancellationToken) {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = ticks.tick() => {}
            }
            match self.sweep_once(OffsetDateTime::now_utc()).await {
                Ok(report) if report != SweepReport::default() => {
                    tracing::info!(?report, "sweep");
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "sweep failed"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let after = Duration::from_secs(30);
        assert_eq!(backoff(after, 0), after);
        assert_eq!(backoff(after, 1), Duration::from_secs(60));
        assert_eq!(backoff(after, 3), Duration::from_secs(240));
        assert_eq!(backoff(after, 40), MAX_SWEEP_BACKOFF);
        assert_eq!(backoff(Duration::MAX, 2), MAX_SWEEP_BACKOFF);
    }

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
}
