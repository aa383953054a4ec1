//! A deterministic discrete-time simulator of the SQS queue and the worker
//! fleet, used to compare scaling policies on arrival traces.
//!
//! # Input
//!
//! A [`Trace`] of arrival rates, read from a `seconds,arrivals_per_second`
//! CSV file (format in [`trace`] and `blueprints/traces/README.md`): each
//! row gives the time offset in seconds at which a rate (messages/second)
//! starts; the rate holds until the next row; the last row's time is the end
//! of the trace and its rate is ignored.
//!
//! # Model (1-second steps)
//!
//! In each second `t`:
//!
//! 1. Instances whose boot delay has passed are InService.
//! 2. Arrivals for second `t` join the back of the queue (whole messages;
//!    fractional rates carry over to the next second).
//! 3. Workers receive messages into free slots (`concurrency` per InService
//!    instance); received messages are in flight (NotVisible).
//! 4. The fleet completes up to `in_service × service_rate` in-flight
//!    messages, oldest first. Unused capacity is lost (only the fraction of
//!    a message carries over).
//! 5. Measurements are taken: queue depth, the age of the oldest message
//!    (visible or in flight; the queue is tracked as FIFO buckets of arrival
//!    seconds, so the age is exact to the second), instances running.
//! 6. Every `metric_period` the CloudWatch datapoint is published, visible
//!    `metric_delay` after the period ends: `BacklogPerInstance` (average
//!    visible ÷ average InService over the period), and what `ballast run`
//!    reads for the measured rates: `NumberOfMessagesSent`, the workers'
//!    `TransactionsProcessed` with one report a minute per worker in service,
//!    and `ApproximateNumberOfMessagesVisible` as sampled at the period's end.
//! 7. Every `interval` of the policy, it sees the queue's counts as SQS
//!    reports them (`count_lag` old; before the run, the queue as it started),
//!    the group as it is now and the published datapoints, and may set a new
//!    desired capacity. The
//!    simulator clamps it into `[min, max]` as the Auto Scaling group does.
//!    Launched instances become InService `boot_delay` later; scale-in
//!    terminates the newest instances first (booting ones before InService
//!    ones) and their in-flight messages go back to the head of the queue
//!    at once (a lifecycle hook drains them or resets their visibility).
//!
//! After the trace ends, the simulation continues with no arrivals until
//! the queue is empty (at most `drain_limit`).
//!
//! Simplifications: a Standard queue is treated as FIFO for ages;
//! `ApproximateNumberOfMessages` is exact; messages are never redelivered
//! (the configuration is rejected if `concurrency ÷ service_rate` reaches
//! the visibility timeout); there are no failed messages.
//!
//! # Policies
//!
//! All are driven by the same loop through [`SimPolicy`]:
//!
//! * `ballast` — [`crate::autoscale::policy::evaluate`] itself, every 10 s,
//!   on the `GetQueueAttributes` view; in `mode: queueing` (`queueing`) also
//!   with the measured λ and μ folded from the published datapoints by the
//!   runner's own [`crate::autoscale::measured::MeasuredRates`]. Its state starts with
//!   the start of the run as the last scaling action (a freshly started
//!   controller is conservative), so it does not scale in during the first
//!   cooldown.
//! * `target-tracking` — a model of an EC2 Auto Scaling target-tracking
//!   policy on the `BacklogPerInstance` metric math (visible ÷ InService),
//!   1-minute datapoints. The high alarm fires after 3 consecutive
//!   datapoints above the target, the low alarm after 15 consecutive
//!   datapoints below 90 % of the target. The new capacity is
//!   `ceil(InService × metric ÷ target)` clamped into `[min, max]`; booting
//!   (warming-up) instances count neither in the metric nor in that
//!   capacity. A scale-out happens whenever the high alarm is in ALARM and
//!   the new capacity exceeds the current desired capacity: that is AWS's
//!   scale-out cooldown / instance-warmup semantics ("capacity added by the
//!   previous scale-out counts as part of the desired capacity for the next
//!   one"), so the 300 s scale-out cooldown never blocks a larger scale-out
//!   here — the favourable reading for target tracking. Scale-in waits
//!   300 s after the previous scale-in.
//! * `hpa` — a model of the Kubernetes HPA with an external `AverageValue`
//!   metric, as KEDA's SQS scaler sets it up: every 15 s,
//!   `desired = ceil(current × (visible ÷ current) ÷ target)` with `current`
//!   the desired replica count, skipped within 10 % tolerance; default
//!   scale-up limit max(+100 %, +4) per period; scale-down stabilization
//!   300 s (highest recommendation in the window); no cooldowns. Only
//!   visible messages are counted (KEDA's `scaleOnInFlight` is off).
//!
//! * `--controller-down A..B` — Ballast's policy with the controller down for a window,
//!   without and with the scaling policy's dead-man's switch (see [`failover`]).
//!
//! # Output
//!
//! Per policy a [`SimReport`]: maximum and p99 (nearest rank over all
//! simulated seconds) of the oldest-message age, minutes in which that age
//! exceeded the alarm age at some second, instance-hours (running instances
//! including booting ones, summed per second, ÷ 3600), scaling actions,
//! messages processed, and the clairvoyant lower bound on instance-hours:
//!
//! `max(min × trace seconds, ceil(total messages ÷ service rate)) ÷ 3600`.
//!
//! Both terms are sound: the group never runs fewer than `min` instances for
//! the length of the trace, and one InService instance completes at most
//! `service_rate` messages per second, so processing every message takes at
//! least that many instance-seconds whatever the foresight. (The tempting
//! `Σ max(min, ceil(rate ÷ service rate))` is not a bound: work can be
//! deferred into a queue.) Policies also pay for booting and draining, so
//! the bound is not reachable in general.
//!
//! Two bounds at each policy's own worst age sharpen it. The clairvoyant
//! bound ([`clairvoyant_bound`], always reported) is a fluid relaxation:
//! capacity appears the second work needs it, in fractions of an instance.
//! The whole-instance bound ([`whole_instance_bound`], on request: it costs
//! seconds per policy) is the exact optimum over fleets of whole instances
//! that each pay their boot, optionally within an action budget. A policy's
//! ratio to the first mixes its own waste with what boots and rounding cost
//! any fleet; its ratio to the second leaves those out, so what remains is
//! the cost of deciding without knowing the future, plus its own waste. The
//! reactive bound ([`whole_instance::reactive_bound`], on request) is the
//! second over the fleets that launch only after they have seen load, as
//! every policy compared here does: it splits that remainder into what
//! knowing when load begins is worth and what knowing how much and for how
//! long would be. With a cooldown it counts only the fleets that also keep
//! the policies' scale-in cooldown, which says what that rule costs.
//!
//! Plus a [`SeriesPoint`] time series (every `sample_every`, 10 s by
//! default) for [`render_svg`].

