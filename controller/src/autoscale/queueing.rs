//! `mode: queueing`: the scaling policy designed from queueing rather than
//! from the backlog alone. Pure like [`super::policy`]: the caller passes the
//! time and the observation; the memory lives in [`QueueingState`] inside
//! the [`PolicyState`].
//!
//! # Estimates (per evaluation)
//!
//! * **λ, the arrival rate**: from the readings alone, messages that
//!   arrived since the previous evaluation are the change of the backlog
//!   (visible + in flight) plus what the fleet processed meanwhile, divided
//!   by the elapsed time, smoothed exponentially (20 s time constant both
//!   ways: the stabilization window, not the estimate, keeps a lull from
//!   shedding capacity). While messages are visible the fleet is saturated
//!   and processed at μ × in service; otherwise it kept pace, and the readings
//!   show only growth. This estimate sees a burst within one evaluation.
//! * **measured λ and μ** (`ballast run`/`scale`, and the simulator's model of
//!   them): the runner reads CloudWatch's `NumberOfMessagesSent` and the
//!   workers' `TransactionsProcessed` per worker-minute of the saturated
//!   minutes and passes them, smoothed, in the [`Reading`] (see
//!   [`super::measured`]). A measured μ replaces the configured rate; λ is the
//!   larger of the measured and the estimated rate, because CloudWatch is a
//!   minute or more late and must not hide a burst the backlog already shows,
//!   while the readings alone cannot see a steady rate the fleet keeps pace with.
//!
//! # Decision: pay for capacity only when the objective needs it
//!
//! The **wait** of a message is the backlog ahead of it ÷ the fleet's rate
//! (FIFO). The policy projects the backlog with λ held ([`project`]): the
//! instances in service until the capacity already launching lands (the
//! last scale-out's launch + boot time; one boot time when unknown), the
//! group's desired capacity after that. "Current" is the desired capacity,
//! so launching instances count and are never requested twice.
//!
//! * **Scale out only on a projected breach**: when the wait projected at
//!   the moment capacity launched now would be in service (one boot time
//!   ahead) exceeds the latency objective. A burst the fleet in service and
//!   launching drains within the objective anyway (a 12 s burst, a short
//!   overload) launches nothing: capacity it would buy arrives after it.
//! * **A measured overload**: when CloudWatch's λ (minutes of arrivals, so
//!   not a burst) exceeds what the capacity in service and launching
//!   processes, scale out to the rate term without waiting for the breach.
//! * **Size for half the objective**: to `max(rate, drain)` with the rate
//!   term `ceil(max(λ, λ of the last interval) ÷ μ)` (keeps up with the rate
//!   the queue grows at now, so a surge is answered in one step) and the drain term
//!   `ceil(B_boot ÷ (μ × objective ÷ 2))` (the backlog projected at boot
//!   time waits at most half the objective), so the next evaluations do not
//!   breach again and step up one instance at a time.
//! * **Scale-in** toward `max(ceil(λ ÷ (0.9 × μ)), ceil(B ÷ (μ × objective ÷ 2)))`:
//!   10 % headroom over λ ÷ μ (the hysteresis band between scale-out at a
//!   breach and scale-in below 90 % utilisation) and the capacity that
//!   drains today's backlog within half the objective. Only once every
//!   recommendation in the stabilization window is below the current
//!   capacity, the backlog has stopped falling and λ's smoothing has caught
//!   up with a fall (the last interval's rate, or CloudWatch's newest minute
//!   when higher, within 10 % of λ); then in one step to that level (not one
//!   per step of λ's decay), after the cooldown, step limit applied; never
//!   before λ has been measured.
//!
//! * **Spending the latency budget**: whole instances rarely match λ ÷ μ
//!   (22/s at 5/s per instance asks for 4.4), and holding the next whole
//!   number wastes the fraction for as long as the load lasts. The latency
//!   objective is a budget of waiting the operator has granted, so on a load
//!   that holds the policy runs one instance below `ceil(λ ÷ μ)` and lets the
//!   queue absorb the difference: the budget term `ceil(λ ÷ μ) − 1` joins
//!   the scale-in recommendation when, from the backlog now and with λ held,
//!   the wait at that capacity stays within the objective, and the backlog
//!   below 90 % of the queue's depth alarm (`PolicyConfig::backlog_alarm`:
//!   the deficit alone must not page anyone; a surge during it meets one
//!   instance fewer and can), for at least three boot
//!   times (the instance-time saved is then three times the boot that pays
//!   it back). Only when CloudWatch shows the load steady (three or more consecutive
//!   published minutes within 10 % of each other,
//!   [`Reading::measured_steady_arrival_milli`]), the queue is drained (none
//!   visible), the bet is placed on the highest of λ, the last interval's,
//!   CloudWatch's and the predicted rate, and `ceil(λ ÷ μ)` is below the
//!   group's maximum: at the maximum the budget is the only reserve left for
//!   a burst. While spending, the measured-overload rule stands aside (the
//!   overload is deliberate), and once the wait or the backlog projected one
//!   boot time ahead passes the budget the policy returns to `ceil(λ ÷ μ)` in one step
//!   (sized for the objective, not half of it: the queue has to drain, not
//!   a burst). A load that rises past `ceil(λ ÷ μ)` ends the spending and
//!   meets the usual rules. On a steady load the fleet cycles slowly between
//!   the two counts, and its wait stays within the objective.
//!
//! * **Prediction** (`prediction:` on the policy, [`super::seasonal`]): the
//!   prediction term `ceil(predicted λ ÷ μ)`, the highest rate the seasonal
//!   profile predicts over the next boot time, scales out ahead of a known
//!   peak and is part of the scale-in recommendation, so capacity stays
//!   until the predicted rate falls.
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

/// Time constant of λ's smoothing, ms.
const ARRIVAL_MS: u64 = 20_000;
/// Scale-in aims at this utilisation, percent (scale-out at a projected breach).
const SCALE_IN_UTILISATION: u64 = 90;
/// Capacity is sized so the projected wait is this share of the objective, percent.
const SIZING_PERCENT: u64 = 50;
/// Spending the latency budget: the wait the deliberate deficit may build, percent of the
/// objective (all of it: the objective is what the operator granted).
const BUDGET_PERCENT: u64 = 100;
/// Spending the latency budget: a deficit is worth a scale-in only when it lasts this many boot
/// times, so that the instance-time saved is that many times the boot that pays it back.
const SPEND_BOOTS: u64 = 3;
/// Spending the latency budget: the backlog stays below this share of the queue's depth alarm,
/// percent (SQS's counts are approximate and the backlog grows between evaluations).
const ALARM_MARGIN_PERCENT: u64 = 90;

