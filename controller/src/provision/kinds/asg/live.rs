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
    let mut fields = BTreeMap::new();
    let policy = g.mixed_instances_policy.as_ref();
    let spec = g.launch_template.as_ref().or_else(|| {
        policy
            .and_then(|p| p.launch_template.as_ref())
            .and_then(|t| t.launch_template_specification.as_ref())
    });
    fields.put(
        GroupField::LaunchTemplate,
        spec.map(|s| {
            json!({
                "id": s.launch_template_id,
                "version": s.version.as_deref().unwrap_or(TEMPLATE_VERSION),
            })
        })
        .unwrap_or(Value::Null),
    );
    let mixed = policy
        .map(|p| {
            let types: Vec<&str> = p
                .launch_template
                .as_ref()
                .map(|t| t.overrides())
                .unwrap_or_default()
                .iter()
                .filter_map(|o| o.instance_type.as_deref())
                .collect();
            let d = p.instances_distribution.as_ref();
            json!({
                "instanceTypes": types,
                "onDemandBaseCapacity": d.and_then(|d| d.on_demand_base_capacity).unwrap_or(0),
                "onDemandPercentageAboveBase": d.and_then(|d| d.on_demand_percentage_above_base_capacity).unwrap_or(100),
                "spotAllocationStrategy": d.and_then(|d| d.spot_allocation_strategy.clone()),
            })
        })
        .unwrap_or(Value::Null);
    fields.put(GroupField::MixedInstances, mixed);
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
    fields.put(GroupField::Subnets, json!(subnets));
    fields.put(GroupField::MinSize, json!(g.min_size));
    fields.put(GroupField::MaxSize, json!(g.max_size));
    fields.put(GroupField::DesiredCapacity, json!(g.desired_capacity));
    fields.put(GroupField::HealthCheckType, json!(g.health_check_type));
    fields.put(
        GroupField::HealthCheckGracePeriod,
        json!(g.health_check_grace_period.unwrap_or(0)),
    );
    let mut hooks: Vec<Value> = hooks
        .iter()
        .map(|h| {
            json!({
                "name": h.lifecycle_hook_name,
                "transition": h.lifecycle_transition,
                "heartbeatTimeout": h.heartbeat_timeout,
                "defaultResult": h.default_result,
            })
        })
        .collect();
    hooks.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    fields.put(GroupField::LifecycleHooks, Value::Array(hooks));
    fields.put(
        GroupField::GroupMetrics,
        Value::Bool(GROUP_METRICS.iter().all(|m| {
            g.enabled_metrics()
                .iter()
                .any(|e| e.metric.as_deref() == Some(*m))
        })),
    );
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
    fields.put(GroupField::PropagateAtLaunch, Value::Bool(propagate));
    LiveState {
        id,
        physical_name: name.clone(),
        physical_id: name,
        arn: g.auto_scaling_group_arn.clone(),
        ownership: Ownership::from_tags(&tags, &bp.metadata.name),
        tags,
        fields,
        typed: TypedLive::untyped(),
    }
}
