//! The policies the simulator compares. All implement [`SimPolicy`] and are
//! driven by the same loop in [`super::engine`].

use std::time::Duration;

use serde::Serialize;

use crate::autoscale::measured::{MeasuredRates, RateMinute, RateWindow};
use crate::autoscale::policy::{
    self, Mode, Observation, PolicyConfig, PolicyState, Reading, Timestamp,
};
use crate::autoscale::reading::{RATE_SETTLE, RATE_WINDOW};
use crate::autoscale::seasonal::SeasonalProfile;

/// One metric period of CloudWatch, as policies see it after the delay: the
/// `BacklogPerInstance` metric math expression `m1 / m2`, where `m1` is the
/// average of `ApproximateNumberOfMessagesVisible` and `m2` the average of
/// `GroupInServiceInstances` (0 treated as 1) over the period, and the metrics
/// `ballast run` reads for the measured rates ([`crate::autoscale::reading::read_rates`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Datapoint {
    /// Start of the period (seconds since the start of the run).
    pub period_start_secs: u64,
    /// Length of the period (CloudWatch's one minute by default).
    pub period_secs: u64,
    /// First second at which the datapoint is visible to alarms.
    pub available_at_secs: u64,
    pub visible_avg: f64,
    pub in_service_avg: f64,
    pub backlog_per_instance: f64,
    /// `NumberOfMessagesSent`: messages that arrived in the period.
    pub sent: u64,
    /// The workers' `TransactionsProcessed`, summed.
    pub processed: u64,
    /// The workers' reports (`SampleCount`): one a minute per worker in service.
    pub worker_minutes: u64,
    /// `ApproximateNumberOfMessagesVisible` as SQS samples it, at the period's end.
    pub visible_at_end: u64,
}

impl Datapoint {
    /// The period as [`RateWindow`] has it (its index stands in for the minute).
    fn rate_minute(&self) -> RateMinute {
        RateMinute {
            minute: self.period_start_secs / self.period_secs.max(1),
            sent: Some(self.sent),
            processed: Some(self.processed),
            reports: Some(self.worker_minutes),
            visible: Some(self.visible_at_end),
        }
    }
}

/// What a policy sees when it is asked to decide.
#[derive(Debug, Clone, Copy)]
pub struct Observed<'a> {
    /// Instantaneous `GetQueueAttributes` + `DescribeAutoScalingGroups` view
    /// at the end of the current second.
    pub metrics: &'a Reading,
    /// CloudWatch datapoints published so far (oldest first).
    pub datapoints: &'a [Datapoint],
}

/// A scaling policy under simulation.
pub trait SimPolicy {
    /// Short name used in tables and plots.
    fn name(&self) -> &str;
    /// How often [`SimPolicy::decide`] is called (rounded to whole seconds,
    /// at least 1 s). Calls happen at t = 0, interval, 2 × interval, …
    fn interval(&self) -> Duration;
    /// Returns the new desired capacity, or `None` to leave it alone.
    fn decide(&mut self, now: Timestamp, observed: &Observed<'_>) -> Option<u32>;
}

/// The Ballast policy: [`crate::autoscale::policy::evaluate`] itself.
#[derive(Debug, Clone)]
pub struct BallastPolicy {
    name: &'static str,
    config: PolicyConfig,
    state: PolicyState,
    interval: Duration,
    /// `prediction:`: the seasonal profile learned from earlier periods.
    prediction: Option<SeasonalProfile>,
    /// λ and μ from the published datapoints, as the runner measures them.
    measured: MeasuredRates,
}

impl BallastPolicy {
    /// Default evaluation interval of the controller.
    pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);

    /// Wraps the policy. The state starts conservatively
    /// ([`PolicyState::starting_at`] the start of the run), as a freshly
    /// started controller does.
    pub fn new(config: PolicyConfig, interval: Duration) -> Self {
        BallastPolicy {
            name: match config.mode {
                Mode::Backlog => "ballast",
                Mode::Queueing => "queueing",
            },
            config,
            state: PolicyState::starting_at(Timestamp::ZERO),
            interval,
            prediction: None,
            measured: MeasuredRates::new(),
        }
    }

    /// The policy with a seasonal prediction (`mode: queueing` uses it): at each
    /// evaluation the reading carries the profile's highest rate over the next boot time.
    pub fn with_prediction(mut self, profile: SeasonalProfile) -> Self {
        self.name = "queueing+prediction";
        self.prediction = Some(profile);
        self
    }
}

impl BallastPolicy {
    /// Starts the policy's memory again as a restarted controller does: `last_action` (the
    /// group's last scaling activity) is its last scaling action.
    pub fn restart(&mut self, last_action: Timestamp) {
        self.state = PolicyState::starting_at(last_action);
    }
}

