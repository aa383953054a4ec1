//! `mode: queueing`: the scaling policy designed from queueing rather than
//! from the backlog alone. Pure like [`super::policy`]: the caller passes the
//! time and the observation; the memory lives in [`QueueingState`] inside
//! the [`PolicyState`].
//!
//! # Terms (per evaluation)
//!
//! * **λ, the arrival rate**: messages that arrived since the previous
//!   evaluation are the change of the backlog (visible + in flight) plus
//!   what the fleet processed meanwhile (the `processed_total` counter),
//!   divided by the elapsed time, smoothed exponentially: quickly upward
//!   (20 s time constant) and slowly downward (120 s), so a burst is met at
//!   once and a lull does not shed capacity on one quiet reading. Without the
//!   counter the fleet is assumed to process at full service rate while
//!   messages are visible and to keep pace otherwise (λ = departures); the
//!   policy then cannot see λ fall while the queue is empty and only the
//!   backlog term drives scale-in.
//! * **μ, the service rate per instance**: measured as processed ÷ elapsed ÷
//!   in service while the fleet was saturated (visible messages at both
//!   evaluations), smoothed over 60 s; until a measurement exists the
//!   configured rate.
//! * **measured λ and μ** (`ballast run`/`scale`): the runner reads
//!   CloudWatch's `NumberOfMessagesSent` and the workers'
//!   `TransactionsProcessed` and passes them, smoothed, in the [`Reading`]
//!   (see [`super::measured`]). A measured μ replaces the estimate; λ is the
//!   larger of the measured and the estimated rate, because CloudWatch is a
//!   minute or more late and must not hide a burst the backlog already shows.
//!   The reason says which λ (`measured` or `estimated`) and which μ
//!   (`measured` or `configured`) was used.
//! * **rate term**: `ceil(λ ÷ μ)` instances keep up with the arrivals.
//! * **drain term**: the backlog expected once new capacity is in service,
//!   `B + max(0, λ − in service × μ) × boot time`, must drain within the
//!   time the oldest message has left before the latency objective (at
//!   least a quarter of the objective) while keeping up with λ:
//!   `ceil((λ + B_boot ÷ window) ÷ μ)`.
//! * "current" is the group's desired capacity, so launching instances
//!   count toward what is coming and are never requested twice.
//! * **scale-out** to `max(rate, drain)` at once (step limit applies).
//! * **scale-in** toward `max(ceil(λ ÷ (0.95 × μ)), drain)`: the 5 %
//!   hysteresis band between the scale-out (100 %) and scale-in (95 %)
//!   utilisation keeps a steady load from flapping; then the highest
//!   recommendation within the stabilization window, the cooldown and the
//!   step limit, exactly as in `mode: backlog`; never before λ has been
//!   measured (the first evaluation has only one reading).
//!
//! Integer arithmetic only (milli-messages per second, milliseconds); the
//! module denies `clippy::arithmetic_side_effects`.
#![deny(clippy::arithmetic_side_effects)]

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::measured::{ewma as smooth, per_sec_milli};
use super::policy::{
    Action, BacklogPerInstance, Decision, Observation, PolicyConfig, PolicyState, Reading,
    Recommendation, Timestamp,
};

/// Time constant of λ's smoothing when it rises, ms.
const RISE_MS: u64 = 20_000;
/// Time constant of λ's smoothing when it falls, ms.
const FALL_MS: u64 = 120_000;
/// Time constant of μ's smoothing, ms.
const SERVICE_MS: u64 = 60_000;
/// Scale-in aims at this utilisation, percent (scale-out at 100 %).
const SCALE_IN_UTILISATION: u64 = 95;

/// One evaluation's reading, kept for the next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sample {
    pub at: Timestamp,
    pub backlog: u64,
    pub visible: u64,
    pub processed: Option<u64>,
}

/// The queueing mode's memory.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueingState {
    pub last: Option<Sample>,
    /// Smoothed arrival rate, milli-messages per second.
    pub arrival_milli: Option<u64>,
    /// Smoothed measured service rate per instance, milli-messages per second.
    pub service_milli: Option<u64>,
}

fn ceil_div(num: u128, den: u128) -> u32 {
    let den = den.max(1);
    let q = num.checked_div(den).unwrap_or(0);
    let q = if num.checked_rem(den).unwrap_or(0) > 0 {
        q.saturating_add(1)
    } else {
        q
    };
    u32::try_from(q).unwrap_or(u32::MAX)
}

