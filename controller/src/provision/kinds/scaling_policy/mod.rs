//! A scaling policy's part in AWS: its dead-man's switch.
//!
//! Ballast's autoscaler runs the scaling policy itself; what AWS holds for it, when the blueprint
//! declares `deadMansSwitch`, is a fallback that scales out while Ballast does not:
//!
//! - a **step-scaling policy** on the group (`PutScalingPolicy`, `PolicyType=StepScaling`, one
//!   step from 0 up: `ChangeInCapacity` of `addInstances`, `EstimatedInstanceWarmup` = `warmup`),
//! - a **metric-math alarm** (`PutMetricAlarm` with `Metrics`): per minute,
//!   `IF(FILL(heartbeat, 0) == 0 AND backlog > backlogThreshold, 1, 0)` where `heartbeat` is the
//!   `SampleCount` of the autoscaler's `Heartbeat` metric for the group
//!   ([`crate::autoscale::publish`]) and `backlog` the `Maximum` of the queue's
//!   `ApproximateNumberOfMessagesVisible`; it fires when that is above 0 for every minute of
//!   `heartbeatTimeout`, and its only action is the step policy. A minute with no backlog
//!   datapoint has no value and does not breach (`TreatMissingData=notBreaching`): without a
//!   backlog reading the switch has no reason to act.
//!
//! Both carry one name, `<metadata.name>-<policy>-dead-mans-switch`, and are one resource here
//! (`scaling-policy/<name>`): the alarm is useless without the policy and the policy is never
//! invoked without the alarm. Apply creates the policy first (the alarm needs its ARN), destroy
//! deletes the alarm first, so an interrupted apply or destroy leaves at most a policy that
//! nothing invokes, which the next observe finds by name and completes or deletes.
//!
//! **Ownership.** Only the alarm can carry tags: it gets the ownership tags like every alarm
//! (its logical-id tag names this scaling policy, which keeps the alarm kind from claiming it).
//! A step-scaling policy cannot be tagged: its identity is its group and its name. A policy of
//! this name on one of the blueprint's groups is taken as the blueprint's when the group is (the
//! group observe found the group owned). An undeclared switch (removed from the blueprint) is
//! found by listing the `StepScaling` policies by name, so it is planned for deletion like any
//! removed resource (a renamed scaling policy's old switch included). The cases this kind cannot
//! see: a switch policy left on a group that is no longer this blueprint's (deleting a group
//! deletes its policies, so only a group handed over by hand keeps one), and an undeclared
//! switch's alarm whose policy is gone: that alarm still carries the ownership tag and is
//! reported as an orphan (`alarm/?`), which `destroy --include-orphans` deletes.

use aws_sdk_autoscaling::types::{ScalingPolicy as AwsScalingPolicy, StepAdjustment};
use aws_sdk_cloudwatch::types::{ComparisonOperator, MetricAlarm};
use ballast_aws::SdkResultExt;
use ballast_blueprint::{Blueprint, ResourceId, ResourceKind, Tags};
use futures::future::try_join_all;
use serde_json::{Value, json};
use tracing::instrument;

use super::alarm::{
    Threshold, aws_tags, canonical_threshold, delete_alarm, describe_by_names, list_tags,
    sorted_strings, tag_alarm,
};
use super::{ApplyContext, ObserveContext, Observed, ResourceOps, SharedReads, declared};
use crate::provision::diff::FieldChange;
use crate::provision::error::ProvisionError;
use crate::provision::state::{Changes, DesiredState, LiveState, Ownership, Resolved};
use crate::provision::tagged::tags_or_read;
use crate::provision::typed::{Desired, FieldValue, Live, TypedDesired, TypedLive, Want};

mod metric_math;

use metric_math::{PERIOD_SECS, Query, aws_query, live_query, queries};

pub struct ScalingPolicies;

/// What makes a switch's name: the policy and the alarm are both called `<prefix><policy><SUFFIX>`.
const SUFFIX: &str = "-dead-mans-switch";
const POLICY_TYPE: &str = "StepScaling";
const ADJUSTMENT_TYPE: &str = "ChangeInCapacity";
/// The alarm's metric is 0 or 1 per minute, so any step aggregation reads the same.
const AGGREGATION: &str = "Maximum";
const ALARM_COMPARISON: &str = "greaterThan";
/// The alarm's expression is 1 in a minute that breaches, 0 otherwise.
const ALARM_THRESHOLD: f64 = 0.0;

