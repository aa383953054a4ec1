//! The due-payment runner: one pass ([`BillRunner::run_due`], `ballast-worker bills run-due`)
//! or a pass every interval inside `serve` ([`BillRunner::run`]).
//!
//! For each due index entry of each shard (oldest first), the runner reads the schedule
//! (consistently) and, while its next occurrence is due at or before today:
//! 1. enqueues the PAYMENT through the ingest path ([`enqueue`]) as the schedule's owner (the
//!    debited account must still be the owner's, as for any API request), with the idempotency
//!    key `bill:<schedule id>:<date>`;
//! 2. advances the schedule with one TransactWriteItems conditional on the `next_due` it read
//!    ([`bills_store::advance`]).
//!
//! A crash between 1 and 2 leaves the schedule on the same occurrence: the next pass enqueues it
//! again, which the ingest record of the same key answers as a replay (the same transaction,
//! nothing sent), then advances. Two runners at once both enqueue (one records, the other
//! replays) and exactly one advance passes its condition. The ledger's `IDEM#` record makes even
//! a second delivery of the message harmless. A schedule that missed several periods pays them
//! one by one, oldest first.
//!
//! A pass reads every unsettled due entry up to today, a page of [`DUE_PAGE`] at a time
//! ([`bills_store::due_page`]: only unsettled entries are in the index it reads), so its reads
//! grow with what is due, never with past occurrences, and nothing due is left for a later pass
//! except what failed.
//!
//! An occurrence the ingest path refuses for good (the account was closed or is no longer the
//! owner's, a validation error) is recorded in the schedule's past with the problem code, and
//! the schedule moves on; an unavailable dependency leaves it for the next pass.

use std::sync::Arc;
use std::time::Duration;

use ballast_runtime::Clock;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use time::{Date, OffsetDateTime};
use tokio_util::sync::CancellationToken;

use super::{Occurrence, Schedule, ScheduleStatus};
use crate::api::ApiError;
use crate::api::audit::AuditDraft;
use crate::api::auth::{Principal, SCOPE_TRANSACTIONS_WRITE};
use crate::api::ingest::{Enqueued, IngestTarget, enqueue};
use crate::ledger::Ledger;
use crate::observability::OutcomeLabels;
use crate::store::StoreError;
use crate::store::bills::{self as bills_store, Advance, BILL_DUE_SHARDS, DueEntry, Outcome};
use crate::store::keys::bill_due_sk;
use crate::transaction::{AmountText, IdempotencyKey, Subject, TransactionRequest};

/// Default pause between two passes inside `serve`.
pub const DEFAULT_BILLS_INTERVAL: Duration = Duration::from_secs(60);
/// Due entries read per Query (a pass pages on until a shard has no more due).
pub const DUE_PAGE: i32 = 100;
/// What the runner's audit records name as the client address.
pub const RUNNER_CLIENT: &str = "bill-runner";

/// Why a pass failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A DynamoDB call of the store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunReport {
    /// Occurrences whose PAYMENT this pass recorded and sent.
    pub enqueued: u64,
    /// Occurrences whose PAYMENT was already recorded (a crash or another runner): not sent.
    pub replayed: u64,
    /// Occurrences the ingest path refused for good (recorded in the schedule's past).
    pub refused: u64,
    /// Occurrences another runner (or a cancel) advanced first.
    pub lost: u64,
    /// Entries whose schedule no longer expects them (cancelled, advanced, gone).
    pub stale: u64,
    /// Occurrences that failed transiently (logged; the next pass retries).
    pub failed: u64,
    /// The pass stopped early for shutdown, between two schedules; the next pass (of this
    /// runner or another) carries on where it stopped.
    pub interrupted: bool,
}

/// Enqueues due bill payments (see the module docs).
#[derive(Debug, Clone)]
pub struct BillRunner {
    ledger: Ledger,
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    sweep_after: Duration,
    metrics: Option<Family<OutcomeLabels, Counter>>,
    due_page: i32,
}

impl BillRunner {
    /// A runner enqueuing to `queue_url`; `sweep_after` as the API's (the ingest records it
    /// writes are the sweeper's too).
    pub fn new(
        ledger: Ledger,
        sqs: aws_sdk_sqs::Client,
        queue_url: impl Into<String>,
        sweep_after: Duration,
    ) -> Self {
        BillRunner {
            ledger,
            sqs,
            queue_url: queue_url.into(),
            sweep_after,
            metrics: None,
            due_page: DUE_PAGE,
        }
    }

