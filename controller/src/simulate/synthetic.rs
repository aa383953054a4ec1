//! Seeded synthetic traces: held-out days no policy was tuned on.
//!
//! [`two_peak_day`] was written (and its output fixed by a test) before the
//! second round of `mode: queueing` tuning, so its shape cannot have been
//! chosen to suit the policy. Only basic IEEE arithmetic (no `exp`, whose
//! last bits depend on the platform's libm), so the same seed gives the same
//! trace everywhere.

use super::rng::Rng;
use super::trace::{Segment, Trace};

/// Length of [`two_peak_day`]: a day compressed into 6 hours, like `business-day.csv`.
pub const TWO_PEAK_DAY_SECS: u64 = 6 * 3600;

/// One rate per minute.
const STEP_SECS: u64 = 60;

/// `(1 − x²)²` for `|x| < 1`, else 0: a smooth bump without `exp`.
fn bump(x: f64) -> f64 {
    let inside = 1.0 - x * x;
    if inside > 0.0 { inside * inside } else { 0.0 }
}

/// A two-peak business day with noise, 6 hours of one-minute rates:
///
/// * a base of 1.5 msg/s;
/// * a morning peak and an afternoon peak whose centres, heights (22–32 and
///   30–42 msg/s above the base) and half-widths (40–70 and 25–50 minutes) are
///   drawn from `seed`;
/// * each minute's rate multiplied by a uniform factor in [0.85, 1.15];
/// * one minute in 40 (on average) a burst of 1.4–2× that minute's rate;
/// * capped at 48 msg/s, below what 10 instances at 5 msg/s process.
pub fn two_peak_day(seed: u64) -> Trace {
    let mut rng = Rng::new(seed, 0x7e0_9eac);
    let mut draw = |lo: f64, hi: f64| lo + (hi - lo) * rng.unit();
    let morning_centre = draw(1.3, 2.0) * 3600.0;
    let morning_height = draw(22.0, 32.0);
    let morning_half_width = draw(40.0, 70.0) * 60.0;
    let afternoon_centre = draw(3.8, 4.6) * 3600.0;
    let afternoon_height = draw(30.0, 42.0);
    let afternoon_half_width = draw(25.0, 50.0) * 60.0;
    let mut segments = Vec::new();
    let mut t = 0;
    while t < TWO_PEAK_DAY_SECS {
        let x = t as f64 + STEP_SECS as f64 / 2.0;
        let shape = 1.5
            + morning_height * bump((x - morning_centre) / morning_half_width)
            + afternoon_height * bump((x - afternoon_centre) / afternoon_half_width);
        let mut rate = shape * draw(0.85, 1.15);
        if draw(0.0, 1.0) < 1.0 / 40.0 {
            rate *= draw(1.4, 2.0);
        }
        let rate_milli = (rate.clamp(0.0, 48.0) * 1000.0).round() as u64;
        segments.push(Segment {
            start_secs: t,
            rate_milli,
        });
        t += STEP_SECS;
    }
    // Starts at 0, strictly increasing, all before the end: always valid.
    Trace::new(segments, TWO_PEAK_DAY_SECS).unwrap_or_else(|_| Trace::constant(0, 1))
}

/// Length of [`spike_train`]: three hours.
pub const SPIKE_TRAIN_SECS: u64 = 3 * 3600;

/// Spikes on a wandering base, three hours, written (and its output fixed by
/// a test) before the third round of `mode: queueing` tuning, so no policy
/// was tuned on it:
///
/// * a base that starts at 3–9 msg/s and every 5 minutes moves by up to
///   ±2 msg/s, kept within 1–12 msg/s;
/// * after a quiet gap of 1–15 minutes, a spike of 18–48 msg/s lasting
///   20–420 s; one spike in five is a plateau of 12–30 msg/s lasting 10–25
///   minutes instead;
/// * capped at 48 msg/s, below what 10 instances at 5 msg/s process.
///
/// Rates change at whole seconds; the trace format keeps them as segments.
pub fn spike_train(seed: u64) -> Trace {
    let mut rng = Rng::new(seed, 0x5b1_7e7a);
    let mut draw = |lo: f64, hi: f64| lo + (hi - lo) * rng.unit();
    let base_every = 300u64;
    let mut bases = Vec::new();
    let mut base = draw(3.0, 9.0);
    for _ in 0..=SPIKE_TRAIN_SECS / base_every {
        bases.push(base);
        base = (base + draw(-2.0, 2.0)).clamp(1.0, 12.0);
    }
    // Spike windows: (start, end, rate).
    let mut spikes = Vec::new();
    let mut t = draw(60.0, 900.0) as u64;
    while t < SPIKE_TRAIN_SECS {
        let (rate, length) = if draw(0.0, 1.0) < 0.2 {
            (draw(12.0, 30.0), draw(600.0, 1500.0) as u64)
        } else {
            (draw(18.0, 48.0), draw(20.0, 420.0) as u64)
        };
        let end = (t + length).min(SPIKE_TRAIN_SECS);
        spikes.push((t, end, rate));
        t = end + draw(60.0, 900.0) as u64;
    }
    let base_at = |t: u64| {
        let index = usize::try_from(t / base_every).unwrap_or(usize::MAX);
        bases.get(index).or(bases.last()).copied().unwrap_or(0.0)
    };
    let mut starts: Vec<u64> = (0..SPIKE_TRAIN_SECS).step_by(base_every as usize).collect();
    for (start, end, _) in &spikes {
        starts.push(*start);
        starts.push(*end);
    }
    starts.retain(|s| *s < SPIKE_TRAIN_SECS);
    starts.sort_unstable();
    starts.dedup();
    let segments = starts
        .into_iter()
        .map(|start| {
            let spike = spikes
                .iter()
                .find(|(s, e, _)| (*s..*e).contains(&start))
                .map(|(_, _, r)| *r);
            let rate = spike.unwrap_or_else(|| base_at(start)).clamp(0.0, 48.0);
            Segment {
                start_secs: start,
                rate_milli: (rate * 1000.0).round() as u64,
            }
        })
        .collect();
    // Starts at 0, strictly increasing, all before the end: always valid.
    Trace::new(segments, SPIKE_TRAIN_SECS).unwrap_or_else(|_| Trace::constant(0, 1))
}

