//! A circuit breaker around the ledger (DynamoDB).
//!
//! After `threshold` consecutive transient ledger failures the breaker *opens*: the consumer
//! stops receiving. After `cooldown` it becomes *half-open* and lets exactly one message (the
//! probe) through; a success closes it, a failure re-opens it for another cooldown.
//!
//! Time is the monotonic time ([`Clock::elapsed`]) of an injected [`ballast_runtime::Clock`],
//! so the state machine is tested on a `ManualClock` without sleeping.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ballast_runtime::{Clock, SystemClock, duration_millis};

/// The externally visible state; the discriminant is the metric value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Messages flow.
    Closed = 0,
    /// Receiving is stopped until the cooldown ends.
    Open = 1,
    /// One probe message is allowed through.
    HalfOpen = 2,
}

impl BreakerState {
    /// The metric value (0 closed, 1 open, 2 half-open).
    pub fn metric_value(self) -> i64 {
        self as i64
    }
}

/// What the consumer may do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Receive normally.
    Allow,
    /// Receive exactly one message and report its result: it is the probe.
    Probe,
    /// Do not receive; ask again after this long (or sooner if a result arrives).
    Wait(Duration),
}

#[derive(Debug, Clone, Copy)]
enum Inner {
    Closed {
        failures: u32,
    },
    /// Until this monotonic time ([`Clock::elapsed`]).
    Open {
        until: Duration,
    },
    HalfOpen {
        probing: bool,
    },
}

/// Breaker settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive transient failures that open the breaker (at least 1).
    pub threshold: u32,
    /// How long the breaker stays open before probing.
    pub cooldown: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            threshold: 5,
            cooldown: Duration::from_secs(30),
        }
    }
}

/// How long to wait before asking again while a probe is in flight.
const PROBE_POLL: Duration = Duration::from_millis(100);

/// The circuit breaker. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Breaker {
    config: BreakerConfig,
    clock: Arc<dyn Clock>,
    inner: Mutex<Inner>,
}

impl Breaker {
    /// A closed breaker on the system clock.
    pub fn new(config: BreakerConfig) -> Self {
        Self::with_clock(config, Arc::new(SystemClock::new()))
    }

    /// A closed breaker on the given clock.
    pub fn with_clock(config: BreakerConfig, clock: Arc<dyn Clock>) -> Self {
        Breaker {
            config: BreakerConfig {
                threshold: config.threshold.max(1),
                cooldown: config.cooldown,
            },
            clock,
            inner: Mutex::new(Inner::Closed { failures: 0 }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The current state (an expired open breaker reports half-open).
    pub fn state(&self) -> BreakerState {
        match *self.lock() {
            Inner::Closed { .. } => BreakerState::Closed,
            Inner::Open { until } if self.clock.elapsed() >= until => BreakerState::HalfOpen,
            Inner::Open { .. } => BreakerState::Open,
            Inner::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    /// Asks whether the consumer may receive.
    pub fn admit(&self) -> Admission {
        let now = self.clock.elapsed();
        let mut inner = self.lock();
        match *inner {
            Inner::Closed { .. } => Admission::Allow,
            Inner::Open { until } if now < until => Admission::Wait(until.saturating_sub(now)),
            Inner::Open { .. } | Inner::HalfOpen { probing: false } => {
                *inner = Inner::HalfOpen { probing: true };
                tracing::info!("circuit breaker half-open: probing with one message");
                Admission::Probe
            }
            Inner::HalfOpen { probing: true } => Admission::Wait(PROBE_POLL),
        }
    }

    /// The probe found no message to process: allow another probe.
    pub fn probe_unused(&self) {
        let mut inner = self.lock();
        if let Inner::HalfOpen { probing: true } = *inner {
            *inner = Inner::HalfOpen { probing: false };
        }
    }

    /// A ledger call succeeded.
    pub fn record_success(&self) {
        let mut inner = self.lock();
        match *inner {
            Inner::HalfOpen { .. } => {
                tracing::info!("circuit breaker closed");
                *inner = Inner::Closed { failures: 0 };
            }
            Inner::Closed { .. } => *inner = Inner::Closed { failures: 0 },
            Inner::Open { .. } => {}
        }
    }

    /// A ledger call failed transiently.
    pub fn record_failure(&self) {
        let now = self.clock.elapsed();
        let mut inner = self.lock();
        match *inner {
            Inner::Closed { failures } => {
                let failures = failures.saturating_add(1);
                if failures >= self.config.threshold {
                    tracing::warn!(
                        failures,
                        cooldown_ms = duration_millis(self.config.cooldown),
                        "circuit breaker open: DynamoDB keeps failing"
                    );
                    *inner = Inner::Open {
                        until: now.saturating_add(self.config.cooldown),
                    };
                } else {
                    *inner = Inner::Closed { failures };
                }
            }
            Inner::HalfOpen { .. } => {
                tracing::warn!("circuit breaker probe failed: open again");
                *inner = Inner::Open {
                    until: now.saturating_add(self.config.cooldown),
                };
            }
            Inner::Open { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ballast_runtime::ManualClock;

    fn breaker(threshold: u32, cooldown_secs: u64) -> (Breaker, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::default());
        let b = Breaker::with_clock(
            BreakerConfig {
                threshold,
                cooldown: Duration::from_secs(cooldown_secs),
            },
            clock.clone(),
        );
        (b, clock)
    }

    #[test]
    fn opens_after_threshold_consecutive_failures() {
        let (b, _) = breaker(3, 10);
        b.record_failure();
        b.record_failure();
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(b.admit(), Admission::Allow);
        b.record_failure();
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(b.admit(), Admission::Wait(Duration::from_secs(10)));
    }

    #[test]
    fn success_resets_the_failure_count() {
        let (b, _) = breaker(3, 10);
        b.record_failure();
        b.record_failure();
        b.record_success();
        b.record_failure();
        b.record_failure();
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[test]
    fn half_open_lets_one_probe_through_and_success_closes() {
        let (b, clock) = breaker(1, 10);
        b.record_failure();
        clock.advance(Duration::from_secs(4));
        assert_eq!(b.admit(), Admission::Wait(Duration::from_secs(6)));
        clock.advance(Duration::from_secs(6));
        assert_eq!(b.state(), BreakerState::HalfOpen);
        assert_eq!(b.admit(), Admission::Probe);
        // Only one probe at a time.
        assert_eq!(b.admit(), Admission::Wait(PROBE_POLL));
        b.record_success();
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(b.admit(), Admission::Allow);
    }

    #[test]
    fn failed_probe_reopens_for_a_full_cooldown() {
        let (b, clock) = breaker(2, 5);
        b.record_failure();
        b.record_failure();
        clock.advance(Duration::from_secs(5));
        assert_eq!(b.admit(), Admission::Probe);
        b.record_failure();
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(b.admit(), Admission::Wait(Duration::from_secs(5)));
        clock.advance(Duration::from_secs(5));
        assert_eq!(b.admit(), Admission::Probe);
    }

    #[test]
    fn unused_probe_can_be_retried() {
        let (b, clock) = breaker(1, 1);
        b.record_failure();
        clock.advance(Duration::from_secs(1));
        assert_eq!(b.admit(), Admission::Probe);
        b.probe_unused();
        assert_eq!(b.admit(), Admission::Probe);
    }

    #[test]
    fn metric_values() {
        assert_eq!(BreakerState::Closed.metric_value(), 0);
        assert_eq!(BreakerState::Open.metric_value(), 1);
        assert_eq!(BreakerState::HalfOpen.metric_value(), 2);
    }
}
