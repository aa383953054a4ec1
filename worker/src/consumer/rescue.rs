//! The DLQ rescue pass: processable messages that reached the dead-letter queue are applied
//! through the ledger and deleted; poison stays for humans.
//!
//! # Why
//!
//! SQS counts a receive the worker never completes: a ReceiveMessage whose answer is lost on
//! the way (up to ten messages at once), or a worker SIGKILLed while it holds a message. When
//! all of a message's `maxReceiveCount` receives are lost that way, SQS's redrive moves a
//! valid, even an already settled, message to the DLQ. No consumer can prevent a move it never
//! sees, so the remedy is after the fact: this pass reads the DLQ and settles what it finds.
//!
//! # What one pass does with each DLQ message
//!
//! - **Poison** (the body is malformed the way the consumer rejects it, see
//!   [`parse_transaction`], or the consumer recorded `POISON#<message id>`): left in the DLQ for
//!   an operator, and made invisible for [`RescueConfig::poison_hold`] (12 h by default, the
//!   SQS maximum) so that later passes do not read it again and again.
//! - **Processable** (a valid transaction, or an invalid one that has a transaction id): applied
//!   through the same idempotent ledger path as the consumer ([`Ledger::apply`],
//!   [`Ledger::record_rejection`]). Already settled: a ledger duplicate, nothing moves. Not
//!   settled: applied exactly once (COMPLETED, DECLINED or REJECTED recorded). Only once the
//!   ledger has answered, so the effect is durable, is the message deleted from the DLQ.
//! - **Transient failure** (throttling, 5xx, timeouts): left alone; it becomes visible again
//!   after [`RescueConfig::visibility`] and the next pass retries it.
//! - **Fatal failure** (the ledger refuses the request itself): treated like poison (held,
//!   logged), because retrying it every pass cannot help.
//!
//! Each received message stays invisible while the pass handles it, so a pass ends (it never
//! reads the same message twice) and two rescuers running at once (two workers, or a worker and
//! the operator's `ballast-worker rescue-dlq`) rarely see the same message. When they do (an
//! expired visibility, a lost delete answer) the ledger's idempotency makes the second
//! application a duplicate that moves nothing.
//!
//! A dry run receives the same messages, reports what it would do (looking results up with a
//! consistent read) and makes every message visible again at the end; it writes nothing.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::types::Message;
use ballast_aws::{AwsError, SdkResultExt};
use tokio_util::sync::CancellationToken;

use super::deleter::{self, Ack};
use super::{MAX_VISIBILITY_TIMEOUT, deadline_after};
use crate::ledger::{Ledger, Outcome};
use crate::observability::Metrics;
use crate::store::{StoreError, poison};
use crate::transaction::{ParseError, parse_transaction};

/// Default hold of a poison message in the DLQ between two looks (the SQS maximum, 12 h).
pub const DEFAULT_POISON_HOLD: Duration = MAX_VISIBILITY_TIMEOUT;
/// Default visibility of a DLQ message while a pass handles it.
pub const DEFAULT_VISIBILITY: Duration = Duration::from_secs(30);
/// Default bound on the messages one pass reads.
pub const DEFAULT_MAX_PER_PASS: usize = 1000;

/// Settings of a rescue pass.
#[derive(Debug, Clone)]
pub struct RescueConfig {
    /// The dead-letter queue.
    pub dlq_url: String,
    /// How long a poison message stays invisible before a later pass looks at it again.
    pub poison_hold: Duration,
    /// Visibility of a message while the pass handles it; a transiently failed message is
    /// retried after it.
    pub visibility: Duration,
    /// At most this many messages per pass.
    pub max_per_pass: usize,
    /// Report only: apply nothing, delete nothing, release every message at the end.
    pub dry_run: bool,
}

impl RescueConfig {
    /// Defaults for `dlq_url`.
    pub fn new(dlq_url: impl Into<String>) -> Self {
        RescueConfig {
            dlq_url: dlq_url.into(),
            poison_hold: DEFAULT_POISON_HOLD,
            visibility: DEFAULT_VISIBILITY,
            max_per_pass: DEFAULT_MAX_PER_PASS,
            dry_run: false,
        }
    }
}

/// What the pass did (or, dry, would do) with one DLQ message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Applied now: money moved (COMPLETED) and the message was deleted.
    Completed,
    /// Applied now: DECLINED recorded, deleted.
    Declined,
    /// Applied now: REJECTED recorded, deleted.
    Rejected,
    /// Applied now: held for review by the risk rules (HELD recorded), deleted.
    Held,
    /// Already settled: nothing moved, deleted.
    Settled,
    /// Poison: left in the DLQ, held invisible.
    Poison,
    /// The ledger refused the request itself: left in the DLQ, held invisible.
    Failed,
    /// A transient failure: left for the next pass.
    Transient,
    /// Dry run: not settled, would be applied.
    WouldApply,
    /// Dry run: invalid with a transaction id, not settled, would get a REJECTED result.
    WouldReject,
}

