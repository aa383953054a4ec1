//! The SQS consumer: long polling, bounded concurrency, exactly-once application through the
//! ledger, batched deletes, dead-lettering of malformed messages and backoff of transient
//! failures.
//!
//! A message is deleted only after its effect is durable: the ledger's result is written, or
//! (malformed, no redrive policy) the copy in the dead-letter queue was accepted.
//!
//! # What reaches the dead-letter queue
//!
//! The DLQ holds only what could not be processed, once. SQS's redrive moves a message to the
//! DLQ when a receive would exceed the queue's `maxReceiveCount`, so the consumer makes sure
//! that the redrive only ever sees messages it cannot process:
//!
//! - **Poison (malformed) messages** are not copied by the consumer when the queue has a
//!   redrive policy: a copy followed by a delete repeats the copy whenever the delete or the
//!   copy's answer is lost. Instead the parse error is recorded durably first (see
//!   [`poison`]: `POISON#<message id>` in the transactions table), then the message is made
//!   visible again at once; after `maxReceiveCount` receives SQS *moves* it (one DLQ entry,
//!   same message id, so its reason is one GetItem away). Only without a redrive policy does
//!   the consumer copy the message to the configured DLQ and delete it (at least once).
//! - **Settled messages** (the ledger holds their result) are deleted through the batched
//!   deleter, which retries failed deletes while the receipt handle is still valid. A settled
//!   message received again is a ledger duplicate and is deleted again. On the last receive
//!   before the redrive (`ApproximateReceiveCount >= maxReceiveCount`) the delete is not left
//!   to the batch: it is made at once and retried while the message is kept invisible.
//! - **Transient failures** give the message back with backoff, except on the last receive:
//!   there the consumer keeps the message invisible (heartbeat) and retries in-process until
//!   the ledger answers, instead of letting the redrive take a message that can be processed.
//! - **Fatal failures** (the ledger refuses the request itself) are left to the redrive: such
//!   a message cannot be processed, and the DLQ is where an operator looks at it.
//!
//! What the consumer cannot see (a receive whose answer was lost, a worker killed while it
//! held the message) still counts at SQS, so the redrive may move a processable message after
//! all; the [`rescue`] pass settles those from the DLQ through the same idempotent ledger.
//!
//! The task boundary is panic-safe: each message's bookkeeping (its concurrency slot and the
//! in-flight count that scale-in protection follows) lives in a guard released on drop, so a
//! panicking or aborted task cannot leak it. A panic is caught, counted
//! (`ballast_worker_panics_total`) and treated like a transient failure (visible again after a
//! backoff), except on the message's last delivery (receive count at the redrive
//! `maxReceiveCount`), where the transaction gets a REJECTED result with reason code
//! `internal_error` before the message is deleted, so the client gets an answer.
//!
//! Every ReceiveMessage is bounded by the long-poll timeouts ([`ConsumerConfig::timeouts`]) and
//! reported to the [`watchdog::Watchdog`], which fails `/readyz` and finally stops the worker
//! when receives stop completing.

pub mod deleter;
pub mod recent;
pub mod rescue;
pub mod watchdog;

#[cfg(test)]
mod panic_tests;

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::{MessageAttributeValue, MessageSystemAttributeName, QueueAttributeName};
use ballast_aws::{AwsError, AwsTimeouts, SdkResultExt};
use futures::FutureExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::breaker::{Admission, Breaker, BreakerConfig};
use crate::ledger::{DeclineReason, Ledger, LedgerError, Outcome};
use crate::observability::Metrics;
use crate::store::{StoreError, poison};
use crate::transaction::{IdempotencyKey, MalformedError, ParseError, parse_transaction};
use deleter::Ack;
use recent::RecentKeys;
use watchdog::{Watchdog, WatchdogConfig};

/// Message attribute carrying the parse error of a dead-lettered message.
pub const PARSE_ERROR_ATTRIBUTE: &str = "ballast-parse-error";
/// Message attribute carrying the SQS message id the dead-lettered copy came from.
pub const SOURCE_MESSAGE_ID_ATTRIBUTE: &str = "ballast-source-message-id";
/// The last delivery of a message whose processing panics, when the queue has no redrive
/// `maxReceiveCount`: without a bound a panicking message would be retried forever.
pub const FALLBACK_MAX_RECEIVES: u32 = 5;
/// The longest visibility timeout SQS allows (12 hours); larger values read from the queue are
/// capped so that deadlines derived from it cannot overflow.
pub const MAX_VISIBILITY_TIMEOUT: Duration = Duration::from_secs(43_200);

/// Consumer failures that stop it.
#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    /// An SQS call needed to start failed.
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// The queue's RedrivePolicy cannot be read.
    #[error("queue {queue_url} has an unreadable RedrivePolicy {policy:?}: {detail}")]
    RedrivePolicy {
        /// The queue.
        queue_url: String,
        /// The policy text.
        policy: String,
        /// What is wrong.
        detail: String,
    },
}