crate::provision::state::field_names! {
    /// The fields of a scaling policy's dead-man's switch, as plan and drift output name them.
    pub enum ScalingPolicyField {
        PolicyType = "policyType",
        AdjustmentType = "adjustmentType",
        Steps = "stepAdjustments",
        Aggregation = "metricAggregationType",
        Warmup = "warmup",
        Metrics = "alarmMetrics",
        Threshold = "alarmThreshold",
        Comparison = "alarmComparison",
        EvaluationPeriods = "alarmEvaluationPeriods",
        DatapointsToAlarm = "alarmDatapointsToAlarm",
        TreatMissingData = "alarmTreatMissingData",
        Actions = "alarmActions",
        OkActions = "alarmOkActions",
        InsufficientDataActions = "alarmInsufficientDataActions",
    }
}

crate::provision::typed::typed_state! {
    /// The switch's compared state: the step policy's fields, then the alarm's. Every field is
    /// enforced: `PutScalingPolicy` and `PutMetricAlarm` both replace the whole configuration.
    pub struct SwitchState for ScalingPolicyField {
        PolicyType => policy_type: String = Enforced,
        AdjustmentType => adjustment_type: String = Enforced,
        Steps => steps: Vec<Step> = Enforced,
        Aggregation => aggregation: String = Enforced,
        /// Seconds (`EstimatedInstanceWarmup`).
        Warmup => warmup: u64 = Enforced,
        Metrics => metrics: Vec<Query> = Enforced,
        Threshold => threshold: Threshold = Enforced,
        Comparison => comparison: String = Enforced,
        EvaluationPeriods => evaluation_periods: u64 = Enforced,
        DatapointsToAlarm => datapoints_to_alarm: u64 = Enforced,
        TreatMissingData => treat_missing_data: String = Enforced,
        /// Whether the alarm's actions are exactly the step policy (its ARN is AWS's to choose).
        Actions => actions: AlarmActions = Enforced,
        OkActions => ok_actions: Vec<String> = Enforced,
        InsufficientDataActions => insufficient_data_actions: Vec<String> = Enforced,
    }
}

/// One step adjustment; bounds are relative to the alarm threshold, as AWS takes them.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub lower: Option<Threshold>,
    pub upper: Option<Threshold>,
    pub adjustment: i64,
}

impl FieldValue for Step {
    fn to_value(&self) -> Value {
        json!({
            "lowerBound": self.lower.as_ref().map(FieldValue::to_value),
            "upperBound": self.upper.as_ref().map(FieldValue::to_value),
            "adjustment": self.adjustment,
        })
    }
}

/// The alarm's actions, compared with the step policy's ARN as read in the same observe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlarmActions {
    /// Exactly the switch's step policy.
    StepPolicy,
    /// Anything else (sorted): a hand edit, or a policy that is gone.
    Other(Vec<String>),
}

impl FieldValue for AlarmActions {
    fn to_value(&self) -> Value {
        match self {
            AlarmActions::StepPolicy => json!(["(the switch's step policy)"]),
            AlarmActions::Other(list) => json!(list),
        }
    }
}

/// The switch of scaling policy `p` (declaring one) as the blueprint wants it: pure.
fn desired_state(
    bp: &Blueprint,
    p: &ballast_blueprint::ScalingPolicy,
    switch: &ballast_blueprint::DeadMansSwitch,
) -> SwitchState<Desired> {
    let periods = switch.heartbeat_timeout.as_secs() / PERIOD_SECS;
    SwitchState {
        policy_type: Want::Exact(POLICY_TYPE.into()),
        adjustment_type: Want::Exact(ADJUSTMENT_TYPE.into()),
        steps: Want::Exact(vec![Step {
            lower: Some(canonical_threshold(0.0)),
            upper: None,
            adjustment: i64::from(switch.add_instances),
        }]),
        aggregation: Want::Exact(AGGREGATION.into()),
        warmup: Want::Exact(switch.warmup_for(p).as_secs()),
        metrics: Want::Exact(queries(
            bp,
            p,
            switch.backlog_threshold_for(p.target_backlog_in_force()),
        )),
        threshold: Want::Exact(canonical_threshold(ALARM_THRESHOLD)),
        comparison: Want::Exact(ALARM_COMPARISON.into()),
        evaluation_periods: Want::Exact(periods),
        datapoints_to_alarm: Want::Exact(periods),
        treat_missing_data: Want::Exact("notBreaching".into()),
        actions: Want::Exact(AlarmActions::StepPolicy),
        ok_actions: Want::Exact(Vec::new()),
        insufficient_data_actions: Want::Exact(Vec::new()),
    }
}

