//! The requests `create` and `update` send: bounds, launch template or mixed-instances policy,
//! subnets, lifecycle hooks, group metrics and tags, and the wait for instances in service.

use super::*;

pub(super) fn tags(group: &str, tags: &Tags) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| {
            Tag::builder()
                .resource_id(group)
                .resource_type("auto-scaling-group")
                .key(k)
                .value(v)
                .propagate_at_launch(true)
                .build()
        })
        .collect()
}

/// The launch template spec, and the mixed instances policy wrapping it when the blueprint
/// sets an instances distribution.
pub(super) fn template_spec(
    ctx: &ApplyContext<'_>,
    desired: &DesiredState,
    want: &GroupState<Desired>,
    template: &str,
) -> Result<(LaunchTemplateSpecification, Option<MixedInstancesPolicy>), ProvisionError> {
    let lt_id = ResourceId::new(ResourceKind::LaunchTemplate, template);
    let Some(id) = ctx.resolved.physical_id(&lt_id) else {
        return Err(ProvisionError::MissingDependency {
            resource: desired.id.clone(),
            dependency: lt_id,
        });
    };
    let spec = LaunchTemplateSpecification::builder()
        .launch_template_id(id)
        .version(TEMPLATE_VERSION)
        .build();
    let mixed = want.mixed_instances.exact().and_then(Option::as_ref);
    let policy = mixed.map(|m| {
        let overrides = m
            .instance_types
            .iter()
            .map(|t| LaunchTemplateOverrides::builder().instance_type(t).build())
            .collect();
        MixedInstancesPolicy::builder()
            .launch_template(
                LaunchTemplate::builder()
                    .launch_template_specification(spec.clone())
                    .set_overrides(Some(overrides))
                    .build(),
            )
            .instances_distribution(
                InstancesDistribution::builder()
                    .on_demand_base_capacity(aws_count(m.on_demand_base_capacity))
                    .on_demand_percentage_above_base_capacity(aws_count(
                        m.on_demand_percentage_above_base,
                    ))
                    .set_spot_allocation_strategy(m.spot_allocation_strategy.clone())
                    .build(),
            )
            .build()
    });
    Ok((spec, policy))
}

/// VPCZoneIdentifier: the subnet ids, comma-separated.
pub(super) fn subnets(
    ctx: &ApplyContext<'_>,
    desired: &DesiredState,
    group: &ballast_blueprint::AutoScalingGroup,
) -> Result<String, ProvisionError> {
    let mut ids = Vec::new();
    for s in &group.subnets {
        match subnet_id(ctx.blueprint, ctx.resolved, s) {
            Some(id) => ids.push(id),
            None => {
                return Err(ProvisionError::MissingDependency {
                    resource: desired.id.clone(),
                    dependency: ResourceId::new(ResourceKind::Subnet, s),
                });
            }
        }
    }
    Ok(ids.join(","))
}

/// Puts every desired hook that differs from `have`, deletes hooks the blueprint lacks.
pub(super) async fn put_hooks(
    ctx: &ApplyContext<'_>,
    desired: &DesiredState,
    want: &GroupState<Desired>,
    have: &[GroupHook],
) -> Result<(), ProvisionError> {
    let asg = &ctx.clients.autoscaling;
    let err = || ProvisionError::aws(&desired.id);
    let want = want
        .lifecycle_hooks
        .exact()
        .map(Vec::as_slice)
        .unwrap_or_default();
    for hook in want.iter().filter(|h| !have.contains(h)) {
        asg.put_lifecycle_hook()
            .auto_scaling_group_name(&desired.physical_name)
            .set_lifecycle_hook_name(hook.name.clone())
            .set_lifecycle_transition(hook.transition.clone())
            .heartbeat_timeout(hook.heartbeat_timeout.map_or(3600, aws_count))
            .default_result(hook.default_result.as_deref().unwrap_or("CONTINUE"))
            .send()
            .await
            .classify("autoscaling:PutLifecycleHook")
            .map_err(err())?;
    }
    for hook in have
        .iter()
        .filter(|h| !want.iter().any(|w| w.name == h.name))
    {
        match asg
            .delete_lifecycle_hook()
            .auto_scaling_group_name(&desired.physical_name)
            .set_lifecycle_hook_name(hook.name.clone())
            .send()
            .await
            .classify("autoscaling:DeleteLifecycleHook")
        {
            Ok(_) => {}
            Err(e) if not_found(&e) => {}
            Err(e) => return Err(err()(e)),
        }
    }
    Ok(())
}

pub(super) async fn set_metrics(
    ctx: &ApplyContext<'_>,
    desired: &DesiredState,
    on: bool,
) -> Result<(), ProvisionError> {
    let asg = &ctx.clients.autoscaling;
    if on {
        asg.enable_metrics_collection()
            .auto_scaling_group_name(&desired.physical_name)
            .granularity("1Minute")
            .set_metrics(Some(GROUP_METRICS.iter().map(|m| m.to_string()).collect()))
            .send()
            .await
            .classify("autoscaling:EnableMetricsCollection")
            .map_err(ProvisionError::aws(&desired.id))?;
    } else {
        asg.disable_metrics_collection()
            .auto_scaling_group_name(&desired.physical_name)
            .send()
            .await
            .classify("autoscaling:DisableMetricsCollection")
            .map_err(ProvisionError::aws(&desired.id))?;
    }
    Ok(())
}

/// Polls until `capacity` instances are InService; returns the group as last read.
pub(super) async fn wait_in_service(
    ctx: &ApplyContext<'_>,
    desired: &DesiredState,
    capacity: i32,
) -> Result<AutoScalingGroup, ProvisionError> {
    poll_until(
        &ctx.readiness,
        &desired.id,
        "instances InService",
        || async {
            let group = ctx
                .clients
                .autoscaling
                .describe_auto_scaling_groups()
                .auto_scaling_group_names(&desired.physical_name)
                .send()
                .await
                .classify("autoscaling:DescribeAutoScalingGroups")
                .map_err(ProvisionError::aws(&desired.id))?
                .auto_scaling_groups
                .unwrap_or_default()
                .into_iter()
                .next();
            if let Some(group) = group {
                let in_service = group
                    .instances()
                    .iter()
                    .filter(|i| i.lifecycle_state == Some(LifecycleState::InService))
                    .count() as i32;
                // The autoscaler may already have moved the target: wait for the smaller one.
                let target = capacity.min(group.desired_capacity.unwrap_or(capacity));
                if in_service >= target {
                    return Ok(Poll::Ready(group));
                }
            }
            Ok(Poll::Pending)
        },
    )
    .await
}
