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
//!
//! The marker's layout and the DynamoDB calls live in [`crate::store::pending`].

use std::time::Duration;

use ballast_aws::AwsError;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use super::ingest::send_message;
use crate::ledger::{Ledger, LedgerError, sort_timestamp};
use crate::store::StoreError;
use crate::store::pending::{self, Claim, PendingRecord};
pub use crate::store::pending::{PENDING_INDEX, PENDING_SHARDS, pending_due, pending_shard};

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

/// Why a sweep failed.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// A DynamoDB call of the store failed, or a record is corrupt.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// SendMessage failed.
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// Reading the ledger result failed.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
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
        let now_key = sort_timestamp(now)?;
        let mut report = SweepReport::default();
        let mut handled = 0usize;
        for shard in 0..PENDING_SHARDS {
            let mut start = None;
            loop {
                let (records, next) =
                    pending::due(&self.ledger, shard, &now_key, PAGE, start.take()).await?;
                for record in records {
                    handled += 1;
                    let outcome = match record {
                        Ok(record) => self.handle(&record, now).await,
                        Err(corrupt) => Err(corrupt.into()),
                    };
                    match outcome {
                        Ok(Handled::Resent) => report.resent += 1,
                        Ok(Handled::Settled) => report.settled += 1,
                        Ok(Handled::Skipped) => report.skipped += 1,
                        Err(error) => {
                            tracing::warn!(%error, "sweeping an ingest record failed");
                            report.failed += 1;
                        }
                    }
                }
                start = next;
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

    async fn handle(
        &self,
        record: &PendingRecord,
        now: OffsetDateTime,
    ) -> Result<Handled, SweepError> {
        let transaction_id = record.transaction_id;
        if self.ledger.get_result(transaction_id).await?.is_some() {
            return Ok(match pending::settle(&self.ledger, record).await? {
                Claim::Won => Handled::Settled,
                Claim::Lost => Handled::Skipped,
            });
        }
        let next = pending_due(now, backoff(self.after, record.sweeps.saturating_add(1)))?;
        // Claim before sending: of several sweepers exactly one passes the condition. A crash
        // after the claim only delays the send to the next due time.
        if pending::claim(&self.ledger, record, next).await? == Claim::Lost {
            return Ok(Handled::Skipped);
        }
        let message = record
            .message
            .as_deref()
            .ok_or_else(|| StoreError::Corrupt {
                pk: record.pk.clone(),
                field: "message",
            })?;
        let group = record.group.as_deref().unwrap_or("none");
        send_message(&self.sqs, &self.queue_url, message, group, transaction_id).await?;
        tracing::info!(%transaction_id, sweeps = record.sweeps.saturating_add(1), "sent an unsettled ingest record again");
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
}