/// One evaluation's reading, kept for the next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sample {
    pub at: Timestamp,
    pub backlog: u64,
    pub visible: u64,
}

/// The queueing mode's memory.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueingState {
    pub last: Option<Sample>,
    /// Smoothed arrival rate, milli-messages per second.
    pub arrival_milli: Option<u64>,
    /// Smoothed measured service rate per instance, milli-messages per second.
    pub service_milli: Option<u64>,
    /// When the capacity launched by the last scale-out is due in service.
    #[serde(default)]
    pub landing_at: Option<Timestamp>,
    /// The last interval's arrival rate before smoothing, milli-messages per second.
    #[serde(default)]
    pub arrival_sample_milli: Option<u64>,
    /// The capacity the last scale-in chose below λ ÷ μ, spending the latency budget.
    #[serde(default)]
    pub spending: Option<u32>,
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

/// The backlog `elapsed_ms` from now when messages arrive at `lambda_milli`
/// and leave at `capacity_milli` (both milli-messages per second); never
/// below zero.
pub(crate) fn backlog_after(
    backlog: u64,
    lambda_milli: u64,
    capacity_milli: u64,
    elapsed_ms: u64,
) -> u64 {
    let net = i128::from(lambda_milli).saturating_sub(i128::from(capacity_milli));
    let micro = i128::from(backlog)
        .saturating_mul(1_000_000)
        .saturating_add(net.saturating_mul(i128::from(elapsed_ms)));
    u64::try_from(micro.max(0).checked_div(1_000_000).unwrap_or(0)).unwrap_or(u64::MAX)
}

/// How long the last of `backlog` messages waits at `capacity_milli`, ms
/// (`u64::MAX` when messages wait and nothing processes them).
pub(crate) fn wait_ms(backlog: u64, capacity_milli: u64) -> u64 {
    if backlog == 0 {
        return 0;
    }
    let v = u128::from(backlog)
        .saturating_mul(1_000_000)
        .checked_div(u128::from(capacity_milli))
        .unwrap_or(u128::MAX);
    u64::try_from(v).unwrap_or(u64::MAX)
}

/// The fleet and load the projection starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Load {
    /// Visible + in flight.
    pub backlog: u64,
    pub lambda_milli: u64,
    pub mu_milli: u64,
    pub in_service: u32,
    /// The group's desired capacity (in service + launching).
    pub desired: u32,
    /// Until the launching capacity is in service, ms (0: nothing launching).
    pub landing_ms: u64,
}

/// What [`project`] finds one boot time ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Projection {
    /// The backlog when capacity launched now would be in service.
    pub backlog_at_boot: u64,
    /// The longest wait projected without a new launch (at the landing of
    /// what is launching and at boot time), ms.
    pub wait_ms: u64,
}

/// Projects the backlog with λ held: in-service capacity until what is
/// launching lands, the desired capacity from then until one boot time ahead.
pub(crate) fn project(load: &Load, boot_ms: u64) -> Projection {
    let capacity = |n: u32| load.mu_milli.saturating_mul(u64::from(n));
    let landing = load.landing_ms.min(boot_ms);
    let at_landing = backlog_after(
        load.backlog,
        load.lambda_milli,
        capacity(load.in_service),
        landing,
    );
    let after = capacity(load.desired.max(load.in_service));
    let at_boot = backlog_after(
        at_landing,
        load.lambda_milli,
        after,
        boot_ms.saturating_sub(landing),
    );
    Projection {
        backlog_at_boot: at_boot,
        wait_ms: wait_ms(at_landing, after).max(wait_ms(at_boot, after)),
    }
}

/// Instances whose rate drains `backlog` within `window_ms`: `ceil(B ÷ (μ × window))`.
pub(crate) fn drain_instances(backlog: u64, mu_milli: u64, window_ms: u64) -> u32 {
    ceil_div(
        u128::from(backlog).saturating_mul(1_000_000),
        u128::from(mu_milli).saturating_mul(u128::from(window_ms.max(1))),
    )
}

/// What spending the latency budget may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Budget {
    /// The longest wait the deficit may build, ms: the latency objective.
    pub wait_ms: u64,
    /// The largest backlog it may build: below the queue's depth alarm (`u64::MAX` without one),
    /// so that the deficit alone, λ held, never pages anyone.
    pub backlog: u64,
    /// How long a deficit must last to be worth a scale-in, ms.
    pub spend_ms: u64,
}

impl Budget {
    fn new(config: &PolicyConfig, objective_ms: u64, boot_ms: u64) -> Self {
        Budget {
            wait_ms: objective_ms
                .saturating_mul(BUDGET_PERCENT)
                .checked_div(100)
                .unwrap_or(objective_ms),
            backlog: config.backlog_alarm.map_or(u64::MAX, |alarm| {
                alarm
                    .saturating_mul(ALARM_MARGIN_PERCENT)
                    .checked_div(100)
                    .unwrap_or(0)
            }),
            spend_ms: boot_ms.saturating_mul(SPEND_BOOTS),
        }
    }

    /// Whether `backlog` at `capacity_milli` is past what the budget allows.
    fn exceeded(&self, backlog: u64, capacity_milli: u64) -> bool {
        backlog > self.backlog || wait_ms(backlog, capacity_milli) > self.wait_ms
    }
}

/// The capacity one below `ceil(λ ÷ μ)` when it keeps the backlog within the
/// `budget` for at least its `spend_ms` from `backlog` (λ held): the queue
/// then absorbs the fraction of an instance λ ÷ μ asks for, and the capacity
/// returns when the budget is spent. `None` below `min`, when `ceil(λ ÷ μ)`
/// reaches `max`, or when the deficit would spend the budget sooner.
pub(crate) fn spend_level(
    backlog: u64,
    lambda_milli: u64,
    mu_milli: u64,
    (min, max): (u32, u32),
    budget: &Budget,
) -> Option<u32> {
    let high = ceil_div(u128::from(lambda_milli), u128::from(mu_milli.max(1)));
    let low = high.checked_sub(1)?;
    if low < min.max(1) || high >= max {
        return None;
    }
    let capacity = mu_milli.saturating_mul(u64::from(low));
    let after = backlog_after(backlog, lambda_milli, capacity, budget.spend_ms);
    (!budget.exceeded(after, capacity)).then_some(low)
}

