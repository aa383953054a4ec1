//! Prometheus metrics of the worker, plus the per-minute counters the CloudWatch publisher
//! drains.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::breaker::BreakerState;

/// `outcome` label of processed messages.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// completed, declined, rejected, duplicate, dead_lettered, retried, failed.
    pub outcome: &'static str,
}

/// Labels of AWS calls.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AwsCallLabels {
    /// `service:Operation`, e.g. `sqs:ReceiveMessage`.
    pub operation: String,
    /// `ok` or `error`.
    pub outcome: &'static str,
}

/// Labels of AWS HTTP requests (attempts, retries included).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AwsRequestLabels {
    /// `service:Operation`.
    pub operation: String,
}

/// Every metric the worker exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Messages received from SQS.
    pub received: Counter,
    /// Messages finished, by outcome.
    pub processed: Family<OutcomeLabels, Counter>,
    /// Seconds from receipt to disposition of a message.
    pub latency: Histogram,
    /// Messages being processed.
    pub in_flight: Gauge,
    /// 0 closed, 1 open, 2 half-open.
    pub breaker_state: Gauge,
    /// AWS SDK operations by final outcome.
    pub aws_calls: Family<AwsCallLabels, Counter>,
    /// AWS HTTP requests (each attempt).
    pub aws_requests: Family<AwsRequestLabels, Counter>,
    /// Message processing tasks that panicked (caught at the task boundary).
    pub panics: Counter,
    /// ReceiveMessage calls that failed (timeouts included).
    pub receive_failures: Counter,
    /// Seconds since the receive loop last made progress (0 while paused on purpose).
    pub receive_stalled_seconds: Gauge<f64, AtomicU64>,
    /// 0 ok, 1 paused on purpose, 2 stalled (not ready), 3 stalled past the exit bound.
    pub watchdog_state: Gauge,
    /// DLQ messages seen by the rescue pass, by verdict.
    pub dlq_rescue: Family<OutcomeLabels, Counter>,
    /// DLQ messages the rescue pass settled and deleted.
    pub dlq_rescued: Counter,
    /// DLQ messages the rescue pass left for an operator (poison, or refused by the ledger).
    pub dlq_left_as_poison: Counter,
    /// Risk decisions by outcome (`approve`, `hold`, `decline`).
    pub risk_decisions: Family<OutcomeLabels, Counter>,
    /// Age in seconds of the oldest pending hold (`-1` until the first reading, or without
    /// risk rules).
    pub held_oldest_age_seconds: Gauge,
    /// Age in seconds of the oldest bill occurrence due but unpaid (`-1` until the first
    /// reading).
    pub bills_overdue_oldest_age_seconds: Gauge,
    minute_processed: AtomicU64,
    minute_errors: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric under the `ballast_worker` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("ballast_worker");
        let received = Counter::default();
        let processed = Family::<OutcomeLabels, Counter>::default();
        let latency = Histogram::new(exponential_buckets(0.001, 2.0, 16));
        let in_flight = Gauge::default();
        let breaker_state = Gauge::default();
        let aws_calls = Family::<AwsCallLabels, Counter>::default();
        let aws_requests = Family::<AwsRequestLabels, Counter>::default();
        let panics = Counter::default();
        let receive_failures = Counter::default();
        registry.register(
            "receive_failures",
            "ReceiveMessage calls that failed, timeouts included",
            receive_failures.clone(),
        );
        let receive_stalled_seconds = Gauge::<f64, AtomicU64>::default();
        let watchdog_state = Gauge::default();
        registry.register(
            "panics",
            "Message processing tasks that panicked (caught at the task boundary)",
            panics.clone(),
        );
        registry.register(
            "receive_stalled_seconds",
            "Seconds since a ReceiveMessage last completed (0 while receiving is paused on purpose)",
            receive_stalled_seconds.clone(),
        );
        registry.register(
            "watchdog_state",
            "Receive-loop watchdog: 0 ok, 1 paused (breaker open or draining), 2 stalled (not ready), 3 stalled past the exit bound (exiting)",
            watchdog_state.clone(),
        );
        registry.register(
            "messages_received",
            "Messages received from SQS",
            received.clone(),
        );
        registry.register(
            "messages_processed",
            "Messages finished, by outcome",
            processed.clone(),
        );
        registry.register(
            "processing_seconds",
            "Time from receipt to disposition of a message",
            latency.clone(),
        );
        registry.register("in_flight", "Messages being processed", in_flight.clone());
        registry.register(
            "breaker_state",
            "Circuit breaker state: 0 closed, 1 open, 2 half-open",
            breaker_state.clone(),
        );
        registry.register(
            "aws_calls",
            "AWS SDK operations by final outcome",
            aws_calls.clone(),
        );
        registry.register(
            "aws_requests",
            "AWS HTTP requests sent (each attempt)",
            aws_requests.clone(),
        );
        let dlq_rescue = Family::<OutcomeLabels, Counter>::default();
        let dlq_rescued = Counter::default();
        let dlq_left_as_poison = Counter::default();
        registry.register(
            "dlq_rescue",
            "DLQ messages seen by the rescue pass, by verdict (outcome label)",
            dlq_rescue.clone(),
        );
        registry.register(
            "dlq_rescued",
            "DLQ messages the rescue pass settled through the ledger and deleted",
            dlq_rescued.clone(),
        );
        registry.register(
            "dlq_left_as_poison",
            "DLQ messages the rescue pass left for an operator (poison or refused by the ledger)",
            dlq_left_as_poison.clone(),
        );
        let risk_decisions = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "risk_decisions",
            "Risk decisions on money movements, by outcome (approve, hold, decline)",
            risk_decisions.clone(),
        );
        let held_oldest_age_seconds = Gauge::default();
        held_oldest_age_seconds.set(-1);
        registry.register(
            "held_oldest_age_seconds",
            "Age of the oldest transaction held for review (0: none pending, -1: not read)",
            held_oldest_age_seconds.clone(),
        );
        let bills_overdue_oldest_age_seconds = Gauge::default();
        bills_overdue_oldest_age_seconds.set(-1);
        registry.register(
            "bills_overdue_oldest_age_seconds",
            "Age of the oldest bill occurrence due but unpaid, from 00:00 UTC of its due date \
             (0: none, -1: not read)",
            bills_overdue_oldest_age_seconds.clone(),
        );
        Metrics {
            registry,
            risk_decisions,
            held_oldest_age_seconds,
            bills_overdue_oldest_age_seconds,
            received,
            processed,
            latency,
            in_flight,
            breaker_state,
            aws_calls,
            aws_requests,
            panics,
            receive_failures,
            receive_stalled_seconds,
            watchdog_state,
            dlq_rescue,
            dlq_rescued,
            dlq_left_as_poison,
            minute_processed: AtomicU64::new(0),
            minute_errors: AtomicU64::new(0),
        }
    }

    /// Text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// Counts a finished message. `error` outcomes count towards ProcessingErrors, the others
    /// towards TransactionsProcessed.
    pub fn record_outcome(&self, outcome: &'static str, error: bool) {
        self.processed
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
        if error {
            self.minute_errors.fetch_add(1, Ordering::Relaxed);
        } else {
            self.minute_processed.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts a DLQ message seen by the rescue pass.
    pub fn record_rescue(&self, verdict: &'static str, rescued: bool, left: bool) {
        self.dlq_rescue
            .get_or_create(&OutcomeLabels { outcome: verdict })
            .inc();
        if rescued {
            self.dlq_rescued.inc();
        }
        if left {
            self.dlq_left_as_poison.inc();
        }
    }

    /// Sets the breaker gauge.
    /// Counts one risk decision (`approve`, `hold` or `decline`).
    pub fn record_risk_decision(&self, outcome: &'static str) {
        self.risk_decisions
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    /// The age of the oldest pending hold (`None`: nothing pending).
    pub fn set_held_oldest_age(&self, age: Option<Duration>) {
        let secs = age.map_or(0, |a| i64::try_from(a.as_secs()).unwrap_or(i64::MAX));
        self.held_oldest_age_seconds.set(secs);
    }

    /// The age of the oldest pending hold in seconds, once read.
    pub fn held_oldest_age(&self) -> Option<u64> {
        u64::try_from(self.held_oldest_age_seconds.get()).ok()
    }

    /// The age of the oldest bill occurrence due but unpaid (`None`: none).
    pub fn set_bills_overdue_oldest_age(&self, age: Option<Duration>) {
        let secs = age.map_or(0, |a| i64::try_from(a.as_secs()).unwrap_or(i64::MAX));
        self.bills_overdue_oldest_age_seconds.set(secs);
    }

    /// The age of the oldest unpaid bill occurrence in seconds, once read.
    pub fn bills_overdue_oldest_age(&self) -> Option<u64> {
        u64::try_from(self.bills_overdue_oldest_age_seconds.get()).ok()
    }

    pub fn set_breaker(&self, state: BreakerState) {
        self.breaker_state.set(state.metric_value());
    }

    /// Publishes the watchdog's state and how long the receive loop has stalled.
    pub fn set_watchdog(&self, state: i64, stalled: Duration) {
        self.watchdog_state.set(state);
        self.receive_stalled_seconds.set(stalled.as_secs_f64());
    }

    /// Total of `messages_processed` for one outcome.
    pub fn processed_count(&self, outcome: &'static str) -> u64 {
        self.processed
            .get_or_create(&OutcomeLabels { outcome })
            .get()
    }

    /// Takes (and resets) the counts since the last call: (processed, errors).
    pub fn take_minute(&self) -> (u64, u64) {
        (
            self.minute_processed.swap(0, Ordering::Relaxed),
            self.minute_errors.swap(0, Ordering::Relaxed),
        )
    }

    /// Puts counts back after a failed publish.
    pub fn restore_minute(&self, processed: u64, errors: u64) {
        self.minute_processed
            .fetch_add(processed, Ordering::Relaxed);
        self.minute_errors.fetch_add(errors, Ordering::Relaxed);
    }

    /// Sum of `aws_requests` over all operations, and per operation.
    pub fn aws_request_counts(&self) -> Vec<(String, u64)> {
        // prometheus-client has no iteration API; parse our own exposition.
        let text = self.encode();
        let mut out = Vec::new();
        for line in text.lines() {
            let Some(rest) = line.strip_prefix("ballast_worker_aws_requests_total{operation=\"")
            else {
                continue;
            };
            let Some((op, value)) = rest.split_once("\"} ") else {
                continue;
            };
            if let Ok(v) = value.trim().parse::<u64>() {
                out.push((op.to_owned(), v));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_unpaid_bill_is_exposed_once_read() {
        let m = Metrics::new();
        assert_eq!(m.bills_overdue_oldest_age(), None, "not read yet");
        assert!(
            m.encode()
                .contains("ballast_worker_bills_overdue_oldest_age_seconds -1")
        );
        m.set_bills_overdue_oldest_age(Some(Duration::from_secs(7300)));
        assert_eq!(m.bills_overdue_oldest_age(), Some(7300));
        m.set_bills_overdue_oldest_age(None);
        assert_eq!(
            m.bills_overdue_oldest_age(),
            Some(0),
            "read, nothing unpaid"
        );
    }

    #[test]
    fn risk_decisions_and_the_oldest_hold_are_exposed() {
        let m = Metrics::new();
        assert_eq!(m.held_oldest_age(), None, "not read yet");
        assert!(
            m.encode()
                .contains("ballast_worker_held_oldest_age_seconds -1")
        );
        m.record_risk_decision("hold");
        m.set_held_oldest_age(Some(Duration::from_secs(90)));
        assert_eq!(m.held_oldest_age(), Some(90));
        let text = m.encode();
        assert!(
            text.contains("ballast_worker_risk_decisions_total{outcome=\"hold\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("ballast_worker_held_oldest_age_seconds 90"),
            "{text}"
        );
        m.set_held_oldest_age(None);
        assert_eq!(m.held_oldest_age(), Some(0), "read, nothing pending");
    }

    #[test]
    fn exposition_contains_every_metric() {
        let m = Metrics::new();
        m.received.inc();
        m.record_outcome("completed", false);
        m.record_outcome("retried", true);
        m.latency.observe(0.01);
        m.in_flight.inc();
        m.set_breaker(BreakerState::Open);
        m.panics.inc();
        m.set_watchdog(2, Duration::from_millis(1500));
        m.aws_requests
            .get_or_create(&AwsRequestLabels {
                operation: "sqs:ReceiveMessage".into(),
            })
            .inc();
        let text = m.encode();
        for name in [
            "ballast_worker_messages_received_total 1",
            "ballast_worker_messages_processed_total{outcome=\"completed\"} 1",
            "ballast_worker_processing_seconds_count 1",
            "ballast_worker_in_flight 1",
            "ballast_worker_breaker_state 1",
            "ballast_worker_panics_total 1",
            "ballast_worker_watchdog_state 2",
            "ballast_worker_receive_stalled_seconds 1.5",
        ] {
            assert!(text.contains(name), "{name} missing from\n{text}");
        }
        assert_eq!(
            m.aws_request_counts(),
            vec![("sqs:ReceiveMessage".to_owned(), 1)]
        );
        assert_eq!(m.take_minute(), (1, 1));
        assert_eq!(m.take_minute(), (0, 0));
    }
}