/// Runtime settings of the consumer.
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// The transactions queue.
    pub queue_url: String,
    /// Where malformed messages are copied when the queue has no redrive policy; `None`
    /// leaves them on the queue.
    pub dlq_url: Option<String>,
    /// The queue's redrive `maxReceiveCount`: `Some` means SQS moves a message to the DLQ
    /// after that many receives, so malformed messages are left to the redrive and the last
    /// receive of a processable message is never given back. It is also the delivery on which
    /// a message whose processing panics gets a REJECTED `internal_error` result
    /// ([`FALLBACK_MAX_RECEIVES`] when `None`).
    pub max_receive_count: Option<u32>,
    /// Messages in flight at once.
    pub concurrency: usize,
    /// Long-polling wait, 0..=20 s.
    pub wait_time_seconds: i32,
    /// Messages per ReceiveMessage, 1..=10.
    pub max_messages: i32,
    /// The queue's visibility timeout: caps retry backoff and the shutdown drain.
    pub visibility_timeout: Duration,
    /// How long an acknowledgement waits for others to share a DeleteMessageBatch.
    pub delete_linger: Duration,
    /// With fewer than a batch of messages in flight, how long to wait for more free slots so
    /// one ReceiveMessage carries more than one message. (At saturation the consumer waits for
    /// a whole batch of free slots.)
    pub receive_batch_window: Duration,
    /// Circuit breaker settings.
    pub breaker: BreakerConfig,
    /// Idempotency keys remembered once settled, so that a duplicate this worker has already
    /// settled is deleted without a DynamoDB call (0 turns it off).
    pub recent_keys: usize,
    /// Client-side timeouts; ReceiveMessage gets `wait_time_seconds` + the long-poll margin.
    pub timeouts: AwsTimeouts,
    /// Receive-loop watchdog bounds.
    pub watchdog: WatchdogConfig,
}

impl ConsumerConfig {
    /// Production defaults for `queue_url`.
    pub fn new(queue_url: impl Into<String>) -> Self {
        ConsumerConfig {
            queue_url: queue_url.into(),
            dlq_url: None,
            max_receive_count: None,
            concurrency: 32,
            wait_time_seconds: 20,
            max_messages: 10,
            visibility_timeout: Duration::from_secs(30),
            // Both well under the visibility timeout: a late delete only risks a redelivery,
            // which the ledger turns into a no-op.
            delete_linger: Duration::from_secs(2),
            receive_batch_window: Duration::from_millis(500),
            breaker: BreakerConfig::default(),
            recent_keys: recent::DEFAULT_CAPACITY,
            timeouts: AwsTimeouts::default(),
            watchdog: WatchdogConfig::default(),
        }
    }
}

/// What GetQueueAttributes tells about the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueInfo {
    /// VisibilityTimeout.
    pub visibility_timeout: Duration,
    /// The redrive dead-letter queue URL.
    pub dlq_url: Option<String>,
    /// The redrive maxReceiveCount.
    pub max_receive_count: Option<u32>,
}

/// Reads the queue's visibility timeout and redrive policy (resolving the DLQ ARN to a URL).
#[tracing::instrument(skip(sqs))]
pub async fn discover_queue(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
) -> Result<QueueInfo, ConsumerError> {
    let out = sqs
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::VisibilityTimeout)
        .attribute_names(QueueAttributeName::RedrivePolicy)
        .send()
        .await
        .classify("sqs:GetQueueAttributes")?;
    let attrs = out.attributes();
    let visibility_timeout = attrs
        .and_then(|a| a.get(&QueueAttributeName::VisibilityTimeout))
        .and_then(|v| v.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(30))
        .min(MAX_VISIBILITY_TIMEOUT);
    let mut info = QueueInfo {
        visibility_timeout,
        dlq_url: None,
        max_receive_count: None,
    };
    let Some(policy) = attrs.and_then(|a| a.get(&QueueAttributeName::RedrivePolicy)) else {
        return Ok(info);
    };
    let bad = |detail: &str| ConsumerError::RedrivePolicy {
        queue_url: queue_url.to_owned(),
        policy: policy.clone(),
        detail: detail.to_owned(),
    };
    let value: serde_json::Value = serde_json::from_str(policy).map_err(|e| bad(&e.to_string()))?;
    let arn = value
        .get("deadLetterTargetArn")
        .and_then(|v| v.as_str())
        .ok_or_else(|| bad("no deadLetterTargetArn"))?;
    info.max_receive_count = value.get("maxReceiveCount").and_then(|v| {
        v.as_u64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            .and_then(|n| u32::try_from(n).ok())
    });
    // arn:aws:sqs:<region>:<account>:<name>
    let parts: Vec<&str> = arn.split(':').collect();
    let [_, _, _, _, account, name] = parts.as_slice() else {
        return Err(bad("deadLetterTargetArn is not an SQS queue ARN"));
    };
    let url = sqs
        .get_queue_url()
        .queue_name(*name)
        .queue_owner_aws_account_id(*account)
        .send()
        .await
        .classify("sqs:GetQueueUrl")?
        .queue_url;
    info.dlq_url = url;
    Ok(info)
}

