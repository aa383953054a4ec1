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
use requests::{put_hooks, set_metrics, subnets, tags, template_spec, wait_in_service};

use super::subnet::subnet_id;
use super::support::{Poll, poll_until};
use super::{ApplyContext, ObserveContext, Observed, ResourceOps, declared};
use crate::provision::diff::FieldChange;
use crate::provision::error::ProvisionError;
use crate::provision::state::{Changes, DesiredState, LiveState, Ownership, Resolved};
use crate::provision::typed::{Desired, FieldValue, Live, TypedDesired, TypedLive, Want};

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

crate::provision::typed::typed_state! {
    /// A group's compared state: `desired` builds it from the blueprint, `observe` from
    /// DescribeAutoScalingGroups and DescribeLifecycleHooks (see [`live::group_live`]).
    pub struct GroupState for GroupField {
        LaunchTemplate => launch_template: Option<TemplateRef> = Enforced,
        /// `None`: the group launches the template alone, without a mixed instances policy.
        MixedInstances => mixed_instances: Option<MixedInstances> = Enforced,
        /// Subnet ids, sorted and without duplicates.
        Subnets => subnets: Vec<String> = Enforced,
        MinSize => min_size: i64 = Enforced,
        MaxSize => max_size: i64 = Enforced,
        /// The autoscaler's: only checked against `[minSize, maxSize]`.
        DesiredCapacity => desired_capacity: i64 = Delegated,
        /// `EC2` or `ELB`, as Auto Scaling names them.
        HealthCheckType => health_check_type: String = Enforced,
        /// Seconds.
        HealthCheckGracePeriod => health_check_grace_period: u64 = Enforced,
        /// Sorted by name.
        LifecycleHooks => lifecycle_hooks: Vec<GroupHook> = Enforced,
        /// Whether every metric of [`GROUP_METRICS`] is enabled.
        GroupMetrics => group_metrics: bool = Enforced,
        /// Whether every desired tag propagates to the instances.
        PropagateAtLaunch => propagate_at_launch: bool = Enforced,
    }
}

/// The launch template a group launches, by id and version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateRef {
    pub id: Option<String>,
    pub version: String,
}

impl FieldValue for TemplateRef {
    fn to_value(&self) -> Value {
        json!({"id": self.id, "version": self.version})
    }
}

/// A mixed instances policy: the template's instance types and how on-demand and spot mix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MixedInstances {
    pub instance_types: Vec<String>,
    pub on_demand_base_capacity: i64,
    pub on_demand_percentage_above_base: i64,
    /// As Auto Scaling names it (`price-capacity-optimized`, …).
    pub spot_allocation_strategy: Option<String>,
}

impl FieldValue for MixedInstances {
    fn to_value(&self) -> Value {
        json!({
            "instanceTypes": self.instance_types,
            "onDemandBaseCapacity": self.on_demand_base_capacity,
            "onDemandPercentageAboveBase": self.on_demand_percentage_above_base,
            "spotAllocationStrategy": self.spot_allocation_strategy,
        })
    }
}

/// A lifecycle hook of a group (every part optional: AWS may omit any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupHook {
    pub name: Option<String>,
    /// `autoscaling:EC2_INSTANCE_LAUNCHING` or `…_TERMINATING`.
    pub transition: Option<String>,
    /// Seconds.
    pub heartbeat_timeout: Option<u64>,
    /// `CONTINUE` or `ABANDON`.
    pub default_result: Option<String>,
}

impl FieldValue for GroupHook {
    fn to_value(&self) -> Value {
        json!({
            "name": self.name,
            "transition": self.transition,
            "heartbeatTimeout": self.heartbeat_timeout,
            "defaultResult": self.default_result,
        })
    }
}

