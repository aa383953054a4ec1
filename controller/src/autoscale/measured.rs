//! Measured arrival rate λ and service rate per instance μ for `mode: queueing`
//! (μ smoothed across evaluations).
//!
//! The runner reads, each evaluation, the last few minutes of the queue's and
//! the workers' CloudWatch metrics ([`super::reading::read_rates`]): `AWS/SQS
//! NumberOfMessagesSent` (λ), the group's `Ballast/Worker TransactionsProcessed`
//! (its `Sum` and its `SampleCount`, the worker-minutes) and `AWS/SQS
//! ApproximateNumberOfMessagesVisible` (which minutes the fleet was saturated).
//! [`MeasuredRates`] turns those windows into smoothed rates; it lives in the
//! runner's [`PolicyLoop`](super::runner::PolicyLoop) and in the simulator's
//! policy, never in a global, and is pure, so it is unit-tested with plain numbers.
//!
//! * λ is the newest minute that has a datapoint, taken as is: CloudWatch
//!   publishes a minute a minute or more late, so the newest minute is usually
//!   absent and must not count as zero, and smoothing it further would only
//!   hold capacity longer after the load falls (measured in docs/benchmarks.md,
//!   "Autoscaler v2, fourth round").
//! * μ is only measured over saturated minutes (messages visible at both ends):
//!   an idle fleet processes λ, not what it could. It is divided by the
//!   worker-minutes that did the work, not by the instances in service today,
//!   which after a scale-out would make every instance look slower.
//! * Without any datapoint yet (a fresh fleet, a new queue) the rate stays
//!   `None` and the policy falls back to its own estimate of λ and to the
//!   configured `serviceRatePerInstance`.
//!
//! Integer arithmetic only (milli-messages per second, milliseconds).
#![deny(clippy::arithmetic_side_effects)]

use ballast_runtime::worker_metrics::PUBLISH_INTERVAL;

use super::Timestamp;

/// Time constant of the measured μ's smoothing, ms.
pub const SERVICE_TAU_MS: u64 = 120_000;

/// Published minutes a load must have held for [`RateWindow::steady_arrival_milli`].
pub const STEADY_MINUTES: usize = 3;
/// How far the lowest of those minutes may lie below the highest, percent.
pub const STEADY_PERCENT: u64 = 10;

/// `count` per `elapsed_ms`, in milli-messages per second.
pub(crate) fn per_sec_milli(count: u64, elapsed_ms: u64) -> u64 {
    let v = u128::from(count)
        .saturating_mul(1_000_000)
        .checked_div(u128::from(elapsed_ms.max(1)))
        .unwrap_or(0);
    u64::try_from(v).unwrap_or(u64::MAX)
}

/// Exponentially weighted moving average with time constant `tau_ms` over a
/// step of `dt_ms`: the first sample is taken as is.
pub(crate) fn ewma(previous: Option<u64>, sample: u64, dt_ms: u64, tau_ms: u64) -> u64 {
    let Some(previous) = previous else {
        return sample;
    };
    let num = u128::from(previous)
        .saturating_mul(u128::from(tau_ms))
        .saturating_add(u128::from(sample).saturating_mul(u128::from(dt_ms)));
    let den = u128::from(tau_ms).saturating_add(u128::from(dt_ms)).max(1);
    u64::try_from(num.checked_div(den).unwrap_or(0)).unwrap_or(u64::MAX)
}

/// One minute of the rate window: what CloudWatch holds for it, each `None`
/// when that metric has no datapoint for the minute.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateMinute {
    /// Minutes since the Unix epoch (the simulator: since the start of its run).
    pub minute: u64,
    /// `AWS/SQS NumberOfMessagesSent`, `Sum`.
    pub sent: Option<u64>,
    /// `Ballast/Worker TransactionsProcessed` of the group, `Sum`.
    pub processed: Option<u64>,
    /// `Ballast/Worker TransactionsProcessed` of the group, `SampleCount`: each
    /// worker publishes once every `PUBLISH_INTERVAL` (a minute), so the worker-minutes
    /// behind `processed`.
    pub reports: Option<u64>,
    /// `AWS/SQS ApproximateNumberOfMessagesVisible`, `Minimum`.
    pub visible: Option<u64>,
}

/// One evaluation's CloudWatch window: its minutes with any data, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RateWindow {
    pub minutes: Vec<RateMinute>,
}

impl RateWindow {
    /// λ of the newest minute with a `NumberOfMessagesSent` datapoint, milli-messages per
    /// second; `None` when no minute has one. CloudWatch publishes a minute a minute or more
    /// late, so the newest minute is usually absent and must not count as zero; a minute's
    /// sum is already an average over 60 s, and older minutes would only add lag (the policy's
    /// own estimate covers the minutes CloudWatch has not published yet).
    pub fn arrival_milli(&self) -> Option<u64> {
        let sent = self.minutes.iter().rev().find_map(|m| m.sent)?;
        Some(per_sec_milli(sent, 60_000))
    }

