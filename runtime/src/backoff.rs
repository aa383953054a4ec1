//! One exponential backoff for every retry loop: `base`, `2·base`, `4·base` … capped at
//! `max`, and one ±10 % jitter so that replicas do not retry in lockstep.

use std::time::Duration;

use rand::Rng;
use tokio_util::sync::CancellationToken;

/// Exponential backoff: the delay after `n` consecutive failures is `base × 2^(n−1)`, at most
/// `max`. All arithmetic saturates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Delay after the first failure.
    pub base: Duration,
    /// Longest delay.
    pub max: Duration,
}

/// Doublings beyond this cannot matter: `2^31` times even a nanosecond base is over two
/// seconds, and `u32` holds `1 << 31`.
const MAX_DOUBLINGS: u32 = 31;

impl Backoff {
    /// The delay after `failures` consecutive failures (1 = the first; 0 is treated as 1).
    pub fn delay(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(MAX_DOUBLINGS);
        self.base.saturating_mul(1u32 << doublings).min(self.max)
    }

    /// Waits [`Backoff::delay`]`(failures)`, or less if `shutdown` is cancelled first.
    /// Returns `false` when cancelled.
    pub async fn wait(&self, failures: u32, shutdown: &CancellationToken) -> bool {
        tokio::select! {
            () = tokio::time::sleep(self.delay(failures)) => true,
            () = shutdown.cancelled() => false,
        }
    }
}

/// `delay` scaled by a random factor in [0.9, 1.1], so that replicas and loops started
/// together spread out. A delay too large to scale is returned unchanged.
pub fn jittered(delay: Duration) -> Duration {
    let factor = rand::rng().random_range(0.9..=1.1);
    Duration::try_from_secs_f64(delay.as_secs_f64() * factor).unwrap_or(delay)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BACKOFF: Backoff = Backoff {
        base: Duration::from_secs(1),
        max: Duration::from_secs(30),
    };

    #[test]
    fn delays_double_up_to_the_cap() {
        let delays: Vec<u64> = (0..=7).map(|n| BACKOFF.delay(n).as_secs()).collect();
        assert_eq!(delays, [1, 1, 2, 4, 8, 16, 30, 30]);
        assert_eq!(BACKOFF.delay(u32::MAX), Duration::from_secs(30));
        let unbounded = Backoff {
            base: Duration::MAX,
            max: Duration::MAX,
        };
        assert_eq!(unbounded.delay(u32::MAX), Duration::MAX);
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        for _ in 0..1000 {
            let d = jittered(Duration::from_secs(60)).as_secs_f64();
            assert!((54.0..=66.0).contains(&d), "{d}");
        }
        // Near the largest duration, scaling up saturates instead of panicking.
        assert!(jittered(Duration::MAX) >= Duration::from_secs(u64::MAX / 100 * 89));
        assert_eq!(jittered(Duration::ZERO), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn wait_sleeps_the_delay_on_tokio_time() {
        let shutdown = CancellationToken::new();
        let start = tokio::time::Instant::now();
        assert!(BACKOFF.wait(4, &shutdown).await);
        assert_eq!(start.elapsed(), Duration::from_secs(8));
    }

    #[tokio::test(start_paused = true)]
    async fn wait_ends_early_on_shutdown() {
        let shutdown = CancellationToken::new();
        let start = tokio::time::Instant::now();
        let cancel = shutdown.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(3)).await;
            cancel.cancel();
        });
        assert!(!BACKOFF.wait(10, &shutdown).await);
        assert_eq!(start.elapsed(), Duration::from_secs(3));
    }
}
