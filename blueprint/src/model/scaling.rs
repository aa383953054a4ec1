use super::{Duration, Management};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Binds a queue to a fleet: Ballast's autoscaler keeps the backlog per instance at the target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScalingPolicy {
    pub name: String,
    /// Blueprint name of the queue whose backlog drives the fleet.
    pub queue: String,
    /// Blueprint name of the Auto Scaling group (or use `deployment`).
    #[serde(default)]
    pub fleet: Option<String>,
    /// A Kubernetes Deployment as the fleet, scaled through its `scale` subresource.
    #[serde(default)]
    pub deployment: Option<DeploymentTarget>,
    /// Messages per in-service instance to aim for (`mode: backlog`), at least 1. Default, when
    /// `latencyObjective` is set: `latencyObjective × serviceRatePerInstance`, AWS's guidance
    /// (acceptable latency ÷ time per message; `20s` at 5 msg/s is the seed's 100). `mode:
    /// backlog` needs one of the two.
    #[serde(default)]
    pub target_backlog_per_instance: Option<u32>,
    /// `backlog` (default): the seed's `ceil(visible ÷ targetBacklogPerInstance)`;
    /// `queueing`: arrival and service rates, backlog, oldest-message age and boot time.
    #[serde(default)]
    pub mode: ScalingMode,
    /// The oldest message should be no older than this, 1s..1h. `mode: queueing` scales to it;
    /// default `bootTime` (at least 1s), the shortest wait the fleet can promise a burst that
    /// needs new capacity: with a shorter one the policy buys capacity for bursts the queue
    /// would have absorbed, and it lands after they have waited that long anyway. `mode:
    /// backlog` derives `targetBacklogPerInstance` from it when that is omitted.
    #[serde(default)]
    pub latency_objective: Option<Duration>,
    /// Messages one instance processes per second, at least 1. Default: 5. `mode: queueing`
    /// uses it until the fleet's own rate is measured; an omitted `targetBacklogPerInstance`
    /// follows from it and `latencyObjective`.
    #[serde(default = "default_service_rate")]
    pub service_rate_per_instance: u32,
    /// `mode: queueing`: time from launch to InService, 0s..1h. Default: 90s.
    #[serde(default = "default_boot_time")]
    pub boot_time: Duration,
    /// Time since the last scaling action before a scale-in. Default: 300s.
    #[serde(default = "default_cooldown")]
    pub scale_in_cooldown: Duration,
    /// Scale in only to the highest recommendation within this window, 0s..1h. Default: 300s
    /// (the HPA's) in `mode: backlog`; `bootTime` in `mode: queueing`, whose scale-out waits
    /// for a projected breach and whose scale-in keeps 10 % headroom, so that idle capacity is
    /// kept about as long as capacity released too early would take to come back.
    #[serde(default)]
    pub stabilization_window: Option<Duration>,
    /// Percent deviation from the target that causes no action, 0..100. Default: 10.
    #[serde(default = "default_tolerance")]
    pub tolerance_percent: u32,
    /// Default: 10s.
    #[serde(default = "default_interval")]
    pub evaluation_interval: Duration,
    /// Most instances added in one evaluation. Default: no limit.
    #[serde(default)]
    pub max_scale_out_step: Option<u32>,
    /// Most instances removed in one evaluation. Default: no limit.
    #[serde(default)]
    pub max_scale_in_step: Option<u32>,
    /// Bounds for a `deployment` fleet (an Auto Scaling group brings its own).
    #[serde(default)]
    pub min_replicas: Option<u32>,
    #[serde(default)]
    pub max_replicas: Option<u32>,
    /// `observe`: the autoscaler reads the queue and the fleet and reports what it would do
    /// (logs, metrics) but never sets the desired capacity. Default: `manage`.
    #[serde(default)]
    pub management: Management,
    /// Scale-out by AWS itself while Ballast is down: a CloudWatch alarm on "no heartbeat from
    /// Ballast and a high backlog" attached to a step-scaling policy on the fleet (an Auto
    /// Scaling group). While Ballast evaluates, its heartbeat keeps the alarm quiet.
    #[serde(default)]
    pub dead_mans_switch: Option<DeadMansSwitch>,
    /// `mode: queueing`: provision one `bootTime` ahead of the daily pattern learned from the
    /// queue's recent arrivals (CloudWatch `NumberOfMessagesSent`, one-minute sums), so a known
    /// daily peak meets capacity already in service. Default: off.
    #[serde(default)]
    pub prediction: Option<Prediction>,
}

impl ScalingPolicy {
    /// The latency objective in force: the configured one, else `bootTime` (at least 1s).
    pub fn latency_objective_in_force(&self) -> Duration {
        self.latency_objective
            .unwrap_or(self.boot_time)
            .max(Duration::from_secs(1))
    }

    /// The target backlog per instance in force: the configured one, else what the latency
    /// objective in force allows one instance to hold, `objective × serviceRatePerInstance`
    /// (AWS's guidance for backlog-per-instance scaling), at least 1. Validation refuses a
    /// `mode: backlog` policy with neither field, so there the objective is always explicit.
    pub fn target_backlog_in_force(&self) -> u32 {
        self.target_backlog_per_instance
            .unwrap_or_else(|| self.target_backlog_for(self.latency_objective_in_force()))
    }

    /// The backlog per instance that waits about `objective` at `serviceRatePerInstance`:
    /// `objective × serviceRatePerInstance`, at least 1.
    pub fn target_backlog_for(&self, objective: Duration) -> u32 {
        let target = objective
            .std()
            .as_millis()
            .saturating_mul(u128::from(self.service_rate_per_instance))
            / 1000;
        u32::try_from(target).unwrap_or(u32::MAX).max(1)
    }
}

