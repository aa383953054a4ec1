//! Policy settings from a blueprint's `scalingPolicies` entry.

use ballast_blueprint::{Blueprint, ScalingMode, ScalingPolicy};

use super::{Mode, PolicyConfig};

#[derive(Debug, thiserror::Error)]
pub enum PolicyLookupError {
    #[error("the blueprint has no scaling policy{}", .0.as_ref().map(|n| format!(" named `{n}`")).unwrap_or_default())]
    NotFound(Option<String>),
}

/// The policy named `name`, or the blueprint's first one.
pub fn find_policy<'a>(
    bp: &'a Blueprint,
    name: Option<&str>,
) -> Result<&'a ScalingPolicy, PolicyLookupError> {
    let mut policies = bp.spec.scaling_policies.iter();
    match name {
        Some(n) => policies.find(|p| p.name == n),
        None => policies.next(),
    }
    .ok_or_else(|| PolicyLookupError::NotFound(name.map(String::from)))
}

/// Bounds come from the fleet: the Auto Scaling group's min/max, or the deployment's replicas.
pub fn policy_config(bp: &Blueprint, policy: &ScalingPolicy) -> PolicyConfig {
    let (min, max) = match policy
        .fleet
        .as_deref()
        .and_then(|f| bp.auto_scaling_group(f))
    {
        Some(group) => (group.min_size, group.max_size),
        None => (
            policy.min_replicas.unwrap_or(1),
            policy.max_replicas.unwrap_or(1),
        ),
    };
    PolicyConfig {
        mode: match policy.mode {
            ScalingMode::Backlog => Mode::Backlog,
            ScalingMode::Queueing => Mode::Queueing,
        },
        latency_objective: policy.latency_objective.std(),
        service_rate_milli: u64::from(policy.service_rate_per_instance).saturating_mul(1000),
        boot_time: policy.boot_time.std(),
        min,
        max,
        target_backlog_per_instance: policy.target_backlog_per_instance,
        scale_in_cooldown: policy.scale_in_cooldown.std(),
        stabilization_window: policy.stabilization_window.std(),
        tolerance_percent: policy.tolerance_percent,
        max_scale_out_step: policy.max_scale_out_step,
        max_scale_in_step: policy.max_scale_in_step,
    }
}
