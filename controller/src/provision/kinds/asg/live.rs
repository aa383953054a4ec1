//! A group's live state in the shape `desired` produces.

use super::*;

/// A group in the shape `desired` uses; `wanted` are the desired tags (for propagateAtLaunch).
pub(super) fn group_live(
    bp: &Blueprint,
    id: ResourceId,
    g: &AutoScalingGroup,
    hooks: &[aws_sdk_autoscaling::types::LifecycleHook],
    wanted: &Tags,
) -> LiveState {
    let name = g.auto_scaling_group_name.clone().unwrap_or_default();
    let policy = g.mixed_instances_policy.as_ref();
    let spec = g.launch_template.as_ref().or_else(|| {
        policy
            .and_then(|p| p.launch_template.as_ref())
            .and_then(|t| t.launch_template_specification.as_ref())
    });
    let launch_template = spec.map(|s| TemplateRef {
        id: s.launch_template_id.clone(),
        version: s
            .version
            .clone()
            .unwrap_or_else(|| TEMPLATE_VERSION.to_string()),
    });
    let mixed_instances = policy.map(|p| {
        let d = p.instances_distribution.as_ref();
        MixedInstances {
            instance_types: p
                .launch_template
                .as_ref()
                .map(|t| t.overrides())
                .unwrap_or_default()
                .iter()
                .filter_map(|o| o.instance_type.clone())
                .collect(),
            on_demand_base_capacity: d
                .and_then(|d| d.on_demand_base_capacity)
                .map_or(0, i64::from),
            on_demand_percentage_above_base: d
                .and_then(|d| d.on_demand_percentage_above_base_capacity)
                .map_or(100, i64::from),
            spot_allocation_strategy: d.and_then(|d| d.spot_allocation_strategy.clone()),
        }
    });
    let mut subnets: Vec<String> = g
        .vpc_zone_identifier
        .as_deref()
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    subnets.sort();
    subnets.dedup();
    let mut hooks: Vec<GroupHook> = hooks
        .iter()
        .map(|h| GroupHook {
            name: h.lifecycle_hook_name.clone(),
            transition: h.lifecycle_transition.clone(),
            // A negative timeout (never reported) reads as unset, and so as drift.
            heartbeat_timeout: h.heartbeat_timeout.and_then(|t| u64::try_from(t).ok()),
            default_result: h.default_result.clone(),
        })
        .collect();
    hooks.sort_by(|a, b| a.name.cmp(&b.name));
    let mut tags = Tags::new();
    let mut propagate = true;
    for t in g.tags() {
        if let Some(key) = &t.key {
            tags.insert(key.clone(), t.value.clone().unwrap_or_default());
            if wanted.contains_key(key) && t.propagate_at_launch != Some(true) {
                propagate = false;
            }
        }
    }
    let state = GroupState {
        launch_template: Some(launch_template),
        mixed_instances: Some(mixed_instances),
        subnets: Some(subnets),
        min_size: g.min_size.map(i64::from),
        max_size: g.max_size.map(i64::from),
        desired_capacity: g.desired_capacity.map(i64::from),
        health_check_type: g.health_check_type.clone(),
        health_check_grace_period: u64::try_from(g.health_check_grace_period.unwrap_or(0)).ok(),
        lifecycle_hooks: Some(hooks),
        group_metrics: Some(GROUP_METRICS.iter().all(|m| {
            g.enabled_metrics()
                .iter()
                .any(|e| e.metric.as_deref() == Some(*m))
        })),
        propagate_at_launch: Some(propagate),
    };
    LiveState {
        id,
        physical_name: name.clone(),
        physical_id: name,
        arn: g.auto_scaling_group_arn.clone(),
        ownership: Ownership::from_tags(&tags, &bp.metadata.name),
        tags,
        fields: state.live_fields(),
        typed: TypedLive::new(state),
    }
}