/// `12.345` for 12 345 milli-units, rounded down to two decimals.
fn milli(v: u64) -> String {
    format!("{}.{:02}", v / 1000, (v % 1000) / 10)
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Updates λ and μ from the new reading.
fn measure(config: &PolicyConfig, q: &mut QueueingState, m: &Reading, now: Timestamp) {
    let backlog = m.visible.saturating_add(m.in_flight);
    if let Some(prev) = q.last {
        let dt = now.as_millis().saturating_sub(prev.at.as_millis());
        if dt > 0 {
            let mu = q.service_milli.unwrap_or(config.service_rate_milli).max(1);
            let done = match (m.processed_total, prev.processed) {
                (Some(now_count), Some(before)) => {
                    let done = now_count.saturating_sub(before);
                    if prev.visible > 0 && m.visible > 0 && m.in_service > 0 {
                        let rate = per_sec_milli(done, dt)
                            .checked_div(u64::from(m.in_service))
                            .unwrap_or(0);
                        q.service_milli = Some(smooth(q.service_milli, rate, dt, SERVICE_MS));
                    }
                    done
                }
                _ if m.visible > 0 => {
                    // Saturated: the fleet processed at full rate.
                    let v = u128::from(mu)
                        .saturating_mul(u128::from(m.in_service))
                        .saturating_mul(u128::from(dt))
                        .checked_div(1_000_000)
                        .unwrap_or(0);
                    u64::try_from(v).unwrap_or(u64::MAX)
                }
                // Keeping pace: as many left as arrived.
                _ => prev.backlog.saturating_sub(backlog),
            };
            let arrived = backlog.saturating_add(done).saturating_sub(prev.backlog);
            let rate = per_sec_milli(arrived, dt);
            let tau = if q.arrival_milli.is_some_and(|old| rate < old) {
                FALL_MS
            } else {
                RISE_MS
            };
            q.arrival_milli = Some(smooth(q.arrival_milli, rate, dt, tau));
        }
    }
    // CloudWatch's measurements (smoothed by the runner) win for μ; for λ the
    // larger of the two wins, because CloudWatch publishes a minute or more
    // late and must not hide a burst the backlog already shows.
    if let Some(mu) = m.measured_service_milli.filter(|mu| *mu > 0) {
        q.service_milli = Some(mu);
    }
    if let Some(lambda) = m.measured_arrival_milli {
        q.arrival_milli = Some(q.arrival_milli.map_or(lambda, |own| own.max(lambda)));
    }
    q.last = Some(Sample {
        at: now,
        backlog,
        visible: m.visible,
        processed: m.processed_total,
    });
}

/// Evaluates `mode: queueing` on a complete reading.
pub(super) fn evaluate_queueing(
    config: &PolicyConfig,
    state: &mut PolicyState,
    observation: &Observation,
    m: &Reading,
    now: Timestamp,
) -> Decision {
    let (min, max) = (config.min, config.max.max(config.min));
    let current = m.desired;
    measure(config, &mut state.queueing, m, now);
    let q = &state.queueing;
    let measured = q.service_milli.is_some();
    let mu = q.service_milli.unwrap_or(config.service_rate_milli).max(1);
    let lambda = q.arrival_milli.unwrap_or(0);
    let backlog = m.visible.saturating_add(m.in_flight);
    let age = m.oldest_message_age.unwrap_or(Duration::ZERO);

    let rate_term = ceil_div(u128::from(lambda), u128::from(mu));
    // Backlog expected when capacity launched now is in service.
    let deficit = lambda.saturating_sub(mu.saturating_mul(u64::from(m.in_service)));
    let boot_growth = u128::from(deficit)
        .saturating_mul(u128::from(ms(config.boot_time)))
        .checked_div(1_000_000)
        .unwrap_or(0);
    let at_boot = u128::from(backlog).saturating_add(boot_growth);
    let objective = ms(config.latency_objective).max(1000);
    let window = objective
        .saturating_sub(ms(age))
        .max(objective.checked_div(4).unwrap_or(1))
        .max(1);
    // λ + B_boot ÷ window, in milli-messages per second.
    let drain_rate = u128::from(lambda).saturating_add(
        at_boot
            .saturating_mul(1_000_000)
            .checked_div(u128::from(window))
            .unwrap_or(0),
    );
    let drain_term = ceil_div(drain_rate, u128::from(mu));
    let in_term = ceil_div(
        u128::from(lambda).saturating_mul(100),
        u128::from(mu).saturating_mul(u128::from(SCALE_IN_UTILISATION)),
    );
    let (need, decider) = if drain_term > rate_term {
        (drain_term, "drain")
    } else {
        (rate_term, "rate")
    };
    let out = need.clamp(min, max);
    let recommendation = in_term.max(drain_term).clamp(min, max);

    let mut reason = format!(
        "queueing: λ {}/s ({}), μ {}/s per instance ({}), backlog {backlog} ({} visible + {} in flight), \
         age {}s of {}s objective; rate term {rate_term}, drain term {drain_term}: {decider} decides",
        milli(lambda),
        match m.measured_arrival_milli {
            Some(cw) if cw >= q.arrival_milli.unwrap_or(0) => "measured",
            _ => "estimated",
        },
        milli(mu),
        if measured { "measured" } else { "configured" },
        m.visible,
        m.in_flight,
        age.as_secs(),
        objective / 1000,
    );

    state.recommendations.push(Recommendation {
        at: now,
        desired: recommendation,
    });

    let (action, desired) = 'decide: {
        if out > current {
            let mut to = out;
            if let Some(step) = config.max_scale_out_step
                && current >= min
            {
                let limited = current.saturating_add(step.max(1));
                if limited < to {
                    reason.push_str(&format!("; step limited to +{step}"));
                    to = limited;
                }
            }
            reason.push_str(&format!("; scale out {current} -> {to}"));
            break 'decide (Action::ScaleOut { from: current, to }, to);
        }
        if current > max {
            reason.push_str(&format!(
                "; current {current} above max {max}: lowered to {max}"
            ));
            break 'decide (
                Action::ScaleIn {
                    from: current,
                    to: max,
                },
                max,
            );
        }
        if recommendation >= current {
            reason.push_str(&format!("; hold at {current}"));
            break 'decide (Action::NoChange, current);
        }
        if q.arrival_milli.is_none() {
            // One reading gives no rate: never shed capacity on an unknown λ.
            reason.push_str(&format!(
                "; scale-in to {recommendation} held: λ not measured yet"
            ));
            break 'decide (Action::NoChange, current);
        }
        let stabilized = state
            .recommendations
            .iter()
            .map(|r| r.desired)
            .max()
            .unwrap_or(recommendation)
            .min(current);
        if stabilized >= current {
            reason.push_str(&format!(
                "; scale-in to {recommendation} held by stabilization (highest recent {stabilized})"
            ));
            break 'decide (Action::NoChange, current);
        }
        if let Some(elapsed) = state
            .last_action
            .map(|at| now.saturating_duration_since(at))
            .filter(|e| *e < config.scale_in_cooldown)
        {
            reason.push_str(&format!(
                "; scale-in to {stabilized} held: cooldown {}s, {}s since last action",
                config.scale_in_cooldown.as_secs(),
                elapsed.as_secs()
            ));
            break 'decide (Action::NoChange, current);
        }
        let mut to = stabilized;
        if let Some(step) = config.max_scale_in_step {
            let limited = current.saturating_sub(step.max(1));
            if limited > to {
                reason.push_str(&format!("; scale-in step limited to -{step}"));
                to = limited;
            }
        }
        reason.push_str(&format!("; scale in {current} -> {to}"));
        (Action::ScaleIn { from: current, to }, to)
    };
    if action != Action::NoChange {
        state.last_action = Some(now);
    }
    Decision {
        at: now,
        inputs: observation.clone(),
        backlog_per_instance: Some(BacklogPerInstance::new(m.visible, m.in_service)),
        raw_desired: need,
        recommendation,
        desired,
        current,
        action,
        reason,
    }
}

