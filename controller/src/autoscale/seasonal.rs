//! Seasonal prediction of the arrival rate for `mode: queueing`
//! (`prediction: {days: N}` on a scaling policy).
//!
//! A [`SeasonalProfile`] is learned from the recent history of the queue's
//! arrivals (one-minute `NumberOfMessagesSent` sums of the last days): for
//! every slot of the period (a minute of the day), the **median** of that
//! slot's rate over the days of history, so one unusual day (an outage, a
//! one-off batch) does not move the profile. Minutes of the history without
//! a datapoint are 0 arrivals (CloudWatch publishes nothing for an idle
//! queue). The policy asks for the highest predicted rate over the next boot
//! time ([`SeasonalProfile::predict_max`]) and provisions for it, so a known
//! daily peak is met by capacity already in service.
//!
//! Pure and integer-only: the runner reads the history
//! ([`super::reading::minute_sums`], the same read as `ballast trace
//! export`); the simulator feeds it earlier days of the trace.
#![deny(clippy::arithmetic_side_effects)]

/// A rate per slot of a repeating period, learned from history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeasonalProfile {
    /// Length of the season, seconds (86 400: a day).
    period_secs: u64,
    /// Width of one slot, seconds (60: the history's resolution).
    slot_secs: u64,
    /// Median rate per slot, milli-messages per second; `None` where the
    /// history has no sample of the slot.
    slots: Vec<Option<u64>>,
    /// Full periods the history covered (at least one sample of every slot).
    pub periods: u64,
}

impl SeasonalProfile {
    /// Learns the profile from `counts`: messages per slot of `slot_secs`,
    /// consecutive, the first starting at `start_secs` (seconds since the
    /// epoch, or since the start of a simulated trace). `period_secs` is
    /// rounded down to whole slots; a zero slot or period gives an empty
    /// profile that predicts nothing.
    pub fn learn(start_secs: u64, slot_secs: u64, period_secs: u64, counts: &[u64]) -> Self {
        let slot_count = period_secs.checked_div(slot_secs).unwrap_or(0);
        let len = usize::try_from(slot_count).unwrap_or(0);
        let mut samples: Vec<Vec<u64>> = vec![Vec::new(); len];
        let mut at = start_secs;
        for count in counts {
            if let Some(slot) = Self::slot_index(at, slot_secs, slot_count)
                && let Some(bucket) = samples.get_mut(slot)
            {
                let rate = u128::from(*count)
                    .saturating_mul(1000)
                    .checked_div(u128::from(slot_secs))
                    .unwrap_or(0);
                bucket.push(u64::try_from(rate).unwrap_or(u64::MAX));
            }
            at = at.saturating_add(slot_secs);
        }
        let periods = samples.iter().map(Vec::len).min().unwrap_or(0);
        SeasonalProfile {
            period_secs: slot_count.saturating_mul(slot_secs),
            slot_secs,
            slots: samples.into_iter().map(median).collect(),
            periods: u64::try_from(periods).unwrap_or(u64::MAX),
        }
    }

    fn slot_index(at_secs: u64, slot_secs: u64, slot_count: u64) -> Option<usize> {
        let slot = at_secs.checked_div(slot_secs)?.checked_rem(slot_count)?;
        usize::try_from(slot).ok()
    }

    /// The predicted rate at `at_secs`, milli-messages per second.
    pub fn predict(&self, at_secs: u64) -> Option<u64> {
        let count = u64::try_from(self.slots.len()).ok()?;
        let index = Self::slot_index(at_secs, self.slot_secs, count)?;
        self.slots.get(index).copied().flatten()
    }

    /// The highest predicted rate over `[from_secs, to_secs]`, slot by slot;
    /// `None` when no slot in the range has a prediction.
    pub fn predict_max(&self, from_secs: u64, to_secs: u64) -> Option<u64> {
        if self.slot_secs == 0 || self.slots.is_empty() {
            return None;
        }
        // At most one period: beyond it the slots repeat.
        let to = to_secs.min(from_secs.saturating_add(self.period_secs));
        let mut best = None;
        let mut at = from_secs;
        loop {
            if let Some(rate) = self.predict(at) {
                best = Some(best.map_or(rate, |b: u64| b.max(rate)));
            }
            if at >= to {
                break;
            }
            // The start of the next slot, or the end of the range.
            let next = at
                .checked_div(self.slot_secs)
                .unwrap_or(0)
                .saturating_add(1)
                .saturating_mul(self.slot_secs);
            at = next.min(to);
        }
        best
    }
}

/// How often the controller learns the profile again (the history moves on).
pub const RELEARN_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// A policy's prediction in the controller: the profile learned from the queue's last `days`
/// of arrivals, learned again every [`RELEARN_EVERY`]. The only I/O of this module is
/// [`Forecast::refresh`]'s read ([`super::reading::arrival_history`], shared with
/// `ballast trace export`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forecast {
    days: u32,
    profile: Option<SeasonalProfile>,
    learned_at: Option<super::Timestamp>,
}

impl Forecast {
    pub fn new(days: u32) -> Self {
        Forecast {
            days,
            profile: None,
            learned_at: None,
        }
    }

    /// The learned profile, if any.
    pub fn profile(&self) -> Option<&SeasonalProfile> {
        self.profile.as_ref()
    }