/// Backoff before a transiently failed message becomes visible again: 2^receive_count
/// seconds, capped below the queue's visibility timeout (at least one second).
pub fn retry_backoff(receive_count: u32, visibility_timeout: Duration) -> Duration {
    let backoff = ballast_runtime::Backoff {
        base: Duration::from_secs(1),
        max: visibility_timeout
            .saturating_sub(Duration::from_secs(1))
            .max(Duration::from_secs(1)),
    };
    backoff.delay(receive_count.saturating_add(1))
}

enum Disposition {
    /// Durable: delete the message.
    Delete(&'static str),
    /// Transient failure: make it visible again later.
    Retry(Failure),
    /// Poison under a redrive policy, its reason recorded (or not, said by the failure): make
    /// it visible again at once so that SQS's redrive moves it to the DLQ.
    Release(Failure),
    /// Fatal failure: leave it for the redrive policy.
    Leave(Failure),
}

/// Why a message was not settled on this receive: what the log line of its
/// [`Disposition`] says.
#[derive(Debug, thiserror::Error)]
enum Failure {
    /// The ledger could not apply or record the transaction.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The poison record could not be written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Copying a malformed message to the dead-letter queue failed.
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// The message is poison and its reason is recorded.
    #[error("{code}: {0}", code = .0.code())]
    Poison(MalformedError),
    /// The message is poison, but its record could not be written (e.g. no such table): the
    /// redrive still moves it, and the reason is only in this log line.
    #[error("{}: {malformed} (poison record not written: {unwritten})", .malformed.code())]
    PoisonUnrecorded {
        /// Why the message is poison.
        malformed: MalformedError,
        /// Why the record was not written.
        unwritten: StoreError,
    },
    /// A malformed message on a queue without a dead-letter queue: nowhere to put it.
    #[error("malformed message ({0}) and no dead-letter queue configured")]
    NoDeadLetterQueue(MalformedError),
    /// The dead-letter copy's attributes could not be built (a bug).
    #[error("cannot build dead-letter attributes: {0}")]
    DeadLetterAttributes(#[source] aws_sdk_sqs::error::BuildError),
}

/// A test-only fault: called with each message body before it is processed (it may panic).
#[cfg(test)]
type Fault = Arc<dyn Fn(&str) + Send + Sync>;

struct Shared {
    sqs: aws_sdk_sqs::Client,
    ledger: Ledger,
    config: ConsumerConfig,
    metrics: Arc<Metrics>,
    breaker: Arc<Breaker>,
    activity: watch::Sender<usize>,
    recent: RecentKeys,
    watchdog: Arc<Watchdog>,
    #[cfg(test)]
    fault: Option<Fault>,
}

/// One message in flight: its concurrency slot and its share of the in-flight count (which
/// scale-in protection follows). Released on drop, so a task that panics or is aborted
/// cannot leak either.
struct InFlight {
    shared: Arc<Shared>,
    _permit: OwnedSemaphorePermit,
}

impl InFlight {
    fn new(shared: Arc<Shared>, permit: OwnedSemaphorePermit) -> Self {
        shared.started();
        InFlight {
            shared,
            _permit: permit,
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.shared.finished();
    }
}

/// The text of a caught panic payload.
fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "non-text panic payload".to_owned()
    }
}

/// `now + after`, without overflowing (a year out when the sum does not fit).
fn deadline_after(after: Duration) -> tokio::time::Instant {
    let now = tokio::time::Instant::now();
    now.checked_add(after)
        .or_else(|| now.checked_add(Duration::from_secs(365 * 24 * 3600)))
        .unwrap_or(now)
}

/// The consumer. Cheap to clone.
#[derive(Clone)]
pub struct Consumer {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

impl Consumer {
    /// A consumer with its own metrics and breaker.
    pub fn new(sqs: aws_sdk_sqs::Client, ledger: Ledger, config: ConsumerConfig) -> Self {
        let breaker = Arc::new(Breaker::new(config.breaker));
        Self::with_parts(sqs, ledger, config, Arc::new(Metrics::new()), breaker)
    }