pub mod engine;
pub mod export;
pub mod failover;
pub mod policies;
pub mod rng;
pub mod svg;
pub mod synthetic;
pub mod trace;
pub mod whole_instance;

pub use engine::{
    Clairvoyant, ProcessingTime, ScalingEvent, SeriesPoint, SimConfig, SimConfigError, SimReport,
    SimResult, WholeInstanceRow, clairvoyant_bound,
};
pub use failover::{
    DownWindow, DownWindowError, FailoverPolicy, FailoverReport, SwitchModel, format_failover,
    simulate_failover,
};
pub use policies::{
    BallastPolicy, Datapoint, HpaConfig, HpaPolicy, KedaConfig, KedaPolicy, Observed, SimPolicy,
    TargetTrackingConfig, TargetTrackingPolicy, default_policies,
};
pub use svg::render_svg;
pub use trace::{Segment, TRACE_HEADER, Trace, TraceError};
pub use whole_instance::{FleetShape, WholeInstanceBound, whole_instance_bound};

/// Simulates each policy independently over the same trace and
/// configuration. Deterministic.
///
/// Refuses an invalid `sim` ([`SimConfig::validate`]) before simulating anything.
pub fn run_simulation(
    trace: &Trace,
    sim: &SimConfig,
    policies: Vec<Box<dyn SimPolicy>>,
) -> Result<Vec<SimResult>, SimConfigError> {
    sim.validate()?;
    Ok(policies
        .into_iter()
        .map(|mut policy| engine::simulate(trace, sim, policy.as_mut()))
        .collect())
}

