//! Auto Scaling groups. Bounds, health checks, lifecycle hooks, metrics and tags are enforced;
//! the desired capacity belongs to the autoscaler: it is sent once, at creation, and afterwards
//! only checked against `[minSize, maxSize]`. Updates never send it (AWS clamps it to new
//! bounds by itself).

use std::collections::BTreeMap;

use aws_sdk_autoscaling::types::{
    AutoScalingGroup, InstancesDistribution, LaunchTemplate, LaunchTemplateOverrides,
    LaunchTemplateSpecification, LifecycleState, MixedInstancesPolicy, Tag,
};
use ballast_aws::{AwsError, SdkResultExt};
use ballast_blueprint::{
    Blueprint, HealthCheckType, LifecycleTransition, ResourceId, ResourceKind,
    SpotAllocationStrategy, Tags,
};
use futures::future::try_join_all;
use serde_json::{Value, json};
use tracing::instrument;

mod live;
mod requests;

use live::group_live;
use requests::{
    number, put_hooks, set_metrics, subnets, tags, template_spec, text, wait_in_service,
};

use super::subnet::subnet_id;
use super::support::{Poll, poll_until};
use super::{ApplyContext, ObserveContext, Observed, ResourceOps, declared};
use crate::provision::diff::FieldChange;
use crate::provision::error::ProvisionError;
use crate::provision::state::{
    Changes, DesiredState, Expect, Field, LiveFields, LiveState, Ownership, Resolved,
};
use crate::provision::typed::{TypedDesired, TypedLive};

pub struct AutoScalingGroups;

crate::provision::state::field_names! {
    /// The fields of AutoScalingGroups, as plan and drift output name them.
    pub enum GroupField {
        LaunchTemplate = "launchTemplate",
        MixedInstances = "mixedInstances",
        Subnets = "subnets",
        MinSize = "minSize",
        MaxSize = "maxSize",
        HealthCheckType = "healthCheckType",
        HealthCheckGracePeriod = "healthCheckGracePeriod",
        LifecycleHooks = "lifecycleHooks",
        GroupMetrics = "groupMetrics",
        PropagateAtLaunch = "propagateAtLaunch",
        DesiredCapacity = "desiredCapacity",
    }
}

/// The launch template version the group launches: the template's default.
pub const TEMPLATE_VERSION: &str = "$Default";

/// The group metrics enabled, named explicitly (moto records nothing for an empty list, which
/// AWS reads as "all").
pub const GROUP_METRICS: &[&str] = &[
    "GroupMinSize",
    "GroupMaxSize",
    "GroupDesiredCapacity",
    "GroupInServiceInstances",
    "GroupPendingInstances",
    "GroupStandbyInstances",
    "GroupTerminatingInstances",
    "GroupTotalInstances",
    "GroupInServiceCapacity",
    "GroupPendingCapacity",
    "GroupStandbyCapacity",
    "GroupTerminatingCapacity",
    "GroupTotalCapacity",
];

const LAUNCHING: &str = "autoscaling:EC2_INSTANCE_LAUNCHING";
const TERMINATING: &str = "autoscaling:EC2_INSTANCE_TERMINATING";

fn later(value: Option<Value>) -> Expect {
    value.map(Expect::Exact).unwrap_or(Expect::KnownAfterApply)
}

fn spot_strategy(s: SpotAllocationStrategy) -> &'static str {
    match s {
        SpotAllocationStrategy::PriceCapacityOptimized => "price-capacity-optimized",
        SpotAllocationStrategy::CapacityOptimized => "capacity-optimized",
        SpotAllocationStrategy::LowestPrice => "lowest-price",
    }
}

fn not_found(e: &AwsError) -> bool {
    e.is_not_found() || e.message().is_some_and(|m| m.contains("not found"))
}

impl ResourceOps for AutoScalingGroups {
    const KIND: ResourceKind = ResourceKind::AutoScalingGroup;
    type Field = GroupField;