impl SimPolicy for BallastPolicy {
    /// `ballast` in `mode: backlog`, `queueing` in `mode: queueing`.
    fn name(&self) -> &str {
        self.name
    }

    fn interval(&self) -> Duration {
        self.interval
    }

    fn decide(&mut self, now: Timestamp, observed: &Observed<'_>) -> Option<u32> {
        let mut reading = observed.metrics.clone();
        // What `ballast run` reads each evaluation: the published datapoints of the last
        // RATE_WINDOW (CloudWatch's delay included) that closed RATE_SETTLE ago, folded into the
        // same smoothing.
        let from = now.as_secs().saturating_sub(RATE_WINDOW.as_secs());
        let window = RateWindow {
            minutes: observed
                .datapoints
                .iter()
                .filter(|d| {
                    let settled = d
                        .period_start_secs
                        .saturating_add(d.period_secs)
                        .saturating_add(RATE_SETTLE.as_secs());
                    d.period_start_secs >= from && settled <= now.as_secs()
                })
                .map(Datapoint::rate_minute)
                .collect(),
        };
        self.measured.update(&window, now);
        reading.measured_arrival_milli = self.measured.arrival_milli();
        reading.measured_sustained_arrival_milli = self.measured.sustained_arrival_milli();
        reading.measured_steady_arrival_milli = self.measured.steady_arrival_milli();
        reading.measured_service_milli = self.measured.service_milli();
        if let Some(profile) = &self.prediction {
            let from = now.as_secs();
            reading.predicted_arrival_milli =
                profile.predict_max(from, from.saturating_add(self.config.boot_time.as_secs()));
        }
        let observation = Observation::Ok(reading);
        policy::evaluate(&self.config, &mut self.state, &observation, now).target()
    }
}

/// Settings of the AWS target-tracking model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TargetTrackingConfig {
    pub min: u32,
    pub max: u32,
    /// Target value of `BacklogPerInstance`.
    pub target: f64,
    /// Consecutive datapoints above the target that trigger a scale-out.
    pub high_datapoints: usize,
    /// Consecutive datapoints below `target × low_threshold_ratio` that
    /// trigger a scale-in.
    pub low_datapoints: usize,
    pub low_threshold_ratio: f64,
    /// Minimum time between scale-ins.
    pub scale_in_cooldown: Duration,
}

impl TargetTrackingConfig {
    /// AWS defaults around a Ballast policy configuration.
    pub fn from_policy(config: &PolicyConfig) -> Self {
        TargetTrackingConfig {
            min: config.min,
            max: config.max,
            target: f64::from(config.target_backlog_per_instance.max(1)),
            high_datapoints: 3,
            low_datapoints: 15,
            low_threshold_ratio: 0.9,
            scale_in_cooldown: Duration::from_secs(300),
        }
    }
}

/// A model of an EC2 Auto Scaling target-tracking policy on the custom
/// `BacklogPerInstance` metric (see the module documentation of
/// [`crate::simulate`] for the assumptions).
#[derive(Debug, Clone)]
pub struct TargetTrackingPolicy {
    config: TargetTrackingConfig,
    seen: usize,
    high_streak: usize,
    low_streak: usize,
    last_scale_in: Option<Timestamp>,
}

impl TargetTrackingPolicy {
    pub fn new(config: TargetTrackingConfig) -> Self {
        TargetTrackingPolicy {
            config,
            seen: 0,
            high_streak: 0,
            low_streak: 0,
            last_scale_in: None,
        }
    }
}

impl SimPolicy for TargetTrackingPolicy {
    fn name(&self) -> &str {
        "target-tracking"
    }

    /// Alarms are evaluated once a minute; the policy is polled every
    /// second so it reacts the second a datapoint becomes available.
    fn interval(&self) -> Duration {
        Duration::from_secs(1)
    }