/// Seasonal prediction of a scaling policy's arrival rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Prediction {
    /// Days of history the daily profile is learned from (each minute of the day: the median of
    /// that minute over these days), 1..14 (CloudWatch keeps one-minute data 15 days).
    /// Default: 7.
    #[serde(default = "default_prediction_days")]
    pub days: u32,
}

impl Default for Prediction {
    /// `prediction: {}`.
    fn default() -> Self {
        Prediction {
            days: default_prediction_days(),
        }
    }
}

fn default_prediction_days() -> u32 {
    7
}

/// The dead-man's switch of a scaling policy: what AWS does when Ballast's heartbeat stops.
///
/// Ballast publishes a heartbeat after every evaluation that read the queue and the fleet and
/// could act. The alarm fires when the heartbeat has been missing for `heartbeatTimeout` and the
/// queue's visible backlog stayed above `backlogThreshold` all that time; each minute it stays
/// in ALARM, the step policy raises the group's desired capacity to the instances past warm-up
/// plus `addInstances` (never above the group's `maxSize`). It never scales in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeadMansSwitch {
    /// Visible messages above which a fleet without Ballast needs more instances, at least 1.
    /// Default: 10 × `targetBacklogPerInstance`.
    #[serde(default)]
    pub backlog_threshold: Option<u32>,
    /// How long the heartbeat must be missing (with the backlog high) before AWS scales out:
    /// whole minutes, 2m..1h. Default: 3m.
    #[serde(default = "default_heartbeat_timeout")]
    pub heartbeat_timeout: Duration,
    /// Instances each step adds, 1..100. Default: 1.
    #[serde(default = "default_add_instances")]
    pub add_instances: u32,
    /// Time a new instance takes to count toward the capacity a step builds on (the step
    /// policy's estimated instance warm-up), 0s..1h. Default: `bootTime`.
    #[serde(default)]
    pub warmup: Option<Duration>,
}

/// An unset `backlogThreshold` is this many times `targetBacklogPerInstance`: ten instances'
/// worth of backlog, which a fleet the controller sized does not reach.
pub const DEFAULT_BACKLOG_THRESHOLD_TARGETS: u32 = 10;

impl Default for DeadMansSwitch {
    /// `deadMansSwitch: {}`.
    fn default() -> Self {
        DeadMansSwitch {
            backlog_threshold: None,
            heartbeat_timeout: default_heartbeat_timeout(),
            add_instances: default_add_instances(),
            warmup: None,
        }
    }
}

impl DeadMansSwitch {
    /// The backlog threshold in force for a policy with this target backlog per instance.
    pub fn backlog_threshold_for(&self, target_backlog_per_instance: u32) -> u32 {
        self.backlog_threshold.unwrap_or_else(|| {
            target_backlog_per_instance.saturating_mul(DEFAULT_BACKLOG_THRESHOLD_TARGETS)
        })
    }

    /// The warm-up in force for `policy`.
    pub fn warmup_for(&self, policy: &ScalingPolicy) -> Duration {
        self.warmup.unwrap_or(policy.boot_time)
    }
}

fn default_heartbeat_timeout() -> Duration {
    Duration::from_secs(180)
}
fn default_add_instances() -> u32 {
    1
}

/// The rule set of a scaling policy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ScalingMode {
    /// Desired capacity = ceil(visible ÷ targetBacklogPerInstance).
    #[default]
    Backlog,
    /// Sized from the arrival rate, the measured service rate, the backlog, the oldest
    /// message's age against `latencyObjective`, and `bootTime`.
    Queueing,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeploymentTarget {
    pub namespace: String,
    pub name: String,
}

fn default_cooldown() -> Duration {
    Duration::from_secs(300)
}
fn default_service_rate() -> u32 {
    5
}
fn default_boot_time() -> Duration {
    Duration::from_secs(90)
}
fn default_tolerance() -> u32 {
    10
}
fn default_interval() -> Duration {
    Duration::from_secs(10)
}

impl crate::registry::Resource for ScalingPolicy {
    const REFERENCES: &'static [crate::ResourceKind] = &[
        crate::ResourceKind::Queue,
        crate::ResourceKind::AutoScalingGroup,
    ];

    fn in_spec(spec: &super::Spec) -> Vec<(&Self, String)> {
        let at = |(i, p)| (p, format!("spec.scalingPolicies[{i}]"));
        spec.scaling_policies.iter().enumerate().map(at).collect()
    }

    fn name(&self) -> &str {
        &self.name
    }

    /// Ballast's own autoscaler runs the policy; what it has in AWS is its dead-man's switch
    /// (a step-scaling policy and an alarm, both by this name), when it declares one.
    fn physical_name(&self, bp: &super::Blueprint) -> Option<String> {
        self.dead_mans_switch
            .as_ref()
            .map(|_| bp.dead_mans_switch_name(self))
    }

    fn references(
        &self,
        me: &crate::ResourceId,
        path: &str,
        _spec: &super::Spec,
    ) -> Vec<crate::graph::Reference> {
        use crate::ResourceKind as K;
        use crate::graph::Reference;
        let at = format!("{path}.queue");
        let mut out = vec![Reference::new(me, at, K::Queue, &self.queue, true)];
        if let Some(fleet) = &self.fleet {
            let at = format!("{path}.fleet");
            out.push(Reference::new(me, at, K::AutoScalingGroup, fleet, true));
        }
        out
    }
}