    /// Learns the profile from the queue's history when it has not been learned for
    /// [`RELEARN_EVERY`]: the whole minutes of the last `days` days before `now`, a day as the
    /// season. A failed read keeps the previous profile (or none) and is tried again after
    /// [`RELEARN_EVERY`], so an unreadable history never costs a CloudWatch call per evaluation.
    pub async fn refresh(
        &mut self,
        cw: &aws_sdk_cloudwatch::Client,
        queue_name: &str,
        now: super::Timestamp,
    ) {
        let due = self
            .learned_at
            .is_none_or(|at| now.saturating_duration_since(at) >= RELEARN_EVERY);
        if !due {
            return;
        }
        self.learned_at = Some(now);
        let now_secs = now.as_millis().checked_div(1000).unwrap_or(0);
        let end_secs = now_secs.saturating_sub(now_secs.checked_rem(60).unwrap_or(0));
        let minutes = u64::from(self.days).saturating_mul(MINUTES_PER_DAY);
        let start_secs = end_secs.saturating_sub(minutes.saturating_mul(60));
        let start = std::time::SystemTime::UNIX_EPOCH
            .checked_add(std::time::Duration::from_secs(start_secs))
            .unwrap_or(std::time::SystemTime::UNIX_EPOCH);
        match super::reading::arrival_history(cw, queue_name, start, minutes).await {
            Ok(counts) => {
                self.profile = Some(SeasonalProfile::learn(start_secs, 60, DAY_SECS, &counts));
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot read the arrival history for the prediction; trying again in an hour");
            }
        }
    }

    /// The highest rate the profile predicts from `now` until `boot_time` later.
    pub fn predict(&self, now: super::Timestamp, boot_time: std::time::Duration) -> Option<u64> {
        let from = now.as_millis().checked_div(1000).unwrap_or(0);
        self.profile
            .as_ref()?
            .predict_max(from, from.saturating_add(boot_time.as_secs()))
    }
}

/// A day, the season of the controller's profile.
pub const DAY_SECS: u64 = 86_400;
const MINUTES_PER_DAY: u64 = 1440;

/// The median (the lower middle for an even count), `None` for no samples.
fn median(mut values: Vec<u64>) -> Option<u64> {
    values.sort_unstable();
    let middle = values.len().saturating_sub(1).checked_div(2)?;
    values.get(middle).copied()
}

#[cfg(test)]
#[allow(
    clippy::arithmetic_side_effects,
    reason = "tests compute expected values"
)]
mod tests {
    use super::*;

    #[test]
    fn the_median_of_each_slot_ignores_one_odd_day() {
        // A "day" of 4 one-minute slots, three days: the third day's slot 2 is an outage (0)
        // and its slot 3 a one-off batch (6000 a minute).
        let counts = [
            60, 120, 600, 60, //
            60, 180, 660, 120, //
            0, 120, 0, 6000,
        ];
        let p = SeasonalProfile::learn(0, 60, 240, &counts);
        assert_eq!(p.periods, 3);
        assert_eq!(p.predict(0), Some(1000)); // 60, 60, 0 → 60 a minute = 1/s
        assert_eq!(p.predict(60), Some(2000));
        assert_eq!(p.predict(150), Some(10_000)); // 600, 660, 0 → 600
        assert_eq!(p.predict(180), Some(2000)); // 60, 120, 6000 → 120
        // The season repeats.
        assert_eq!(p.predict(240 * 9 + 150), Some(10_000));
        assert_eq!(p.predict_max(30, 130), Some(10_000));
        assert_eq!(p.predict_max(0, 59), Some(1000));
    }

    #[test]
    fn history_may_start_mid_period_and_cover_part_of_it() {
        // Slots of 60 s, period 240 s, history from 120 s for 3 slots: slots 2, 3, 0.
        let p = SeasonalProfile::learn(120, 60, 240, &[600, 1200, 60]);
        assert_eq!(p.periods, 0, "slot 1 has no sample");
        assert_eq!(p.predict(60), None);
        assert_eq!(p.predict(130), Some(10_000));
        assert_eq!(p.predict(250), Some(1000));
        assert_eq!(p.predict_max(60, 119), None);
    }

    #[test]
    fn degenerate_profiles_predict_nothing() {
        for p in [
            SeasonalProfile::learn(0, 0, 86_400, &[1, 2, 3]),
            SeasonalProfile::learn(0, 60, 0, &[1, 2, 3]),
            SeasonalProfile::learn(0, 60, 30, &[1]),
            SeasonalProfile::learn(0, 60, 86_400, &[]),
        ] {
            assert_eq!(p.predict(0), None);
            assert_eq!(p.predict_max(0, u64::MAX), None);
        }
    }

    proptest::proptest! {
        #[test]
        fn predictions_stay_within_the_history(
            counts in proptest::collection::vec(0u64..10_000, 0..200),
            start in 0u64..100_000,
            slots in 1u64..30,
            from in 0u64..1_000_000,
            span in 0u64..10_000,
        ) {
            let p = SeasonalProfile::learn(start, 60, slots * 60, &counts);
            let highest = counts.iter().max().map(|c| c * 1000 / 60);
            if let Some(rate) = p.predict_max(from, from + span) {
                proptest::prop_assert!(Some(rate) <= highest);
                proptest::prop_assert!(p.predict(from).is_none_or(|r| r <= rate));
            }
        }
    }
}