/// The switch as AWS has it: its step policy and its alarm, either possibly missing.
fn live_state(policy: Option<&AwsScalingPolicy>, alarm: Option<&MetricAlarm>) -> SwitchState<Live> {
    let count = |n: Option<i32>| n.and_then(|n| u64::try_from(n).ok());
    let policy_arn = policy.and_then(AwsScalingPolicy::policy_arn);
    let evaluation_periods = alarm.and_then(MetricAlarm::evaluation_periods);
    SwitchState {
        policy_type: policy.and_then(|p| p.policy_type().map(str::to_string)),
        adjustment_type: policy.and_then(|p| p.adjustment_type().map(str::to_string)),
        steps: policy.map(|p| {
            p.step_adjustments()
                .iter()
                .map(|s| Step {
                    lower: s.metric_interval_lower_bound().map(canonical_threshold),
                    upper: s.metric_interval_upper_bound().map(canonical_threshold),
                    // Unset (never reported) reads as 0: drift against any step.
                    adjustment: s.scaling_adjustment().map_or(0, i64::from),
                })
                .collect()
        }),
        aggregation: policy.and_then(|p| p.metric_aggregation_type().map(str::to_string)),
        warmup: policy.and_then(|p| count(p.estimated_instance_warmup())),
        metrics: alarm.map(|a| a.metrics().iter().map(live_query).collect()),
        threshold: alarm.and_then(|a| a.threshold().map(canonical_threshold)),
        comparison: alarm.and_then(|a| {
            a.comparison_operator().map(|c| match c {
                ComparisonOperator::GreaterThanThreshold => ALARM_COMPARISON.to_string(),
                other => other.as_str().to_string(),
            })
        }),
        evaluation_periods: count(evaluation_periods),
        // Unset means "all evaluation periods".
        datapoints_to_alarm: alarm
            .and_then(|a| count(a.datapoints_to_alarm().or(evaluation_periods))),
        treat_missing_data: alarm.map(|a| a.treat_missing_data().unwrap_or("missing").to_string()),
        actions: alarm.map(|a| {
            let actions = sorted_strings(a.alarm_actions());
            match policy_arn {
                Some(arn) if actions == [arn] => AlarmActions::StepPolicy,
                _ => AlarmActions::Other(actions),
            }
        }),
        ok_actions: alarm.map(|a| sorted_strings(a.ok_actions())),
        insufficient_data_actions: alarm.map(|a| sorted_strings(a.insufficient_data_actions())),
    }
}

/// The group a declared switch's policy sits on (physical name).
fn group_of(bp: &Blueprint, p: &ballast_blueprint::ScalingPolicy) -> Option<String> {
    let fleet = p.fleet.as_deref()?;
    Some(
        bp.auto_scaling_group(fleet)
            .map(|g| bp.group_name(g))
            .unwrap_or_else(|| fleet.to_string()),
    )
}

/// Every `StepScaling` policy of the region whose name is a switch of this blueprint.
#[instrument(skip_all)]
async fn switch_policies(
    ctx: &ObserveContext<'_>,
    prefix: &str,
) -> Result<Vec<AwsScalingPolicy>, ProvisionError> {
    let pages = ctx
        .clients
        .autoscaling()
        .describe_policies()
        .policy_types(POLICY_TYPE)
        .into_paginator()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .classify("autoscaling:DescribePolicies")
        .map_err(ProvisionError::aws(&ResourceId::new(
            ScalingPolicies::KIND,
            "*",
        )))?;
    Ok(pages
        .into_iter()
        .flat_map(|p| p.scaling_policies.unwrap_or_default())
        .filter(|p| {
            p.policy_name()
                .is_some_and(|n| n.starts_with(prefix) && n.ends_with(SUFFIX))
        })
        .collect())
}

