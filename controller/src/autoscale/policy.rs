//! The Ballast scaling policy: a pure function from an observation of the
//! queue and the Auto Scaling group to a scaling decision.
//!
//! Nothing here performs I/O or reads a clock. The caller passes the current
//! time as a [`Timestamp`] (milliseconds since an arbitrary epoch), the
//! observation, and a [`PolicyState`] that carries the policy's memory from
//! one evaluation to the next (last scaling action, recent recommendations).
//! All decisions use integer arithmetic; there is no floating point.
//!
//! # Rules
//!
//! * `backlog per instance = visible ÷ in_service` (÷ 1 when nothing is in
//!   service). Only `ApproximateNumberOfMessages` (visible) drives the
//!   policy; in-flight and delayed messages are recorded but not used.
//! * `raw desired = clamp(ceil(visible ÷ target), min, max)`.
//! * Tolerance (Kubernetes HPA convention): with
//!   `ratio = visible ÷ (current × target)`, when `|ratio − 1| ≤ tolerance`
//!   the recommendation is the current capacity clamped into `[min, max]`,
//!   so the band never blocks raising to `min` or lowering to `max`.
//! * Scale-out happens at once (no cooldown), limited by
//!   `max_scale_out_step` if set.
//! * Scale-in happens only when `scale_in_cooldown` has elapsed since the
//!   last scaling action of either direction, and only down to the highest
//!   recommendation recorded inside `stabilization_window` (HPA scale-down
//!   stabilization), limited by `max_scale_in_step` if set.
//! * A capacity outside `[min, max]` is always corrected: raising to `min`
//!   ignores the step limit, lowering to `max` ignores cooldown and step.
//! * Missing metrics never scale in; they can still raise capacity to `min`.
//! * "current" is the group's desired capacity, not the in-service count,
//!   so instances that are still booting are not requested twice.
//!
//! Time and count arithmetic cannot overflow or divide by zero: the module
//! denies `clippy::arithmetic_side_effects`, so every such operation is
//! checked or saturating.
#![deny(clippy::arithmetic_side_effects)]

use std::fmt;
use std::time::Duration;

use serde::ser::SerializeStruct;
use serde::{Deserialize, Serialize, Serializer};

pub use ballast_runtime::Timestamp;

/// `300s`, or `1.500s` when there are milliseconds (a [`Timestamp`]'s rendering).
fn fmt_duration(d: Duration) -> String {
    Timestamp::from_millis(ballast_runtime::duration_millis(d)).to_string()
}

/// Which rule set decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// The seed's formula: `ceil(visible ÷ target)` (this module's rules).
    #[default]
    Backlog,
    /// Arrival and service rates, backlog, age and boot time
    /// ([`super::queueing`]).
    Queueing,
}

/// Tuning of the policy. [`PolicyConfig::default`] is the seed blueprint:
/// 2–10 instances, 100 messages per instance, 300 s scale-in cooldown,
/// 300 s stabilization window, 10 % tolerance, no step limits, `mode:
/// backlog` (the queueing settings: 5 messages/s per instance until
/// measured, 90 s boot, an objective of one boot time, the `QueueDepth`
/// alarm at 1,000).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PolicyConfig {
    /// Which rule set decides.
    pub mode: Mode,
    /// Queueing mode: the oldest message should be no older than this. A
    /// blueprint without `latencyObjective` gets its `bootTime` (see
    /// `ScalingPolicy::latency_objective_in_force`).
    pub latency_objective: Duration,
    /// Queueing mode: messages one instance processes per second, in
    /// milli-messages, until the fleet's own rate is measured.
    pub service_rate_milli: u64,
    /// Queueing mode: time from launch to InService.
    pub boot_time: Duration,
    /// Lowest desired capacity the policy ever asks for.
    pub min: u32,
    /// Highest desired capacity the policy ever asks for.
    pub max: u32,
    /// Target `ApproximateNumberOfMessages ÷ InService` (messages).
    pub target_backlog_per_instance: u32,
    /// Minimum time between the last scaling action (either direction) and
    /// a scale-in.
    pub scale_in_cooldown: Duration,
    /// Scale-in goes no lower than the highest recommendation made within
    /// this window (`None`: the mode's default, see
    /// [`PolicyConfig::stabilization_window`]).
    pub stabilization_window: Option<Duration>,
    /// Width of the no-change band around the target, in percent.
    pub tolerance_percent: u32,
    /// Most instances added by one evaluation (`None`: unlimited).
    pub max_scale_out_step: Option<u32>,
    /// Most instances removed by one evaluation (`None`: unlimited).
    pub max_scale_in_step: Option<u32>,
    /// Queueing mode: the lowest count of visible messages at which an alarm on the policy's
    /// queue fires (`None`: no such alarm). Spending the latency budget keeps the backlog
    /// below it.
    pub backlog_alarm: Option<u64>,
    /// Queueing mode: days of arrival history the seasonal prediction learns from
    /// (`None`: no prediction). The runner reads the history and passes the prediction in
    /// [`Reading::predicted_arrival_milli`].
    pub prediction_days: Option<u32>,
}