    /// The lower of the two newest minutes with a `NumberOfMessagesSent` datapoint, when they
    /// are consecutive, milli-messages per second: a rate that has lasted two minutes. One
    /// minute above the fleet's capacity is as often noise as load (a two-peak day's minutes
    /// vary by ±15 %), and scaling out on it is followed by a scale-in a minute later; a real
    /// burst is caught sooner by the projected breach anyway.
    pub fn sustained_arrival_milli(&self) -> Option<u64> {
        let mut published = self
            .minutes
            .iter()
            .rev()
            .filter_map(|m| Some((m.minute, m.sent?)));
        let (newest, newest_sent) = published.next()?;
        let (before, before_sent) = published.next()?;
        (before.checked_add(1) == Some(newest))
            .then(|| per_sec_milli(newest_sent.min(before_sent), 60_000))
    }

    /// The highest of the window's published minutes when there are at least
    /// [`STEADY_MINUTES`], consecutive, and the lowest is within [`STEADY_PERCENT`] of the
    /// highest, milli-messages per second: a load that has held for minutes, neither rising
    /// nor falling beyond noise. `None` otherwise.
    pub fn steady_arrival_milli(&self) -> Option<u64> {
        let published: Vec<(u64, u64)> = self
            .minutes
            .iter()
            .filter_map(|m| Some((m.minute, m.sent?)))
            .collect();
        let consecutive = published
            .iter()
            .zip(published.iter().skip(1))
            .all(|(before, next)| before.0.checked_add(1) == Some(next.0));
        if published.len() < STEADY_MINUTES || !consecutive {
            return None;
        }
        let highest = published.iter().map(|(_, sent)| *sent).max()?;
        let lowest = published.iter().map(|(_, sent)| *sent).min()?;
        let spread = u128::from(highest.saturating_sub(lowest)).saturating_mul(100);
        (spread <= u128::from(highest).saturating_mul(u128::from(STEADY_PERCENT)))
            .then(|| per_sec_milli(highest, 60_000))
    }

    /// μ per instance over the saturated minutes, milli-messages per second: the messages
    /// processed ÷ the worker-minutes that processed them. A minute is saturated when messages
    /// were visible at its end and at the end of the minute before (SQS samples the count once
    /// a minute), so the fleet had work throughout and processed at its capacity, not at λ.
    /// Dividing by the worker-minutes of the same minutes, not by today's fleet, keeps a
    /// scale-out from reading as slower instances. `None` without a saturated minute, or when
    /// they processed nothing (a stuck fleet is not a slow one: a zero μ would ask for
    /// unbounded capacity).
    pub fn service_milli(&self) -> Option<u64> {
        let (processed, reports) = self
            .minutes
            .iter()
            .zip(self.minutes.iter().skip(1))
            .filter(|(before, m)| {
                before.minute.checked_add(1) == Some(m.minute)
                    && before.visible.is_some_and(|v| v > 0)
                    && m.visible.is_some_and(|v| v > 0)
            })
            .filter_map(|(_, m)| Some((m.processed?, m.reports.filter(|r| *r > 0)?)))
            .fold((0u64, 0u64), |(p, r), (processed, reports)| {
                (p.saturating_add(processed), r.saturating_add(reports))
            });
        let report_ms = u64::try_from(PUBLISH_INTERVAL.as_millis()).unwrap_or(u64::MAX);
        (processed > 0).then(|| per_sec_milli(processed, reports.saturating_mul(report_ms)))
    }
}

/// The measured rates of one policy's queue and fleet, kept across evaluations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MeasuredRates {
    arrival_milli: Option<u64>,
    sustained_arrival_milli: Option<u64>,
    steady_arrival_milli: Option<u64>,
    service_milli: Option<u64>,
    last_service: Option<Timestamp>,
}

impl MeasuredRates {
    pub fn new() -> Self {
        Self::default()
    }

    /// λ of the newest published minute, milli-messages per second; `None` until measured.
    pub fn arrival_milli(&self) -> Option<u64> {
        self.arrival_milli
    }

    /// The lower of the two newest published minutes ([`RateWindow::sustained_arrival_milli`]);
    /// `None` until two consecutive minutes are published.
    pub fn sustained_arrival_milli(&self) -> Option<u64> {
        self.sustained_arrival_milli
    }

    /// The highest minute of a steady load ([`RateWindow::steady_arrival_milli`]); `None`
    /// while the load moves or too few minutes are published.
    pub fn steady_arrival_milli(&self) -> Option<u64> {
        self.steady_arrival_milli
    }

    /// Smoothed μ per instance, milli-messages per second; `None` until measured.
    pub fn service_milli(&self) -> Option<u64> {
        self.service_milli
    }

