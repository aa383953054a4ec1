//! The dead-man's switch under `ballast simulate --controller-down A..B`.
//!
//! Ballast's policy runs as in the plain simulation, except that inside the window it is down:
//! it neither evaluates nor publishes its heartbeat. Beside it runs a model of the scaling
//! policy's dead-man's switch as AWS runs it (`provision::kinds::scaling_policy`):
//!
//! - **Heartbeat**: each evaluation while Ballast is up publishes one; a metric period holds a
//!   heartbeat when some evaluation fell inside it.
//! - **Alarm**: evaluated once a minute on the datapoints published so far (each visible
//!   `metric_delay` after its period ends, as for every CloudWatch model of the simulator). A
//!   datapoint breaches when its period has no heartbeat and its backlog is above the threshold;
//!   the alarm is in ALARM while the last `heartbeatTimeout ÷ period` datapoints all breach. The
//!   backlog is the period's average visible count (the simulator keeps no per-period
//!   maximum; the real alarm reads `Maximum`, which breaches no later).
//! - **Step policy**: each minute the alarm is in ALARM (CloudWatch invokes Auto Scaling actions
//!   every minute of the state), desired = max(desired, in service + `addInstances`): instances
//!   still warming up count toward the desired capacity, not toward the base of the step, as
//!   AWS's step scaling does with its instance warm-up (warm-up = boot time here).
//! - **Recovery**: when Ballast is back it starts as a restarted controller does, with the last
//!   change of the desired capacity (the switch's included) as its last scaling action. The
//!   alarm leaves ALARM only when the heartbeat's datapoints are published, so the switch may
//!   act for a minute or two after Ballast is back; that is AWS's behaviour too, and it only
//!   ever raises capacity to what the backlog called for.
//!
//! Pure: plain data in, plain data out.

use std::collections::BTreeSet;
use std::str::FromStr;
use std::time::Duration;

use serde::Serialize;

use super::engine::{self, SimConfig, SimConfigError, SimResult};
use super::policies::{BallastPolicy, Observed, SimPolicy};
use super::trace::Trace;
use crate::autoscale::policy::{PolicyConfig, Timestamp};

/// When the controller is down: `[start, end)`, seconds from the start of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DownWindow {
    pub start_secs: u64,
    pub end_secs: u64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DownWindowError {
    #[error("`{input}` is not a window: write START..END, e.g. `30m..60m`")]
    Syntax { input: String },
    #[error(transparent)]
    Duration(#[from] ballast_blueprint::DurationError),
    #[error("the window `{input}` ends before it starts (or is empty)")]
    Empty { input: String },
}

impl FromStr for DownWindow {
    type Err = DownWindowError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let (start, end) = input
            .split_once("..")
            .ok_or_else(|| DownWindowError::Syntax {
                input: input.to_string(),
            })?;
        let start = ballast_blueprint::Duration::from_str(start.trim())?.as_secs();
        let end = ballast_blueprint::Duration::from_str(end.trim())?.as_secs();
        if end <= start {
            return Err(DownWindowError::Empty {
                input: input.to_string(),
            });
        }
        Ok(DownWindow {
            start_secs: start,
            end_secs: end,
        })
    }
}

impl DownWindow {
    fn contains(&self, t: u64) -> bool {
        (self.start_secs..self.end_secs).contains(&t)
    }
}

/// The switch as the blueprint declares it (`deadMansSwitch`), in the simulator's units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SwitchModel {
    /// Visible messages above which a period breaches.
    pub backlog_threshold: u64,
    /// How long the heartbeat must be missing.
    pub heartbeat_timeout_secs: u64,
    pub add_instances: u32,
}

impl SwitchModel {
    /// The switch a blueprint declares for a policy with this target backlog per instance.
    pub fn of(
        switch: &ballast_blueprint::DeadMansSwitch,
        target_backlog_per_instance: u32,
    ) -> Self {
        SwitchModel {
            backlog_threshold: u64::from(switch.backlog_threshold_for(target_backlog_per_instance)),
            heartbeat_timeout_secs: switch.heartbeat_timeout.as_secs(),
            add_instances: switch.add_instances,
        }
    }