#[cfg(test)]
#[allow(
    clippy::arithmetic_side_effects,
    reason = "tests: the checks apply to the policy, the tests compute expected values"
)]
mod tests {
    use super::*;
    use crate::autoscale::policy::{Mode, evaluate};

    fn config() -> PolicyConfig {
        PolicyConfig {
            mode: Mode::Queueing,
            ..PolicyConfig::default()
        }
    }

    fn obs(visible: u64, in_flight: u64, desired: u32, age: u64, processed: u64) -> Observation {
        Observation::Ok(Reading {
            visible,
            in_flight,
            delayed: 0,
            in_service: desired,
            desired,
            oldest_message_age: Some(Duration::from_secs(age)),
            processed_total: Some(processed),
            measured_arrival_milli: None,
            measured_service_milli: None,
        })
    }

    fn secs(s: u64) -> Timestamp {
        Timestamp::from_secs(s)
    }

    #[test]
    fn steady_22_per_second_settles_at_5_without_flapping() {
        // 22 msg/s, 5 msg/s per instance: λ/μ = 4.4, so 5 instances.
        let c = config();
        let mut state = PolicyState::starting_at(secs(0));
        let mut desired = 5;
        let mut processed = 0;
        let mut actions = 0;
        for step in 0..360u64 {
            // 5 instances keep pace: 220 arrive and 220 are processed per 10 s.
            let d = evaluate(
                &c,
                &mut state,
                &obs(0, 20, desired, 1, processed),
                secs(step * 10),
            );
            if let Some(to) = d.target() {
                desired = to;
                actions += 1;
            }
            processed += 220;
        }
        assert_eq!((desired, actions), (5, 0));
        let d = evaluate(&c, &mut state, &obs(0, 20, 5, 1, processed), secs(3600));
        assert!(d.reason.contains("λ 22.00/s"), "{}", d.reason);
        assert!(d.reason.contains("rate term 5"), "{}", d.reason);
    }