    fn desired(bp: &Blueprint, resolved: &Resolved) -> Vec<DesiredState> {
        bp.spec
            .auto_scaling_groups
            .iter()
            .map(|g| {
                let template = resolved
                    .physical_id(&ResourceId::new(
                        ResourceKind::LaunchTemplate,
                        &g.launch_template,
                    ))
                    .map(|id| json!({"id": id, "version": TEMPLATE_VERSION}));
                let subnets: Option<Vec<String>> = g
                    .subnets
                    .iter()
                    .map(|s| subnet_id(bp, resolved, s))
                    .collect();
                let subnets = subnets.map(|mut s| {
                    s.sort();
                    s.dedup();
                    json!(s)
                });
                let instance_types = bp
                    .spec
                    .launch_templates
                    .iter()
                    .find(|lt| lt.name == g.launch_template)
                    .map(|lt| lt.instance_types.clone())
                    .unwrap_or_default();
                let mixed = match &g.instances_distribution {
                    None => Value::Null,
                    Some(d) => json!({
                        "instanceTypes": instance_types,
                        "onDemandBaseCapacity": d.on_demand_base_capacity,
                        "onDemandPercentageAboveBase": d.on_demand_percentage_above_base,
                        "spotAllocationStrategy": spot_strategy(d.spot_allocation_strategy),
                    }),
                };
                let mut hooks: Vec<Value> = g
                    .lifecycle_hooks
                    .iter()
                    .map(|h| {
                        json!({
                            "name": h.name,
                            "transition": match h.transition {
                                LifecycleTransition::Launching => LAUNCHING,
                                LifecycleTransition::Terminating => TERMINATING,
                            },
                            "heartbeatTimeout": h.heartbeat_timeout.as_secs(),
                            "defaultResult": match h.default_result {
                                ballast_blueprint::LifecycleResult::Continue => "CONTINUE",
                                ballast_blueprint::LifecycleResult::Abandon => "ABANDON",
                            },
                        })
                    })
                    .collect();
                hooks.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
                let fields = vec![
                    Field::enforced(GroupField::LaunchTemplate, Value::Null)
                        .with_expect(later(template)),
                    Field::enforced(GroupField::MixedInstances, mixed),
                    Field::enforced(GroupField::Subnets, Value::Null).with_expect(later(subnets)),
                    Field::enforced(GroupField::MinSize, g.min_size),
                    Field::enforced(GroupField::MaxSize, g.max_size),
                    Field::delegated(
                        GroupField::DesiredCapacity,
                        Expect::Within(g.min_size.into(), g.max_size.into()),
                    ),
                    Field::enforced(
                        GroupField::HealthCheckType,
                        match g.health_check.kind {
                            HealthCheckType::Ec2 => "EC2",
                            HealthCheckType::Elb => "ELB",
                        },
                    ),
                    Field::enforced(
                        GroupField::HealthCheckGracePeriod,
                        g.health_check.grace_period.as_secs(),
                    ),
                    Field::enforced(GroupField::LifecycleHooks, Value::Array(hooks)),
                    Field::enforced(GroupField::GroupMetrics, g.group_metrics),
                    Field::enforced(GroupField::PropagateAtLaunch, true),
                ];
                let mut tags = bp.ownership_tags_for(&ResourceId::new(Self::KIND, &g.name));
                tags.extend(g.tags.clone());
                DesiredState {
                    id: ResourceId::new(Self::KIND, &g.name),
                    physical_name: bp.group_name(g),
                    fields,
                    tags,
                    adopt: g.adopt,
                    deletion_policy: Blueprint::effective_deletion_policy(
                        Self::KIND,
                        g.deletion_policy,
                    ),
                    typed: TypedDesired::untyped(),
                }
            })
            .collect()
    }