    /// `deadMansSwitch: {}` for a policy with this target backlog per instance.
    pub fn defaults(target_backlog_per_instance: u32) -> Self {
        Self::of(
            &ballast_blueprint::DeadMansSwitch::default(),
            target_backlog_per_instance,
        )
    }
}

/// What the switch did in one run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SwitchActivity {
    /// When the alarm went into ALARM (seconds from the start).
    pub fired_at_secs: Vec<u64>,
    /// How many of those happened while the controller was up (the heartbeat exists so that
    /// this is 0).
    pub fired_while_up: u32,
    /// Raises of the desired capacity by the step policy.
    pub scale_outs: u32,
    /// Of those, while the controller was up again (the alarm's delay after recovery).
    pub scale_outs_while_up: u32,
}

/// Ballast's policy with the controller down for a window, with or without the switch.
#[derive(Debug, Clone)]
pub struct FailoverPolicy {
    name: String,
    inner: BallastPolicy,
    down: Option<DownWindow>,
    switch: Option<SwitchModel>,
    /// The group's maximum size.
    max: u32,
    period_secs: u64,
    /// Evaluation times while the controller was up.
    heartbeats: BTreeSet<u64>,
    in_alarm: bool,
    /// The last minute the alarm was evaluated in.
    evaluated_minute: Option<u64>,
    /// The last change of the desired capacity, by either.
    last_change: Timestamp,
    was_down: bool,
    activity: SwitchActivity,
}

impl FailoverPolicy {
    pub fn new(
        name: impl Into<String>,
        config: PolicyConfig,
        down: Option<DownWindow>,
        switch: Option<SwitchModel>,
        metric_period: Duration,
    ) -> Self {
        FailoverPolicy {
            name: name.into(),
            max: config.max,
            inner: BallastPolicy::new(config, BallastPolicy::DEFAULT_INTERVAL),
            down,
            switch,
            period_secs: metric_period.as_secs().max(1),
            heartbeats: BTreeSet::new(),
            in_alarm: false,
            evaluated_minute: None,
            last_change: Timestamp::ZERO,
            was_down: false,
            activity: SwitchActivity::default(),
        }
    }

    pub fn activity(&self) -> &SwitchActivity {
        &self.activity
    }

    fn is_up(&self, t: u64) -> bool {
        self.down.is_none_or(|w| !w.contains(t))
    }

    /// The alarm's state from the datapoints published by now.
    fn alarm_state(&self, switch: &SwitchModel, observed: &Observed<'_>) -> bool {
        let needed = usize::try_from(switch.heartbeat_timeout_secs.div_ceil(self.period_secs))
            .unwrap_or(usize::MAX)
            .max(1);
        let Some(first) = observed.datapoints.len().checked_sub(needed) else {
            return false;
        };
        observed.datapoints.get(first..).is_some_and(|recent| {
            recent.iter().all(|d| {
                let end = d.period_start_secs.saturating_add(self.period_secs);
                let heartbeat = self
                    .heartbeats
                    .range(d.period_start_secs..end)
                    .next()
                    .is_some();
                !heartbeat && d.visible_avg > switch.backlog_threshold as f64
            })
        })
    }

    /// The step policy's capacity while in ALARM (within the group's maximum, as Auto Scaling
    /// clamps it), if it raises the desired capacity.
    fn step(&self, switch: &SwitchModel, observed: &Observed<'_>) -> Option<u32> {
        let m = observed.metrics;
        let target = m
            .in_service
            .saturating_add(switch.add_instances)
            .min(self.max);
        (target > m.desired).then_some(target)
    }
}

impl SimPolicy for FailoverPolicy {
    fn name(&self) -> &str {
        &self.name
    }

    fn interval(&self) -> Duration {
        self.inner.interval()
    }

