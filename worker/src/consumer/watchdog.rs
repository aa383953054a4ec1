//! The receive-loop watchdog: a worker whose receive loop stops making progress must not look
//! healthy.
//!
//! The consumer reports every completed ReceiveMessage (successful or not) with
//! [`Watchdog::progress`]. When none has completed for longer than
//! [`WatchdogConfig::not_ready_after`], `/readyz` answers 503 with the reason and
//! `ballast_worker_watchdog_state` reads 2; past [`WatchdogConfig::exit_after`] the watchdog
//! cancels the worker's shutdown token (the normal drain path) and `ballast-worker consume`
//! exits with [`STALL_EXIT_CODE`] so its supervisor replaces it.
//!
//! The circuit breaker deliberately pausing receives ([`Watchdog::pause`]) is not a stall, nor
//! is the drain after shutdown. Time comes from `tokio::time`, so tests run it on paused time.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::observability::Metrics;

/// Exit status of `ballast-worker consume` when the watchdog stopped it (EX_TEMPFAIL: a
/// temporary failure, start a replacement).
pub const STALL_EXIT_CODE: u8 = 75;

/// Watchdog bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchdogConfig {
    /// No receive completed for this long: not ready.
    pub not_ready_after: Duration,
    /// No receive completed for this long: stop the worker.
    pub exit_after: Duration,
}

impl Default for WatchdogConfig {
    /// Well above the longest legitimate receive (the default AWS operation timeout, 90 s,
    /// bounds a long poll), so only a real stall trips it.
    fn default() -> Self {
        WatchdogConfig {
            not_ready_after: Duration::from_secs(120),
            exit_after: Duration::from_secs(300),
        }
    }
}

/// What the watchdog sees; the discriminant is the `ballast_worker_watchdog_state` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchdogState {
    /// Receives complete.
    Ok = 0,
    /// Receiving is paused on purpose (circuit breaker open, draining).
    Paused = 1,
    /// No receive for longer than `not_ready_after`: `/readyz` fails.
    Stalled = 2,
    /// No receive for longer than `exit_after`: the worker is stopping.
    Expired = 3,
}

/// Progress bookkeeping of one receive loop. Cheap to share.
#[derive(Debug)]
pub struct Watchdog {
    config: WatchdogConfig,
    origin: Instant,
    /// Milliseconds after `origin` of the last progress.
    last_progress_ms: AtomicU64,
    paused: AtomicBool,
    tripped: AtomicBool,
}

impl Watchdog {
    /// A watchdog whose clock starts now (starting counts as progress).
    pub fn new(config: WatchdogConfig) -> Self {
        Watchdog {
            config,
            origin: Instant::now(),
            last_progress_ms: AtomicU64::new(0),
            paused: AtomicBool::new(false),
            tripped: AtomicBool::new(false),
        }
    }

    /// The bounds.
    pub fn config(&self) -> WatchdogConfig {
        self.config
    }

    fn now_ms(&self) -> u64 {
        ballast_runtime::duration_millis(self.origin.elapsed())
    }

    /// A receive completed (successfully or not); also ends a pause.
    pub fn progress(&self) {
        self.last_progress_ms
            .store(self.now_ms(), Ordering::Relaxed);
        self.paused.store(false, Ordering::Relaxed);
    }

    /// Receiving is paused on purpose (breaker open, draining) until the next
    /// [`Watchdog::progress`]; the time paused never counts as a stall.
    pub fn pause(&self) {
        self.paused.store(true, Ordering::Relaxed);
    }

    /// Resumes after a pause: the stall clock restarts now.
    pub fn resume(&self) {
        self.progress();
    }

    /// How long the loop has gone without progress (zero while paused).
    pub fn stalled_for(&self) -> Duration {
        if self.paused.load(Ordering::Relaxed) {
            return Duration::ZERO;
        }
        let last = self.last_progress_ms.load(Ordering::Relaxed);
        Duration::from_millis(self.now_ms().saturating_sub(last))
    }

    /// The current state.
    pub fn state(&self) -> WatchdogState {
        if self.tripped.load(Ordering::Relaxed) {
            return WatchdogState::Expired;
        }
        if self.paused.load(Ordering::Relaxed) {
            return WatchdogState::Paused;
        }
        let stalled = self.stalled_for();
        if stalled > self.config.exit_after {
            WatchdogState::Expired
        } else if stalled > self.config.not_ready_after {
            WatchdogState::Stalled
        } else {
            WatchdogState::Ok
        }
    }

    /// Why the worker is not ready, or `None` when it is.
    pub fn not_ready_reason(&self) -> Option<String> {
        match self.state() {
            WatchdogState::Ok | WatchdogState::Paused => None,
            WatchdogState::Stalled => Some(format!(
                "receive loop stalled: no ReceiveMessage has completed for {:.1}s (not ready \
                 after {:.1}s, exit after {:.1}s)",
                self.stalled_for().as_secs_f64(),
                self.config.not_ready_after.as_secs_f64(),
                self.config.exit_after.as_secs_f64(),
            )),
            WatchdogState::Expired => Some(format!(
                "receive loop stalled for more than {:.1}s: the worker is exiting",
                self.config.exit_after.as_secs_f64(),
            )),
        }
    }