    /// Folds in one window read at `now`.
    pub fn update(&mut self, window: &RateWindow, now: Timestamp) {
        if let Some(rate) = window.arrival_milli() {
            self.arrival_milli = Some(rate);
            // Two minutes that are not consecutive say nothing about now: no sustained rate.
            self.sustained_arrival_milli = window.sustained_arrival_milli();
            self.steady_arrival_milli = window.steady_arrival_milli();
        }
        if let Some(per_instance) = window.service_milli() {
            let dt = step_ms(self.last_service, now);
            self.service_milli = Some(ewma(self.service_milli, per_instance, dt, SERVICE_TAU_MS));
            self.last_service = Some(now);
        }
    }
}

fn step_ms(last: Option<Timestamp>, now: Timestamp) -> u64 {
    last.map_or(0, |at| now.as_millis().saturating_sub(at.as_millis()))
}

#[cfg(test)]
#[allow(
    clippy::arithmetic_side_effects,
    reason = "tests: the checks apply to the smoothing, the tests compute expected values"
)]
mod tests {
    use super::*;

    /// `(sent, processed, reports, visible)` of one minute.
    type Minute = (Option<u64>, Option<u64>, Option<u64>, Option<u64>);

    /// One [`Minute`] per consecutive minute from minute 100.
    fn window(minutes: &[Minute]) -> RateWindow {
        RateWindow {
            minutes: minutes
                .iter()
                .enumerate()
                .map(|(i, &(sent, processed, reports, visible))| RateMinute {
                    minute: 100 + i as u64,
                    sent,
                    processed,
                    reports,
                    visible,
                })
                .collect(),
        }
    }

    /// Two saturated minutes: `sent` and `processed` each minute by `reports` workers.
    fn busy(sent: u64, processed: u64, reports: u64) -> RateWindow {
        window(&[
            (Some(sent), Some(processed), Some(reports), Some(50)),
            (Some(sent), Some(processed), Some(reports), Some(50)),
        ])
    }

    fn at(secs: u64) -> Timestamp {
        Timestamp::from_secs(secs)
    }

    #[test]
    fn a_fresh_fleet_has_no_measurement_so_the_policy_falls_back() {
        let mut rates = MeasuredRates::new();
        rates.update(&RateWindow::default(), at(0));
        assert_eq!((rates.arrival_milli(), rates.service_milli()), (None, None));
    }

    #[test]
    fn arrivals_are_the_newest_published_minute() {
        // The newest minute is not published yet: the one before it (1320 / 60 s = 22/s) counts,
        // not the older 600s and not a zero.
        let minutes = [
            (Some(600), None, None, None),
            (Some(600), None, None, None),
            (Some(1320), None, None, None),
            (None, Some(900), Some(3), Some(10)),
        ];
        assert_eq!(window(&minutes).arrival_milli(), Some(22_000));
        assert_eq!(window(&[(None, None, None, None)]).arrival_milli(), None);
        assert_eq!(
            window(&[(Some(0), None, None, None); 3]).arrival_milli(),
            Some(0)
        );
    }

    #[test]
    fn a_steady_rate_is_the_highest_of_at_least_three_close_consecutive_minutes() {
        let sent = |counts: &[Option<u64>]| {
            window(
                &counts
                    .iter()
                    .map(|&c| (c, None, None, None))
                    .collect::<Vec<Minute>>(),
            )
        };
        // 21–22/s for three minutes (the lowest within 10 % of the highest): 22/s.
        assert_eq!(
            sent(&[Some(1260), Some(1320), Some(1290)]).steady_arrival_milli(),
            Some(22_000)
        );
        // The unpublished newest minute is not a gap and does not count.
        assert_eq!(
            sent(&[Some(1260), Some(1320), Some(1290), None]).steady_arrival_milli(),
            Some(22_000)
        );
        // A ramp of 6 % a minute moves 12 % in three minutes: not steady.
        assert_eq!(
            sent(&[Some(1200), Some(1272), Some(1344)]).steady_arrival_milli(),
            None
        );
        // Two minutes are too few; a gap breaks the run.
        assert_eq!(sent(&[Some(1320), Some(1320)]).steady_arrival_milli(), None);
        assert_eq!(
            sent(&[Some(1320), None, Some(1320), Some(1320)]).steady_arrival_milli(),
            None
        );
        // Hostile counts neither panic nor pass as steady by overflow.
        assert_eq!(
            sent(&[Some(u64::MAX), Some(0), Some(u64::MAX)]).steady_arrival_milli(),
            None
        );
        assert!(sent(&[Some(u64::MAX); 3]).steady_arrival_milli().is_some());
        // MeasuredRates keeps it with the newest reading, and drops it when the load moves.
        let mut rates = MeasuredRates::new();
        rates.update(&sent(&[Some(1320); 3]), at(0));
        assert_eq!(rates.steady_arrival_milli(), Some(22_000));
        rates.update(&sent(&[Some(1320), Some(1320), Some(2000)]), at(60));
        assert_eq!(rates.steady_arrival_milli(), None);
    }