    /// A consumer sharing the given metrics and breaker.
    pub fn with_parts(
        sqs: aws_sdk_sqs::Client,
        ledger: Ledger,
        mut config: ConsumerConfig,
        metrics: Arc<Metrics>,
        breaker: Arc<Breaker>,
    ) -> Self {
        config.concurrency = config.concurrency.max(1);
        config.max_messages = config.max_messages.clamp(1, 10);
        config.visibility_timeout = config.visibility_timeout.min(MAX_VISIBILITY_TIMEOUT);
        let (activity, _) = watch::channel(0);
        let recent = RecentKeys::new(config.recent_keys);
        let watchdog = Arc::new(Watchdog::new(config.watchdog));
        Consumer {
            shared: Arc::new(Shared {
                sqs,
                ledger,
                config,
                metrics,
                breaker,
                activity,
                recent,
                watchdog,
                #[cfg(test)]
                fault: None,
            }),
        }
    }

    /// Installs a test-only fault called with each message body before it is processed.
    #[cfg(test)]
    fn with_fault(mut self, fault: Fault) -> Self {
        if let Some(shared) = Arc::get_mut(&mut self.shared) {
            shared.fault = Some(fault);
        }
        self
    }

    /// The receive-loop watchdog (serve it on `/readyz`, run it with [`Watchdog::run`]).
    pub fn watchdog(&self) -> &Arc<Watchdog> {
        &self.shared.watchdog
    }

    /// The metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.shared.metrics
    }

    /// The number of messages in flight, as it changes.
    pub fn activity(&self) -> watch::Receiver<usize> {
        self.shared.activity.subscribe()
    }

    /// Consumes until `shutdown` fires, then stops receiving, lets in-flight messages finish
    /// (for at most the visibility timeout) and flushes the pending deletes.
    #[tracing::instrument(skip_all, fields(queue_url = %self.shared.config.queue_url))]
    pub async fn run(&self, shutdown: CancellationToken) {
        let shared = &self.shared;
        let config = &shared.config;
        let (ack_tx, ack_rx) = mpsc::unbounded_channel::<Ack>();
        let deleter = tokio::spawn(deleter::run(
            shared.sqs.clone(),
            config.queue_url.clone(),
            config.delete_linger,
            ack_rx,
        ));
        let permits = Arc::new(Semaphore::new(config.concurrency));
        let mut tasks = JoinSet::new();
        tracing::info!(concurrency = config.concurrency, "consumer started");

        loop {
            while tasks.try_join_next().is_some() {}
            shared.metrics.set_breaker(shared.breaker.state());
            let probe = match shared.breaker.admit() {
                Admission::Allow => false,
                Admission::Probe => true,
                Admission::Wait(wait) => {
                    shared.metrics.set_breaker(shared.breaker.state());
                    // Receiving is paused on purpose: not a stall.
                    shared.watchdog.pause();
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {
                            shared.watchdog.resume();
                            continue;
                        }
                        () = shutdown.cancelled() => break,
                    }
                }
            };
            shared.metrics.set_breaker(shared.breaker.state());
            let first = tokio::select! {
                permit = permits.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break,
                },
                () = shutdown.cancelled() => {
                    if probe { shared.breaker.probe_unused(); }
                    break;
                }
            };
            let mut held = vec![first];
            let batch = (config.max_messages as usize).min(config.concurrency.max(1));
            let window_ends = deadline_after(config.receive_batch_window);
            while !probe && held.len() < batch {
                if let Ok(permit) = permits.clone().try_acquire_owned() {
                    held.push(permit);
                    continue;
                }
                if tasks.is_empty() {
                    break;
                }
                // At saturation, wait for a whole batch of free slots (one ReceiveMessage per
                // ten messages) as long as a batch of work keeps running meanwhile; with less
                // in flight, wait only a short window so the pipeline does not run dry.
                let in_flight = config
                    .concurrency
                    .saturating_sub(permits.available_permits() + held.len());
                let deadline = (in_flight < batch).then_some(window_ends);
                let freed = async {
                    match deadline {
                        Some(deadline) => {
                            tokio::time::timeout_at(deadline, permits.clone().acquire_owned())
                                .await
                                .ok()
                                .and_then(Result::ok)
                        }
                        None => permits.clone().acquire_owned().await.ok(),
                    }
                };
                tokio::select! {
                    permit = freed => match permit {
                        Some(permit) => held.push(permit),
                        None => break,
                    },
                    () = shutdown.cancelled() => break,
                }
            }
            let max = if probe { 1 } else { held.len() as i32 };
            let received = tokio::select! {
                received = shared.receive(max) => received,
                () = shutdown.cancelled() => {
                    if probe { shared.breaker.probe_unused(); }
                    break;
                }
            };
            shared.watchdog.progress();
            let messages = match received {
                Ok(messages) => messages,
                Err(error) => {
                    if probe {
                        shared.breaker.probe_unused();
                    }
                    shared.metrics.receive_failures.inc();
                    tracing::warn!(%error, "ReceiveMessage failed; backing off");
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                        () = shutdown.cancelled() => break,
                    }
                }
            };
            if messages.is_empty() {
                if probe {
                    shared.breaker.probe_unused();
                }
                continue;
            }
            shared.metrics.received.inc_by(messages.len() as u64);
            for (message, permit) in messages.into_iter().zip(held) {
                let in_flight = InFlight::new(shared.clone(), permit);
                if probe {
                    shared.handle(message, &ack_tx, in_flight).await;
                    // A probe that settled without a ledger verdict (it panicked, was
                    // dead-lettered or a known duplicate) must not hold the breaker half-open
                    // forever: that pause would never end, and the watchdog does not count
                    // breaker pauses as stalls. (A no-op once the probe closed or re-opened it.)
                    shared.breaker.probe_unused();
                } else {
                    let task_shared = shared.clone();
                    let acks = ack_tx.clone();
                    tasks.spawn(async move { task_shared.handle(message, &acks, in_flight).await });
                }
            }
        }
        // Draining is not a stall.
        shared.watchdog.pause();

        let drain = config.visibility_timeout;
        tracing::info!(
            in_flight = tasks.len(),
            "stopping: finishing in-flight messages"
        );
        let finished =
            tokio::time::timeout(drain, async { while tasks.join_next().await.is_some() {} }).await;
        if finished.is_err() {
            tracing::warn!(
                abandoned = tasks.len(),
                "in-flight messages did not finish within the visibility timeout; they will be redelivered"
            );
            tasks.shutdown().await;
        }
        drop(ack_tx);
        if let Err(error) = deleter.await {
            tracing::error!(%error, "delete task failed");
        }
        shared.metrics.set_breaker(shared.breaker.state());
        tracing::info!("consumer stopped");
    }
}