    fn decide(&mut self, now: Timestamp, observed: &Observed<'_>) -> Option<u32> {
        let t = now.as_secs();
        let up = self.is_up(t);
        let mut target = None;
        if up {
            if self.was_down {
                // A restarted controller: its last scaling action is the group's last change.
                self.inner.restart(self.last_change);
                self.was_down = false;
            }
            self.heartbeats.insert(t);
            target = self.inner.decide(now, observed);
        } else {
            self.was_down = true;
        }
        if let Some(switch) = self.switch {
            let minute = t / 60;
            if self.evaluated_minute != Some(minute) {
                self.evaluated_minute = Some(minute);
                let alarm = self.alarm_state(&switch, observed);
                if alarm && !self.in_alarm {
                    self.activity.fired_at_secs.push(t);
                    if up {
                        self.activity.fired_while_up =
                            self.activity.fired_while_up.saturating_add(1);
                    }
                }
                self.in_alarm = alarm;
                if alarm {
                    let base = target.unwrap_or(observed.metrics.desired);
                    if let Some(step) = self.step(&switch, observed).filter(|s| *s > base) {
                        target = Some(step);
                        self.activity.scale_outs = self.activity.scale_outs.saturating_add(1);
                        if up {
                            self.activity.scale_outs_while_up =
                                self.activity.scale_outs_while_up.saturating_add(1);
                        }
                    }
                }
            }
        }
        if target.is_some_and(|to| to != observed.metrics.desired) {
            self.last_change = now;
        }
        target
    }
}

/// One policy run with the controller down.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FailoverRun {
    pub result: SimResult,
    /// The oldest message's worst age inside the window.
    pub max_age_in_window_secs: u64,
    pub activity: SwitchActivity,
}

/// Ballast with the controller down for `window`, without and with the switch.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FailoverReport {
    pub window: DownWindow,
    pub switch: SwitchModel,
    pub without_switch: FailoverRun,
    pub with_switch: FailoverRun,
}

/// Simulates the outage twice over the same trace: Ballast alone, and Ballast with the switch.
pub fn simulate_failover(
    trace: &Trace,
    sim: &SimConfig,
    config: &PolicyConfig,
    window: DownWindow,
    switch: SwitchModel,
) -> Result<FailoverReport, SimConfigError> {
    sim.validate()?;
    let run = |name: String, with: Option<SwitchModel>| {
        let mut policy =
            FailoverPolicy::new(name, config.clone(), Some(window), with, sim.metric_period);
        let result = engine::simulate(trace, sim, &mut policy);
        let from = usize::try_from(window.start_secs).unwrap_or(usize::MAX);
        let to = usize::try_from(window.end_secs).unwrap_or(usize::MAX);
        let max_age_in_window_secs = result
            .ages
            .get(from.min(result.ages.len())..to.min(result.ages.len()))
            .and_then(|ages| ages.iter().copied().max())
            .unwrap_or(0);
        FailoverRun {
            result,
            max_age_in_window_secs,
            activity: policy.activity().clone(),
        }
    };
    let label = format!("{}s..{}s down", window.start_secs, window.end_secs);
    Ok(FailoverReport {
        window,
        switch,
        without_switch: run(format!("ballast, {label}"), None),
        with_switch: run(format!("ballast + switch, {label}"), Some(switch)),
    })
}

/// The failover section of the text report.
pub fn format_failover(report: &FailoverReport) -> String {
    let w = report.window;
    let s = report.switch;
    let mut out = format!(
        "controller down {}s..{}s; dead-man's switch: backlog > {} with no heartbeat for {} s, then in service + {} each minute\n",
        w.start_secs, w.end_secs, s.backlog_threshold, s.heartbeat_timeout_secs, s.add_instances
    );
    for run in [&report.without_switch, &report.with_switch] {
        let r = &run.result.report;
        out.push_str(&format!(
            "  {:<40} max age while down {:>5} s, max age {:>5} s, {:>4} min over the alarm age, {:>4} min over the depth alarm, {:.2} inst-h\n",
            r.policy,
            run.max_age_in_window_secs,
            r.max_oldest_age_secs,
            r.minutes_over_alarm,
            r.minutes_over_depth_alarm,
            r.instance_hours
        ));
    }
    let a = &report.with_switch.activity;
    let fired = match a.fired_at_secs.first() {
        Some(first) => format!(
            "the alarm fired at {first} s ({} s into the outage)",
            first.saturating_sub(w.start_secs)
        ),
        None => "the alarm never fired".to_string(),
    };
    out.push_str(&format!(
        "  {fired}; the switch scaled out {} time(s), {} after the controller was back (alarm delay); fired while the controller was up: {}\n",
        a.scale_outs, a.scale_outs_while_up, a.fired_while_up
    ));
    out
}