impl Verdict {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Completed => "completed",
            Verdict::Held => "held",
            Verdict::Declined => "declined",
            Verdict::Rejected => "rejected",
            Verdict::Settled => "settled",
            Verdict::Poison => "poison",
            Verdict::Failed => "failed",
            Verdict::Transient => "transient",
            Verdict::WouldApply => "would_apply",
            Verdict::WouldReject => "would_reject",
        }
    }

    /// Whether the message left the DLQ (its effect is durable).
    pub fn rescued(self) -> bool {
        matches!(
            self,
            Verdict::Completed
                | Verdict::Held
                | Verdict::Declined
                | Verdict::Rejected
                | Verdict::Settled
        )
    }
}

/// One DLQ message and its verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rescued {
    /// The SQS message id (the one the `POISON#` record is keyed by).
    pub message_id: String,
    /// The transaction id, when the body has a usable one.
    pub transaction_id: Option<uuid::Uuid>,
    /// What happened.
    pub verdict: Verdict,
    /// Why (error text of poison, failures).
    pub detail: Option<String>,
}

/// Everything one pass saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RescueReport {
    /// One line per message, in the order received.
    pub messages: Vec<Rescued>,
}

impl RescueReport {
    /// How many messages got `verdict`.
    pub fn count(&self, verdict: Verdict) -> usize {
        self.messages
            .iter()
            .filter(|m| m.verdict == verdict)
            .count()
    }

    /// Messages that left the DLQ.
    pub fn rescued(&self) -> usize {
        self.messages.iter().filter(|m| m.verdict.rescued()).count()
    }
}

/// Why a pass stopped early.
#[derive(Debug, thiserror::Error)]
pub enum RescueError {
    /// ReceiveMessage on the DLQ failed.
    #[error("cannot read the dead-letter queue {dlq_url}: {source}")]
    Receive {
        /// The DLQ.
        dlq_url: String,
        /// The SQS error.
        #[source]
        source: AwsError,
    },
}

/// The rescuer: cheap to clone.
#[derive(Debug, Clone)]
pub struct Rescuer {
    sqs: aws_sdk_sqs::Client,
    ledger: Ledger,
    config: RescueConfig,
    metrics: Arc<Metrics>,
}

impl Rescuer {
    /// A rescuer over `config.dlq_url`, counting into `metrics`.
    pub fn new(
        sqs: aws_sdk_sqs::Client,
        ledger: Ledger,
        mut config: RescueConfig,
        metrics: Arc<Metrics>,
    ) -> Self {
        config.poison_hold = config.poison_hold.min(MAX_VISIBILITY_TIMEOUT);
        config.visibility = config
            .visibility
            .clamp(Duration::from_secs(1), MAX_VISIBILITY_TIMEOUT);
        Rescuer {
            sqs,
            ledger,
            config,
            metrics,
        }
    }

    /// The settings.
    pub fn config(&self) -> &RescueConfig {
        &self.config
    }

    /// One pass over the DLQ: until a receive comes back empty, `max_per_pass` messages were
    /// read, or `shutdown` fires. A message already handled in this pass is not counted twice.
    #[tracing::instrument(skip_all, fields(dlq_url = %self.config.dlq_url, dry_run = self.config.dry_run))]
    pub async fn pass(&self, shutdown: &CancellationToken) -> Result<RescueReport, RescueError> {
        let mut report = RescueReport::default();
        let mut seen: HashSet<String> = HashSet::new();
        let mut release: Vec<String> = Vec::new();
        let outcome = loop {
            if shutdown.is_cancelled() || seen.len() >= self.config.max_per_pass {
                break Ok(());
            }
            let batch = tokio::select! {
                batch = self.receive() => batch,
                () = shutdown.cancelled() => break Ok(()),
            };
            let batch = match batch {
                Ok(batch) => batch,
                Err(error) => break Err(error),
            };
            let fresh: Vec<Message> = batch
                .into_iter()
                .filter(|m| seen.insert(m.message_id().unwrap_or_default().to_owned()))
                .collect();
            if fresh.is_empty() {
                break Ok(());
            }
            for message in fresh {
                let rescued = self.handle(&message).await;
                self.metrics.record_rescue(
                    rescued.verdict.label(),
                    rescued.verdict.rescued() && !self.config.dry_run,
                    matches!(rescued.verdict, Verdict::Poison | Verdict::Failed)
                        && !self.config.dry_run,
                );
                if self.config.dry_run
                    && let Some(handle) = message.receipt_handle()
                {
                    release.push(handle.to_owned());
                }
                report.messages.push(rescued);
            }
        };
        // A dry run changes nothing: what it read becomes visible again at once.
        for handle in release {
            self.set_visibility(&handle, Duration::ZERO).await;
        }
        let rescued = report.rescued();
        if !report.messages.is_empty() {
            tracing::info!(
                read = report.messages.len(),
                rescued,
                poison = report.count(Verdict::Poison),
                transient = report.count(Verdict::Transient),
                "DLQ rescue pass"
            );
        }
        outcome.map(|()| report)
    }