impl PolicyConfig {
    /// The seed platform's `QueueDepth` alarm: more than 1,000 visible messages.
    pub const SEED_QUEUE_DEPTH_ALARM: u64 = 1000;

    /// HPA's scale-down stabilization, `mode: backlog`'s default window.
    pub const BACKLOG_STABILIZATION_WINDOW: Duration = Duration::from_secs(300);

    /// The scale-in stabilization window in effect: the configured one, else
    /// the mode's default. `mode: backlog` keeps the HPA's 300 s. `mode:
    /// queueing` keeps idle capacity for one boot time: it scales out only on
    /// a projected breach and scales in with 10 % headroom, so a window is
    /// only a guard against a quick return of the load, and capacity released
    /// too early costs one boot time to bring back (the break-even of renting
    /// against buying). The scale-in cooldown still runs from the last action.
    pub fn stabilization_window(&self) -> Duration {
        self.stabilization_window.unwrap_or(match self.mode {
            Mode::Backlog => Self::BACKLOG_STABILIZATION_WINDOW,
            Mode::Queueing => self.boot_time,
        })
    }
}

impl Default for PolicyConfig {
    fn default() -> Self {
        let boot_time = Duration::from_secs(90);
        PolicyConfig {
            mode: Mode::Backlog,
            latency_objective: boot_time,
            service_rate_milli: 5000,
            boot_time,
            min: 2,
            max: 10,
            target_backlog_per_instance: 100,
            scale_in_cooldown: Duration::from_secs(300),
            stabilization_window: None,
            tolerance_percent: 10,
            max_scale_out_step: None,
            max_scale_in_step: None,
            prediction_days: None,
            backlog_alarm: Some(Self::SEED_QUEUE_DEPTH_ALARM),
        }
    }
}

/// Why a [`PolicyConfig`] is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyConfigError {
    #[error("min ({min}) is greater than max ({max})")]
    MinAboveMax { min: u32, max: u32 },
    #[error("max must be at least 1")]
    ZeroMax,
    #[error("target_backlog_per_instance must be at least 1")]
    ZeroTarget,
    #[error("tolerance_percent must be below 100, got {0}")]
    Tolerance(u32),
    #[error("{0} must be at least 1 when set")]
    ZeroStep(&'static str),
    #[error("latency_objective must be at least 1s")]
    ZeroObjective,
    #[error("service_rate must be above 0")]
    ZeroServiceRate,
}

impl PolicyConfig {
    /// Checks the configuration. [`evaluate`] never panics on a bad
    /// configuration, but its answers are only meaningful for a valid one.
    pub fn validate(&self) -> Result<(), PolicyConfigError> {
        if self.min > self.max {
            return Err(PolicyConfigError::MinAboveMax {
                min: self.min,
                max: self.max,
            });
        }
        if self.max == 0 {
            return Err(PolicyConfigError::ZeroMax);
        }
        if self.target_backlog_per_instance == 0 {
            return Err(PolicyConfigError::ZeroTarget);
        }
        if self.tolerance_percent >= 100 {
            return Err(PolicyConfigError::Tolerance(self.tolerance_percent));
        }
        if self.max_scale_out_step == Some(0) {
            return Err(PolicyConfigError::ZeroStep("max_scale_out_step"));
        }
        if self.max_scale_in_step == Some(0) {
            return Err(PolicyConfigError::ZeroStep("max_scale_in_step"));
        }
        if self.latency_objective < Duration::from_secs(1) {
            return Err(PolicyConfigError::ZeroObjective);
        }
        if self.service_rate_milli == 0 {
            return Err(PolicyConfigError::ZeroServiceRate);
        }
        Ok(())
    }

    /// `(min, max)` with `max` raised to `min` if misconfigured, so clamping
    /// never panics.
    fn bounds(&self) -> (u32, u32) {
        (self.min, self.max.max(self.min))
    }
}