/// `trace` as one-minute counts (its length rounded down to whole minutes): what a queue's
/// history would hold had the trace been its traffic (`ballast simulate --history`).
pub fn minute_counts(trace: &Trace) -> Vec<u64> {
    (0..trace.duration_secs() / STEP_SECS)
        .map(|minute| {
            let start = minute * STEP_SECS;
            let milli: u64 = (start..start + STEP_SECS)
                .map(|t| trace.rate_milli_at(t))
                .sum();
            milli / 1000
        })
        .collect()
}

/// Earlier periods of `trace` as a queue's history: `periods` back-to-back
/// copies of the trace (its length rounded down to whole minutes), each
/// minute's count a Poisson draw around the trace's messages in that minute,
/// from `seed`. What [`SeasonalProfile::learn`](crate::autoscale::seasonal::SeasonalProfile::learn)
/// reads with one-minute slots and the trace's length as the period.
pub fn noisy_history(trace: &Trace, periods: u32, seed: u64) -> Vec<u64> {
    let minutes = trace.duration_secs() / STEP_SECS;
    let mut rng = Rng::new(seed, 0x415_7041);
    let mut counts = Vec::new();
    for _ in 0..periods {
        for minute in 0..minutes {
            let start = minute * STEP_SECS;
            let milli: u64 = (start..start + STEP_SECS)
                .map(|t| trace.rate_milli_at(t))
                .sum();
            counts.push(rng.poisson(milli as f64 / 1000.0));
        }
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_peak_day_is_reproducible_bounded_and_has_two_peaks() {
        let a = two_peak_day(15);
        assert_eq!(a, two_peak_day(15));
        assert_ne!(a, two_peak_day(16));
        assert_eq!(a.duration_secs(), TWO_PEAK_DAY_SECS);
        assert!(a.peak_rate_milli() <= 48_000);
        // Quiet at night, busy at both peaks.
        let hour = |h: u64| a.rate_milli_at(h * 3600);
        assert!(
            hour(0) < 3_000 && hour(5) < 10_000,
            "{} {}",
            hour(0),
            hour(5)
        );
        let morning = (3600..3 * 3600).step_by(60).map(|t| a.rate_milli_at(t));
        let afternoon = (3 * 3600..5 * 3600).step_by(60).map(|t| a.rate_milli_at(t));
        assert!(morning.max().unwrap() > 20_000);
        assert!(afternoon.max().unwrap() > 28_000);
        // Pinned: the held-out trace must not change under the policy's tuning.
        assert_eq!(a.total_messages(), TWO_PEAK_DAY_15_MESSAGES);
    }

    #[test]
    fn spike_train_is_reproducible_bounded_and_spiky() {
        let a = spike_train(21);
        assert_eq!(a, spike_train(21));
        assert_ne!(a, spike_train(22));
        assert_eq!(a.duration_secs(), SPIKE_TRAIN_SECS);
        assert!(a.peak_rate_milli() <= 48_000);
        // At least five spikes above what the 2-instance floor (10 msg/s) processes.
        let rates: Vec<u64> = (0..SPIKE_TRAIN_SECS).map(|t| a.rate_milli_at(t)).collect();
        let rises = rates
            .windows(2)
            .filter(|w| w[0] <= 12_000 && w[1] > 17_000)
            .count();
        assert!(rises >= 5, "{rises}");
        // Pinned: the held-out trace must not change under the policy's tuning.
        assert_eq!(a.total_messages(), SPIKE_TRAIN_21_MESSAGES);
    }

    #[test]
    fn noisy_history_follows_the_trace() {
        let trace = Trace::parse("seconds,arrivals_per_second\n0,1\n600,30\n1200,0\n").unwrap();
        let history = noisy_history(&trace, 3, 7);
        assert_eq!(history, noisy_history(&trace, 3, 7));
        assert_eq!(history.len(), 3 * 20);
        let quiet: u64 = history[..10].iter().sum();
        let busy: u64 = history[10..20].iter().sum();
        assert!((500..700).contains(&quiet), "{quiet}");
        assert!((17_000..19_000).contains(&busy), "{busy}");
    }

    /// `two_peak_day(15).total_messages()`, fixed when the generator was written.
    const TWO_PEAK_DAY_15_MESSAGES: u64 = 209_714;

    /// `spike_train(21).total_messages()`, fixed when the generator was written.
    const SPIKE_TRAIN_21_MESSAGES: u64 = 161_337;

    #[test]
    fn the_fourth_rounds_held_out_traces_are_pinned() {
        // Written before their rows were first read (docs/benchmarks.md, "Autoscaler v2,
        // fourth round"); they must not change under later tuning.
        assert_eq!(spike_train(43).total_messages(), 178_683);
        assert_eq!(two_peak_day(39).total_messages(), 197_544);
    }

    #[test]
    fn the_sixth_rounds_held_out_traces_are_pinned() {
        // Written after the latency budget was final and before their rows were first read
        // (docs/benchmarks.md, "Autoscaler v2, sixth round").
        assert_eq!(two_peak_day(63).total_messages(), 220_823);
        assert_eq!(spike_train(67).total_messages(), 175_312);
    }
}