    #[test]
    fn the_reason_is_one_line_naming_every_term() {
        let mut state = PolicyState::new();
        evaluate(&config(), &mut state, &obs(100, 20, 2, 10, 0), secs(0));
        let d = evaluate(&config(), &mut state, &obs(400, 20, 2, 30, 100), secs(10));
        for term in [
            "λ ",
            "μ ",
            "backlog 420 (400 visible + 20 in flight)",
            "age 30s of 60s objective",
            "decides",
        ] {
            assert!(d.reason.contains(term), "{term}: {}", d.reason);
        }
        assert!(!d.reason.contains('\n'));
        // Saturated at both readings: μ is measured, 100 in 10 s over 2 = 5/s.
        assert!(
            d.reason.contains("μ 5.00/s per instance (measured)"),
            "{}",
            d.reason
        );
    }

    #[test]
    fn a_burst_scales_out_for_the_drain_within_the_objective() {
        let mut state = PolicyState::new();
        // 2 instances busy, 10/s processed, backlog jumps from 100 to 1300 in 10 s:
        // λ = (1200 + 100) / 10 = 130/s.
        evaluate(&config(), &mut state, &obs(80, 20, 2, 5, 0), secs(0));
        let d = evaluate(&config(), &mut state, &obs(1280, 20, 2, 15, 100), secs(10));
        assert!(
            matches!(d.action, Action::ScaleOut { from: 2, to: 10 }),
            "{}",
            d.reason
        );
        assert!(d.reason.contains("drain decides") || d.reason.contains("rate decides"));
    }

    #[test]
    fn launching_capacity_is_not_requested_twice() {
        let mut state = PolicyState::new();
        // Desired 6, two in service: the four launching count as current.
        let o = Observation::Ok(Reading {
            visible: 0,
            in_flight: 10,
            delayed: 0,
            in_service: 2,
            desired: 6,
            oldest_message_age: Some(Duration::from_secs(1)),
            processed_total: Some(0),
            measured_arrival_milli: None,
            measured_service_milli: None,
        });
        let d = evaluate(&config(), &mut state, &o, secs(0));
        assert_eq!(d.action, Action::NoChange, "{}", d.reason);
    }

    #[test]
    fn scale_in_waits_for_cooldown_and_stabilization_then_goes_toward_lambda_over_mu() {
        let c = config();
        let mut state = PolicyState::starting_at(secs(0));
        let mut processed = 0;
        let mut last = None;
        let mut desired = 8;
        // 8 instances, only 10 msg/s arriving (2 instances' worth).
        for step in 0..100u64 {
            let d = evaluate(
                &c,
                &mut state,
                &obs(0, 10, desired, 1, processed),
                secs(step * 10),
            );
            if let Some(to) = d.target() {
                assert!(
                    step * 10 >= 300,
                    "scale-in before the cooldown: {}",
                    d.reason
                );
                desired = to;
                last.get_or_insert(step * 10);
            }
            processed += 100;
        }
        assert_eq!(desired, 3, "ceil(10 / (0.95 × 5)) = 3");
        assert!(last.is_some());
    }