/// One reading of the queue and the group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reading {
    /// `ApproximateNumberOfMessages` (visible).
    pub visible: u64,
    /// `ApproximateNumberOfMessagesNotVisible` (received, not yet deleted).
    pub in_flight: u64,
    /// `ApproximateNumberOfMessagesDelayed`.
    pub delayed: u64,
    /// Instances in the `InService` lifecycle state.
    pub in_service: u32,
    /// The group's current desired capacity ("current" for the policy).
    pub desired: u32,
    /// `ApproximateAgeOfOldestMessage`, when known.
    pub oldest_message_age: Option<Duration>,
    /// The queue's arrival rate λ measured from CloudWatch (`NumberOfMessagesSent`)
    /// and smoothed by the runner, milli-messages per second; `None` before the
    /// first datapoint. Only `mode: queueing` uses it.
    #[serde(default)]
    pub measured_arrival_milli: Option<u64>,
    /// The lower of CloudWatch's two newest published minutes of arrivals (consecutive
    /// minutes), milli-messages per second: a rate that has lasted two minutes, not one noisy
    /// minute. `None` until two are published. Only `mode: queueing` uses it, to scale out for
    /// an overload without waiting for the projected breach.
    #[serde(default)]
    pub measured_sustained_arrival_milli: Option<u64>,
    /// The highest of CloudWatch's published minutes of arrivals in the window while the load
    /// is steady (every minute within 10 % of the highest, at least three consecutive
    /// minutes), milli-messages per second; `None` while it rises or falls. Only `mode:
    /// queueing` uses it, to spend the latency budget only on a load that holds.
    #[serde(default)]
    pub measured_steady_arrival_milli: Option<u64>,
    /// The service rate per instance μ measured from the workers'
    /// `TransactionsProcessed` per worker-minute while the fleet was saturated, smoothed by
    /// the runner, milli-messages per second; `None` until measured (the policy then
    /// uses the configured rate). Only `mode: queueing` uses it.
    #[serde(default)]
    pub measured_service_milli: Option<u64>,
    /// The highest arrival rate the seasonal profile predicts over the next boot time
    /// (`prediction:` on the scaling policy, see [`super::seasonal`]), milli-messages per
    /// second; `None` without a prediction. Only `mode: queueing` uses it.
    #[serde(default)]
    pub predicted_arrival_milli: Option<u64>,
}

/// What the controller managed to observe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Observation {
    /// A complete reading.
    Ok(Reading),
    /// The metrics could not be read; whatever is known of the group.
    Missing {
        reason: String,
        current_desired: Option<u32>,
        in_service: Option<u32>,
    },
}

/// A recommendation remembered for scale-down stabilization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recommendation {
    pub at: Timestamp,
    pub desired: u32,
}

/// The policy's memory between evaluations. Plain data: persist it with
/// serde if the controller should keep it across restarts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyState {
    /// When the policy last changed the desired capacity.
    pub last_action: Option<Timestamp>,
    /// Recommendations made within the stabilization window, oldest first.
    pub recommendations: Vec<Recommendation>,
    /// `mode: queueing`'s measured rates and last reading.
    #[serde(default)]
    pub queueing: super::queueing::QueueingState,
}

impl PolicyState {
    /// A state with no history: the first evaluation may scale in at once.
    pub fn new() -> Self {
        Self::default()
    }

    /// A conservative state for a controller that starts at `now` without
    /// knowing when the group last scaled: `now` counts as the last scaling
    /// action, so no scale-in happens before one cooldown has passed.
    pub fn starting_at(now: Timestamp) -> Self {
        PolicyState {
            last_action: Some(now),
            ..PolicyState::default()
        }
    }

    fn prune(&mut self, now: Timestamp, window: Duration) {
        self.recommendations
            .retain(|r| now.saturating_duration_since(r.at) < window);
    }
}

/// The exact backlog per instance `visible ÷ divisor`, where the divisor is
/// the in-service count (1 when nothing is in service).
///
/// Displays and serializes its value rounded half-up to two decimals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BacklogPerInstance {
    pub visible: u64,
    pub divisor: u32,
}

impl BacklogPerInstance {
    /// `visible ÷ max(in_service, 1)`.
    pub fn new(visible: u64, in_service: u32) -> Self {
        BacklogPerInstance {
            visible,
            divisor: in_service.max(1),
        }
    }

    /// The value in hundredths, rounded half-up.
    pub fn hundredths(&self) -> u128 {
        // A u64 times 200 plus a u32 stays far below u128::MAX, so saturating never bites;
        // the divisor is at least 1 (`new`), and a hand-built 0 reads as 1.
        let den = u128::from(self.divisor.max(1));
        u128::from(self.visible)
            .saturating_mul(200)
            .saturating_add(den)
            .checked_div(den.saturating_mul(2))
            .unwrap_or(0)
    }
}