    /// The same runner reading `entries` due entries per Query (at least 2, so that a page
    /// always moves past the entry it starts from; tests use small pages).
    pub fn with_due_page(mut self, entries: i32) -> Self {
        self.due_page = entries.max(2);
        self
    }

    /// The same runner counting each pass's occurrences by outcome into `payments`
    /// (`enqueued`, `replayed`, `refused`, `lost`, `stale`, `failed`).
    pub fn with_metrics(mut self, payments: Family<OutcomeLabels, Counter>) -> Self {
        self.metrics = Some(payments);
        self
    }

    fn target(&self) -> IngestTarget<'_> {
        IngestTarget {
            ledger: &self.ledger,
            sqs: &self.sqs,
            queue_url: &self.queue_url,
            sweep_after: self.sweep_after,
        }
    }

    /// One pass as of `now` (injected so that tests move time without waiting).
    pub async fn run_due(&self, now: OffsetDateTime) -> Result<RunReport, RunError> {
        self.run_due_until(now, &CancellationToken::new()).await
    }

    /// [`BillRunner::run_due`] that stops between two schedules once `stop` fires, so that a
    /// long pass does not hold up shutdown. Stopping there is safe at any point: an occurrence
    /// is enqueued under its schedule-derived key before its schedule advances, and the next
    /// pass replays whatever was not advanced.
    #[tracing::instrument(skip_all)]
    pub async fn run_due_until(
        &self,
        now: OffsetDateTime,
        stop: &CancellationToken,
    ) -> Result<RunReport, RunError> {
        let today = now.to_offset(time::UtcOffset::UTC).date();
        let mut report = RunReport::default();
        'shards: for shard in 0..BILL_DUE_SHARDS {
            // Pages continue from the last key read (inclusive, see `due_page`): that entry,
            // when still listed, was handled on the previous page and is skipped.
            let mut from: Option<String> = None;
            loop {
                let page = bills_store::due_page(
                    &self.ledger,
                    shard,
                    today,
                    from.as_deref(),
                    self.due_page,
                )
                .await?;
                let mut new_entries = 0_usize;
                for entry in page.entries {
                    if stop.is_cancelled() {
                        report.interrupted = true;
                        break 'shards;
                    }
                    match entry {
                        Ok(entry)
                            if from.as_deref()
                                == Some(bill_due_sk(entry.due, entry.schedule_id).as_str()) => {}
                        Ok(entry) => {
                            new_entries = new_entries.saturating_add(1);
                            self.schedule(&entry, today, &mut report).await;
                        }
                        Err(error) => {
                            new_entries = new_entries.saturating_add(1);
                            tracing::error!(%error, "corrupt bill due entry");
                            report.failed = report.failed.saturating_add(1);
                        }
                    }
                }
                match page.last {
                    Some(last) if page.more && new_entries > 0 => from = Some(last),
                    _ => break,
                }
            }
        }
        self.record(&report);
        Ok(report)
    }

    /// Counts a pass's outcomes into the metrics, when given.
    fn record(&self, report: &RunReport) {
        let Some(metrics) = &self.metrics else { return };
        for (outcome, count) in [
            ("enqueued", report.enqueued),
            ("replayed", report.replayed),
            ("refused", report.refused),
            ("lost", report.lost),
            ("stale", report.stale),
            ("failed", report.failed),
        ] {
            metrics
                .get_or_create(&OutcomeLabels { outcome })
                .inc_by(count);
        }
    }

    /// Pays the due occurrences of one schedule, oldest first.
    async fn schedule(&self, entry: &DueEntry, today: Date, report: &mut RunReport) {
        let mut expected = entry.due;
        let mut first = true;
        while expected <= today {
            let schedule = match bills_store::schedule(
                &self.ledger,
                &entry.owner,
                entry.schedule_id,
            )
            .await
            {
                Ok(s) => s,
                Err(error) => {
                    tracing::warn!(%error, schedule_id = %entry.schedule_id, "reading a bill schedule failed");
                    report.failed = report.failed.saturating_add(1);
                    return;
                }
            };
            let current = schedule
                .filter(|s| s.status == ScheduleStatus::Active && s.next_due == Some(expected));
            let Some(schedule) = current else {
                if first {
                    report.stale = report.stale.saturating_add(1);
                    if let Err(error) = bills_store::drop_due(&self.ledger, entry).await {
                        tracing::warn!(%error, "marking a stale bill due entry failed");
                    }
                } else {
                    report.lost = report.lost.saturating_add(1);
                }
                return;
            };
            first = false;
            let occurrence = match self
                .enqueue_occurrence(&entry.owner, &schedule, expected)
                .await
            {
                Ok(o) => o,
                Err(error) => {
                    tracing::warn!(%error, schedule_id = %schedule.schedule_id, "enqueueing a bill payment failed; the next pass retries");
                    report.failed = report.failed.saturating_add(1);
                    return;
                }
            };
            let next_due = schedule.occurrence(schedule.next_index.saturating_add(1));
            let refused = occurrence.occurrence.refused.is_some();
            let replayed = occurrence.replayed;
            let advance = Advance {
                schedule: &schedule,
                occurrence: occurrence.occurrence,
                next_due,
            };
            match bills_store::advance(&self.ledger, &entry.owner, &advance).await {
                Ok(Outcome::Won) => {
                    let counter = if refused {
                        &mut report.refused
                    } else if replayed {
                        &mut report.replayed
                    } else {
                        &mut report.enqueued
                    };
                    *counter = counter.saturating_add(1);
                    tracing::info!(schedule_id = %schedule.schedule_id, date = %super::format_date(expected), refused, replayed, "bill occurrence handled");
                }
                Ok(Outcome::Lost) => {
                    report.lost = report.lost.saturating_add(1);
                    return;
                }
                Err(error) => {
                    tracing::warn!(%error, schedule_id = %schedule.schedule_id, "advancing a bill schedule failed; the next pass replays the occurrence");
                    report.failed = report.failed.saturating_add(1);
                    return;
                }
            }
            match next_due {
                Some(next) => expected = next,
                None => return,
            }
        }
    }

    /// Step 1 of an occurrence alone: enqueues the occurrence of `schedule` due on `date`
    /// through the ingest path, without advancing the schedule (what a runner that dies before
    /// step 2 leaves behind; tests use it to stage that crash). A refusal for good is `Ok` with
    /// [`Occurrence::refused`] set.
    pub async fn enqueue_occurrence(
        &self,
        owner: &Subject,
        schedule: &Schedule,
        date: Date,
    ) -> Result<Paid, ApiError> {
        let key = IdempotencyKey::parse(&schedule.key_for(date))
            .map_err(|reason| ApiError::internal(format!("bill key: {reason}")))?;
        let principal = Principal::new(owner.clone(), SCOPE_TRANSACTIONS_WRITE);
        let request = TransactionRequest {
            kind: Some("PAYMENT".to_owned()),
            source_account: Some(schedule.source_account.as_str().to_owned()),
            target_account: Some(schedule.target_account.as_str().to_owned()),
            amount: Some(AmountText::from_decimal(schedule.amount)),
            currency: Some(schedule.currency.code().to_owned()),
            ..TransactionRequest::default()
        };
        let mut audit = AuditDraft::new(&principal.subject, RUNNER_CLIENT.to_owned());
        let (transaction_id, replayed, refused) = match enqueue(
            self.target(),
            &principal,
            &key,
            request,
            &mut audit,
        )
        .await
        {
            Ok(Enqueued::New(id)) => (Some(id), false, None),
            Ok(Enqueued::Replayed(id)) => (Some(id), true, None),
            Err(err) if err.status().is_client_error() => {
                let code = err
                    .problem()
                    .reason
                    .unwrap_or_else(|| err.code().to_owned());
                tracing::warn!(schedule_id = %schedule.schedule_id, %code, "a bill occurrence was refused");
                (None, false, Some(code))
            }
            Err(err) => return Err(err),
        };
        Ok(Paid {
            occurrence: Occurrence {
                date,
                transaction_id,
                refused,
            },
            replayed,
        })
    }

    /// A pass every `interval` on `clock`'s time until `shutdown` fires.
    pub async fn run(
        &self,
        clock: Arc<dyn Clock>,
        interval: Duration,
        shutdown: CancellationToken,
    ) {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = ticks.tick() => {}
            }
            let now = OffsetDateTime::from(clock.now().to_system_time());
            match self.run_due_until(now, &shutdown).await {
                Ok(report) if report != RunReport::default() => {
                    tracing::info!(?report, "bill payments pass");
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "bill payments pass failed"),
            }
        }
    }
}

/// An enqueued (or refused) occurrence and whether its PAYMENT was a replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paid {
    /// What happened to it.
    pub occurrence: Occurrence,
    /// The ingest record existed already (same key, same body, same owner).
    pub replayed: bool,
}