    /// One DescribeAutoScalingGroups by the ownership tag (plus one by name only when a
    /// declared group is missing), then the lifecycle hooks of each group, concurrently.
    #[instrument(skip_all, fields(kind = "auto-scaling-group"))]
    async fn observe(ctx: &ObserveContext<'_>) -> Result<Observed, ProvisionError> {
        let asg = ctx.clients.autoscaling();
        let bp = ctx.blueprint;
        let any = ResourceId::new(Self::KIND, "*");
        let declared = declared(bp, Self::KIND);
        let mut groups = asg
            .describe_auto_scaling_groups()
            .filters(
                aws_sdk_autoscaling::types::Filter::builder()
                    .name(format!(
                        "tag:{}",
                        ballast_blueprint::OWNERSHIP_BLUEPRINT_TAG
                    ))
                    .values(&bp.metadata.name)
                    .build(),
            )
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .classify("autoscaling:DescribeAutoScalingGroups")
            .map_err(ProvisionError::aws(&any))?;
        let missing: Vec<String> = declared
            .iter()
            .filter(|(_, n)| {
                !groups
                    .iter()
                    .any(|g| g.auto_scaling_group_name.as_deref() == Some(n))
            })
            .map(|(_, n)| n.clone())
            .collect();
        if !missing.is_empty() {
            groups.extend(
                asg.describe_auto_scaling_groups()
                    .set_auto_scaling_group_names(Some(missing))
                    .into_paginator()
                    .items()
                    .send()
                    .collect::<Result<Vec<_>, _>>()
                    .await
                    .classify("autoscaling:DescribeAutoScalingGroups")
                    .map_err(ProvisionError::aws(&any))?,
            );
        }
        let desired_tags: BTreeMap<String, Tags> = Self::desired(bp, ctx.resolved)
            .into_iter()
            .map(|d| (d.physical_name, d.tags))
            .collect();
        let prefix = format!("{}-", bp.metadata.name);
        let reads = groups
            .into_iter()
            .filter(|g| g.status.as_deref() != Some("Delete in progress"))
            .map(|g| {
                let name = g.auto_scaling_group_name.clone().unwrap_or_default();
                let declared_id = declared
                    .iter()
                    .find(|(_, n)| *n == name)
                    .map(|(id, _)| id.clone());
                let id = declared_id.clone().unwrap_or_else(|| {
                    ResourceId::new(Self::KIND, name.trim_start_matches(&prefix))
                });
                let wanted = desired_tags.get(&name).cloned().unwrap_or_default();
                async move {
                    let hooks = asg
                        .describe_lifecycle_hooks()
                        .auto_scaling_group_name(&name)
                        .send()
                        .await
                        .classify("autoscaling:DescribeLifecycleHooks")
                        .map_err(ProvisionError::aws(&id))?
                        .lifecycle_hooks
                        .unwrap_or_default();
                    let live = group_live(bp, id, &g, &hooks, &wanted);
                    Ok::<_, ProvisionError>((declared_id.is_some(), live))
                }
            });
        let mut observed = Observed::default();
        for (is_declared, live) in try_join_all(reads).await? {
            observed.file(live, is_declared);
        }
        Ok(observed)
    }

    #[instrument(skip_all, fields(group = %desired.physical_name))]
    async fn create(
        ctx: &ApplyContext<'_>,
        desired: &DesiredState,
    ) -> Result<LiveState, ProvisionError> {
        let asg = &ctx.clients.autoscaling;
        let bp = ctx.blueprint;
        let err = || ProvisionError::aws(&desired.id);
        let group = bp
            .spec
            .auto_scaling_groups
            .iter()
            .find(|g| g.name == desired.id.name)
            .ok_or_else(|| ProvisionError::Unexpected {
                resource: desired.id.clone(),
                operation: "autoscaling:CreateAutoScalingGroup",
                detail: "not in the blueprint".into(),
            })?;
        let capacity = group.desired_capacity.unwrap_or(group.min_size) as i32;
        let mut request = asg
            .create_auto_scaling_group()
            .auto_scaling_group_name(&desired.physical_name)
            .desired_capacity(capacity);
        let (template, mixed) = template_spec(ctx, desired, &group.launch_template)?;
        request = match mixed {
            Some(policy) => request.mixed_instances_policy(policy),
            None => request.launch_template(template),
        };
        request = request
            .vpc_zone_identifier(subnets(ctx, desired, group)?)
            .min_size(number(desired, GroupField::MinSize))
            .max_size(number(desired, GroupField::MaxSize))
            .health_check_type(text(desired, GroupField::HealthCheckType))
            .health_check_grace_period(number(desired, GroupField::HealthCheckGracePeriod))
            .set_tags(Some(tags(&desired.physical_name, &desired.tags)));
        request
            .send()
            .await
            .classify("autoscaling:CreateAutoScalingGroup")
            .map_err(err())?;
        put_hooks(ctx, desired, &[]).await?;
        if desired.value(GroupField::GroupMetrics) == Some(&Value::Bool(true)) {
            set_metrics(ctx, desired, true).await?;
        }
        let group = wait_in_service(ctx, desired, capacity).await?;
        let hooks = asg
            .describe_lifecycle_hooks()
            .auto_scaling_group_name(&desired.physical_name)
            .send()
            .await
            .classify("autoscaling:DescribeLifecycleHooks")
            .map_err(err())?
            .lifecycle_hooks
            .unwrap_or_default();
        Ok(group_live(
            bp,
            desired.id.clone(),
            &group,
            &hooks,
            &desired.tags,
        ))
    }