impl fmt::Display for BacklogPerInstance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h = self.hundredths();
        write!(f, "{}.{:02}", h / 100, h % 100)
    }
}

impl Serialize for BacklogPerInstance {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("BacklogPerInstance", 3)?;
        s.serialize_field("visible", &self.visible)?;
        s.serialize_field("divisor", &self.divisor)?;
        s.serialize_field("value", &self.to_string())?;
        s.end()
    }
}

/// What the policy wants done with the desired capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Action {
    ScaleOut { from: u32, to: u32 },
    ScaleIn { from: u32, to: u32 },
    NoChange,
}

/// The outcome of one evaluation, with its inputs and a human-readable
/// reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// When the evaluation happened.
    pub at: Timestamp,
    /// The observation the decision was made from.
    pub inputs: Observation,
    /// Exact backlog per instance (`None` when metrics were missing).
    pub backlog_per_instance: Option<BacklogPerInstance>,
    /// `clamp(ceil(visible ÷ target), min, max)`; for missing metrics the
    /// current capacity raised to `min` (0 when unknown).
    pub raw_desired: u32,
    /// The recommendation after the tolerance band (what is remembered for
    /// stabilization).
    pub recommendation: u32,
    /// The desired capacity after this decision (equals `current` for
    /// [`Action::NoChange`]).
    pub desired: u32,
    /// The group's desired capacity before the decision (0 when unknown).
    pub current: u32,
    /// What to do. Callers must act on this, not on `desired`.
    pub action: Action,
    /// Why, for logs and the CLI.
    pub reason: String,
}

impl Decision {
    /// The capacity to set, if the decision changes it.
    pub fn target(&self) -> Option<u32> {
        match self.action {
            Action::ScaleOut { to, .. } | Action::ScaleIn { to, .. } => Some(to),
            Action::NoChange => None,
        }
    }
}

/// Evaluates the policy once. Deterministic: the same configuration, state,
/// observation and time always give the same decision and the same new
/// state. `state` is updated in place (recommendation window, last action).
pub fn evaluate(
    config: &PolicyConfig,
    state: &mut PolicyState,
    observation: &Observation,
    now: Timestamp,
) -> Decision {
    state.prune(now, config.stabilization_window());
    match observation {
        Observation::Ok(reading) if config.mode == Mode::Queueing => {
            super::queueing::evaluate_queueing(config, state, observation, reading, now)
        }
        Observation::Ok(reading) => evaluate_backlog(config, state, observation, reading, now),
        Observation::Missing {
            reason,
            current_desired,
            ..
        } => evaluate_missing(config, state, observation, reason, *current_desired, now),
    }
}