/// Why [`add_whole_instance_bounds`] cannot bound a configuration.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WholeInstanceError {
    #[error(
        "the whole-instance bound needs fixed processing times: exponential service can complete \
         more than the service rate in a second (hint: --processing fixed)"
    )]
    ExponentialService,
    #[error(
        "an action budget or a reactive bound needs every boot to take exactly the boot delay, so \
         that each launch raises the in-service count once, one boot after it (hint: \
         --boot-spread 0s)"
    )]
    BootSpread,
    #[error(
        "a cooldown bound is a reactive bound that also keeps the cooldown (hint: add \
         --bound-reactive, e.g. 300s)"
    )]
    CooldownWithoutReactive,
    #[error(transparent)]
    TooLarge(#[from] whole_instance::TooLarge),
}

/// Fills each report's [`WholeInstanceRow`]: the whole-instance bound at
/// that policy's own worst age, within `max_actions` changes if given, and
/// over the fleets that react within `reactive_within` of an overload if
/// given (then only for the runs whose own launches all did), and, with a
/// `cooldown` too, over those that also let no instance leave service within
/// the cooldown of any launch or termination (then only for the runs that
/// kept it). Costs seconds of CPU per report for an hours-long trace, and
/// ten times that or more with a cooldown (see [`whole_instance`]).
pub fn add_whole_instance_bounds(
    results: &mut [SimResult],
    sim: &SimConfig,
    max_actions: Option<u32>,
    reactive_within: Option<std::time::Duration>,
    cooldown: Option<std::time::Duration>,
) -> Result<(), WholeInstanceError> {
    if sim.processing != ProcessingTime::Fixed {
        return Err(WholeInstanceError::ExponentialService);
    }
    if (max_actions.is_some() || reactive_within.is_some()) && !sim.boot_spread.is_zero() {
        return Err(WholeInstanceError::BootSpread);
    }
    if cooldown.is_some() && reactive_within.is_none() {
        return Err(WholeInstanceError::CooldownWithoutReactive);
    }
    let fleet = FleetShape {
        min: sim.min,
        max: sim.max,
        initial: sim.initial_capacity,
        // The engine launches at the end of a second and counts an instance
        // from the next, so it pays `boot_delay − 1` seconds before its first
        // second in service.
        boot_secs: sim.boot_delay.as_secs().saturating_sub(1),
    };
    let within_secs = reactive_within.map(|w| w.as_secs());
    let cooldown = cooldown.map(|c| whole_instance::Cooldown {
        secs: c.as_secs(),
        step_secs: whole_instance::COOLDOWN_STEP_SECS,
    });
    for result in results {
        let age = result.report.max_oldest_age_secs;
        let early = cooldown.map(|c| {
            let actions = result.actions.iter().map(|a| (a.t, a.to < a.from));
            whole_instance::scale_ins_within_cooldown(c.secs, actions)
        });
        let (bound, launches_outside) = match within_secs {
            None => (
                whole_instance_bound(
                    &result.arrivals,
                    fleet,
                    sim.service_rate_milli,
                    age,
                    max_actions,
                )?,
                None,
            ),
            Some(within) => {
                let launches = result.actions.iter().filter(|a| a.to > a.from).map(|a| a.t);
                let outside = whole_instance::launches_outside(
                    &result.arrivals,
                    sim.min,
                    sim.service_rate_milli,
                    within,
                    launches,
                );
                let bound = if outside == 0 && early.unwrap_or(0) == 0 {
                    whole_instance::reactive_bound(
                        &result.arrivals,
                        fleet,
                        sim.service_rate_milli,
                        age,
                        max_actions,
                        within,
                        cooldown,
                    )?
                } else {
                    None
                };
                (bound, Some(outside))
            }
        };
        result.report.whole_instance = Some(WholeInstanceRow {
            max_actions,
            reactive_within_secs: within_secs,
            launches_outside,
            cooldown_secs: cooldown.map(|c| c.secs),
            scale_ins_within_cooldown: early,
            instance_hours: bound.map(|b| b.instance_hours()),
        });
    }
    Ok(())
}