    #[instrument(skip_all, fields(group = %desired.physical_name))]
    async fn update(
        ctx: &ApplyContext<'_>,
        desired: &DesiredState,
        live: &LiveState,
        changes: &[FieldChange],
    ) -> Result<(), ProvisionError> {
        let changes = Changes::<GroupField>::of(changes);
        let asg = &ctx.clients.autoscaling;
        let bp = ctx.blueprint;
        let err = || ProvisionError::aws(&desired.id);
        let group = bp
            .spec
            .auto_scaling_groups
            .iter()
            .find(|g| g.name == desired.id.name)
            .ok_or_else(|| ProvisionError::Unexpected {
                resource: desired.id.clone(),
                operation: "autoscaling:UpdateAutoScalingGroup",
                detail: "not in the blueprint".into(),
            })?;
        const GROUP_FIELDS: &[GroupField] = &[
            GroupField::LaunchTemplate,
            GroupField::MixedInstances,
            GroupField::Subnets,
            GroupField::MinSize,
            GroupField::MaxSize,
            GroupField::DesiredCapacity,
            GroupField::HealthCheckType,
            GroupField::HealthCheckGracePeriod,
        ];
        if changes.any(GROUP_FIELDS) {
            // Never DesiredCapacity: new bounds make AWS clamp it. The template (or mixed
            // policy) and subnets are always re-sent: moto drops a mixed instances policy an
            // update omits, and re-sending unchanged values is a no-op on AWS.
            let (template, mixed) = template_spec(ctx, desired, &group.launch_template)?;
            let mut request = asg
                .update_auto_scaling_group()
                .auto_scaling_group_name(&live.physical_id);
            request = match mixed {
                Some(policy) => request.mixed_instances_policy(policy),
                None => request.launch_template(template),
            };
            request
                .vpc_zone_identifier(subnets(ctx, desired, group)?)
                .min_size(number(desired, GroupField::MinSize))
                .max_size(number(desired, GroupField::MaxSize))
                .health_check_type(text(desired, GroupField::HealthCheckType))
                .health_check_grace_period(number(desired, GroupField::HealthCheckGracePeriod))
                .send()
                .await
                .classify("autoscaling:UpdateAutoScalingGroup")
                .map_err(err())?;
        }
        if changes.has(GroupField::LifecycleHooks) {
            let have: Vec<Value> = live
                .fields
                .field(GroupField::LifecycleHooks)
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            put_hooks(ctx, desired, &have).await?;
        }
        if changes.has(GroupField::GroupMetrics) {
            let on = desired.value(GroupField::GroupMetrics) == Some(&Value::Bool(true));
            set_metrics(ctx, desired, on).await?;
        }
        if changes.tags() || changes.has(GroupField::PropagateAtLaunch) {
            asg.create_or_update_tags()
                .set_tags(Some(tags(&live.physical_id, &desired.tags)))
                .send()
                .await
                .classify("autoscaling:CreateOrUpdateTags")
                .map_err(err())?;
        }
        Ok(())
    }

    /// ForceDelete terminates the instances with the group; waits until the group is gone.
    #[instrument(skip_all, fields(group = %live.physical_name))]
    async fn delete(ctx: &ApplyContext<'_>, live: &LiveState) -> Result<(), ProvisionError> {
        let asg = &ctx.clients.autoscaling;
        match asg
            .delete_auto_scaling_group()
            .auto_scaling_group_name(&live.physical_id)
            .force_delete(true)
            .send()
            .await
            .classify("autoscaling:DeleteAutoScalingGroup")
        {
            Ok(_) => {}
            Err(e) if not_found(&e) => return Ok(()),
            Err(e) => return Err(ProvisionError::aws(&live.id)(e)),
        }
        poll_until(&ctx.readiness, &live.id, "group deleted", || async {
            let groups = asg
                .describe_auto_scaling_groups()
                .auto_scaling_group_names(&live.physical_id)
                .send()
                .await
                .classify("autoscaling:DescribeAutoScalingGroups")
                .map_err(ProvisionError::aws(&live.id))?
                .auto_scaling_groups
                .unwrap_or_default();
            Ok(if groups.is_empty() {
                Poll::Ready(())
            } else {
                Poll::Pending
            })
        })
        .await
    }
}