/// Updates λ and μ from the new reading.
fn measure(config: &PolicyConfig, q: &mut QueueingState, m: &Reading, now: Timestamp) {
    // CloudWatch's μ (per worker-minute of saturated minutes, smoothed by the runner) wins.
    if let Some(mu) = m.measured_service_milli.filter(|mu| *mu > 0) {
        q.service_milli = Some(mu);
    }
    let backlog = m.visible.saturating_add(m.in_flight);
    if let Some(prev) = q.last {
        let dt = now.as_millis().saturating_sub(prev.at.as_millis());
        if dt > 0 {
            let mu = q.service_milli.unwrap_or(config.service_rate_milli).max(1);
            let done = if m.visible > 0 {
                // Saturated: the fleet processed at full rate.
                let v = u128::from(mu)
                    .saturating_mul(u128::from(m.in_service))
                    .saturating_mul(u128::from(dt))
                    .checked_div(1_000_000)
                    .unwrap_or(0);
                u64::try_from(v).unwrap_or(u64::MAX)
            } else {
                // Keeping pace: what left is what the backlog lost.
                prev.backlog.saturating_sub(backlog)
            };
            let arrived = backlog.saturating_add(done).saturating_sub(prev.backlog);
            let rate = per_sec_milli(arrived, dt);
            q.arrival_sample_milli = Some(rate);
            q.arrival_milli = Some(smooth(q.arrival_milli, rate, dt, ARRIVAL_MS));
        }
    }
    // For λ the larger of the two wins: CloudWatch publishes a minute or more late and must
    // not hide a burst the backlog already shows, and the readings cannot see arrivals a
    // fleet keeps pace with. So the last interval's rate is at least CloudWatch's.
    if let Some(lambda) = m.measured_arrival_milli {
        q.arrival_milli = Some(q.arrival_milli.map_or(lambda, |own| own.max(lambda)));
        q.arrival_sample_milli = Some(q.arrival_sample_milli.map_or(lambda, |own| own.max(lambda)));
    }
    q.last = Some(Sample {
        at: now,
        backlog,
        visible: m.visible,
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
    let previous_backlog = state.queueing.last.map(|s| s.backlog);
    measure(config, &mut state.queueing, m, now);
    let q = &state.queueing;
    let measured = q.service_milli.is_some();
    let mu = q.service_milli.unwrap_or(config.service_rate_milli).max(1);
    let lambda = q.arrival_milli.unwrap_or(0);
    let backlog = m.visible.saturating_add(m.in_flight);
    let age = m.oldest_message_age.unwrap_or(Duration::ZERO);
    let objective = ms(config.latency_objective).max(1000);
    let sizing_window = objective
        .saturating_mul(SIZING_PERCENT)
        .checked_div(100)
        .unwrap_or(1)
        .max(1);
    let boot = ms(config.boot_time);

    // Launching capacity lands when the last scale-out's boot ends; if the
    // group has launching instances this policy did not start, one boot time.
    let landing_ms = if current > m.in_service {
        q.landing_at
            .map_or(boot, |at| at.as_millis().saturating_sub(now.as_millis()))
    } else {
        0
    };
    let projection = project(
        &Load {
            backlog,
            lambda_milli: lambda,
            mu_milli: mu,
            in_service: m.in_service,
            desired: current,
            landing_ms,
        },
        boot,
    );
    let breach = projection.wait_ms > objective;
    let budget = Budget::new(config, objective, boot);
    let lambda_over_mu = ceil_div(u128::from(lambda), u128::from(mu));
    // The last scale-in went one below λ ÷ μ and λ still asks for exactly one more:
    // the queue is absorbing the deficit on purpose.
    let spending = q.spending == Some(current)
        && current == m.in_service
        && lambda_over_mu == current.saturating_add(1);
    let budget_spent = spending
        && budget.exceeded(
            projection.backlog_at_boot,
            mu.saturating_mul(u64::from(current)),
        );
    let budget_rise = lambda_over_mu
        .max(drain_instances(projection.backlog_at_boot, mu, objective))
        .min(max);
    // At a breach the queue grows at the last interval's rate, not at the smoothed one.
    let rate_term = ceil_div(
        u128::from(lambda.max(q.arrival_sample_milli.unwrap_or(0))),
        u128::from(mu),
    );
    let drain_term = drain_instances(projection.backlog_at_boot, mu, sizing_window);
    let (need, decider) = if drain_term > rate_term {
        (drain_term, "drain")
    } else {
        (rate_term, "rate")
    };
    let in_term = ceil_div(
        u128::from(lambda).saturating_mul(100),
        u128::from(mu).saturating_mul(u128::from(SCALE_IN_UTILISATION)),
    );
    let hold_term = drain_instances(backlog, mu, sizing_window);
    // Spending the latency budget is a bet that λ holds: placed only on a load CloudWatch
    // shows steady for minutes, and on the highest of the smoothed rate, the last interval's,
    // CloudWatch's minutes and the predicted rate, so a rising load is not met with less.
    let spend_term = m
        .measured_steady_arrival_milli
        .filter(|_| m.visible == 0)
        .and_then(|steady| {
            let spend_lambda = lambda
                .max(q.arrival_sample_milli.unwrap_or(0))
                .max(steady)
                .max(m.predicted_arrival_milli.unwrap_or(0));
            spend_level(backlog, spend_lambda, mu, (min, max), &budget)
        });
    let in_term = spend_term.map_or(in_term, |low| in_term.min(low));
    // Capacity for the predicted rate must launch one boot time ahead of it.
    let predicted_term = m
        .predicted_arrival_milli
        .map(|p| ceil_div(u128::from(p), u128::from(mu)));
    let predicted_in = predicted_term.map(|p| spend_term.map_or(p, |low| p.min(low)));
    let mut recommendation = in_term.max(hold_term).max(predicted_in.unwrap_or(0));
    if breach {
        recommendation = recommendation.max(need);
    }
    let recommendation = recommendation.clamp(min, max);

    let mut reason = format!(
        "queueing: λ {}/s ({}), μ {}/s per instance ({}), backlog {backlog} ({} visible + {} in flight), \
         age {}s of {}s objective; projected wait {} at boot ({}): rate term {rate_term}, drain term {drain_term}",
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
        if projection.wait_ms == u64::MAX {
            "unbounded".to_string()
        } else {
            format!("{}s", projection.wait_ms / 1000)
        },
        if breach { "breach" } else { "within objective" },
    );
    if spending {
        reason.push_str(&format!(
            ", spending the latency budget at {current} (projected wait {} of {}s, backlog {} of {})",
            if projection.wait_ms == u64::MAX {
                "unbounded".to_string()
            } else {
                format!("{}s", projection.wait_ms / 1000)
            },
            budget.wait_ms / 1000,
            projection.backlog_at_boot,
            if budget.backlog == u64::MAX {
                "no depth alarm".to_string()
            } else {
                budget.backlog.to_string()
            }
        ));
    }
    if let (Some(p), Some(term)) = (m.predicted_arrival_milli, predicted_term) {
        reason.push_str(&format!(
            ", predicted λ {}/s within boot: prediction term {term}",
            milli(p)
        ));
    }

    state.recommendations.push(Recommendation {
        at: now,
        desired: recommendation,
    });

    let (out, decider) = if current < min {
        (need.clamp(min, max), decider)
    } else if budget_spent {
        (budget_rise, "budget")
    } else if breach {
        (need.min(max), decider)
    } else {
        (current, decider)
    };
    // Two published minutes of CloudWatch's λ above the capacity in service and launching:
    // the excess has lasted longer than a burst (or one noisy minute) and will not drain by
    // itself.
    let persistent = !spending
        && m.measured_sustained_arrival_milli
            .is_some_and(|cw| cw > mu.saturating_mul(u64::from(current)));
    let (out, decider) = if persistent && rate_term.min(max) > out.max(current) {
        (rate_term.min(max), "rate")
    } else {
        (out, decider)
    };
    let predicted = predicted_term.unwrap_or(0).min(max);
    // While spending, the budget stands in for the one instance above the capacity.
    let covered = if spending {
        current.saturating_add(1)
    } else {
        current
    };
    let (out, decider) = if predicted > out.max(covered) {
        (predicted, "prediction")
    } else {
        (out, decider)
    };
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
            reason.push_str(&format!("; {decider} decides: scale out {current} -> {to}"));
            state.queueing.landing_at =
                Some(Timestamp::from_millis(now.as_millis().saturating_add(boot)));
            state.queueing.spending = None;
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
        if breach {
            reason.push_str(&format!(
                "; {decider} decides {}: hold at {current}, capacity is launching",
                need.min(max)
            ));
            break 'decide (Action::NoChange, current);
        }
        if recommendation >= current {
            reason.push_str(&format!(
                "; utilisation term {in_term}, backlog term {hold_term}: hold at {current}"
            ));
            break 'decide (Action::NoChange, current);
        }
        if hold_term > in_term && previous_backlog.is_some_and(|before| backlog < before) {
            // The capacity in service is still draining a backlog: the level it settles at
            // is known only once the backlog stops falling, so scale in once, then.
            reason.push_str(&format!(
                "; scale-in to {recommendation} held: backlog falling, backlog term {hold_term} \
                 above utilisation term {in_term}"
            ));
            break 'decide (Action::NoChange, current);
        }
        if state.queueing.arrival_milli.is_none() {
            // One reading gives no rate: never shed capacity on an unknown λ.
            reason.push_str(&format!(
                "; scale-in to {recommendation} held: λ not measured yet"
            ));
            break 'decide (Action::NoChange, current);
        }
        let highest = state
            .recommendations
            .iter()
            .map(|r| r.desired)
            .max()
            .unwrap_or(recommendation);
        if highest >= current {
            reason.push_str(&format!(
                "; scale-in to {recommendation} held by stabilization (highest recent {highest})"
            ));
            break 'decide (Action::NoChange, current);
        }
        // Every recommendation in the window is below current. λ's smoothing
        // lags a fall of the load by a few time constants: scale in once it
        // has caught up (the last interval's rate within the headroom band of
        // the smoothed λ), then in one step to where it settled.
        let last_rate = state.queueing.arrival_sample_milli.unwrap_or(lambda);
        let band = lambda
            .saturating_mul(100u64.saturating_sub(SCALE_IN_UTILISATION))
            .checked_div(100)
            .unwrap_or(0);
        if last_rate.saturating_add(band) < lambda {
            reason.push_str(&format!(
                "; scale-in to {recommendation} held: λ still falling (last interval {}/s)",
                milli(last_rate)
            ));
            break 'decide (Action::NoChange, current);
        }
        let settled = recommendation;
        if let Some(elapsed) = state
            .last_action
            .map(|at| now.saturating_duration_since(at))
            .filter(|e| *e < config.scale_in_cooldown)
        {
            reason.push_str(&format!(
                "; scale-in to {settled} held: cooldown {}s, {}s since last action",
                config.scale_in_cooldown.as_secs(),
                elapsed.as_secs()
            ));
            break 'decide (Action::NoChange, current);
        }
        let mut to = settled;
        if let Some(step) = config.max_scale_in_step {
            let limited = current.saturating_sub(step.max(1));
            if limited > to {
                reason.push_str(&format!("; scale-in step limited to -{step}"));
                to = limited;
            }
        }
        if spend_term == Some(to) {
            reason.push_str(&format!(
                "; budget decides: scale in {current} -> {to}, the queue absorbs {}/s within \
                 the {}s objective",
                milli(lambda.saturating_sub(mu.saturating_mul(u64::from(to)))),
                budget.wait_ms / 1000
            ));
            state.queueing.spending = Some(to);
        } else {
            reason.push_str(&format!(
                "; utilisation decides: scale in {current} -> {to}"
            ));
            state.queueing.spending = None;
        }
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

    /// A reading; `measured_lambda`: CloudWatch's λ, milli-messages per second.
    fn obs(
        visible: u64,
        in_flight: u64,
        desired: u32,
        age: u64,
        measured_lambda: Option<u64>,
    ) -> Observation {
        Observation::Ok(Reading {
            visible,
            in_flight,
            delayed: 0,
            in_service: desired,
            desired,
            oldest_message_age: Some(Duration::from_secs(age)),
            measured_arrival_milli: measured_lambda,
            measured_sustained_arrival_milli: None,
            measured_steady_arrival_milli: None,
            measured_service_milli: None,
            predicted_arrival_milli: None,
        })
    }

    fn secs(s: u64) -> Timestamp {
        Timestamp::from_secs(s)
    }

    /// What [`steady_queue`] saw.
    struct Run {
        /// The decisions that acted.
        acted: Vec<Decision>,
        /// The longest wait of the backlog, s.
        longest_wait: u64,
        largest_backlog: u64,
        instance_secs: u64,
    }

    impl Run {
        fn reasons(&self) -> Vec<&str> {
            self.acted.iter().map(|d| d.reason.as_str()).collect()
        }
    }

    /// A queue fed `arrivals_milli` every 10 s for `secs`, served at 5/s per instance in
    /// service; scale-outs land one boot time (90 s) later. CloudWatch's minutes show the rate
    /// as steady.
    fn steady_queue(
        c: &PolicyConfig,
        arrivals_milli: impl Fn(u64) -> u64,
        start: u32,
        secs_total: u64,
    ) -> Run {
        let mut state = PolicyState::starting_at(secs(0));
        let (mut desired, mut in_service) = (start, start);
        let mut landing: Option<(u64, u32)> = None;
        let (mut backlog, mut longest_wait, mut instance_secs) = (0u64, 0u64, 0u64);
        let mut largest_backlog = 0u64;
        let mut acted = Vec::new();
        for t in (0..secs_total).step_by(10) {
            if let Some((at, to)) = landing
                && at <= t
            {
                in_service = to;
                landing = None;
            }
            let lambda = arrivals_milli(t);
            let reading = Reading {
                visible: backlog,
                in_flight: 0,
                delayed: 0,
                in_service,
                desired,
                oldest_message_age: Some(Duration::from_secs(backlog * 1000 / lambda.max(1))),
                measured_arrival_milli: Some(lambda),
                measured_sustained_arrival_milli: Some(lambda),
                measured_steady_arrival_milli: Some(lambda),
                measured_service_milli: None,
                predicted_arrival_milli: None,
            };
            let d = evaluate(c, &mut state, &Observation::Ok(reading), secs(t));
            if let Some(to) = d.target() {
                if to > desired {
                    landing = Some((t + 90, to));
                } else {
                    in_service = to;
                }
                desired = to;
                acted.push(d);
            }
            instance_secs += u64::from(in_service) * 10;
            backlog = (backlog + lambda * 10 / 1000).saturating_sub(u64::from(in_service) * 50);
            longest_wait = longest_wait.max(backlog / (u64::from(in_service) * 5));
            largest_backlog = largest_backlog.max(backlog);
        }
        Run {
            acted,
            longest_wait,
            largest_backlog,
            instance_secs,
        }
    }

    /// Every action of `run` is 5 → 4 or 4 → 5, named by the budget.
    fn cycles_between_4_and_5(run: &Run) {
        let reasons = run.reasons();
        assert!(!run.acted.is_empty(), "{reasons:#?}");
        for d in &run.acted {
            assert!(
                matches!(
                    d.action,
                    Action::ScaleIn { from: 5, to: 4 } | Action::ScaleOut { from: 4, to: 5 }
                ),
                "{reasons:#?}"
            );
            assert!(d.reason.contains("budget decides"), "{}", d.reason);
        }
        assert!(
            reasons[0].contains("the queue absorbs 2.00/s"),
            "{}",
            reasons[0]
        );
    }

    #[test]
    fn a_steady_fractional_load_spends_the_latency_budget_then_returns_one_instance() {
        // 22/s at 5/s per instance: 4.4 instances. Holding 5 wastes 0.6 of one; 4 let the queue
        // grow 2/s. Without a depth alarm on the queue the budget is a 60 s objective (1,200
        // messages at 4 instances), reached after 10 minutes.
        let c = PolicyConfig {
            backlog_alarm: None,
            latency_objective: Duration::from_secs(60),
            ..config()
        };
        let run = steady_queue(&c, |_| 22_000, 5, 7200);
        cycles_between_4_and_5(&run);
        // The wait stays within the objective (the rise starts at the first evaluation whose
        // projection passes it, so by at most one evaluation's growth: 20 messages, 1 s) and
        // the fleet averages under 4.7 instances (4.45). A cycle takes 1,100 s: 520 s at 4 until
        // the projection passes the objective, then 580 s at 5 (the boot, then the drain); so
        // at most 14 actions in the two hours (13).
        assert!(run.longest_wait <= 61, "{}", run.longest_wait);
        assert!(run.instance_secs * 10 < 7200 * 47, "{}", run.instance_secs);
        assert!(run.acted.len() <= 14, "{:#?}", run.reasons());
    }

    #[test]
    fn the_budget_stays_below_the_queues_depth_alarm() {
        // The seed's QueueDepth alarm fires above 1,000 visible messages: the deficit may build
        // 900 (90 %), a 45 s wait at 4 instances, so the cycle is shorter (850 s: 370 s at 4,
        // 480 s at 5; 17 actions in two hours, 4.475 instances on average) and nobody is paged
        // for a deliberate deficit.
        let run = steady_queue(&config(), |_| 22_000, 5, 7200);
        cycles_between_4_and_5(&run);
        assert!(run.largest_backlog <= 950, "{}", run.largest_backlog);
        assert!(run.longest_wait <= 48, "{}", run.longest_wait);
        assert!(run.instance_secs * 10 < 7200 * 47, "{}", run.instance_secs);
        assert!(run.acted.len() <= 18, "{:#?}", run.reasons());
        assert!(
            run.acted[1].reason.contains("backlog 920 of 900"),
            "{}",
            run.acted[1].reason
        );
    }

    #[test]
    fn a_controller_restarted_while_spending_returns_the_instance() {
        // The spending lives in memory: a controller that starts (or takes over the lease) at
        // 4 instances with the queue growing 2/s does not know the deficit was deliberate, so
        // the measured overload brings back the fifth instance at once.
        let mut state = PolicyState::starting_at(secs(0));
        let reading = Reading {
            visible: 400,
            in_flight: 0,
            delayed: 0,
            in_service: 4,
            desired: 4,
            oldest_message_age: Some(Duration::from_secs(18)),
            measured_arrival_milli: Some(22_000),
            measured_sustained_arrival_milli: Some(22_000),
            measured_steady_arrival_milli: Some(22_000),
            measured_service_milli: None,
            predicted_arrival_milli: None,
        };
        let d = evaluate(&config(), &mut state, &Observation::Ok(reading), secs(600));
        assert_eq!(
            d.action,
            Action::ScaleOut { from: 4, to: 5 },
            "{}",
            d.reason
        );
        assert!(
            d.reason.ends_with("rate decides: scale out 4 -> 5"),
            "{}",
            d.reason
        );
    }

    #[test]
    fn the_budget_is_kept_at_the_fleets_maximum() {
        // 46/s needs 9.2 of the 10 instances: the budget is the only reserve left for a burst.
        let run = steady_queue(&config(), |_| 46_000, 10, 3600);
        assert!(run.acted.is_empty(), "{:#?}", run.reasons());
    }

    #[test]
    fn a_rise_while_spending_is_met_by_the_usual_rules() {
        // Spending at 4 for 22/s, then the load rises to 32/s: λ ÷ μ asks for three more than
        // the capacity, so the budget stands aside and the fleet scales out for the rate.
        let run = steady_queue(
            &config(),
            |t| if t < 600 { 22_000 } else { 32_000 },
            5,
            1500,
        );
        let reasons = run.reasons();
        assert!(
            matches!(run.acted[0].action, Action::ScaleIn { from: 5, to: 4 }),
            "{reasons:#?}"
        );
        let rise = run
            .acted
            .iter()
            .find(|d| matches!(d.action, Action::ScaleOut { .. }))
            .unwrap_or_else(|| panic!("{reasons:#?}"));
        assert!(rise.desired >= 7, "{reasons:#?}");
        assert!(!rise.reason.contains("budget decides"), "{}", rise.reason);
        assert!(run.longest_wait <= 90, "{} {reasons:#?}", run.longest_wait);
    }

    #[test]
    fn steady_22_per_second_settles_at_5_without_flapping() {
        // 22 msg/s, 5 msg/s per instance: λ/μ = 4.4, so 5 instances. CloudWatch's window
        // does not show the load steady (no `measured_steady_arrival_milli`), so the latency
        // budget is not spent.
        let c = config();
        let mut state = PolicyState::starting_at(secs(0));
        let mut desired = 5;
        let mut actions = 0;
        for step in 0..360u64 {
            // 5 instances keep pace with the 22/s CloudWatch measures.
            let d = evaluate(
                &c,
                &mut state,
                &obs(0, 20, desired, 1, Some(22_000)),
                secs(step * 10),
            );
            if let Some(to) = d.target() {
                desired = to;
                actions += 1;
            }
        }
        assert_eq!((desired, actions), (5, 0));
        let d = evaluate(&c, &mut state, &obs(0, 20, 5, 1, Some(22_000)), secs(3600));
        assert!(d.reason.contains("λ 22.00/s"), "{}", d.reason);
        assert!(d.reason.contains("rate term 5"), "{}", d.reason);
    }

    #[test]
    fn the_reason_is_one_line_naming_every_term() {
        let mut state = PolicyState::new();
        evaluate(&config(), &mut state, &obs(100, 20, 2, 10, None), secs(0));
        let d = evaluate(&config(), &mut state, &obs(400, 20, 2, 30, None), secs(10));
        for term in [
            "λ ",
            "μ ",
            "backlog 420 (400 visible + 20 in flight)",
            "age 30s of 90s objective",
            "decides",
        ] {
            assert!(d.reason.contains(term), "{term}: {}", d.reason);
        }
        assert!(!d.reason.contains('\n'));
        // Saturated, so 2 × 5/s left: 300 + 100 arrived in 10 s.
        assert!(d.reason.contains("λ 40.00/s (estimated)"), "{}", d.reason);
        assert!(
            d.reason.contains("μ 5.00/s per instance (configured)"),
            "{}",
            d.reason
        );
    }

    #[test]
    fn a_burst_scales_out_for_the_drain_within_the_objective() {
        let mut state = PolicyState::new();
        // 2 instances busy, 10/s processed, backlog jumps from 100 to 1300 in 10 s:
        // λ = (1200 + 100) / 10 = 130/s.
        evaluate(&config(), &mut state, &obs(80, 20, 2, 5, None), secs(0));
        let d = evaluate(&config(), &mut state, &obs(1280, 20, 2, 15, None), secs(10));
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
            measured_arrival_milli: None,
            measured_sustained_arrival_milli: None,
            measured_steady_arrival_milli: None,
            measured_service_milli: None,
            predicted_arrival_milli: None,
        });
        let d = evaluate(&config(), &mut state, &o, secs(0));
        assert_eq!(d.action, Action::NoChange, "{}", d.reason);
    }

    #[test]
    fn scale_in_waits_for_cooldown_and_stabilization_then_goes_toward_lambda_over_mu() {
        let c = config();
        let mut state = PolicyState::starting_at(secs(0));
        let mut last = None;
        let mut desired = 8;
        // 8 instances, only 10 msg/s arriving (2 instances' worth).
        for step in 0..100u64 {
            let d = evaluate(
                &c,
                &mut state,
                &obs(0, 10, desired, 1, Some(10_000)),
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
        }
        assert_eq!(desired, 3, "ceil(10 / (0.9 × 5)) = 3");
        assert!(last.is_some());
    }

    #[test]
    fn without_measurements_the_configured_rate_is_used() {
        let mut state = PolicyState::new();
        let o = |visible| {
            Observation::Ok(Reading {
                visible,
                in_flight: 20,
                delayed: 0,
                in_service: 2,
                desired: 2,
                oldest_message_age: Some(Duration::from_secs(20)),
                measured_arrival_milli: None,
                measured_sustained_arrival_milli: None,
                measured_steady_arrival_milli: None,
                measured_service_milli: None,
                predicted_arrival_milli: None,
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
                measured_arrival_milli,
                measured_sustained_arrival_milli: None,
                measured_steady_arrival_milli: None,
                measured_service_milli,
                predicted_arrival_milli: None,
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
    fn one_noisy_minute_above_capacity_does_not_scale_out_two_do() {
        // 7 instances (35/s), nothing waiting; CloudWatch's newest minute says 36/s.
        let reading = |sustained| {
            Observation::Ok(Reading {
                visible: 0,
                in_flight: 35,
                delayed: 0,
                in_service: 7,
                desired: 7,
                oldest_message_age: Some(Duration::from_secs(1)),
                measured_arrival_milli: Some(36_000),
                measured_sustained_arrival_milli: sustained,
                measured_steady_arrival_milli: None,
                measured_service_milli: None,
                predicted_arrival_milli: None,
            })
        };
        // The minute before was 31/s: no overload has lasted, and the projection stays within
        // the objective, so nothing launches.
        let d = evaluate(
            &config(),
            &mut PolicyState::new(),
            &reading(Some(31_000)),
            secs(0),
        );
        assert_eq!(d.action, Action::NoChange, "{}", d.reason);
        // Two minutes above 35/s: the rate term decides.
        let d = evaluate(
            &config(),
            &mut PolicyState::new(),
            &reading(Some(35_500)),
            secs(0),
        );
        assert_eq!(
            d.action,
            Action::ScaleOut { from: 7, to: 8 },
            "{}",
            d.reason
        );
        assert!(d.reason.contains("rate decides"), "{}", d.reason);
    }

    #[test]
    fn a_burst_the_backlog_shows_is_not_hidden_by_a_late_measurement() {
        let mut state = PolicyState::new();
        let o = |visible| {
            Observation::Ok(Reading {
                visible,
                in_flight: 20,
                delayed: 0,
                in_service: 2,
                desired: 2,
                oldest_message_age: Some(Duration::from_secs(5)),
                measured_arrival_milli: Some(10_000),
                measured_sustained_arrival_milli: None,
                measured_steady_arrival_milli: None,
                measured_service_milli: None,
                predicted_arrival_milli: None,
            })
        };
        evaluate(&config(), &mut state, &o(80), secs(0));
        // The backlog grew by 1200 in 10 s while 2 × 5/s were processed: 130/s, not 10/s.
        let d = evaluate(&config(), &mut state, &o(1280), secs(10));
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
            let mut o = obs(v, f, u32::MAX, u64::MAX / 1000, Some(p));
            if let Observation::Ok(r) = &mut o {
                r.measured_steady_arrival_milli = Some(p);
                r.in_service = 3;
            }
            let d = evaluate(&config(), &mut state, &o, secs(t as u64));
            assert!(d.desired <= 10 || d.desired == u32::MAX);
        }
    }

    #[test]
    fn a_short_burst_the_fleet_drains_within_the_objective_launches_nothing() {
        // 8/s on 2 instances (10/s); a 12 s burst at 16/s leaves ~100 messages.
        let c = config();
        let mut state = PolicyState::starting_at(secs(0));
        for step in 0..60u64 {
            let burst = step == 30;
            let backlog = if burst { 110 } else { 16 };
            let d = evaluate(
                &c,
                &mut state,
                &obs(backlog, 0, 2, 2, Some(8_000)),
                secs(step * 10),
            );
            assert_eq!(d.action, Action::NoChange, "{}", d.reason);
        }
    }

    #[test]
    fn a_persistent_overload_scales_out_once_for_half_the_objective() {
        let c = config();
        let mut state = PolicyState::starting_at(secs(0));
        // Quiet at 8/s, then 22/s on 2 instances: the backlog grows 12/s.
        let mut backlog = 16;
        let mut outs = Vec::new();
        for step in 0..9u64 {
            let d = evaluate(
                &c,
                &mut state,
                &obs(backlog, 0, 2, 2, None),
                secs(step * 10),
            );
            if let Action::ScaleOut { to, .. } = d.action {
                outs.push(to);
                assert!(d.reason.contains("breach"), "{}", d.reason);
                break;
            }
            if step >= 3 {
                backlog += 120;
            }
        }
        // λ ≈ 22, the backlog at boot waits at most 30 s: more than λ/μ = 4.4.
        assert_eq!(outs.len(), 1);
        assert!((5..=10).contains(&outs[0]), "{outs:?}");
    }

    #[test]
    fn scale_in_goes_in_one_step_to_the_settled_level() {
        let c = config();
        let mut state = PolicyState::starting_at(secs(0));
        let mut actions = Vec::new();
        let mut desired = 10;
        // 46/s on 10 instances for 5 minutes, then 8/s.
        for step in 0..120u64 {
            let rate = if step < 30 { 46_000 } else { 8_000 };
            let d = evaluate(
                &c,
                &mut state,
                &obs(0, 40, desired, 1, Some(rate)),
                secs(step * 10),
            );
            if let Some(to) = d.target() {
                actions.push((step * 10, desired, to));
                desired = to;
            }
        }
        assert_eq!(actions.len(), 1, "{actions:?}");
        let (at, from, to) = actions[0];
        assert_eq!((from, to), (10, 2));
        // Not before the stabilization window (the boot time, by default in this mode) has
        // passed since the last high recommendation (the last reading at 46/s is at 290 s),
        // nor before λ's smoothing has caught up with the fall.
        assert_eq!(c.stabilization_window(), Duration::from_secs(90));
        assert!(at >= 290 + 90, "{at}");
        assert!(at < 290 + 300, "{at}");
    }

    /// Replays 46/s on 10 instances for 5 minutes, then 8/s, and returns each evaluation's
    /// reason from the fall on.
    fn after_the_fall(c: &PolicyConfig) -> Vec<(u64, String, Option<u32>)> {
        let mut state = PolicyState::starting_at(secs(0));
        let mut desired = 10;
        let mut out = Vec::new();
        for step in 0..120u64 {
            let rate = if step < 30 { 46_000 } else { 8_000 };
            let d = evaluate(
                c,
                &mut state,
                &obs(0, 40, desired, 1, Some(rate)),
                secs(step * 10),
            );
            if step >= 30 {
                out.push((step * 10, d.reason.clone(), d.target()));
            }
            if let Some(to) = d.target() {
                desired = to;
            }
        }
        out
    }

    #[test]
    fn scale_in_waits_until_the_smoothed_arrival_rate_has_caught_up_with_a_fall() {
        // A window shorter than λ's decay (own estimate, 20 s time constant) after the fall.
        let reasons = after_the_fall(&PolicyConfig {
            stabilization_window: Some(Duration::from_secs(10)),
            ..config()
        });
        let first_in = reasons.iter().position(|(_, _, to)| to.is_some()).unwrap();
        // Just before: held because λ was still falling, not at a level it had not reached.
        assert!(
            reasons[..first_in]
                .iter()
                .any(|(_, r, _)| r.contains("held: λ still falling")),
            "{reasons:#?}"
        );
        assert_eq!(reasons[first_in].2, Some(2), "{:?}", reasons[first_in]);
    }

    #[test]
    fn a_configured_stabilization_window_is_kept_in_queueing_mode() {
        let c = PolicyConfig {
            stabilization_window: Some(Duration::from_secs(300)),
            ..config()
        };
        let (at, _, to) = after_the_fall(&c)
            .into_iter()
            .find(|(_, _, to)| to.is_some())
            .unwrap();
        assert_eq!(to, Some(2));
        assert!(at >= 290 + 300, "{at}");
        // mode: backlog keeps the HPA's 300 s unless told otherwise.
        assert_eq!(
            PolicyConfig::default().stabilization_window(),
            Duration::from_secs(300)
        );
    }

    #[test]
    fn scale_in_waits_while_the_backlog_is_still_draining() {
        let c = config();
        let mut state = PolicyState::starting_at(secs(0));
        // 10 instances drain a backlog after a surge; 8/s arrive.
        let mut backlog = 3000u64;
        let mut held_draining = false;
        let mut first_in = None;
        for step in 0..40u64 {
            let d = evaluate(
                &c,
                &mut state,
                &obs(backlog, 40, 10, 30, Some(8_000)),
                secs(400 + step * 10),
            );
            held_draining |= d.reason.contains("held: backlog falling");
            if let Some(to) = d.target() {
                first_in = Some((backlog, to));
                break;
            }
            // Draining: 8/s arrive and 50/s leave; drained: 8/s arrive and leave.
            backlog = backlog.saturating_sub(420);
        }
        assert!(held_draining);
        // Once drained, in one step to λ's level.
        assert_eq!(first_in, Some((0, 2)));
    }

    #[test]
    fn launching_capacity_lands_at_its_boot_not_one_boot_from_now() {
        // 2 in service, 8 desired, the launch due in 10 s: the backlog hardly grows before then.
        let load = Load {
            backlog: 600,
            lambda_milli: 30_000,
            mu_milli: 5_000,
            in_service: 2,
            desired: 8,
            landing_ms: 10_000,
        };
        let soon = project(&load, 90_000);
        let unknown = project(
            &Load {
                landing_ms: 90_000,
                ..load
            },
            90_000,
        );
        assert_eq!(soon.backlog_at_boot, 600 + 200 - 800);
        assert_eq!(unknown.backlog_at_boot, 600 + 20 * 90);
        assert!(soon.wait_ms < unknown.wait_ms);
        assert_eq!(wait_ms(0, 0), 0);
        assert_eq!(wait_ms(1, 0), u64::MAX);
        assert_eq!(drain_instances(3000, 5_000, 30_000), 20);
    }

    #[test]
    fn a_predicted_peak_is_provisioned_one_boot_time_ahead_and_named() {
        let c = config();
        let mut state = PolicyState::starting_at(secs(0));
        let reading = |predicted, desired| {
            Observation::Ok(Reading {
                predicted_arrival_milli: predicted,
                ..match obs(0, 16, desired, 1, Some(8_000)) {
                    Observation::Ok(r) => r,
                    Observation::Missing { .. } => unreachable!(),
                }
            })
        };
        // Quiet now (8/s on 2 instances), 28/s predicted within the boot time: 6 instances.
        let d = evaluate(&c, &mut state, &reading(Some(28_000), 2), secs(0));
        assert_eq!(
            d.action,
            Action::ScaleOut { from: 2, to: 6 },
            "{}",
            d.reason
        );
        assert!(
            d.reason
                .contains("predicted λ 28.00/s within boot: prediction term 6; prediction decides"),
            "{}",
            d.reason
        );
        // While the peak is predicted, nothing scales in.
        let d = evaluate(&c, &mut state, &reading(Some(28_000), 6), secs(600));
        assert_eq!(d.action, Action::NoChange, "{}", d.reason);
        // Without a prediction the same quiet queue launches nothing.
        let mut fresh = PolicyState::starting_at(secs(0));
        let d = evaluate(&c, &mut fresh, &reading(None, 2), secs(0));
        assert_eq!(d.action, Action::NoChange, "{}", d.reason);
        assert!(!d.reason.contains("predicted"), "{}", d.reason);
    }

    proptest::proptest! {
        #[test]
        fn projection_is_sound(
            backlog in 0u64..1_000_000,
            lambda in 0u64..200_000,
            mu in 1u64..20_000,
            in_service in 0u32..50,
            extra in 0u32..50,
            landing in 0u64..200_000,
            boot in 0u64..200_000,
        ) {
            let load = Load {
                backlog,
                lambda_milli: lambda,
                mu_milli: mu,
                in_service,
                desired: in_service + extra,
                landing_ms: landing,
            };
            let p = project(&load, boot);
            // Never more than every arrival on top of the backlog, never negative.
            let ceiling = backlog + lambda * boot / 1_000_000 + 1;
            proptest::prop_assert!(p.backlog_at_boot <= ceiling);
            // More capacity launching never lengthens the wait.
            let more = project(&Load { desired: load.desired + 1, ..load }, boot);
            proptest::prop_assert!(more.wait_ms <= p.wait_ms);
            proptest::prop_assert!(more.backlog_at_boot <= p.backlog_at_boot);
            // The drain term drains the projected backlog within its window.
            let n = drain_instances(p.backlog_at_boot, mu, 30_000);
            proptest::prop_assert!(wait_ms(p.backlog_at_boot, mu * u64::from(n)) <= 30_000);
        }
    }

    #[test]
    fn backlog_mode_is_unchanged_by_the_queueing_fields() {
        // The seed scenarios stay exact in mode: backlog (the default).
        let mut state = PolicyState::new();
        let d = evaluate(
            &PolicyConfig::default(),
            &mut state,
            &obs(500, 0, 2, 1, None),
            secs(0),
        );
        assert_eq!(d.action, Action::ScaleOut { from: 2, to: 5 });
        assert!(state.queueing.last.is_none());
    }
}