impl Shared {
    /// One long poll, bounded by the long-poll timeouts: the server may legitimately stay
    /// silent for `wait_time_seconds`, but not longer than that plus the margin.
    #[tracing::instrument(skip(self), level = "debug")]
    async fn receive(&self, max: i32) -> Result<Vec<aws_sdk_sqs::types::Message>, AwsError> {
        let wait = Duration::from_secs(u64::try_from(self.config.wait_time_seconds).unwrap_or(0));
        let out = self
            .sqs
            .receive_message()
            .queue_url(&self.config.queue_url)
            .max_number_of_messages(max)
            .wait_time_seconds(self.config.wait_time_seconds)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .customize()
            .config_override(
                aws_sdk_sqs::config::Builder::default()
                    .timeout_config(self.config.timeouts.long_poll(wait)),
            )
            .send()
            .await
            .classify("sqs:ReceiveMessage")?;
        Ok(out.messages.unwrap_or_default())
    }

    #[tracing::instrument(skip(self, receipt_handle), level = "debug")]
    async fn set_visibility(&self, receipt_handle: &str, timeout: Duration) {
        let result = self
            .sqs
            .change_message_visibility()
            .queue_url(&self.config.queue_url)
            .receipt_handle(receipt_handle)
            .visibility_timeout(i32::try_from(timeout.as_secs()).unwrap_or(i32::MAX))
            .send()
            .await
            .classify("sqs:ChangeMessageVisibility");
        if let Err(error) = result {
            tracing::warn!(%error, "cannot change the visibility of a message");
        }
    }

    fn started(&self) {
        self.metrics.in_flight.inc();
        self.activity.send_modify(|n| *n += 1);
    }

    fn finished(&self) {
        self.metrics.in_flight.dec();
        self.activity.send_modify(|n| *n = n.saturating_sub(1));
    }

    /// The task boundary of one message: processes it, and if that panics, counts the panic
    /// and settles the message ([`Shared::after_panic`]). `in_flight` is released when this
    /// returns or unwinds.
    async fn handle(
        &self,
        message: aws_sdk_sqs::types::Message,
        acks: &mpsc::UnboundedSender<Ack>,
        in_flight: InFlight,
    ) {
        let processed = AssertUnwindSafe(self.process(&message, acks))
            .catch_unwind()
            .await;
        if let Err(payload) = processed {
            let panic = panic_text(payload.as_ref());
            self.metrics.panics.inc();
            tracing::error!(
                message_id = message.message_id().unwrap_or_default(),
                %panic,
                "processing a message panicked"
            );
            let settled = AssertUnwindSafe(self.after_panic(&message))
                .catch_unwind()
                .await;
            if settled.is_err() {
                self.metrics.panics.inc();
                tracing::error!(
                    message_id = message.message_id().unwrap_or_default(),
                    "settling a panicked message panicked too; it stays on the queue"
                );
                self.metrics.record_outcome("failed", true);
            }
        }
        drop(in_flight);
    }