/// The ARN of the switch's step policy, read back (`PutScalingPolicy` answers it too, but a
/// read also serves an update that did not put the policy).
#[instrument(skip_all, fields(policy = %name))]
async fn policy_arn(
    ctx: &ApplyContext<'_>,
    id: &ResourceId,
    group: &str,
    name: &str,
) -> Result<String, ProvisionError> {
    let out = ctx
        .clients
        .autoscaling
        .describe_policies()
        .auto_scaling_group_name(group)
        .policy_names(name)
        .send()
        .await
        .classify("autoscaling:DescribePolicies")
        .map_err(ProvisionError::aws(id))?;
    out.scaling_policies()
        .iter()
        .find(|p| p.policy_name() == Some(name))
        .and_then(|p| p.policy_arn().map(str::to_string))
        .ok_or_else(|| ProvisionError::Unexpected {
            resource: id.clone(),
            operation: "autoscaling:DescribePolicies",
            detail: format!(
                "step policy `{name}` not found on group `{group}` after PutScalingPolicy"
            ),
        })
}

#[instrument(skip_all, fields(policy = %desired.physical_name, group = %group))]
async fn put_policy(
    ctx: &ApplyContext<'_>,
    desired: &DesiredState,
    group: &str,
) -> Result<(), ProvisionError> {
    let want = desired.state::<SwitchState<Desired>>()?;
    let steps = want
        .steps
        .exact()
        .map(|steps| {
            steps
                .iter()
                .map(|s| {
                    StepAdjustment::builder()
                        .set_metric_interval_lower_bound(s.lower.as_ref().and_then(threshold_f64))
                        .set_metric_interval_upper_bound(s.upper.as_ref().and_then(threshold_f64))
                        .scaling_adjustment(i32::try_from(s.adjustment).unwrap_or(i32::MAX))
                        .build()
                })
                .collect()
        })
        .unwrap_or_default();
    ctx.clients
        .autoscaling
        .put_scaling_policy()
        .auto_scaling_group_name(group)
        .policy_name(&desired.physical_name)
        .policy_type(POLICY_TYPE)
        .adjustment_type(ADJUSTMENT_TYPE)
        .metric_aggregation_type(AGGREGATION)
        .set_estimated_instance_warmup(want.warmup.exact().and_then(|w| i32::try_from(*w).ok()))
        .set_step_adjustments(Some(steps))
        .send()
        .await
        .classify("autoscaling:PutScalingPolicy")
        .map_err(ProvisionError::aws(&desired.id))?;
    Ok(())
}

fn threshold_f64(t: &Threshold) -> Option<f64> {
    match t {
        Threshold::Decimal(d) => d.to_string().parse().ok(),
        Threshold::Unrepresentable(text) => text.parse().ok(),
    }
}

/// `PutMetricAlarm` with the whole configuration, its action the step policy at `policy_arn`.
/// Tags are sent every time: CloudWatch applies them to a new alarm and ignores them otherwise.
#[instrument(skip_all, fields(alarm = %desired.physical_name))]
async fn put_alarm(
    ctx: &ApplyContext<'_>,
    desired: &DesiredState,
    policy_arn: &str,
) -> Result<(), ProvisionError> {
    let want = desired.state::<SwitchState<Desired>>()?;
    let count = |n: Option<&u64>| n.and_then(|n| i32::try_from(*n).ok());
    let metrics = want
        .metrics
        .exact()
        .map(|m| m.iter().map(aws_query).collect());
    ctx.clients
        .cloudwatch
        .put_metric_alarm()
        .alarm_name(&desired.physical_name)
        .alarm_description(format!(
            "Dead-man's switch of Ballast scaling policy `{}`: scales the group out while the autoscaler's heartbeat is missing and the backlog is high",
            desired.id.name
        ))
        .set_metrics(metrics)
        .threshold(ALARM_THRESHOLD)
        .comparison_operator(ComparisonOperator::GreaterThanThreshold)
        .set_evaluation_periods(count(want.evaluation_periods.exact()))
        .set_datapoints_to_alarm(count(want.datapoints_to_alarm.exact()))
        .treat_missing_data(
            want.treat_missing_data
                .exact()
                .map_or("notBreaching", String::as_str),
        )
        .alarm_actions(policy_arn)
        .set_ok_actions(Some(Vec::new()))
        .set_insufficient_data_actions(Some(Vec::new()))
        .set_tags(Some(aws_tags(&desired.tags)))
        .send()
        .await
        .classify("cloudwatch:PutMetricAlarm")
        .map_err(ProvisionError::aws(&desired.id))?;
    Ok(())
}