fn evaluate_backlog(
    config: &PolicyConfig,
    state: &mut PolicyState,
    observation: &Observation,
    reading: &Reading,
    now: Timestamp,
) -> Decision {
    let (min, max) = config.bounds();
    let target = u64::from(config.target_backlog_per_instance.max(1));
    let current = reading.desired;
    let visible = reading.visible;
    let backlog = BacklogPerInstance::new(visible, reading.in_service);

    let needed = visible.div_ceil(target);
    let raw = clamp_u64(needed, min, max);
    let mut reason = format!(
        "backlog {backlog}/instance ({visible} visible / {} in service), target {target}: \
         need ceil({visible}/{target})={needed}",
        backlog.divisor
    );
    if u64::from(raw) != needed {
        reason.push_str(&format!(", clamped to [{min},{max}] = {raw}"));
    }

    let within = within_tolerance(visible, current, target, config.tolerance_percent);
    let recommendation = if within {
        let held = current.clamp(min, max);
        reason.push_str(&format!(
            "; ratio {visible}/({current}*{target}) within {}% tolerance: recommend {held}",
            config.tolerance_percent
        ));
        held
    } else {
        raw
    };
    state.recommendations.push(Recommendation {
        at: now,
        desired: recommendation,
    });

    let (action, desired) = 'decide: {
        if recommendation > current {
            let mut to = recommendation;
            if let Some(step) = config.max_scale_out_step {
                let limited = current.saturating_add(step.max(1)).max(min);
                if limited < to {
                    reason.push_str(&format!("; scale-out step limited to +{step}"));
                    to = limited;
                }
            }
            reason.push_str(&format!("; scale out {current} -> {to}"));
            break 'decide (Action::ScaleOut { from: current, to }, to);
        }
        if recommendation == current {
            reason.push_str(&format!("; stay at {current}"));
            break 'decide (Action::NoChange, current);
        }

        // Scale-in: never below the highest recommendation in the window.
        let stabilized = state
            .recommendations
            .iter()
            .map(|r| r.desired)
            .max()
            .unwrap_or(recommendation);
        if stabilized >= current {
            reason.push_str(&format!(
                "; scale-in to {recommendation} held by stabilization: highest recommendation \
                 in the last {} is {stabilized}",
                fmt_duration(config.stabilization_window())
            ));
            break 'decide (Action::NoChange, current);
        }
        if stabilized > recommendation {
            reason.push_str(&format!(
                "; stabilized to {stabilized} (highest recommendation in the last {})",
                fmt_duration(config.stabilization_window())
            ));
        }

        let since_last = state
            .last_action
            .map(|at| now.saturating_duration_since(at));
        if let Some(elapsed) = since_last.filter(|e| *e < config.scale_in_cooldown) {
            if current > max {
                reason.push_str(&format!(
                    "; current {current} above max {max}: lowered to {max} despite cooldown \
                     ({} since last action)",
                    fmt_duration(elapsed)
                ));
                break 'decide (
                    Action::ScaleIn {
                        from: current,
                        to: max,
                    },
                    max,
                );
            }
            reason.push_str(&format!(
                "; scale-in to {stabilized} held: cooldown {}, {} since last action",
                fmt_duration(config.scale_in_cooldown),
                fmt_duration(elapsed)
            ));
            break 'decide (Action::NoChange, current);
        }

        let mut to = stabilized;
        if let Some(step) = config.max_scale_in_step {
            let limited = current.saturating_sub(step.max(1)).min(max);
            if limited > to {
                reason.push_str(&format!("; scale-in step limited to -{step}"));
                to = limited;
            }
        }
        match since_last {
            Some(elapsed) => reason.push_str(&format!(
                "; cooldown {} elapsed ({} since last action)",
                fmt_duration(config.scale_in_cooldown),
                fmt_duration(elapsed)
            )),
            None => reason.push_str("; no previous scaling action"),
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
        backlog_per_instance: Some(backlog),
        raw_desired: raw,
        recommendation,
        desired,
        current,
        action,
        reason,
    }
}

fn evaluate_missing(
    config: &PolicyConfig,
    state: &mut PolicyState,
    observation: &Observation,
    why: &str,
    current: Option<u32>,
    now: Timestamp,
) -> Decision {
    let (min, _) = config.bounds();
    let (current, raw, action, reason) = match current {
        Some(current) if current < min => {
            state.last_action = Some(now);
            (
                current,
                min,
                Action::ScaleOut {
                    from: current,
                    to: min,
                },
                format!("metrics missing ({why}); desired {current} below min: raise to {min}"),
            )
        }
        Some(current) => (
            current,
            current,
            Action::NoChange,
            format!(
                "metrics missing ({why}); holding at {current} (missing metrics never scale in)"
            ),
        ),
        None => (
            0,
            0,
            Action::NoChange,
            format!("metrics missing ({why}) and desired capacity unknown; no change"),
        ),
    };
    let desired = match action {
        Action::ScaleOut { to, .. } | Action::ScaleIn { to, .. } => to,
        Action::NoChange => current,
    };
    Decision {
        at: now,
        inputs: observation.clone(),
        backlog_per_instance: None,
        raw_desired: raw,
        recommendation: raw,
        desired,
        current,
        action,
        reason,
    }
}

fn clamp_u64(value: u64, min: u32, max: u32) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX).clamp(min, max)
}

/// `|visible ÷ (current × target) − 1| ≤ tolerance_percent ÷ 100`, exactly.
/// Never true for `current == 0` (the ratio is undefined).
fn within_tolerance(visible: u64, current: u32, target: u64, tolerance_percent: u32) -> bool {
    if current == 0 {
        return false;
    }
    // Products of u64/u32 values and 100 fit in u128: saturating never bites.
    let capacity = u128::from(current).saturating_mul(u128::from(target));
    let lhs = u128::from(visible)
        .saturating_mul(100)
        .abs_diff(capacity.saturating_mul(100));
    lhs <= u128::from(tolerance_percent).saturating_mul(capacity)
}

#[cfg(test)]
#[allow(
    clippy::arithmetic_side_effects,
    reason = "tests: the checks apply to the policy, the tests compute expected values"
)]
mod tests {
    use super::*;

    fn metrics(visible: u64, in_service: u32, desired: u32) -> Observation {
        Observation::Ok(Reading {
            visible,
            in_flight: 0,
            delayed: 0,
            in_service,
            desired,
            oldest_message_age: Some(Duration::from_secs(5)),
            measured_arrival_milli: None,
            measured_sustained_arrival_milli: None,
            measured_steady_arrival_milli: None,
            measured_service_milli: None,
            predicted_arrival_milli: None,
        })
    }

