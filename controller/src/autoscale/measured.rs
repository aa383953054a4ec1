//! Measured arrival rate λ and service rate per instance μ for `mode: queueing`,
//! smoothed across evaluations.
//!
//! The runner reads, each evaluation, the last few minutes of two CloudWatch
//! metrics ([`super::reading::read_rates`]): the queue's `AWS/SQS
//! NumberOfMessagesSent` (λ) and the workers' `Ballast/Worker
//! TransactionsProcessed` summed over the group (μ once divided by the
//! instances in service). [`MeasuredRates`] turns those windows into smoothed
//! rates; it lives in the runner's [`PolicyLoop`](super::runner::PolicyLoop),
//! never in a global, and is pure, so it is unit-tested with plain numbers.
//!
//! * A rate is the window's sum over the minutes that have a datapoint:
//!   CloudWatch publishes a minute a minute or more late, so the newest
//!   minute is usually absent and must not count as zero.
//! * μ is only measured while the fleet is saturated (messages visible at
//!   this reading): an idle fleet processes λ, not what it could.
//! * Without any datapoint yet (a fresh fleet, a new queue) the rate stays
//!   `None` and the policy falls back to its own estimate of λ and to the
//!   configured `serviceRatePerInstance`.
//!
//! Integer arithmetic only (milli-messages per second, milliseconds).
#![deny(clippy::arithmetic_side_effects)]

use super::Timestamp;

/// Time constant of the measured λ's smoothing, ms.
pub const ARRIVAL_TAU_MS: u64 = 60_000;
/// Time constant of the measured μ's smoothing, ms.
pub const SERVICE_TAU_MS: u64 = 120_000;

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

/// The sum of one metric's one-minute datapoints over a window, and how many
/// minutes had a datapoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MinuteSums {
    pub total: u64,
    pub minutes: u64,
}

impl MinuteSums {
    /// Messages per second over the minutes with data, in milli-messages per
    /// second; `None` when no minute had data.
    pub fn rate_milli(&self) -> Option<u64> {
        (self.minutes > 0).then(|| per_sec_milli(self.total, self.minutes.saturating_mul(60_000)))
    }
}

/// One evaluation's CloudWatch window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateWindow {
    /// `AWS/SQS NumberOfMessagesSent` of the queue.
    pub sent: MinuteSums,
    /// `Ballast/Worker TransactionsProcessed` of the whole group.
    pub processed: MinuteSums,
}

/// The smoothed measured rates of one policy's queue and fleet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MeasuredRates {
    arrival_milli: Option<u64>,
    service_milli: Option<u64>,
    last_arrival: Option<Timestamp>,
    last_service: Option<Timestamp>,
}

impl MeasuredRates {
    pub fn new() -> Self {
        Self::default()
    }

    /// Smoothed λ, milli-messages per second; `None` until measured.
    pub fn arrival_milli(&self) -> Option<u64> {
        self.arrival_milli
    }

    /// Smoothed μ per instance, milli-messages per second; `None` until measured.
    pub fn service_milli(&self) -> Option<u64> {
        self.service_milli
    }