/// The group of the switch `id` in blueprint `bp` (declared switches only).
fn declared_group(bp: &Blueprint, id: &ResourceId) -> Result<String, ProvisionError> {
    bp.spec
        .scaling_policies
        .iter()
        .find(|p| p.name == id.name)
        .and_then(|p| group_of(bp, p))
        .ok_or_else(|| ProvisionError::NotDeclared {
            resource: id.clone(),
        })
}

impl ResourceOps for ScalingPolicies {
    const KIND: ResourceKind = ResourceKind::ScalingPolicy;
    type Field = ScalingPolicyField;

    fn desired(bp: &Blueprint, _resolved: &Resolved) -> Vec<DesiredState> {
        bp.spec
            .scaling_policies
            .iter()
            .filter_map(|p| {
                let switch = p.dead_mans_switch.as_ref()?;
                let id = ResourceId::new(Self::KIND, &p.name);
                let state = desired_state(bp, p, switch);
                Some(DesiredState {
                    physical_name: bp.dead_mans_switch_name(p),
                    fields: state.expected_fields(),
                    tags: bp.ownership_tags_for(&id),
                    adopt: false,
                    deletion_policy: Blueprint::effective_deletion_policy(Self::KIND, None),
                    typed: TypedDesired::new(state),
                    id,
                })
            })
            .collect()
    }

    #[instrument(skip_all, fields(kind = "scaling-policy"))]
    async fn observe(ctx: &ObserveContext<'_>) -> Result<Observed, ProvisionError> {
        let bp = ctx.blueprint;
        let declared = declared(bp, Self::KIND);
        let prefix = format!("{}-", bp.metadata.name);
        // Declared switches, and undeclared ones of this blueprint found by their policy.
        let policies = switch_policies(ctx, &prefix).await?;
        let mut names: Vec<(ResourceId, bool, String)> = declared
            .iter()
            .map(|(id, name)| (id.clone(), true, name.clone()))
            .collect();
        for p in &policies {
            let Some(name) = p.policy_name() else {
                continue;
            };
            if names.iter().any(|(_, _, n)| n == name) {
                continue;
            }
            let logical = name
                .trim_start_matches(&prefix)
                .trim_end_matches(SUFFIX)
                .to_string();
            names.push((
                ResourceId::new(Self::KIND, &logical),
                false,
                name.to_string(),
            ));
        }
        let all: Vec<String> = names.iter().map(|(_, _, n)| n.clone()).collect();
        let alarms = if all.is_empty() {
            Vec::new()
        } else {
            describe_by_names(ctx, &all).await?
        };
        let cw = ctx.clients.cloudwatch();
        let found: Vec<_> = names
            .into_iter()
            .filter_map(|(id, is_declared, name)| {
                // A declared switch's policy sits on the declared group; a removed one's on
                // whichever group holds it.
                let group = match is_declared {
                    true => bp
                        .spec
                        .scaling_policies
                        .iter()
                        .find(|p| p.name == id.name)
                        .and_then(|p| group_of(bp, p)),
                    false => None,
                };
                let policy = policies
                    .iter()
                    .find(|p| {
                        p.policy_name() == Some(name.as_str())
                            && group
                                .as_deref()
                                .is_none_or(|g| p.auto_scaling_group_name() == Some(g))
                    })
                    .cloned();
                let alarm = alarms
                    .iter()
                    .find(|a| a.alarm_name() == Some(name.as_str()))
                    .cloned();
                (policy.is_some() || alarm.is_some()).then_some((
                    id,
                    is_declared,
                    name,
                    policy,
                    alarm,
                ))
            })
            .collect();
        let tags = try_join_all(found.iter().map(|(id, _, _, _, alarm)| {
            let arn = alarm.as_ref().and_then(|a| a.alarm_arn());
            tags_or_read(&ctx.shared.tagged, arn, move || async move {
                match arn {
                    Some(arn) => list_tags(cw, id, arn).await,
                    None => Ok(Tags::new()),
                }
            })
        }))
        .await?;
        let mut observed = Observed::default();
        for ((id, is_declared, name, policy, alarm), tags) in found.into_iter().zip(tags) {
            let group = policy
                .as_ref()
                .and_then(|p| p.auto_scaling_group_name())
                .map(str::to_string);
            let ownership = match (&alarm, &group) {
                (Some(_), _) => Ownership::from_tags(&tags, &bp.metadata.name),
                // A policy cannot be tagged: it is ours when its group is.
                (None, Some(group)) => group_ownership(ctx.resolved, bp, group),
                (None, None) => Ownership::Unowned,
            };
            let state = live_state(policy.as_ref(), alarm.as_ref());
            observed.file(
                LiveState {
                    id,
                    physical_name: name,
                    // The group: with the name, the step policy's identity.
                    physical_id: group.unwrap_or_default(),
                    arn: alarm
                        .as_ref()
                        .and_then(|a| a.alarm_arn().map(str::to_string)),
                    ownership,
                    tags,
                    fields: state.live_fields(),
                    typed: TypedLive::new(state),
                },
                is_declared,
            );
        }
        Ok(observed)
    }

