//! Per-client token-bucket rate limiting on the monotonic time ([`Clock::elapsed`]) of an
//! injected [`ballast_runtime::Clock`], so tests move a `ManualClock` instead of sleeping.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ballast_runtime::Clock;

/// Bucket parameters: `per_second` tokens are added each second, up to `burst`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Sustained requests per second per client.
    pub per_second: f64,
    /// Bucket size (requests allowed at once).
    pub burst: u32,
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit {
            per_second: 50.0,
            burst: 100,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Duration,
}

/// Buckets are dropped once full again when the map grows beyond this many clients.
const MAX_TRACKED_CLIENTS: usize = 100_000;

/// Token buckets keyed by client (JWT `sub`).
#[derive(Debug)]
pub struct RateLimiter {
    limit: RateLimit,
    clock: Arc<dyn Clock>,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    /// A limiter; `per_second <= 0` or `burst == 0` disables limiting.
    pub fn new(limit: RateLimit, clock: Arc<dyn Clock>) -> Self {
        RateLimiter {
            limit,
            clock,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn enabled(&self) -> bool {
        self.limit.per_second > 0.0 && self.limit.burst > 0
    }

    /// Takes one token for `client`; `Err(retry_after_seconds)` when the bucket is empty.
    pub fn check(&self, client: &str) -> Result<(), u64> {
        if !self.enabled() {
            return Ok(());
        }
        let now = self.clock.elapsed();
        let burst = f64::from(self.limit.burst);
        let rate = self.limit.per_second;
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= MAX_TRACKED_CLIENTS && !buckets.contains_key(client) {
            buckets.retain(|_, b| {
                b.tokens + (now.saturating_sub(b.updated)).as_secs_f64() * rate < burst
            });
        }
        let bucket = buckets.entry(client.to_owned()).or_insert(Bucket {
            tokens: burst,
            updated: now,
        });
        let elapsed = now.saturating_sub(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(burst);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - bucket.tokens) / rate;
            // At least one second: Retry-After has whole-second resolution.
            Err((wait.ceil() as u64).max(1))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ballast_runtime::ManualClock;

    #[test]
    fn bucket_refills_with_the_clock() {
        let clock = Arc::new(ManualClock::default());
        let limiter = RateLimiter::new(
            RateLimit {
                per_second: 0.5,
                burst: 2,
            },
            clock.clone(),
        );
        assert!(limiter.check("a").is_ok());
        assert!(limiter.check("a").is_ok());
        assert_eq!(limiter.check("a"), Err(2));
        assert!(limiter.check("b").is_ok(), "clients have their own buckets");
        clock.advance(Duration::from_secs(1));
        assert_eq!(limiter.check("a"), Err(1));
        clock.advance(Duration::from_secs(1));
        assert!(limiter.check("a").is_ok());
    }

    #[test]
    fn zero_rate_disables_limiting() {
        let limiter = RateLimiter::new(
            RateLimit {
                per_second: 0.0,
                burst: 0,
            },
            Arc::new(ManualClock::default()),
        );
        for _ in 0..1000 {
            assert!(limiter.check("a").is_ok());
        }
    }
}