    /// Settles a message whose processing panicked. Before its last delivery it becomes
    /// visible again after the usual backoff (the panic may have been transient). On the last
    /// delivery (receive count at the redrive maxReceiveCount) the transaction gets a REJECTED
    /// `internal_error` result, and only once that is durable is the message deleted; without
    /// a transaction id it is left to the redrive policy, which keeps it in the DLQ.
    async fn after_panic(&self, message: &aws_sdk_sqs::types::Message) {
        let receive_count = receive_count(message);
        let last = self
            .config
            .max_receive_count
            .unwrap_or(FALLBACK_MAX_RECEIVES)
            .max(1);
        if receive_count < last {
            let backoff = retry_backoff(receive_count, self.config.visibility_timeout);
            tracing::warn!(
                receive_count,
                backoff_secs = backoff.as_secs(),
                "the message will be retried after the panic"
            );
            if let Some(receipt_handle) = message.receipt_handle() {
                self.set_visibility(receipt_handle, backoff).await;
            }
            self.metrics.record_outcome("retried", true);
            return;
        }
        let body = message.body().unwrap_or_default();
        let Some((transaction_id, idempotency_key)) = identify(body) else {
            tracing::error!(
                receive_count,
                "last delivery of a panicking message without a transaction id; leaving it to the redrive policy"
            );
            self.metrics.record_outcome("failed", true);
            return;
        };
        match self
            .ledger
            .record_internal_error(transaction_id, idempotency_key.as_ref())
            .await
        {
            Ok(outcome) => {
                tracing::error!(
                    %transaction_id,
                    receive_count,
                    ?outcome,
                    "last delivery of a panicking message: recorded REJECTED internal_error"
                );
                // The last delivery: delete now, retrying while the message is kept invisible,
                // so the redrive never moves a message whose result is durable.
                if let Some(receipt_handle) = message.receipt_handle() {
                    let ack = Ack {
                        receipt_handle: receipt_handle.to_owned(),
                        message_id: message.message_id().unwrap_or_default().to_owned(),
                        valid_until: deadline_after(self.config.visibility_timeout / 2),
                    };
                    self.with_heartbeat(
                        message,
                        deleter::delete_until_done(&self.sqs, &self.config.queue_url, ack),
                    )
                    .await;
                }
                self.metrics.record_outcome(
                    match outcome {
                        Outcome::Duplicate => "duplicate",
                        _ => "rejected",
                    },
                    false,
                );
            }
            Err(error) => {
                tracing::error!(
                    %error,
                    %transaction_id,
                    "cannot record the internal_error result; leaving the message to the redrive policy"
                );
                self.metrics.record_outcome("failed", true);
            }
        }
    }

    #[tracing::instrument(skip_all, fields(message_id = message.message_id().unwrap_or("")))]
    async fn process(
        &self,
        message: &aws_sdk_sqs::types::Message,
        acks: &mpsc::UnboundedSender<Ack>,
    ) {
        let started = Instant::now();
        let message_id = message.message_id().unwrap_or_default().to_owned();
        let receive_count = receive_count(message);
        let last = self.is_last_receive(receive_count);
        let mut attempt = receive_count;
        let disposition = loop {
            let disposition = self
                .with_heartbeat(message, self.decide(message, &message_id, receive_count))
                .await;
            match disposition {
                // The redrive would take this processable message on its next receive: keep it
                // invisible and retry here instead.
                Disposition::Retry(error) if last => {
                    let backoff = retry_backoff(attempt, self.config.visibility_timeout);
                    tracing::warn!(
                        %error,
                        receive_count,
                        backoff_ms = ballast_runtime::duration_millis(backoff),
                        "transient failure on the last receive before the redrive; retrying in-process"
                    );
                    self.metrics.record_outcome("retried", true);
                    if let Some(receipt_handle) = message.receipt_handle() {
                        self.set_visibility(receipt_handle, self.config.visibility_timeout)
                            .await;
                    }
                    self.with_heartbeat(message, tokio::time::sleep(backoff))
                        .await;
                    attempt = attempt.saturating_add(1);
                }
                other => break other,
            }
        };
        match disposition {
            Disposition::Delete(outcome) => {
                if let Some(receipt_handle) = message.receipt_handle() {
                    let ack = Ack {
                        receipt_handle: receipt_handle.to_owned(),
                        message_id,
                        // The heartbeat extended the visibility at most half a timeout ago.
                        valid_until: deadline_after(self.config.visibility_timeout / 2),
                    };
                    if last {
                        // No batching on the last receive: delete now, retrying while the
                        // heartbeat keeps the message invisible, so the redrive never moves a
                        // settled message.
                        let sqs = &self.sqs;
                        let queue_url = self.config.queue_url.as_str();
                        self.with_heartbeat(
                            message,
                            deleter::delete_until_done(sqs, queue_url, ack),
                        )
                        .await;
                    } else {
                        let _ = acks.send(ack);
                    }
                }
                self.metrics.record_outcome(outcome, false);
            }
            Disposition::Release(error) => {
                tracing::warn!(
                    %error,
                    receive_count,
                    "poison message recorded; giving it back for the queue's redrive to move to the DLQ"
                );
                if let Some(receipt_handle) = message.receipt_handle() {
                    self.set_visibility(receipt_handle, Duration::ZERO).await;
                }
                self.metrics.record_outcome("poison", true);
            }
            Disposition::Retry(error) => {
                let backoff = retry_backoff(receive_count, self.config.visibility_timeout);
                tracing::warn!(
                    %error,
                    receive_count,
                    backoff_secs = backoff.as_secs(),
                    "transient failure; the message will be retried"
                );
                if let Some(receipt_handle) = message.receipt_handle() {
                    self.set_visibility(receipt_handle, backoff).await;
                }
                self.metrics.record_outcome("retried", true);
            }
            Disposition::Leave(error) => {
                tracing::error!(
                    %error,
                    receive_count,
                    "fatal failure; leaving the message to the queue's redrive policy"
                );
                self.metrics.record_outcome("failed", true);
            }
        }
        self.metrics
            .latency
            .observe(started.elapsed().as_secs_f64());
    }