    #[instrument(skip_all, fields(switch = %desired.physical_name))]
    async fn create(
        ctx: &ApplyContext<'_>,
        desired: &DesiredState,
    ) -> Result<LiveState, ProvisionError> {
        let want = desired.state::<SwitchState<Desired>>()?;
        let group = declared_group(ctx.blueprint, &desired.id)?;
        put_policy(ctx, desired, &group).await?;
        let arn = policy_arn(ctx, &desired.id, &group, &desired.physical_name).await?;
        put_alarm(ctx, desired, &arn).await?;
        // Read back for the alarm's ARN (CloudWatch is eventually consistent: a miss is none).
        let observe = ObserveContext {
            clients: &ctx.clients.observer(),
            blueprint: ctx.blueprint,
            resolved: ctx.resolved,
            shared: &SharedReads::default(),
        };
        let alarm_arn = describe_by_names(&observe, std::slice::from_ref(&desired.physical_name))
            .await?
            .into_iter()
            .find(|a| a.alarm_name() == Some(desired.physical_name.as_str()))
            .and_then(|a| a.alarm_arn().map(str::to_string));
        let state = want.assumed_live();
        Ok(LiveState {
            id: desired.id.clone(),
            physical_name: desired.physical_name.clone(),
            physical_id: group,
            arn: alarm_arn,
            ownership: Ownership::Owned,
            tags: desired.tags.clone(),
            fields: state.live_fields(),
            typed: TypedLive::new(state),
        })
    }

    #[instrument(skip_all, fields(switch = %desired.physical_name))]
    async fn update(
        ctx: &ApplyContext<'_>,
        desired: &DesiredState,
        live: &LiveState,
        changes: &[FieldChange],
    ) -> Result<(), ProvisionError> {
        use ScalingPolicyField as F;
        let changes = Changes::<F>::of(changes);
        let group = declared_group(ctx.blueprint, &desired.id)?;
        let policy_changed = changes.any(&[
            F::PolicyType,
            F::AdjustmentType,
            F::Steps,
            F::Aggregation,
            F::Warmup,
        ]);
        if policy_changed {
            put_policy(ctx, desired, &group).await?;
        }
        let alarm_changed = changes.any(&[
            F::Metrics,
            F::Threshold,
            F::Comparison,
            F::EvaluationPeriods,
            F::DatapointsToAlarm,
            F::TreatMissingData,
            F::Actions,
            F::OkActions,
            F::InsufficientDataActions,
        ]);
        // A missing alarm is created here (with its tags), so tags alone go through TagResource
        // only for an alarm that exists.
        if alarm_changed || live.arn.is_none() {
            let arn = policy_arn(ctx, &desired.id, &group, &desired.physical_name).await?;
            put_alarm(ctx, desired, &arn).await?;
        } else if changes.tags()
            && let Some(arn) = live.arn.as_deref()
        {
            tag_alarm(ctx, desired, arn).await?;
        }
        Ok(())
    }