    fn decide(&mut self, now: Timestamp, observed: &Observed<'_>) -> Option<u32> {
        let fresh = observed.datapoints.get(self.seen..).unwrap_or_default();
        if fresh.is_empty() {
            return None;
        }
        self.seen = observed.datapoints.len();
        let c = &self.config;
        for dp in fresh {
            if dp.backlog_per_instance > c.target {
                self.high_streak += 1;
            } else {
                self.high_streak = 0;
            }
            if dp.backlog_per_instance < c.target * c.low_threshold_ratio {
                self.low_streak += 1;
            } else {
                self.low_streak = 0;
            }
        }
        let latest = fresh.last()?;
        let current = observed.metrics.desired;
        // new capacity = ceil(in-service capacity × metric ÷ target); warming
        // instances are excluded from the metric and from the capacity.
        let basis = latest.in_service_avg.max(1.0);
        let proposed = (basis * latest.backlog_per_instance / c.target).ceil();
        let proposed = clamp_f64(proposed, c.min, c.max);

        if self.high_streak >= c.high_datapoints && proposed > current {
            return Some(proposed);
        }
        if self.low_streak >= c.low_datapoints && proposed < current {
            let cooled = self
                .last_scale_in
                .is_none_or(|t| now.saturating_duration_since(t) >= c.scale_in_cooldown);
            if cooled {
                self.last_scale_in = Some(now);
                return Some(proposed);
            }
        }
        if current < c.min || current > c.max {
            return Some(current.clamp(c.min, c.max.max(c.min)));
        }
        None
    }
}

/// Settings of the Kubernetes HPA model (an external `AverageValue`
/// metric on the queue), and of KEDA's `aws-sqs-queue` scaler around it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HpaConfig {
    pub min: u32,
    pub max: u32,
    /// `targetAverageValue` (KEDA's `queueLength`): messages per replica.
    pub target: u32,
    pub tolerance_percent: u32,
    /// The HPA controller's `--horizontal-pod-autoscaler-sync-period`.
    pub sync_period: Duration,
    pub scale_down_stabilization: Duration,
    /// The metric counts in-flight messages too (KEDA's `scaleOnInFlight`).
    pub count_in_flight: bool,
}

impl HpaConfig {
    /// HPA defaults around a Ballast policy configuration, counting only
    /// visible messages.
    pub fn from_policy(config: &PolicyConfig) -> Self {
        HpaConfig {
            min: config.min,
            max: config.max,
            target: config.target_backlog_per_instance.max(1),
            tolerance_percent: 10,
            sync_period: Duration::from_secs(15),
            scale_down_stabilization: Duration::from_secs(300),
            count_in_flight: false,
        }
    }
}

/// A model of the Kubernetes Horizontal Pod Autoscaler with an external
/// `AverageValue` metric.
#[derive(Debug, Clone)]
pub struct HpaPolicy {
    config: HpaConfig,
    recommendations: Vec<(Timestamp, u32)>,
}

impl HpaPolicy {
    pub fn new(config: HpaConfig) -> Self {
        HpaPolicy {
            config,
            recommendations: Vec::new(),
        }
    }

    /// The metric the HPA reads: visible (+ in flight when configured).
    fn metric(&self, metrics: &Reading) -> u64 {
        if self.config.count_in_flight {
            metrics.visible.saturating_add(metrics.in_flight)
        } else {
            metrics.visible
        }
    }

    /// One HPA sync: the new replica count, or `None` to keep it.
    fn sync(&mut self, now: Timestamp, metric: u64, current: u32) -> Option<u32> {
        let c = &self.config;
        let (min, max) = (c.min, c.max.max(c.min));
        let target = u64::from(c.target);
        // usageRatio = (metric / current) / target; skip within tolerance.
        let capacity = u128::from(current) * u128::from(target);
        let within = current > 0
            && (u128::from(metric) * 100).abs_diff(capacity * 100)
                <= u128::from(c.tolerance_percent) * capacity;
        let raw = if within {
            current
        } else {
            u32::try_from(metric.div_ceil(target)).unwrap_or(u32::MAX)
        };
        let mut recommendation = raw.clamp(min, max);

        // Default scale-up behaviour: at most max(+100 %, +4 pods) per period.
        let up_limit = current.saturating_mul(2).max(current.saturating_add(4));
        recommendation = recommendation.min(up_limit.max(min));

        // Scale-down stabilization: the highest recommendation in the window.
        let window = c.scale_down_stabilization;
        self.recommendations
            .retain(|(at, _)| now.saturating_duration_since(*at) < window);
        self.recommendations.push((now, recommendation));
        let stabilized = if recommendation < current {
            self.recommendations
                .iter()
                .map(|r| r.1)
                .max()
                .unwrap_or(recommendation)
                .min(current.max(min).min(max))
        } else {
            recommendation
        };
        (stabilized != current).then_some(stabilized)
    }
}

impl SimPolicy for HpaPolicy {
    fn name(&self) -> &str {
        "hpa"
    }

    fn interval(&self) -> Duration {
        self.config.sync_period
    }

    fn decide(&mut self, now: Timestamp, observed: &Observed<'_>) -> Option<u32> {
        let metric = self.metric(observed.metrics);
        self.sync(now, metric, observed.metrics.desired)
    }
}