/// A count as the Auto Scaling API takes it. Out of range saturates rather than wraps: AWS
/// rejects a value that large with its own error, naming the parameter.
fn aws_count(value: impl TryInto<i32> + Copy + PartialOrd + Default) -> i32 {
    value.try_into().unwrap_or(if value < Default::default() {
        i32::MIN
    } else {
        i32::MAX
    })
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
                let state = desired_state(bp, resolved, g);
                let mut tags = bp.ownership_tags_for(&ResourceId::new(Self::KIND, &g.name));
                tags.extend(g.tags.clone());
                DesiredState {
                    id: ResourceId::new(Self::KIND, &g.name),
                    physical_name: bp.group_name(g),
                    fields: state.expected_fields(),
                    tags,
                    adopt: g.adopt,
                    deletion_policy: Blueprint::effective_deletion_policy(
                        Self::KIND,
                        g.deletion_policy,
                    ),
                    typed: TypedDesired::new(state),
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
        let want = desired.state::<GroupState<Desired>>()?;
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
        let capacity = aws_count(group.desired_capacity.unwrap_or(group.min_size));
        let mut request = asg
            .create_auto_scaling_group()
            .auto_scaling_group_name(&desired.physical_name)
            .desired_capacity(capacity);
        let (template, mixed) = template_spec(ctx, desired, want, &group.launch_template)?;
        request = match mixed {
            Some(policy) => request.mixed_instances_policy(policy),
            None => request.launch_template(template),
        };
        request = request
            .vpc_zone_identifier(subnets(ctx, desired, group)?)
            .set_min_size(want.min_size.exact().copied().map(aws_count))
            .set_max_size(want.max_size.exact().copied().map(aws_count))
            .set_health_check_type(want.health_check_type.exact().cloned())
            .set_health_check_grace_period(
                want.health_check_grace_period
                    .exact()
                    .copied()
                    .map(aws_count),
            )
            .set_tags(Some(tags(&desired.physical_name, &desired.tags)));
        request
            .send()
            .await
            .classify("autoscaling:CreateAutoScalingGroup")
            .map_err(err())?;
        put_hooks(ctx, desired, want, &[]).await?;
        if want.group_metrics.exact() == Some(&true) {
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
        let want = desired.state::<GroupState<Desired>>()?;
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
            let (template, mixed) = template_spec(ctx, desired, want, &group.launch_template)?;
            let mut request = asg
                .update_auto_scaling_group()
                .auto_scaling_group_name(&live.physical_id);
            request = match mixed {
                Some(policy) => request.mixed_instances_policy(policy),
                None => request.launch_template(template),
            };
            request
                .vpc_zone_identifier(subnets(ctx, desired, group)?)
                .set_min_size(want.min_size.exact().copied().map(aws_count))
                .set_max_size(want.max_size.exact().copied().map(aws_count))
                .set_health_check_type(want.health_check_type.exact().cloned())
                .set_health_check_grace_period(
                    want.health_check_grace_period
                        .exact()
                        .copied()
                        .map(aws_count),
                )
                .send()
                .await
                .classify("autoscaling:UpdateAutoScalingGroup")
                .map_err(err())?;
        }
        if changes.has(GroupField::LifecycleHooks) {
            let have = live.state::<GroupState<Live>>()?;
            put_hooks(
                ctx,
                desired,
                want,
                have.lifecycle_hooks.as_deref().unwrap_or_default(),
            )
            .await?;
        }
        if changes.has(GroupField::GroupMetrics) {
            let on = want.group_metrics.exact() == Some(&true);
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

/// The group's typed desired state; the template and subnets resolve through `resolved`.
fn desired_state(
    bp: &Blueprint,
    resolved: &Resolved,
    g: &ballast_blueprint::AutoScalingGroup,
) -> GroupState<Desired> {
    let template = resolved
        .physical_id(&ResourceId::new(
            ResourceKind::LaunchTemplate,
            &g.launch_template,
        ))
        .map(|id| {
            Some(TemplateRef {
                id: Some(id.to_string()),
                version: TEMPLATE_VERSION.to_string(),
            })
        });
    let subnets: Option<Vec<String>> = g
        .subnets
        .iter()
        .map(|s| subnet_id(bp, resolved, s))
        .collect();
    let subnets = subnets.map(|mut s| {
        s.sort();
        s.dedup();
        s
    });
    let instance_types = bp
        .spec
        .launch_templates
        .iter()
        .find(|lt| lt.name == g.launch_template)
        .map(|lt| lt.instance_types.clone())
        .unwrap_or_default();
    let mixed = g.instances_distribution.as_ref().map(|d| MixedInstances {
        instance_types,
        on_demand_base_capacity: i64::from(d.on_demand_base_capacity),
        on_demand_percentage_above_base: i64::from(d.on_demand_percentage_above_base),
        spot_allocation_strategy: Some(spot_strategy(d.spot_allocation_strategy).to_string()),
    });
    let mut hooks: Vec<GroupHook> = g
        .lifecycle_hooks
        .iter()
        .map(|h| GroupHook {
            name: Some(h.name.clone()),
            transition: Some(
                match h.transition {
                    LifecycleTransition::Launching => LAUNCHING,
                    LifecycleTransition::Terminating => TERMINATING,
                }
                .to_string(),
            ),
            heartbeat_timeout: Some(h.heartbeat_timeout.as_secs()),
            default_result: Some(
                match h.default_result {
                    ballast_blueprint::LifecycleResult::Continue => "CONTINUE",
                    ballast_blueprint::LifecycleResult::Abandon => "ABANDON",
                }
                .to_string(),
            ),
        })
        .collect();
    hooks.sort_by(|a, b| a.name.cmp(&b.name));
    GroupState {
        launch_template: Want::exact_or_later(template),
        mixed_instances: Want::Exact(mixed),
        subnets: Want::exact_or_later(subnets),
        min_size: Want::Exact(i64::from(g.min_size)),
        max_size: Want::Exact(i64::from(g.max_size)),
        desired_capacity: Want::Within(g.min_size.into(), g.max_size.into()),
        health_check_type: Want::Exact(
            match g.health_check.kind {
                HealthCheckType::Ec2 => "EC2",
                HealthCheckType::Elb => "ELB",
            }
            .to_string(),
        ),
        health_check_grace_period: Want::Exact(g.health_check.grace_period.as_secs()),
        lifecycle_hooks: Want::Exact(hooks),
        group_metrics: Want::Exact(g.group_metrics),
        propagate_at_launch: Want::Exact(true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provision::diff::Action;
    use crate::provision::state::FieldName;
    use crate::provision::typed::testing::{changed_fields, owned_live, typed_diff};

    fn blueprint() -> Blueprint {
        ballast_blueprint::parse(
            "t",
            "apiVersion: ballast.dev/v1\nkind: Blueprint\nmetadata: {name: t, region: us-east-1}\nspec:\n  launchTemplates:\n    - {name: worker, imageId: ami-0abcdef1234567890, instanceTypes: [m6i.large, m5.large]}\n  autoScalingGroups:\n    - name: workers\n      launchTemplate: worker\n      subnets: [subnet-0123456789abcdef1, subnet-0123456789abcdef0]\n      minSize: 2\n      maxSize: 10\n      instancesDistribution: {onDemandBaseCapacity: 2, onDemandPercentageAboveBase: 30}\n      lifecycleHooks:\n        - {name: drain, transition: terminating, heartbeatTimeout: 120s}\n",
        )
        .unwrap()
        .blueprint
    }

    /// The launch template as if it existed, so the group's template reference resolves.
    fn resolved() -> Resolved {
        let mut resolved = Resolved::default();
        resolved.insert(LiveState::referenced(
            ResourceKind::LaunchTemplate,
            "worker",
            "t-worker",
            "lt-0123",
            None,
        ));
        resolved
    }

    /// The live state AWS reports for a group exactly as `want` describes it, running 3.
    fn matching(want: &GroupState<Desired>) -> GroupState<Live> {
        GroupState {
            desired_capacity: Some(3),
            ..want.assumed_live()
        }
    }

    #[test]
    fn a_group_differing_in_one_field_yields_exactly_that_change() {
        let desired = AutoScalingGroups::desired(&blueprint(), &resolved());
        let want = desired[0].state::<GroupState<Desired>>().unwrap();
        assert_eq!(
            want.subnets.exact().cloned(),
            Some(vec![
                "subnet-0123456789abcdef0".to_string(),
                "subnet-0123456789abcdef1".to_string()
            ])
        );
        let same = matching(want);
        let live = owned_live(&desired[0], same.clone(), same.live_fields());
        assert_eq!(typed_diff(&desired[0], &live), Action::NoChange);

        let mut drifted = same.clone();
        drifted.max_size = Some(20);
        let live = owned_live(&desired[0], drifted.clone(), drifted.live_fields());
        let action = typed_diff(&desired[0], &live);
        assert!(matches!(action, Action::Update { .. }), "{action:?}");
        assert_eq!(changed_fields(&action), vec![GroupField::MaxSize.name()]);

        // The autoscaler's capacity drifts only outside the bounds.
        let mut scaled = same.clone();
        scaled.desired_capacity = Some(10);
        let live = owned_live(&desired[0], scaled.clone(), scaled.live_fields());
        assert_eq!(typed_diff(&desired[0], &live), Action::NoChange);
        scaled.desired_capacity = Some(11);
        let live = owned_live(&desired[0], scaled.clone(), scaled.live_fields());
        assert_eq!(
            changed_fields(&typed_diff(&desired[0], &live)),
            vec![GroupField::DesiredCapacity.name()]
        );

        let mut hooks = same;
        if let Some(Some(hook)) = hooks.lifecycle_hooks.as_mut().map(|h| h.first_mut()) {
            hook.heartbeat_timeout = Some(60);
        }
        let live = owned_live(&desired[0], hooks.clone(), hooks.live_fields());
        assert_eq!(
            changed_fields(&typed_diff(&desired[0], &live)),
            vec![GroupField::LifecycleHooks.name()]
        );
    }

    /// The rendered fields keep the shape the untyped state had (plan JSON is unchanged).
    #[test]
    fn rendered_fields_keep_their_shape() {
        let desired = AutoScalingGroups::desired(&blueprint(), &resolved());
        let want = desired[0].state::<GroupState<Desired>>().unwrap();
        let fields = matching(want).live_fields();
        assert_eq!(
            fields[GroupField::LaunchTemplate.name()],
            json!({"id": "lt-0123", "version": "$Default"})
        );
        assert_eq!(
            fields[GroupField::MixedInstances.name()],
            json!({
                "instanceTypes": ["m6i.large", "m5.large"],
                "onDemandBaseCapacity": 2,
                "onDemandPercentageAboveBase": 30,
                "spotAllocationStrategy": "price-capacity-optimized",
            })
        );
        assert_eq!(
            fields[GroupField::LifecycleHooks.name()],
            json!([{
                "name": "drain",
                "transition": TERMINATING,
                "heartbeatTimeout": 120,
                "defaultResult": "CONTINUE",
            }])
        );
        assert_eq!(
            desired[0].fields.iter().map(|f| f.name).collect::<Vec<_>>(),
            vec![
                "launchTemplate",
                "mixedInstances",
                "subnets",
                "minSize",
                "maxSize",
                "desiredCapacity",
                "healthCheckType",
                "healthCheckGracePeriod",
                "lifecycleHooks",
                "groupMetrics",
                "propagateAtLaunch",
            ]
        );
    }

    #[test]
    fn counts_saturate_instead_of_wrapping() {
        assert_eq!(aws_count(u64::MAX), i32::MAX);
        assert_eq!(aws_count(i64::MIN), i32::MIN);
        assert_eq!(aws_count(120_u64), 120);
    }
}