    #[test]
    fn a_sustained_rate_is_the_lower_of_two_consecutive_published_minutes() {
        let minutes = [
            (Some(3000), None, None, None),
            (Some(1320), None, None, None),
            (Some(1500), None, None, None),
            (None, None, None, Some(4)),
        ];
        // 22/s and 25/s: 22/s has lasted two minutes; the newest alone is 25/s.
        assert_eq!(window(&minutes).sustained_arrival_milli(), Some(22_000));
        assert_eq!(window(&minutes).arrival_milli(), Some(25_000));
        // One minute, or two with a gap between them, sustain nothing.
        assert_eq!(window(&minutes[..1]).sustained_arrival_milli(), None);
        let mut gap = window(&minutes[..3]);
        gap.minutes[2].minute += 1;
        assert_eq!(gap.sustained_arrival_milli(), None);
        let mut rates = MeasuredRates::new();
        rates.update(&window(&minutes), at(0));
        assert_eq!(rates.sustained_arrival_milli(), Some(22_000));
    }

    #[test]
    fn mu_is_per_worker_minute_of_the_saturated_minutes() {
        // 3 workers, then 6 after a scale-out; each processes 300 a minute (5/s). Divided by
        // today's 6 instances the first minutes would read 2.5/s; per worker-minute it is 5/s.
        let w = window(&[
            (None, Some(900), Some(3), Some(400)),
            (None, Some(900), Some(3), Some(300)),
            (None, Some(1800), Some(6), Some(40)),
        ]);
        assert_eq!(w.service_milli(), Some(5_000));
    }

    #[test]
    fn a_minute_counts_only_if_messages_waited_at_both_ends() {
        // Minute 101 starts with an empty queue (minute 100's sample is 0): the fleet may have
        // idled, so its 600 from 5 workers (2/s each) is λ, not capacity. Minute 103 follows a
        // gap in the visible samples, so its start is unknown.
        let w = window(&[
            (None, Some(300), Some(5), Some(0)),
            (None, Some(600), Some(5), Some(20)),
            (None, Some(1500), Some(5), Some(30)),
            (None, Some(100), Some(5), None),
            (None, Some(100), Some(5), Some(30)),
        ]);
        assert_eq!(w.service_milli(), Some(5_000));
        // No saturated minute, or one whose workers processed nothing (stuck, not slow).
        assert_eq!(
            window(&[(None, Some(600), Some(5), Some(0)); 3]).service_milli(),
            None
        );
        assert_eq!(
            window(&[(None, Some(0), Some(5), Some(9)); 3]).service_milli(),
            None
        );
        assert_eq!(
            window(&[(None, Some(600), Some(0), Some(9)); 3]).service_milli(),
            None
        );
    }

    #[test]
    fn lambda_is_taken_as_is_and_mu_smoothed_with_its_time_constant() {
        let mut rates = MeasuredRates::new();
        // 22/s arriving; 4 workers processed 1200 a minute together: μ = 5/s each.
        rates.update(&busy(1320, 1200, 4), at(0));
        assert_eq!(rates.arrival_milli(), Some(22_000));
        assert_eq!(rates.service_milli(), Some(5_000));
        // λ jumps to 82/s: the newest minute is what arrives now.
        rates.update(&busy(4920, 1200, 4), at(60));
        assert_eq!(rates.arrival_milli(), Some(82_000));
        // μ's time constant is 120 s; 120 s after its last update, half way from 5 to 8.
        rates.update(&busy(4920, 1920, 4), at(180));
        assert_eq!(rates.service_milli(), Some(6_500));
    }

    #[test]
    fn a_missing_window_keeps_the_last_measurement() {
        let mut rates = MeasuredRates::new();
        rates.update(&busy(600, 900, 3), at(0));
        rates.update(&RateWindow::default(), at(60));
        assert_eq!(rates.arrival_milli(), Some(10_000));
        assert_eq!(rates.service_milli(), Some(5_000));
    }

    #[test]
    fn hostile_sums_do_not_panic() {
        let mut rates = MeasuredRates::new();
        let huge = window(
            &[(
                Some(u64::MAX),
                Some(u64::MAX),
                Some(u64::MAX),
                Some(u64::MAX),
            ); 3],
        );
        rates.update(&huge, at(u64::MAX / 2000));
        rates.update(&huge, at(0));
        let mut edge = huge.clone();
        edge.minutes[0].minute = u64::MAX;
        rates.update(&edge, at(1));
        assert!(rates.arrival_milli().is_some());
    }
}