    fn secs(s: u64) -> Timestamp {
        Timestamp::from_secs(s)
    }

    fn seed() -> PolicyConfig {
        PolicyConfig::default()
    }

    #[test]
    fn default_config_is_the_seed_and_valid() {
        let c = seed();
        assert_eq!((c.min, c.max, c.target_backlog_per_instance), (2, 10, 100));
        assert_eq!(c.scale_in_cooldown, Duration::from_secs(300));
        assert_eq!(c.tolerance_percent, 10);
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn validate_rejects_bad_configs() {
        let mut c = seed();
        c.min = 11;
        assert!(matches!(
            c.validate(),
            Err(PolicyConfigError::MinAboveMax { .. })
        ));
        let mut c = seed();
        c.target_backlog_per_instance = 0;
        assert_eq!(c.validate(), Err(PolicyConfigError::ZeroTarget));
        let mut c = seed();
        c.max_scale_in_step = Some(0);
        assert!(c.validate().is_err());
        let mut c = seed();
        c.tolerance_percent = 100;
        assert!(c.validate().is_err());
    }

    #[test]
    fn seed_50_messages_with_2_instances_stays_at_2() {
        let mut state = PolicyState::new();
        let d = evaluate(&seed(), &mut state, &metrics(50, 2, 2), secs(0));
        assert_eq!(d.action, Action::NoChange);
        assert_eq!((d.raw_desired, d.desired, d.current), (2, 2, 2));
        assert_eq!(d.backlog_per_instance.unwrap().to_string(), "25.00");
        assert_eq!(state.last_action, None);
    }

    #[test]
    fn seed_500_messages_with_2_instances_scales_to_5() {
        let mut state = PolicyState::new();
        let d = evaluate(&seed(), &mut state, &metrics(500, 2, 2), secs(10));
        assert_eq!(d.action, Action::ScaleOut { from: 2, to: 5 });
        assert_eq!(d.desired, 5);
        assert!(
            d.reason
                .contains("backlog 250.00/instance (500 visible / 2 in service), target 100"),
            "{}",
            d.reason
        );
        assert!(d.reason.contains("need ceil(500/100)=5"), "{}", d.reason);
        assert_eq!(state.last_action, Some(secs(10)));
    }

    #[test]
    fn seed_2000_messages_with_5_instances_scales_to_max_10() {
        let mut state = PolicyState::new();
        let d = evaluate(&seed(), &mut state, &metrics(2000, 5, 5), secs(0));
        assert_eq!(d.action, Action::ScaleOut { from: 5, to: 10 });
        assert_eq!(d.raw_desired, 10);
        assert!(
            d.reason
                .contains("need ceil(2000/100)=20, clamped to [2,10] = 10")
        );
    }

    #[test]
    fn seed_10_messages_with_5_instances_scales_to_2_only_after_cooldown() {
        let config = seed();
        let mut state = PolicyState::new();
        // The scale-out to 5 is the last scaling action, at t=0.
        let d = evaluate(&config, &mut state, &metrics(500, 2, 2), secs(0));
        assert_eq!(d.action, Action::ScaleOut { from: 2, to: 5 });

        let d = evaluate(&config, &mut state, &metrics(10, 5, 5), secs(120));
        assert_eq!(d.action, Action::NoChange);
        assert_eq!(d.raw_desired, 2);
        let d = evaluate(&config, &mut state, &metrics(10, 5, 5), secs(299));
        assert_eq!(d.action, Action::NoChange);
        assert_eq!(d.desired, 5);
        let d = evaluate(&config, &mut state, &metrics(10, 5, 5), secs(300));
        assert_eq!(d.action, Action::ScaleIn { from: 5, to: 2 }, "{}", d.reason);
        assert!(
            d.reason
                .contains("cooldown 300s elapsed (300s since last action)")
        );
        assert_eq!(state.last_action, Some(secs(300)));
    }

    #[test]
    fn cooldown_boundary_299_held_300_allowed() {
        // No stabilization window, so only the cooldown can hold the scale-in.
        let config = PolicyConfig {
            stabilization_window: Some(Duration::ZERO),
            ..seed()
        };
        let state = PolicyState::starting_at(secs(1000));

        let mut s = state.clone();
        let d = evaluate(&config, &mut s, &metrics(10, 5, 5), secs(1299));
        assert_eq!(d.action, Action::NoChange);
        assert!(
            d.reason
                .contains("scale-in to 2 held: cooldown 300s, 299s since last action"),
            "{}",
            d.reason
        );
        assert_eq!(s.last_action, Some(secs(1000)));

        let mut s = state.clone();
        let d = evaluate(
            &config,
            &mut s,
            &metrics(10, 5, 5),
            Timestamp::from_millis(1_299_999),
        );
        assert_eq!(d.action, Action::NoChange);
        assert!(
            d.reason.contains("299.999s since last action"),
            "{}",
            d.reason
        );

        let mut s = state;
        let d = evaluate(&config, &mut s, &metrics(10, 5, 5), secs(1300));
        assert_eq!(d.action, Action::ScaleIn { from: 5, to: 2 });
    }

    #[test]
    fn scale_out_ignores_cooldown() {
        let mut state = PolicyState::starting_at(secs(0));
        let d = evaluate(&seed(), &mut state, &metrics(700, 5, 5), secs(1));
        assert_eq!(d.action, Action::ScaleOut { from: 5, to: 7 });
    }

    #[test]
    fn tolerance_band_holds_small_deviations() {
        let mut state = PolicyState::new();
        // 540 / (5*100) = 1.08: inside 10 %.
        let d = evaluate(&seed(), &mut state, &metrics(540, 5, 5), secs(0));
        assert_eq!(d.action, Action::NoChange);
        assert_eq!(d.raw_desired, 6);
        assert_eq!(d.recommendation, 5);
        assert!(d.reason.contains("within 10% tolerance"));
        // Exactly 1.10 is still inside.
        let d = evaluate(&seed(), &mut state, &metrics(550, 5, 5), secs(1));
        assert_eq!(d.action, Action::NoChange);
        // 1.12 is outside.
        let d = evaluate(&seed(), &mut state, &metrics(560, 5, 5), secs(2));
        assert_eq!(d.action, Action::ScaleOut { from: 5, to: 6 });
    }

    #[test]
    fn tolerance_does_not_block_raising_to_min() {
        let mut state = PolicyState::new();
        // 100 / (1*100) = 1.0: inside the band, but 1 < min.
        let d = evaluate(&seed(), &mut state, &metrics(100, 1, 1), secs(0));
        assert_eq!(d.action, Action::ScaleOut { from: 1, to: 2 });
        let d = evaluate(&seed(), &mut state, &metrics(0, 0, 0), secs(1));
        assert_eq!(d.action, Action::ScaleOut { from: 0, to: 2 });
    }

    #[test]
    fn tolerance_and_cooldown_do_not_block_lowering_to_max() {
        let mut state = PolicyState::starting_at(secs(0));
        // 1200 / (12*100) = 1.0: inside the band, and in cooldown, but 12 > max.
        let d = evaluate(&seed(), &mut state, &metrics(1200, 12, 12), secs(10));
        assert_eq!(
            d.action,
            Action::ScaleIn { from: 12, to: 10 },
            "{}",
            d.reason
        );
        // Far below target while cooling down: only the bound is enforced.
        let mut state = PolicyState::starting_at(secs(0));
        let d = evaluate(&seed(), &mut state, &metrics(0, 12, 12), secs(10));
        assert_eq!(d.action, Action::ScaleIn { from: 12, to: 10 });
        assert!(d.reason.contains("above max 10"));
    }

    #[test]
    fn stabilization_window_uses_highest_recent_recommendation() {
        let config = PolicyConfig {
            scale_in_cooldown: Duration::ZERO,
            ..seed()
        };
        let mut state = PolicyState::new();
        let d = evaluate(&config, &mut state, &metrics(800, 8, 8), secs(0));
        assert_eq!(d.action, Action::NoChange);
        let d = evaluate(&config, &mut state, &metrics(300, 8, 8), secs(100));
        assert_eq!(d.action, Action::NoChange);
        assert!(d.reason.contains("held by stabilization"), "{}", d.reason);
        let d = evaluate(&config, &mut state, &metrics(500, 8, 8), secs(250));
        assert_eq!(d.action, Action::NoChange);
        // At 300 s the recommendation of 8 (t=0) leaves the window; the
        // highest left is 5 (t=250).
        let d = evaluate(&config, &mut state, &metrics(100, 8, 8), secs(300));
        assert_eq!(d.action, Action::ScaleIn { from: 8, to: 5 }, "{}", d.reason);
        assert!(d.reason.contains("stabilized to 5"));
        assert_eq!(
            state
                .recommendations
                .iter()
                .map(|r| r.desired)
                .collect::<Vec<_>>(),
            vec![3, 5, 2]
        );
    }

    #[test]
    fn step_limits_apply_in_both_directions() {
        let config = PolicyConfig {
            max_scale_out_step: Some(2),
            max_scale_in_step: Some(1),
            ..seed()
        };
        let mut state = PolicyState::new();
        let d = evaluate(&config, &mut state, &metrics(1000, 2, 2), secs(0));
        assert_eq!(d.action, Action::ScaleOut { from: 2, to: 4 });
        assert!(d.reason.contains("step limited to +2"));

        let mut state = PolicyState::new();
        let d = evaluate(&config, &mut state, &metrics(0, 8, 8), secs(0));
        assert_eq!(d.action, Action::ScaleIn { from: 8, to: 7 });

        // The step never prevents reaching min.
        let mut state = PolicyState::new();
        let config = PolicyConfig {
            max_scale_out_step: Some(1),
            ..seed()
        };
        let d = evaluate(&config, &mut state, &metrics(0, 0, 0), secs(0));
        assert_eq!(d.action, Action::ScaleOut { from: 0, to: 2 });
    }

    #[test]
    fn missing_metrics_never_scale_in() {
        let mut state = PolicyState::new();
        let obs = Observation::Missing {
            reason: "GetQueueAttributes timed out".into(),
            current_desired: Some(8),
            in_service: Some(8),
        };
        let d = evaluate(&seed(), &mut state, &obs, secs(1000));
        assert_eq!(d.action, Action::NoChange);
        assert_eq!(d.desired, 8);
        assert!(d.reason.contains("never scale in"));
        assert!(state.recommendations.is_empty());
        assert_eq!(d.target(), None);
    }

    #[test]
    fn missing_metrics_can_raise_to_min() {
        let mut state = PolicyState::new();
        let obs = Observation::Missing {
            reason: "throttled".into(),
            current_desired: Some(1),
            in_service: None,
        };
        let d = evaluate(&seed(), &mut state, &obs, secs(5));
        assert_eq!(d.action, Action::ScaleOut { from: 1, to: 2 });
        assert_eq!(d.target(), Some(2));
        assert_eq!(state.last_action, Some(secs(5)));

        let obs = Observation::Missing {
            reason: "everything down".into(),
            current_desired: None,
            in_service: None,
        };
        let d = evaluate(&seed(), &mut state, &obs, secs(6));
        assert_eq!(d.action, Action::NoChange);
        assert_eq!(d.target(), None);
    }

    #[test]
    fn zero_in_service_divides_by_one() {
        let mut state = PolicyState::new();
        let d = evaluate(&seed(), &mut state, &metrics(300, 0, 3), secs(0));
        let b = d.backlog_per_instance.unwrap();
        assert_eq!((b.divisor, b.to_string()), (1, "300.00".to_string()));
        // current = desired (3): booting instances are not requested again.
        assert_eq!(d.action, Action::NoChange);
    }

    #[test]
    fn backlog_display_rounds_half_up() {
        assert_eq!(BacklogPerInstance::new(10, 3).to_string(), "3.33");
        assert_eq!(BacklogPerInstance::new(20, 3).to_string(), "6.67");
        assert_eq!(BacklogPerInstance::new(1, 8).to_string(), "0.13");
        assert_eq!(BacklogPerInstance::new(0, 0).to_string(), "0.00");
        assert_eq!(
            BacklogPerInstance::new(u64::MAX, 1).to_string(),
            format!("{}.00", u64::MAX)
        );
    }

    #[test]
    fn evaluation_is_deterministic_and_serializable() {
        let run = || {
            let mut state = PolicyState::starting_at(secs(0));
            let mut out = Vec::new();
            for (t, v, d) in [(0, 500, 2), (10, 700, 5), (400, 20, 7), (800, 20, 2)] {
                let decision = evaluate(&seed(), &mut state, &metrics(v, d, d), secs(t));
                out.push(serde_json::to_string(&decision).unwrap());
            }
            (out, serde_json::to_string(&state).unwrap())
        };
        let first = run();
        assert_eq!(first, run());
        assert!(
            first.0[0].contains("\"type\":\"scale_out\""),
            "{}",
            first.0[0]
        );
        assert!(first.0[0].contains("\"value\":\"250.00\""));
    }

    #[test]
    fn timestamp_arithmetic() {
        let t = Timestamp::from_secs(10) + Duration::from_millis(1500);
        assert_eq!(t.as_millis(), 11_500);
        assert_eq!(t.as_secs(), 11);
        assert_eq!(t.to_string(), "11.500s");
        assert_eq!(
            Timestamp::from_secs(1).saturating_duration_since(t),
            Duration::ZERO
        );
    }
}