    /// Passes every `every` until `shutdown` fires (the consumer runs this next to its receive
    /// loop). A failed pass is logged and the next one tried.
    pub async fn run(self, every: Duration, shutdown: CancellationToken) {
        let every = every.max(Duration::from_secs(1));
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                () = shutdown.cancelled() => return,
            }
            if let Err(error) = self.pass(&shutdown).await {
                tracing::warn!(%error, "DLQ rescue pass failed; retrying at the next one");
            }
        }
    }

    #[tracing::instrument(skip(self), level = "debug")]
    async fn receive(&self) -> Result<Vec<Message>, RescueError> {
        let visibility = if self.config.dry_run {
            // Held for the whole dry pass, released at its end.
            self.config.visibility.max(Duration::from_secs(300))
        } else {
            self.config.visibility
        };
        let out = self
            .sqs
            .receive_message()
            .queue_url(&self.config.dlq_url)
            .max_number_of_messages(10)
            // A short long-poll: SQS's short poll samples a subset of servers and may answer
            // empty although messages exist, which would end the pass early.
            .wait_time_seconds(1)
            .visibility_timeout(seconds(visibility))
            .send()
            .await
            .classify("sqs:ReceiveMessage")
            .map_err(|source| RescueError::Receive {
                dlq_url: self.config.dlq_url.clone(),
                source,
            })?;
        Ok(out.messages.unwrap_or_default())
    }

    #[tracing::instrument(skip_all, fields(message_id = message.message_id().unwrap_or("")))]
    async fn handle(&self, message: &Message) -> Rescued {
        let message_id = message.message_id().unwrap_or_default().to_owned();
        let body = message.body().unwrap_or_default();
        let parsed = parse_transaction(body.as_bytes());
        let transaction_id = match &parsed {
            Ok(tx) => Some(tx.transaction_id),
            Err(ParseError::Invalid { transaction_id, .. }) => Some(*transaction_id),
            Err(ParseError::Malformed(_)) => None,
        };
        let mut rescued = Rescued {
            message_id: message_id.clone(),
            transaction_id,
            verdict: Verdict::Poison,
            detail: None,
        };
        if let Err(ParseError::Malformed(error)) = &parsed {
            rescued.detail = Some(format!("{}: {error}", error.code()));
            return self.hold(message, rescued).await;
        }
        // The consumer's recorded verdict wins: it saw this message id as poison.
        match poison::recorded_reason(&self.ledger, &message_id).await {
            Ok(Some(reason)) => {
                rescued.detail = Some(reason);
                return self.hold(message, rescued).await;
            }
            Ok(None) => {}
            Err(error) => return self.transient_or_failed(message, rescued, error).await,
        }
        if self.config.dry_run {
            return self.dry(rescued, parsed).await;
        }
        let result = match &parsed {
            Ok(tx) => self.ledger.apply(tx).await,
            Err(ParseError::Invalid {
                transaction_id,
                idempotency_key,
                error,
            }) => {
                self.ledger
                    .record_rejection(*transaction_id, idempotency_key.as_ref(), error)
                    .await
            }
            // Handled above.
            Err(ParseError::Malformed(_)) => return self.hold(message, rescued).await,
        };
        match result {
            Ok(outcome) => {
                rescued.verdict = match outcome {
                    Outcome::Completed => Verdict::Completed,
                    Outcome::Declined(_) => Verdict::Declined,
                    Outcome::Rejected(_) => Verdict::Rejected,
                    Outcome::Duplicate => Verdict::Settled,
                    Outcome::Held => Verdict::Held,
                };
                tracing::info!(
                    transaction_id = ?rescued.transaction_id,
                    verdict = rescued.verdict.label(),
                    "rescued a DLQ message"
                );
                // The effect is durable: only now may the message go.
                if let Some(receipt_handle) = message.receipt_handle() {
                    let ack = Ack {
                        receipt_handle: receipt_handle.to_owned(),
                        message_id,
                        valid_until: deadline_after(self.config.visibility / 2),
                    };
                    deleter::delete_until_done(&self.sqs, &self.config.dlq_url, ack).await;
                }
                rescued
            }
            Err(error) => {
                self.transient_or_failed(message, rescued, StoreError::Ledger(error))
                    .await
            }
        }
    }

    /// Dry run of a processable message: settled or not, by a consistent read of its result.
    async fn dry(
        &self,
        mut rescued: Rescued,
        parsed: Result<crate::transaction::Transaction, ParseError>,
    ) -> Rescued {
        let Some(transaction_id) = rescued.transaction_id else {
            return rescued;
        };
        match self.ledger.get_result(transaction_id).await {
            Ok(Some(_)) => rescued.verdict = Verdict::Settled,
            Ok(None) => {
                rescued.verdict = if parsed.is_ok() {
                    Verdict::WouldApply
                } else {
                    Verdict::WouldReject
                };
            }
            Err(error) => {
                rescued.verdict = if error.is_transient() {
                    Verdict::Transient
                } else {
                    Verdict::Failed
                };
                rescued.detail = Some(error.to_string());
            }
        }
        rescued
    }

    async fn transient_or_failed(
        &self,
        message: &Message,
        mut rescued: Rescued,
        error: StoreError,
    ) -> Rescued {
        rescued.detail = Some(error.to_string());
        if error.is_transient() {
            // Left invisible for `visibility`; the next pass retries it.
            tracing::warn!(%error, "transient failure rescuing a DLQ message; the next pass retries it");
            rescued.verdict = Verdict::Transient;
            return rescued;
        }
        tracing::error!(%error, "the store refuses this DLQ message; leaving it for an operator");
        rescued.verdict = Verdict::Failed;
        self.hold(message, rescued).await
    }

    /// Leaves a message in the DLQ for an operator, invisible for the poison hold.
    async fn hold(&self, message: &Message, rescued: Rescued) -> Rescued {
        tracing::warn!(
            detail = rescued.detail.as_deref().unwrap_or(""),
            verdict = rescued.verdict.label(),
            "leaving a DLQ message for an operator"
        );
        if !self.config.dry_run
            && let Some(receipt_handle) = message.receipt_handle()
        {
            self.set_visibility(receipt_handle, self.config.poison_hold)
                .await;
        }
        rescued
    }

    #[tracing::instrument(skip(self, receipt_handle), level = "debug")]
    async fn set_visibility(&self, receipt_handle: &str, timeout: Duration) {
        let result = self
            .sqs
            .change_message_visibility()
            .queue_url(&self.config.dlq_url)
            .receipt_handle(receipt_handle)
            .visibility_timeout(seconds(timeout))
            .send()
            .await
            .classify("sqs:ChangeMessageVisibility");
        if let Err(error) = result {
            // Harmless: the message comes back when its current visibility ends.
            tracing::warn!(%error, "cannot change the visibility of a DLQ message");
        }
    }
}