    /// Whether SQS's redrive moves this message on its next receive.
    fn is_last_receive(&self, receive_count: u32) -> bool {
        self.config
            .max_receive_count
            .is_some_and(|max| receive_count >= max)
    }

    /// Runs `work` while keeping the message invisible: a slow ledger (or a delete retried on
    /// the last receive) must not let SQS redeliver it, and count a receive, mid-flight.
    async fn with_heartbeat<T>(
        &self,
        message: &aws_sdk_sqs::types::Message,
        work: impl std::future::Future<Output = T>,
    ) -> T {
        let every = (self.config.visibility_timeout / 2).max(Duration::from_millis(500));
        let mut heartbeat = tokio::time::interval_at(deadline_after(every), every);
        tokio::pin!(work);
        loop {
            tokio::select! {
                done = &mut work => break done,
                _ = heartbeat.tick() => {
                    if let Some(receipt_handle) = message.receipt_handle() {
                        self.set_visibility(receipt_handle, self.config.visibility_timeout)
                            .await;
                    }
                }
            }
        }
    }

    async fn decide(
        &self,
        message: &aws_sdk_sqs::types::Message,
        message_id: &str,
        receive_count: u32,
    ) -> Disposition {
        let body = message.body().unwrap_or_default();
        #[cfg(test)]
        if let Some(fault) = &self.fault {
            fault(body);
        }
        let result = match parse_transaction(body.as_bytes()) {
            Err(ParseError::Malformed(error)) if self.config.max_receive_count.is_some() => {
                return self
                    .record_poison(body, message_id, error, receive_count)
                    .await;
            }
            Err(ParseError::Malformed(error)) => {
                return self.dead_letter(body, message_id, error).await;
            }
            Err(ParseError::Invalid {
                transaction_id,
                idempotency_key,
                error,
            }) => {
                tracing::info!(%transaction_id, code = error.code(), "rejecting invalid transaction");
                self.ledger
                    .record_rejection(transaction_id, idempotency_key.as_ref(), &error)
                    .await
            }
            Ok(tx) => {
                tracing::debug!(transaction_id = %tx.transaction_id, receive_count, "processing a transaction");
                // Remembered by transaction id *and* key: a different transaction reusing a
                // settled key must reach the ledger, which gives it a REJECTED result of its
                // own (`idempotency_key_reused`); skipping it here would leave it resultless.
                let key = format!("{}#{}", tx.transaction_id, tx.idempotency_key.as_str());
                if self.recent.contains(&key) {
                    tracing::debug!(transaction_id = %tx.transaction_id, "duplicate of a transaction this worker settled");
                    return Disposition::Delete("duplicate");
                }
                let result = self.ledger.apply(&tx).await;
                if result.is_ok() {
                    self.recent.insert(&key);
                }
                result
            }
        };
        self.ledger_disposition(result)
    }

