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
    /// Messages per in-service instance to aim for (`mode: backlog`).
    pub target_backlog_per_instance: u32,
    /// `backlog` (default): the seed's `ceil(visible ÷ targetBacklogPerInstance)`;
    /// `queueing`: arrival and service rates, backlog, oldest-message age and boot time.
    #[serde(default)]
    pub mode: ScalingMode,
    /// `mode: queueing`: the oldest message should be no older than this, 1s..1h. Default: 60s.
    #[serde(default = "default_objective")]
    pub latency_objective: Duration,
    /// `mode: queueing`: messages one instance processes per second until the fleet's own
    /// rate is measured, at least 1. Default: 5.
    #[serde(default = "default_service_rate")]
    pub service_rate_per_instance: u32,
    /// `mode: queueing`: time from launch to InService, 0s..1h. Default: 90s.
    #[serde(default = "default_boot_time")]
    pub boot_time: Duration,
    /// Time since the last scaling action before a scale-in. Default: 300s.
    #[serde(default = "default_cooldown")]
    pub scale_in_cooldown: Duration,
    /// Scale in only to the highest recommendation within this window. Default: 300s.
    #[serde(default = "default_cooldown")]
    pub stabilization_window: Duration,
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
fn default_objective() -> Duration {
    Duration::from_secs(60)
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

    /// Ballast's own autoscaler runs the policy: nothing in AWS.
    fn physical_name(&self, _bp: &super::Blueprint) -> Option<String> {
        None
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