/// Settings of the KEDA model: KEDA's defaults for an `aws-sqs-queue`
/// trigger on a ScaledObject.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KedaConfig {
    /// The HPA KEDA creates (in-flight messages counted: `scaleOnInFlight`
    /// defaults to true).
    pub hpa: HpaConfig,
    /// `pollingInterval`: how often KEDA checks activation (30 s).
    pub polling_interval: Duration,
    /// `activationQueueLength`: the scaler is active above this (0).
    pub activation: u64,
    /// `cooldownPeriod`: time since the last active poll before scaling to
    /// zero, when the minimum is 0 (300 s).
    pub cooldown_period: Duration,
}

impl KedaConfig {
    /// KEDA defaults with `queueLength` = the policy's target.
    pub fn from_policy(config: &PolicyConfig) -> Self {
        KedaConfig {
            hpa: HpaConfig {
                count_in_flight: true,
                ..HpaConfig::from_policy(config)
            },
            polling_interval: Duration::from_secs(30),
            activation: 0,
            cooldown_period: Duration::from_secs(300),
        }
    }
}

/// A model of KEDA's `aws-sqs-queue` scaler: the HPA asks KEDA's metrics
/// server for `ApproximateNumberOfMessages + ApproximateNumberOfMessagesNotVisible`
/// at every 15 s sync and scales between `max(min, 1)` and `max`; KEDA
/// itself polls every `pollingInterval` and only governs 0 ↔ 1: it
/// activates a fleet at zero when the metric exceeds `activationQueueLength`
/// and returns it to zero (when the minimum is 0) after `cooldownPeriod`
/// without activity.
#[derive(Debug, Clone)]
pub struct KedaPolicy {
    config: KedaConfig,
    hpa: HpaPolicy,
    last_poll: Option<Timestamp>,
    last_active: Option<Timestamp>,
}

impl KedaPolicy {
    pub fn new(config: KedaConfig) -> Self {
        let hpa = HpaPolicy::new(HpaConfig {
            min: config.hpa.min.max(1),
            ..config.hpa.clone()
        });
        KedaPolicy {
            config,
            hpa,
            last_poll: None,
            last_active: None,
        }
    }
}

impl SimPolicy for KedaPolicy {
    fn name(&self) -> &str {
        "keda"
    }

    /// The HPA's sync period; KEDA's own polls are every
    /// `polling_interval`, a multiple of it by default.
    fn interval(&self) -> Duration {
        self.config.hpa.sync_period
    }

    fn decide(&mut self, now: Timestamp, observed: &Observed<'_>) -> Option<u32> {
        let metric = self.hpa.metric(observed.metrics);
        let current = observed.metrics.desired;
        let poll = self
            .last_poll
            .is_none_or(|at| now.saturating_duration_since(at) >= self.config.polling_interval);
        if poll {
            self.last_poll = Some(now);
            if metric > self.config.activation {
                self.last_active = Some(now);
            }
        }
        if current == 0 {
            // Only KEDA's poll can wake a fleet at zero; the HPA is idle.
            return (poll && metric > self.config.activation).then_some(1);
        }
        if self.config.hpa.min == 0 && poll && metric <= self.config.activation {
            let idle = self
                .last_active
                .is_none_or(|at| now.saturating_duration_since(at) >= self.config.cooldown_period);
            if idle {
                return Some(0);
            }
        }
        self.hpa.sync(now, metric, current)
    }
}

fn clamp_f64(value: f64, min: u32, max: u32) -> u32 {
    let max = max.max(min);
    if value.is_nan() || value <= f64::from(min) {
        min
    } else if value >= f64::from(max) {
        max
    } else {
        // In range (min, max), so the cast is exact for whole numbers.
        value as u32
    }
}

/// The policies compared by default: Ballast (10 s interval) in both
/// modes, the AWS target-tracking model, the HPA model and the KEDA model,
/// all around `config`.
pub fn default_policies(config: &PolicyConfig) -> Vec<Box<dyn SimPolicy>> {
    let mode = |mode| PolicyConfig {
        mode,
        ..config.clone()
    };
    vec![
        Box::new(BallastPolicy::new(
            mode(Mode::Backlog),
            BallastPolicy::DEFAULT_INTERVAL,
        )),
        Box::new(BallastPolicy::new(
            mode(Mode::Queueing),
            BallastPolicy::DEFAULT_INTERVAL,
        )),
        Box::new(TargetTrackingPolicy::new(
            TargetTrackingConfig::from_policy(config),
        )),
        Box::new(HpaPolicy::new(HpaConfig::from_policy(config))),
        Box::new(KedaPolicy::new(KedaConfig::from_policy(config))),
    ]
}