/// [`render_svg`] over [`SimResult`]s, one line per policy, plus the
/// capacity of the clairvoyant bound at the first policy's worst age
/// (averaged over each sample period).
pub fn render_results_svg(results: &[SimResult], sim: &SimConfig) -> String {
    let named: Vec<(&str, &[SeriesPoint])> = results
        .iter()
        .map(|r| (r.report.policy.as_str(), r.series.as_slice()))
        .collect();
    let trace_end = results.first().map_or(0, |r| r.report.trace_secs);
    let bound = results.first().map(|r| {
        let age = r.report.max_oldest_age_secs;
        let capacity =
            clairvoyant_bound(&r.arrivals, sim.min, sim.service_rate_milli, age).capacity;
        let step = usize::try_from(sim.sample_every.as_secs().max(1)).unwrap_or(1);
        let points: Vec<(u64, f64)> = capacity
            .chunks(step)
            .zip((0u64..).step_by(step))
            .map(|(chunk, t)| (t, chunk.iter().sum::<f64>() / chunk.len().max(1) as f64))
            .collect();
        (format!("bound @ {age} s"), points)
    });
    render_svg(
        &named,
        trace_end,
        bound.as_ref().map(|(n, p)| (n.as_str(), p.as_slice())),
    )
}

/// An aligned text table, one row per policy.
pub fn format_table(results: &[SimResult]) -> String {
    let alarm_header = "min>300s";
    let header = [
        "policy",
        "max age s",
        "p99 age s",
        alarm_header,
        "min>depth",
        "inst-hours",
        "actions",
        "lower bound",
        "bound@age",
        "÷ bound",
        "processed",
        "max inst",
    ];
    let mut header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    // The whole-instance columns only when asked for, named by their budget.
    let whole = results.iter().find_map(|r| r.report.whole_instance);
    if let Some(row) = whole {
        let budget = row
            .max_actions
            .map_or(String::new(), |k| format!(", ≤{k} act"));
        let (name, ratio) = match (row.reactive_within_secs, row.cooldown_secs) {
            (Some(within), Some(cooldown)) => (
                format!("reactive≤{within}s+cooldown {cooldown}s@age"),
                "÷ reactive",
            ),
            (Some(within), None) => (format!("reactive≤{within}s@age"), "÷ reactive"),
            (None, _) => ("whole@age".to_string(), "÷ whole"),
        };
        header.push(format!("{name}{budget}"));
        header.push(ratio.to_string());
    }
    let mut rows: Vec<Vec<String>> = vec![header.clone()];
    for r in results {
        let r = &r.report;
        let mut row = vec![
            r.policy.clone(),
            r.max_oldest_age_secs.to_string(),
            r.p99_oldest_age_secs.to_string(),
            r.minutes_over_alarm.to_string(),
            r.minutes_over_depth_alarm.to_string(),
            format!("{:.2}", r.instance_hours),
            r.scaling_actions.to_string(),
            format!("{:.2}", r.lower_bound_instance_hours),
            format!("{:.2}", r.clairvoyant_instance_hours),
            format!(
                "{:.2}",
                r.instance_hours / r.clairvoyant_instance_hours.max(f64::MIN_POSITIVE)
            ),
            r.processed.to_string(),
            r.max_running.to_string(),
        ];
        if whole.is_some() {
            match r.whole_instance.and_then(|w| w.instance_hours) {
                Some(bound) => {
                    row.push(format!("{bound:.2}"));
                    row.push(format!(
                        "{:.2}",
                        r.instance_hours / bound.max(f64::MIN_POSITIVE)
                    ));
                }
                // The run launched before load it could have seen, or scaled in within the
                // cooldown: the bound does not apply.
                None if r.whole_instance.is_some_and(|w| {
                    w.launches_outside > Some(0) || w.scale_ins_within_cooldown > Some(0)
                }) =>
                {
                    row.extend(["n/a".to_string(), "-".to_string()]);
                }
                // No fleet keeps this age within the budget.
                None => row.extend(["none".to_string(), "-".to_string()]),
            }
        }
        rows.push(row);
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|c| {
            rows.iter()
                .filter_map(|row| row.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for (i, row) in rows.iter().enumerate() {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(c, (cell, &w))| {
                let pad = " ".repeat(w.saturating_sub(cell.chars().count()));
                if c == 0 {
                    format!("{cell}{pad}")
                } else {
                    format!("{pad}{cell}")
                }
            })
            .collect();
        out.push_str(&cells.join("  "));
        out.push('\n');
        if i == 0 {
            let total = widths.iter().sum::<usize>() + 2 * (widths.len() - 1);
            out.push_str(&"-".repeat(total));
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests;