    fn ledger_disposition(&self, result: Result<Outcome, LedgerError>) -> Disposition {
        match result {
            Ok(outcome) => {
                self.breaker.record_success();
                if self.ledger.risk().is_some() {
                    let decision = match &outcome {
                        Outcome::Held => Some("hold"),
                        Outcome::Declined(DeclineReason::RiskDeclined { .. }) => Some("decline"),
                        // Approved by the rules (the ledger may still have declined it).
                        Outcome::Completed | Outcome::Declined(_) => Some("approve"),
                        Outcome::Rejected(_) | Outcome::Duplicate => None,
                    };
                    if let Some(decision) = decision {
                        self.metrics.record_risk_decision(decision);
                    }
                }
                Disposition::Delete(match outcome {
                    Outcome::Completed => "completed",
                    Outcome::Declined(_) => "declined",
                    Outcome::Rejected(_) => "rejected",
                    Outcome::Duplicate => "duplicate",
                    Outcome::Held => "held",
                })
            }
            Err(error) if error.is_transient() => {
                self.breaker.record_failure();
                Disposition::Retry(error.into())
            }
            Err(error) => Disposition::Leave(error.into()),
        }
    }

    /// Records why a poison message cannot be processed, then lets the redrive take it.
    async fn record_poison(
        &self,
        body: &str,
        message_id: &str,
        error: MalformedError,
        receive_count: u32,
    ) -> Disposition {
        match poison::record(&self.ledger, message_id, body, &error, receive_count).await {
            Ok(()) => {
                self.breaker.record_success();
                Disposition::Release(Failure::Poison(error))
            }
            Err(failure) if failure.is_transient() => {
                self.breaker.record_failure();
                Disposition::Retry(failure.into())
            }
            // The record cannot be written (e.g. no such table): still let the redrive move
            // the message, the reason is in the log.
            Err(unwritten) => Disposition::Release(Failure::PoisonUnrecorded {
                malformed: error,
                unwritten,
            }),
        }
    }

    /// Without a redrive policy: copies the message to the DLQ, then it is deleted. A lost
    /// answer or delete repeats the copy (at least once); with a redrive policy
    /// [`Shared::record_poison`] is used instead.
    async fn dead_letter(
        &self,
        body: &str,
        message_id: &str,
        error: MalformedError,
    ) -> Disposition {
        let Some(dlq_url) = &self.config.dlq_url else {
            return Disposition::Leave(Failure::NoDeadLetterQueue(error));
        };
        let attribute = |value: String| {
            MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
        };
        let (parse_error, source_id) = match (
            attribute(format!("{}: {error}", error.code())),
            attribute(message_id.to_owned()),
        ) {
            (Ok(parse_error), Ok(source_id)) => (parse_error, source_id),
            (Err(build), _) | (_, Err(build)) => {
                return Disposition::Leave(Failure::DeadLetterAttributes(build));
            }
        };
        let body = if body.is_empty() { " " } else { body };
        let result = self
            .sqs
            .send_message()
            .queue_url(dlq_url)
            .message_body(body)
            .message_attributes(PARSE_ERROR_ATTRIBUTE, parse_error)
            .message_attributes(SOURCE_MESSAGE_ID_ATTRIBUTE, source_id)
            .send()
            .await
            .classify("sqs:SendMessage");
        match result {
            Ok(_) => {
                tracing::warn!(
                    code = error.code(),
                    "malformed message moved to the dead-letter queue"
                );
                Disposition::Delete("dead_lettered")
            }
            Err(failure) if failure.is_retryable() => Disposition::Retry(failure.into()),
            Err(failure) => Disposition::Leave(failure.into()),
        }
    }
}

/// The ApproximateReceiveCount of a message (1 when absent).
fn receive_count(message: &aws_sdk_sqs::types::Message) -> u32 {
    message
        .attributes()
        .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
        .and_then(|v| v.parse::<u32>().ok())
        .unwrap_or(1)
}

/// The transaction id and idempotency key of a message body, read leniently (the body may be
/// what made processing fail): `None` without a usable transaction id.
fn identify(body: &str) -> Option<(uuid::Uuid, Option<IdempotencyKey>)> {
    let value: serde_json::Value = serde_json::from_str(body).ok()?;
    let id = value.get("transaction_id")?.as_str()?;
    let transaction_id = uuid::Uuid::try_parse(id).ok().filter(|id| !id.is_nil())?;
    let key = value
        .get("idempotency_key")
        .and_then(|k| k.as_str())
        .and_then(|k| IdempotencyKey::parse(k).ok());
    Some((transaction_id, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped_below_visibility() {
        let vis = Duration::from_secs(60);
        assert_eq!(retry_backoff(1, vis), Duration::from_secs(2));
        assert_eq!(retry_backoff(2, vis), Duration::from_secs(4));
        assert_eq!(retry_backoff(5, vis), Duration::from_secs(32));
        assert_eq!(retry_backoff(6, vis), Duration::from_secs(59));
        assert_eq!(retry_backoff(40, vis), Duration::from_secs(59));
        assert_eq!(
            retry_backoff(3, Duration::from_secs(2)),
            Duration::from_secs(1)
        );
        assert_eq!(retry_backoff(3, Duration::ZERO), Duration::from_secs(1));
    }
}
