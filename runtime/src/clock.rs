//! One clock for both binaries, injected so that time-dependent code is tested without
//! sleeping.
//!
//! A [`Clock`] answers two questions: the wall-clock time ([`Clock::now`], a [`Timestamp`]
//! in Unix milliseconds, for anything recorded or compared across processes) and the
//! monotonic time ([`Clock::elapsed`], for timeouts and rates inside one process, which must
//! not jump when the wall clock is set). [`SystemClock`] reads the machine's clocks;
//! [`ManualClock`] only moves when a test tells it to.

use std::fmt;
use std::ops::Add;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Whole milliseconds of `d`, saturating at `u64::MAX` (about 584 million years).
pub fn duration_millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A point in time: whole milliseconds since an epoch.
///
/// [`SystemClock`] uses the Unix epoch ([`Timestamp::from_system_time`]); simulations and
/// tests may use the start of the run. Arithmetic saturates instead of overflowing.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The epoch itself.
    pub const ZERO: Timestamp = Timestamp(0);

    /// A timestamp `millis` milliseconds after the epoch.
    pub const fn from_millis(millis: u64) -> Self {
        Timestamp(millis)
    }

    /// A timestamp `secs` seconds after the epoch (saturating).
    pub const fn from_secs(secs: u64) -> Self {
        Timestamp(secs.saturating_mul(1000))
    }

    /// Milliseconds since the epoch.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// Whole seconds since the epoch (rounded down).
    pub const fn as_secs(self) -> u64 {
        self.0 / 1000
    }

    /// Converts a wall-clock time (Unix epoch). Times before 1970 map to 0.
    pub fn from_system_time(time: SystemTime) -> Self {
        time.duration_since(UNIX_EPOCH)
            .map(|d| Timestamp(duration_millis(d)))
            .unwrap_or(Timestamp::ZERO)
    }

    /// The wall-clock time of a Unix-epoch timestamp.
    pub fn to_system_time(self) -> SystemTime {
        UNIX_EPOCH
            .checked_add(Duration::from_millis(self.0))
            .unwrap_or(UNIX_EPOCH)
    }

    /// Time elapsed since `earlier`, or zero if `earlier` is in the future.
    pub fn saturating_duration_since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}

impl Add<Duration> for Timestamp {
    type Output = Timestamp;

    /// Saturates at the largest timestamp.
    fn add(self, rhs: Duration) -> Timestamp {
        Timestamp(self.0.saturating_add(duration_millis(rhs)))
    }
}

impl fmt::Display for Timestamp {
    /// `300s`, or `1.500s` when there are milliseconds.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = Duration::from_millis(self.0);
        if d.subsec_millis() == 0 {
            write!(f, "{}s", d.as_secs())
        } else {
            write!(f, "{}.{:03}s", d.as_secs(), d.subsec_millis())
        }
    }
}

/// Where time-dependent code reads the time from.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The wall-clock time.
    fn now(&self) -> Timestamp;

    /// Monotonic time since an arbitrary origin fixed when the clock was made; never goes
    /// backwards.
    fn elapsed(&self) -> Duration;
}

/// The machine's clocks.
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    origin: Instant,
}

impl SystemClock {
    /// A system clock whose monotonic origin is now.
    pub fn new() -> Self {
        SystemClock {
            origin: Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_system_time(SystemTime::now())
    }

    fn elapsed(&self) -> Duration {
        self.origin.elapsed()
    }
}

/// A clock that only moves when told to: both its wall and its monotonic time advance
/// together ([`ManualClock::advance`]); [`ManualClock::set`] moves the wall time only, as a
/// wall-clock adjustment would.
#[derive(Debug, Default)]
pub struct ManualClock {
    wall_millis: AtomicU64,
    elapsed_millis: AtomicU64,
}

impl ManualClock {
    /// A clock whose wall time is `start` and whose monotonic time is zero.
    pub fn new(start: Timestamp) -> Self {
        ManualClock {
            wall_millis: AtomicU64::new(start.as_millis()),
            elapsed_millis: AtomicU64::new(0),
        }
    }

    /// Sets the wall time (the monotonic time does not move).
    pub fn set(&self, at: Timestamp) {
        self.wall_millis.store(at.as_millis(), Ordering::SeqCst);
    }

    /// Moves both times forward by `by` (whole milliseconds, saturating).
    pub fn advance(&self, by: Duration) {
        let by = duration_millis(by);
        for counter in [&self.wall_millis, &self.elapsed_millis] {
            // `fetch_update` with a closure that always returns `Some` cannot fail.
            let _ = counter.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |now| {
                Some(now.saturating_add(by))
            });
        }
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_millis(self.wall_millis.load(Ordering::SeqCst))
    }

    fn elapsed(&self) -> Duration {
        Duration::from_millis(self.elapsed_millis.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::new(Timestamp::from_secs(10));
        assert_eq!(clock.now(), Timestamp::from_secs(10));
        assert_eq!(clock.elapsed(), Duration::ZERO);
        clock.advance(Duration::from_millis(1500));
        assert_eq!(clock.now(), Timestamp::from_millis(11_500));
        assert_eq!(clock.elapsed(), Duration::from_millis(1500));
        // A wall-clock adjustment does not move monotonic time.
        clock.set(Timestamp::from_secs(300));
        assert_eq!(clock.now(), Timestamp::from_secs(300));
        assert_eq!(clock.elapsed(), Duration::from_millis(1500));
        clock.advance(Duration::MAX);
        assert_eq!(clock.now(), Timestamp::from_millis(u64::MAX));
    }

    #[test]
    fn system_clock_is_after_2020_and_monotonic() {
        let clock = SystemClock::new();
        assert!(clock.now() > Timestamp::from_secs(1_577_836_800));
        let a = clock.elapsed();
        assert!(clock.elapsed() >= a);
    }

    #[test]
    fn timestamps_saturate_and_round_trip() {
        assert_eq!(
            Timestamp::from_secs(u64::MAX),
            Timestamp::from_millis(u64::MAX)
        );
        assert_eq!(
            Timestamp::from_millis(u64::MAX) + Duration::from_secs(1),
            Timestamp::from_millis(u64::MAX)
        );
        assert_eq!(
            Timestamp::from_secs(5).saturating_duration_since(Timestamp::from_secs(7)),
            Duration::ZERO
        );
        let at = Timestamp::from_millis(1_700_000_000_123);
        assert_eq!(Timestamp::from_system_time(at.to_system_time()), at);
        assert_eq!(Timestamp::from_millis(1500).to_string(), "1.500s");
        assert_eq!(Timestamp::from_secs(300).to_string(), "300s");
        assert_eq!(duration_millis(Duration::MAX), u64::MAX);
    }
}