fn seconds(duration: Duration) -> i32 {
    i32::try_from(duration.as_secs()).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_durable_verdicts_leave_the_dlq() {
        for verdict in [
            Verdict::Completed,
            Verdict::Held,
            Verdict::Declined,
            Verdict::Rejected,
            Verdict::Settled,
        ] {
            assert!(verdict.rescued(), "{verdict:?}");
        }
        for verdict in [
            Verdict::Poison,
            Verdict::Failed,
            Verdict::Transient,
            Verdict::WouldApply,
            Verdict::WouldReject,
        ] {
            assert!(!verdict.rescued(), "{verdict:?}");
        }
    }

    #[test]
    fn holds_are_capped_at_the_sqs_maximum() {
        let sdk = aws_sdk_sqs::Config::builder()
            .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
            .build();
        let dynamodb = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .build();
        let rescuer = Rescuer::new(
            aws_sdk_sqs::Client::from_conf(sdk),
            Ledger::new(aws_sdk_dynamodb::Client::from_conf(dynamodb), "a", "t"),
            RescueConfig {
                poison_hold: Duration::from_secs(100_000),
                visibility: Duration::ZERO,
                ..RescueConfig::new("q")
            },
            Arc::new(Metrics::new()),
        );
        assert_eq!(rescuer.config().poison_hold, MAX_VISIBILITY_TIMEOUT);
        assert_eq!(rescuer.config().visibility, Duration::from_secs(1));
        assert_eq!(seconds(Duration::from_secs(u64::MAX)), i32::MAX);
    }
}
