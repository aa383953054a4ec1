//! Velocity: what one debited account did recently, in fixed-size buckets.
//!
//! The sliding window is approximated by whole buckets of `velocityBucket` seconds (60 s by
//! default), aligned on the Unix epoch. A window of `W` seconds counts the bucket holding `now`
//! and the `W / bucket - 1` buckets before it, so it looks back between `W - bucket` and `W`
//! seconds: a debit is counted for at least `W - bucket` seconds and never longer than `W`.
//!
//! The state is one item per account (`VELOCITY#<account>` in the transactions table, see
//! [`crate::store::keys`]) with a `version`. The worker reads it, scores, and writes the next
//! state in the same TransactWriteItems as the movement, conditional on the `version` it read:
//! a racing worker that committed first makes that condition fail, and the loser reads again
//! and scores again ([`crate::ledger::CancellationVerdict::Stale`]).
#![deny(clippy::arithmetic_side_effects)]

use rust_decimal::Decimal;
use time::OffsetDateTime;

use crate::transaction::Currency;

/// Debits of one currency in one bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    /// Unix seconds of the bucket's start (a multiple of the bucket width).
    pub start: i64,
    /// The currency of `amount`.
    pub currency: Currency,
    /// Debits in the bucket.
    pub count: u64,
    /// Money debited in the bucket.
    pub amount: Decimal,
}

/// One account's velocity state as read (or the empty state of an account without one).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VelocitySnapshot {
    /// The item's version; 0 when there is no item yet.
    pub version: u64,
    /// Debits counted since the account's first (never pruned): `firstTransactions` reads it.
    pub lifetime_count: u64,
    /// Buckets, oldest first.
    pub buckets: Vec<Bucket>,
}

/// Start of the bucket holding `now`.
pub fn bucket_start(now: OffsetDateTime, bucket_secs: u64) -> i64 {
    let width = i64::try_from(bucket_secs.max(1)).unwrap_or(i64::MAX);
    let t = now.unix_timestamp();
    t.checked_rem_euclid(width)
        .and_then(|r| t.checked_sub(r))
        .unwrap_or(t)
}

/// First bucket start inside a window of `window_secs` ending with the bucket holding `now`.
fn window_floor(now: OffsetDateTime, window_secs: u64, bucket_secs: u64) -> i64 {
    let current = bucket_start(now, bucket_secs);
    let back = window_secs.saturating_sub(bucket_secs.max(1));
    current.saturating_sub(i64::try_from(back).unwrap_or(i64::MAX))
}

/// Debits in the window, and the money among them in `currency` (`None` when the sum
/// overflows, which scoring treats as over any limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowTotals {
    /// Debits of any currency.
    pub count: u64,
    /// Money in the asked currency.
    pub amount: Option<Decimal>,
}

impl VelocitySnapshot {
    /// Totals of the window of `window_secs` ending at `now`.
    pub fn window(
        &self,
        now: OffsetDateTime,
        window_secs: u64,
        bucket_secs: u64,
        currency: Currency,
    ) -> WindowTotals {
        let floor = window_floor(now, window_secs, bucket_secs);
        let current = bucket_start(now, bucket_secs);
        let mut count: u64 = 0;
        let mut amount = Some(Decimal::ZERO);
        for b in self
            .buckets
            .iter()
            .filter(|b| b.start >= floor && b.start <= current)
        {
            count = count.saturating_add(b.count);
            if b.currency == currency {
                amount = amount.and_then(|a| a.checked_add(b.amount));
            }
        }
        WindowTotals { count, amount }
    }

    /// The next state after one more debit of `amount` at `now`: buckets older than
    /// `retention_secs` are dropped, the version and the lifetime count go up by one.
    pub fn record(
        &self,
        now: OffsetDateTime,
        amount: Decimal,
        currency: Currency,
        bucket_secs: u64,
        retention_secs: u64,
    ) -> Option<VelocitySnapshot> {
        let floor = window_floor(now, retention_secs, bucket_secs);
        let start = bucket_start(now, bucket_secs);
        let mut buckets: Vec<Bucket> = self
            .buckets
            .iter()
            .filter(|b| b.start >= floor)
            .cloned()
            .collect();
        match buckets
            .iter_mut()
            .find(|b| b.start == start && b.currency == currency)
        {
            Some(b) => {
                b.count = b.count.checked_add(1)?;
                b.amount = b.amount.checked_add(amount)?;
            }
            None => buckets.push(Bucket {
                start,
                currency,
                count: 1,
                amount,
            }),
        }
        buckets.sort_by(|a, b| (a.start, a.currency.code()).cmp(&(b.start, b.currency.code())));
        Some(VelocitySnapshot {
            version: self.version.checked_add(1)?,
            lifetime_count: self.lifetime_count.checked_add(1)?,
            buckets,
        })
    }
}

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects, reason = "test code")]
mod tests {
    use super::*;

    fn usd() -> Currency {
        Currency::from_code("USD").unwrap()
    }

    fn at(secs: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(secs).unwrap()
    }

    #[test]
    fn buckets_align_on_the_epoch() {
        assert_eq!(bucket_start(at(125), 60), 120);
        assert_eq!(bucket_start(at(120), 60), 120);
        assert_eq!(bucket_start(at(-1), 60), -60);
    }

    #[test]
    fn the_window_covers_between_w_minus_a_bucket_and_w() {
        let mut s = VelocitySnapshot::default();
        s = s.record(at(0), Decimal::ONE, usd(), 60, 600).unwrap();
        // 10-minute window: still counted at 599 s, gone at 600 s.
        assert_eq!(s.window(at(599), 600, 60, usd()).count, 1);
        assert_eq!(s.window(at(600), 600, 60, usd()).count, 0);
        // Recorded at the end of a bucket: counted for W - bucket (+1 s) only.
        let s = VelocitySnapshot::default()
            .record(at(59), Decimal::ONE, usd(), 60, 600)
            .unwrap();
        assert_eq!(s.window(at(599), 600, 60, usd()).count, 1);
        assert_eq!(s.window(at(600), 600, 60, usd()).count, 0);
    }

    #[test]
    fn recording_prunes_counts_and_versions() {
        let mut s = VelocitySnapshot::default();
        for t in [0, 10, 70, 600] {
            s = s
                .record(at(t), Decimal::new(150, 2), usd(), 60, 600)
                .unwrap();
        }
        assert_eq!(s.version, 4);
        assert_eq!(s.lifetime_count, 4);
        // Bucket 0 (0 s, 10 s) is out of the 10-minute window at 600 s; bucket 60 (70 s) is in.
        assert_eq!(s.buckets.len(), 2, "{s:?}");
        let w = s.window(at(600), 600, 60, usd());
        assert_eq!((w.count, w.amount), (2, Some(Decimal::new(300, 2))));
        let eur = Currency::from_code("EUR").unwrap();
        assert_eq!(s.window(at(600), 600, 60, eur).amount, Some(Decimal::ZERO));
    }
}