    /// The alarm first: a step policy without its alarm is never invoked.
    #[instrument(skip_all, fields(switch = %live.physical_name))]
    async fn delete(ctx: &ApplyContext<'_>, live: &LiveState) -> Result<(), ProvisionError> {
        delete_alarm(ctx, live, &live.physical_name).await?;
        if live.physical_id.is_empty() {
            // No policy was found (only the alarm was there).
            return Ok(());
        }
        ProvisionError::unless_gone(
            &live.id,
            ctx.clients
                .autoscaling
                .delete_policy()
                .auto_scaling_group_name(&live.physical_id)
                .policy_name(&live.physical_name)
                .send()
                .await
                .classify("autoscaling:DeletePolicy"),
        )
    }
}

/// Ownership of a step policy on `group`: the group's, when the blueprint declares the group
/// and its observe found it; anything else is not known to be ours.
fn group_ownership(resolved: &Resolved, bp: &Blueprint, group: &str) -> Ownership {
    bp.spec
        .auto_scaling_groups
        .iter()
        .find(|g| bp.group_name(g) == group)
        .and_then(|g| resolved.get(&ResourceId::new(ResourceKind::AutoScalingGroup, &g.name)))
        .map_or(Ownership::Unowned, |live| live.ownership.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provision::typed::testing::shop_blueprint;
    use aws_sdk_cloudwatch::types::ComparisonOperator;

    fn blueprint() -> Blueprint {
        shop_blueprint(
            r#"  queues:
    - name: orders
  launchTemplates:
    - name: lt
      imageId: ami-123
      instanceTypes: [m6i.large]
  autoScalingGroups:
    - name: workers
      launchTemplate: lt
      subnets: [subnet-1]
      minSize: 1
      maxSize: 10
  scalingPolicies:
    - name: orders
      queue: orders
      fleet: workers
      targetBacklogPerInstance: 50
      deadMansSwitch:
        heartbeatTimeout: 5m
        addInstances: 2
    - name: plain
      queue: orders
      deployment: {namespace: ns, name: w}
      minReplicas: 1
      maxReplicas: 2
      targetBacklogPerInstance: 50
"#,
        )
    }

    #[test]
    fn only_policies_with_a_switch_have_something_in_aws() {
        let bp = blueprint();
        let desired = ScalingPolicies::desired(&bp, &Resolved::default());
        assert_eq!(desired.len(), 1);
        let d = &desired[0];
        assert_eq!(d.physical_name, "shop-orders-dead-mans-switch");
        assert_eq!(
            d.value(ScalingPolicyField::Steps),
            Some(&json!([{"lowerBound": 0, "upperBound": null, "adjustment": 2}]))
        );
        assert_eq!(d.value(ScalingPolicyField::Warmup), Some(&json!(90)));
        assert_eq!(
            d.value(ScalingPolicyField::EvaluationPeriods),
            Some(&json!(5))
        );
        let metrics = d.value(ScalingPolicyField::Metrics).unwrap();
        assert_eq!(
            metrics[0]["metric"]["dimensions"],
            json!({"AutoScalingGroupName": "shop-workers"})
        );
        assert_eq!(
            metrics[1]["metric"]["dimensions"],
            json!({"QueueName": "shop-orders"})
        );
        assert_eq!(
            metrics[2]["expression"],
            json!("IF(FILL(heartbeat, 0) == 0 AND backlog > 500, 1, 0)")
        );
        assert_eq!(
            d.tags.get(ballast_blueprint::OWNERSHIP_RESOURCE_TAG),
            Some(&"scaling-policy/orders".to_string())
        );
    }

    /// The switch's default threshold is ten targets, also when the target follows from the
    /// latency objective (10 s at 5 msg/s per instance is the 50 written above).
    #[test]
    fn a_derived_target_sets_the_switch_threshold() {
        let written = blueprint();
        let mut derived = written.clone();
        let policy = &mut derived.spec.scaling_policies[0];
        policy.target_backlog_per_instance = None;
        policy.latency_objective = Some(ballast_blueprint::Duration::from_secs(10));
        let metrics = |bp: &Blueprint| {
            ScalingPolicies::desired(bp, &Resolved::default())[0]
                .value(ScalingPolicyField::Metrics)
                .cloned()
                .unwrap()
        };
        assert_eq!(
            metrics(&derived)[2]["expression"],
            json!("IF(FILL(heartbeat, 0) == 0 AND backlog > 500, 1, 0)")
        );
        assert_eq!(metrics(&derived), metrics(&written));
        // A slower worker holds less per instance for the same wait: 10 s at 2 msg/s is 20.
        derived.spec.scaling_policies[0].service_rate_per_instance = 2;
        assert_eq!(
            metrics(&derived)[2]["expression"],
            json!("IF(FILL(heartbeat, 0) == 0 AND backlog > 200, 1, 0)")
        );
    }

    fn live_pair(d: &DesiredState) -> (AwsScalingPolicy, MetricAlarm) {
        let want = d.state::<SwitchState<Desired>>().unwrap();
        let arn = "arn:aws:autoscaling:us-east-1:1:scalingPolicy:x:autoScalingGroupName/shop-workers:policyName/shop-orders-dead-mans-switch";
        let policy = AwsScalingPolicy::builder()
            .auto_scaling_group_name("shop-workers")
            .policy_name(&d.physical_name)
            .policy_arn(arn)
            .policy_type("StepScaling")
            .adjustment_type("ChangeInCapacity")
            .metric_aggregation_type("Maximum")
            .estimated_instance_warmup(90)
            .step_adjustments(
                StepAdjustment::builder()
                    .metric_interval_lower_bound(0.0)
                    .scaling_adjustment(2)
                    .build(),
            )
            .build();
        let alarm = MetricAlarm::builder()
            .alarm_name(&d.physical_name)
            .alarm_arn("arn:aws:cloudwatch:us-east-1:1:alarm:shop-orders-dead-mans-switch")
            .set_metrics(Some(
                want.metrics
                    .exact()
                    .unwrap()
                    .iter()
                    .map(aws_query)
                    .collect(),
            ))
            .threshold(0.0)
            .comparison_operator(ComparisonOperator::GreaterThanThreshold)
            .evaluation_periods(5)
            .treat_missing_data("notBreaching")
            .alarm_actions(arn)
            .build();
        (policy, alarm)
    }

    #[test]
    fn a_live_switch_reads_back_as_desired() {
        let bp = blueprint();
        let desired = ScalingPolicies::desired(&bp, &Resolved::default());
        let (policy, alarm) = live_pair(&desired[0]);
        let live = live_state(Some(&policy), Some(&alarm));
        let want = desired[0].state::<SwitchState<Desired>>().unwrap();
        assert!(want.changes(&live).is_empty(), "{:?}", want.changes(&live));
        // An alarm acting on anything but the switch's policy is drift.
        let mut other = alarm.clone();
        other.alarm_actions = Some(vec!["arn:aws:sns:us-east-1:1:t".into()]);
        let live = live_state(Some(&policy), Some(&other));
        let changed: Vec<_> = want.changes(&live).iter().map(|c| c.field).collect();
        assert_eq!(changed, vec![ScalingPolicyField::Actions]);
        // Without its policy, the alarm's action points nowhere and the policy's fields are unset.
        let live = live_state(None, Some(&alarm));
        let changed: Vec<_> = want.changes(&live).iter().map(|c| c.field).collect();
        assert!(changed.contains(&ScalingPolicyField::Actions));
        assert!(changed.contains(&ScalingPolicyField::Steps));
    }

    #[test]
    fn a_switch_differing_in_one_field_yields_exactly_that_change() {
        use crate::provision::diff::Action;
        use crate::provision::state::FieldName;
        use crate::provision::typed::testing::{changed_fields, owned_live, typed_diff};
        let desired = ScalingPolicies::desired(&blueprint(), &Resolved::default());
        let want = &desired[0];
        let same = want.state::<SwitchState<Desired>>().unwrap().assumed_live();
        let live = owned_live(want, same.clone(), same.live_fields());
        assert_eq!(typed_diff(want, &live), Action::NoChange);
        let mut drifted = same.clone();
        drifted.warmup = Some(30);
        let live = owned_live(want, drifted.clone(), drifted.live_fields());
        assert_eq!(
            changed_fields(&typed_diff(want, &live)),
            vec![ScalingPolicyField::Warmup.name()]
        );
        let mut drifted = same;
        if let Some(metrics) = drifted.metrics.as_mut() {
            metrics[2].expression = Some("1".into());
        }
        let live = owned_live(want, drifted.clone(), drifted.live_fields());
        assert_eq!(
            changed_fields(&typed_diff(want, &live)),
            vec![ScalingPolicyField::Metrics.name()]
        );
    }
}