    #[test]
    fn without_the_processed_counter_the_configured_rate_is_used() {
        let mut state = PolicyState::new();
        let o = |visible| {
            Observation::Ok(Reading {
                visible,
                in_flight: 20,
                delayed: 0,
                in_service: 2,
                desired: 2,
                oldest_message_age: Some(Duration::from_secs(20)),
                processed_total: None,
                measured_arrival_milli: None,
                measured_service_milli: None,
            })
        };
        evaluate(&config(), &mut state, &o(100), secs(0));
        // Saturated: departures assumed 2 × 5/s; visible +100 in 10 s → λ = 20/s.
        let d = evaluate(&config(), &mut state, &o(200), secs(10));
        assert!(d.reason.contains("λ 20.00/s"), "{}", d.reason);
        assert!(d.reason.contains("(configured)"), "{}", d.reason);
    }

    #[test]
    fn measured_rates_from_cloudwatch_are_used_and_named() {
        let mut state = PolicyState::new();
        let o = |measured_arrival_milli, measured_service_milli| {
            Observation::Ok(Reading {
                visible: 0,
                in_flight: 10,
                delayed: 0,
                in_service: 2,
                desired: 2,
                oldest_message_age: Some(Duration::from_secs(1)),
                processed_total: None,
                measured_arrival_milli,
                measured_service_milli,
            })
        };
        // 30/s measured at 4/s per instance: ceil(30 / 4) = 8.
        let d = evaluate(
            &config(),
            &mut state,
            &o(Some(30_000), Some(4_000)),
            secs(0),
        );
        assert!(
            d.reason
                .contains("λ 30.00/s (measured), μ 4.00/s per instance (measured)"),
            "{}",
            d.reason
        );
        assert!(d.reason.contains("rate term 8"), "{}", d.reason);
        // 2 in service fall 22/s short for the 90 s boot: the drain asks for more, up to max.
        assert!(d.reason.contains("drain decides"), "{}", d.reason);
        assert_eq!(d.action, Action::ScaleOut { from: 2, to: 10 });
        // Without measurements (a fresh fleet) the configured 5/s is used.
        let mut fresh = PolicyState::new();
        let d = evaluate(&config(), &mut fresh, &o(None, None), secs(0));
        assert!(d.reason.contains("(estimated)"), "{}", d.reason);
        assert!(
            d.reason.contains("μ 5.00/s per instance (configured)"),
            "{}",
            d.reason
        );
    }

    #[test]
    fn a_burst_the_backlog_shows_is_not_hidden_by_a_late_measurement() {
        let mut state = PolicyState::new();
        let o = |visible, processed| {
            Observation::Ok(Reading {
                visible,
                in_flight: 20,
                delayed: 0,
                in_service: 2,
                desired: 2,
                oldest_message_age: Some(Duration::from_secs(5)),
                processed_total: Some(processed),
                measured_arrival_milli: Some(10_000),
                measured_service_milli: None,
            })
        };
        evaluate(&config(), &mut state, &o(80, 0), secs(0));
        // The backlog grew by 1200 in 10 s while 100 were processed: 130/s, not 10/s.
        let d = evaluate(&config(), &mut state, &o(1280, 100), secs(10));
        assert!(d.reason.contains("(estimated)"), "{}", d.reason);
        assert!(!d.reason.contains("λ 10.00/s"), "{}", d.reason);
    }

    #[test]
    fn hostile_counts_do_not_panic() {
        let mut state = PolicyState::new();
        for (t, (v, f, p)) in [
            (u64::MAX, u64::MAX, u64::MAX),
            (0, 0, 0),
            (u64::MAX, 0, 1),
            (1, u64::MAX, u64::MAX),
        ]
        .into_iter()
        .enumerate()
        {
            let d = evaluate(
                &config(),
                &mut state,
                &obs(v, f, u32::MAX, u64::MAX / 1000, p),
                secs(t as u64),
            );
            assert!(d.desired <= 10 || d.desired == u32::MAX);
        }
    }

    #[test]
    fn backlog_mode_is_unchanged_by_the_queueing_fields() {
        // The seed scenarios stay exact in mode: backlog (the default).
        let mut state = PolicyState::new();
        let d = evaluate(
            &PolicyConfig::default(),
            &mut state,
            &obs(500, 0, 2, 1, 0),
            secs(0),
        );
        assert_eq!(d.action, Action::ScaleOut { from: 2, to: 5 });
        assert!(state.queueing.last.is_none());
    }
}