    /// Folds in one window read at `now`. `saturated`: messages were visible
    /// at this evaluation, so the fleet worked at full rate; `in_service`:
    /// the instances that shared the processed messages.
    pub fn update(
        &mut self,
        window: &RateWindow,
        in_service: u32,
        saturated: bool,
        now: Timestamp,
    ) {
        if let Some(rate) = window.sent.rate_milli() {
            let dt = step_ms(self.last_arrival, now);
            self.arrival_milli = Some(ewma(self.arrival_milli, rate, dt, ARRIVAL_TAU_MS));
            self.last_arrival = Some(now);
        }
        if saturated
            && in_service > 0
            && let Some(rate) = window.processed.rate_milli()
        {
            let per_instance = rate.checked_div(u64::from(in_service)).unwrap_or(0);
            // A fleet that processed nothing while messages waited is stuck, not slow:
            // a zero μ would ask for unbounded capacity.
            if per_instance > 0 {
                let dt = step_ms(self.last_service, now);
                self.service_milli =
                    Some(ewma(self.service_milli, per_instance, dt, SERVICE_TAU_MS));
                self.last_service = Some(now);
            }
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

    fn window(sent: Option<(u64, u64)>, processed: Option<(u64, u64)>) -> RateWindow {
        let sums = |v: Option<(u64, u64)>| {
            v.map(|(total, minutes)| MinuteSums { total, minutes })
                .unwrap_or_default()
        };
        RateWindow {
            sent: sums(sent),
            processed: sums(processed),
        }
    }

    fn at(secs: u64) -> Timestamp {
        Timestamp::from_secs(secs)
    }

    #[test]
    fn a_fresh_fleet_has_no_measurement_so_the_policy_falls_back() {
        let mut rates = MeasuredRates::new();
        rates.update(&window(None, None), 3, true, at(0));
        assert_eq!((rates.arrival_milli(), rates.service_milli()), (None, None));
    }

    #[test]
    fn rates_are_per_minute_with_data_not_per_window() {
        // 4 of 5 minutes published (the newest is late): 5280 / 240 s = 22/s.
        assert_eq!(
            MinuteSums {
                total: 5280,
                minutes: 4
            }
            .rate_milli(),
            Some(22_000)
        );
        assert_eq!(
            MinuteSums {
                total: 0,
                minutes: 0
            }
            .rate_milli(),
            None
        );
        assert_eq!(
            MinuteSums {
                total: 0,
                minutes: 3
            }
            .rate_milli(),
            Some(0)
        );
    }

    #[test]
    fn the_first_measurement_is_taken_as_is_then_smoothed_with_the_time_constant() {
        let mut rates = MeasuredRates::new();
        // 22/s arriving; 4 instances processed 20/s together: μ = 5/s each.
        rates.update(&window(Some((1320, 1)), Some((1200, 1))), 4, true, at(0));
        assert_eq!(rates.arrival_milli(), Some(22_000));
        assert_eq!(rates.service_milli(), Some(5_000));
        // λ jumps to 82/s; after one time constant (60 s) half the step is taken.
        rates.update(&window(Some((4920, 1)), Some((1200, 1))), 4, true, at(60));
        assert_eq!(rates.arrival_milli(), Some(52_000));
        // μ's time constant is 120 s; 120 s after its last update, half way from 5 to 8.
        rates.update(&window(Some((4920, 1)), Some((1920, 1))), 4, true, at(180));
        assert_eq!(rates.service_milli(), Some(6_500));
    }

    #[test]
    fn an_idle_fleet_does_not_measure_mu() {
        let mut rates = MeasuredRates::new();
        // No message visible: the fleet processed λ (2/s each), not its capacity.
        rates.update(&window(Some((600, 1)), Some((600, 1))), 5, false, at(0));
        assert_eq!(rates.arrival_milli(), Some(10_000));
        assert_eq!(rates.service_milli(), None);
        // Nor with nobody in service, nor from a stuck fleet that processed nothing.
        rates.update(&window(None, Some((600, 1))), 0, true, at(10));
        rates.update(&window(None, Some((0, 1))), 5, true, at(20));
        assert_eq!(rates.service_milli(), None);
    }

    #[test]
    fn a_missing_window_keeps_the_last_measurement() {
        let mut rates = MeasuredRates::new();
        rates.update(&window(Some((600, 1)), Some((900, 1))), 3, true, at(0));
        rates.update(&window(None, None), 3, true, at(60));
        assert_eq!(rates.arrival_milli(), Some(10_000));
        assert_eq!(rates.service_milli(), Some(5_000));
    }

    #[test]
    fn hostile_sums_do_not_panic() {
        let mut rates = MeasuredRates::new();
        let huge = window(Some((u64::MAX, 1)), Some((u64::MAX, u64::MAX)));
        rates.update(&huge, u32::MAX, true, at(u64::MAX / 2000));
        rates.update(&huge, 1, true, at(0));
        assert!(rates.arrival_milli().is_some());
    }
}