    /// Whether the watchdog stopped the worker.
    pub fn tripped(&self) -> bool {
        self.tripped.load(Ordering::Relaxed)
    }

    /// Checks the loop every tick (a quarter of `not_ready_after`, 10 ms to 1 s), publishes the
    /// state to `metrics`, and cancels `shutdown` once the loop has stalled past `exit_after`.
    /// Returns when `stop` fires.
    pub async fn run(
        self: Arc<Self>,
        metrics: Arc<Metrics>,
        shutdown: CancellationToken,
        stop: CancellationToken,
    ) {
        let every = (self.config.not_ready_after / 4)
            .clamp(Duration::from_millis(10), Duration::from_secs(1));
        let mut ticker = tokio::time::interval(every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut reported = WatchdogState::Ok;
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                () = stop.cancelled() => return,
            }
            let state = self.state();
            metrics.set_watchdog(state as i64, self.stalled_for());
            if state != reported {
                match state {
                    WatchdogState::Stalled => tracing::warn!(
                        stalled_secs = self.stalled_for().as_secs_f64(),
                        "receive loop stalled: /readyz now fails"
                    ),
                    WatchdogState::Ok if reported == WatchdogState::Stalled => {
                        tracing::info!("receive loop progressing again: ready")
                    }
                    _ => {}
                }
                reported = state;
            }
            if state == WatchdogState::Expired && !self.tripped.swap(true, Ordering::Relaxed) {
                tracing::error!(
                    exit_after_secs = self.config.exit_after.as_secs_f64(),
                    exit_code = STALL_EXIT_CODE,
                    "receive loop stalled past the exit bound: stopping the worker so that its \
                     supervisor replaces it"
                );
                metrics.set_watchdog(WatchdogState::Expired as i64, self.stalled_for());
                shutdown.cancel();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watchdog() -> Arc<Watchdog> {
        Arc::new(Watchdog::new(WatchdogConfig {
            not_ready_after: Duration::from_secs(10),
            exit_after: Duration::from_secs(30),
        }))
    }

    #[tokio::test(start_paused = true)]
    async fn progress_keeps_it_ready_and_silence_flips_then_expires() {
        let w = watchdog();
        assert_eq!(w.state(), WatchdogState::Ok);
        tokio::time::advance(Duration::from_secs(9)).await;
        w.progress();
        tokio::time::advance(Duration::from_secs(9)).await;
        assert_eq!(w.state(), WatchdogState::Ok);
        assert_eq!(w.not_ready_reason(), None);
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(w.state(), WatchdogState::Stalled);
        let reason = w.not_ready_reason().unwrap();
        assert!(
            reason.contains("no ReceiveMessage has completed for 11.0s"),
            "{reason}"
        );
        tokio::time::advance(Duration::from_secs(20)).await;
        assert_eq!(w.state(), WatchdogState::Expired);
        // A completed receive makes it ready again (until the task trips it).
        w.progress();
        assert_eq!(w.state(), WatchdogState::Ok);
    }

    #[tokio::test(start_paused = true)]
    async fn a_deliberate_pause_is_not_a_stall() {
        let w = watchdog();
        w.pause();
        tokio::time::advance(Duration::from_secs(600)).await;
        assert_eq!(w.state(), WatchdogState::Paused);
        assert_eq!(w.stalled_for(), Duration::ZERO);
        assert_eq!(w.not_ready_reason(), None);
        w.resume();
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(w.state(), WatchdogState::Ok);
    }

    #[tokio::test(start_paused = true)]
    async fn the_task_publishes_the_state_and_cancels_shutdown_past_the_exit_bound() {
        let w = watchdog();
        let metrics = Arc::new(Metrics::new());
        let shutdown = CancellationToken::new();
        let stop = CancellationToken::new();
        let task = tokio::spawn(
            w.clone()
                .run(metrics.clone(), shutdown.clone(), stop.clone()),
        );
        tokio::time::advance(Duration::from_secs(12)).await;
        tokio::task::yield_now().await;
        // Polled: the task publishes on its own tick.
        while !metrics.encode().contains("ballast_worker_watchdog_state 2") {
            tokio::time::advance(Duration::from_millis(100)).await;
        }
        assert!(!shutdown.is_cancelled());
        tokio::time::timeout(Duration::from_secs(60), shutdown.cancelled())
            .await
            .expect("the watchdog cancels shutdown past the exit bound");
        assert!(w.tripped());
        assert!(w.stalled_for() > Duration::from_secs(30));
        assert!(metrics.encode().contains("ballast_worker_watchdog_state 3"));
        stop.cancel();
        task.await.unwrap();
    }
}
