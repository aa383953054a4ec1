//! CloudWatch metric alarms.
//!
//! `PutMetricAlarm` is an upsert that replaces the whole alarm configuration, so every field the
//! language has is enforced (an unset `description` or empty `actions` means "none"). Thresholds
//! are exact decimals in the blueprint and `f64` in CloudWatch's API: they are converted only at
//! the API edge, and live values are canonicalized back into the same normalized decimal text, so
//! `1000` and `1000.0` are the same threshold.
//!
//! Ownership is by tags: from the observe's tagging snapshot, or with `ListTagsForResource` on
//! the alarm ARN when the snapshot does not list it.

use std::collections::BTreeMap;
use std::str::FromStr;

use aws_sdk_cloudwatch::types::{
    AlarmType, ComparisonOperator, Dimension, MetricAlarm, Statistic as AwsStatistic, Tag,
};
use ballast_aws::SdkResultExt;
use ballast_blueprint::{
    Blueprint, Comparison, Decimal, MetricRef, MissingData, ResourceId, ResourceKind, Statistic,
    Tags, tagged_resource_id,
};
use futures::future::try_join_all;
use serde_json::{Value, json};
use tracing::{instrument, warn};

use super::{ApplyContext, ObserveContext, Observed, ResourceOps, SharedReads, declared};
use crate::provision::diff::FieldChange;
use crate::provision::error::ProvisionError;
use crate::provision::state::{Changes, DesiredState, LiveState, Ownership, Resolved};
use crate::provision::tagged::tags_or_read;
use crate::provision::typed::{Desired, FieldValue, Live, TypedDesired, TypedLive, Want};

pub struct Alarms;

crate::provision::state::field_names! {
    /// The fields of Alarms, as plan and drift output name them.
    pub enum AlarmField {
        Namespace = "namespace",
        Metric = "metric",
        Dimensions = "dimensions",
        Statistic = "statistic",
        Period = "period",
        Threshold = "threshold",
        Comparison = "comparison",
        EvaluationPeriods = "evaluationPeriods",
        DatapointsToAlarm = "datapointsToAlarm",
        TreatMissingData = "treatMissingData",
        Actions = "alarmActions",
        OkActions = "okActions",
        InsufficientDataActions = "insufficientDataActions",
        Description = "description",
    }
}

crate::provision::typed::typed_state! {
    /// An alarm's compared state: `desired` builds it from the blueprint, `observe` from
    /// DescribeAlarms (see [`live_state`]). Every field is enforced: PutMetricAlarm replaces
    /// the whole configuration.
    pub struct AlarmState for AlarmField {
        Namespace => namespace: String = Enforced,
        Metric => metric: String = Enforced,
        Dimensions => dimensions: Dimensions = Enforced,
        /// As CloudWatch names it (`Average`, …).
        Statistic => statistic: String = Enforced,
        /// Seconds.
        Period => period: u64 = Enforced,
        Threshold => threshold: Threshold = Enforced,
        /// The blueprint's spelling (`greaterThan`, …; see [`COMPARISONS`]).
        Comparison => comparison: String = Enforced,
        EvaluationPeriods => evaluation_periods: u64 = Enforced,
        /// Unset means "all evaluation periods", and is read so.
        DatapointsToAlarm => datapoints_to_alarm: u64 = Enforced,
        TreatMissingData => treat_missing_data: String = Enforced,
        /// Sorted, without duplicates.
        Actions => actions: Vec<String> = Enforced,
        OkActions => ok_actions: Vec<String> = Enforced,
        InsufficientDataActions => insufficient_data_actions: Vec<String> = Enforced,
        /// `None`: no description (an empty one reads so too).
        Description => description: Option<String> = Enforced,
    }
}

/// A metric's dimensions, name → value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dimensions(pub BTreeMap<String, String>);

impl FieldValue for Dimensions {
    fn to_value(&self) -> Value {
        json!(self.0)
    }
}

/// An alarm threshold: the blueprint's exact decimal, or a live `f64` that no decimal holds
/// (kept as its text, and so never equal to a blueprint's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Threshold {
    Decimal(Decimal),
    Unrepresentable(String),
}

impl FieldValue for Threshold {
    fn to_value(&self) -> Value {
        match self {
            Threshold::Decimal(d) => decimal_value(d),
            Threshold::Unrepresentable(text) => number_value(text),
        }
    }
}

/// Blueprint spelling ↔ CloudWatch's `ComparisonOperator`.
const COMPARISONS: &[(&str, &str)] = &[
    ("greaterThan", "GreaterThanThreshold"),
    ("greaterThanOrEqual", "GreaterThanOrEqualToThreshold"),
    ("lessThan", "LessThanThreshold"),
    ("lessThanOrEqual", "LessThanOrEqualToThreshold"),
];

/// DescribeAlarms takes at most 100 explicit alarm names per call.
const NAMES_PER_CALL: usize = 100;

/// Namespace and dimensions of a metric, with the `queue` / `fleet` shorthand resolved to the
/// physical queue or group name (the shorthand's dimension wins over an explicit one).
pub fn resolve_metric(bp: &Blueprint, m: &MetricRef) -> (String, BTreeMap<String, String>) {
    let mut dimensions = m.dimensions.clone();
    let mut namespace = m.namespace.clone();
    if let Some(queue) = &m.queue {
        let name = bp
            .queue(queue)
            .map(|q| bp.queue_name(q))
            .unwrap_or_else(|| queue.clone());
        dimensions.insert("QueueName".into(), name);
        namespace.get_or_insert_with(|| "AWS/SQS".into());
    }
    if let Some(fleet) = &m.fleet {
        let name = bp
            .auto_scaling_group(fleet)
            .map(|g| bp.group_name(g))
            .unwrap_or_else(|| fleet.clone());
        dimensions.insert("AutoScalingGroupName".into(), name);
        namespace.get_or_insert_with(|| "AWS/AutoScaling".into());
    }
    (namespace.unwrap_or_default(), dimensions)
}

pub fn statistic_name(s: Statistic) -> &'static str {
    match s {
        Statistic::Average => "Average",
        Statistic::Sum => "Sum",
        Statistic::Minimum => "Minimum",
        Statistic::Maximum => "Maximum",
        Statistic::SampleCount => "SampleCount",
    }
}

pub(super) fn comparison_name(c: Comparison) -> &'static str {
    match c {
        Comparison::GreaterThan => "greaterThan",
        Comparison::GreaterThanOrEqual => "greaterThanOrEqual",
        Comparison::LessThan => "lessThan",
        Comparison::LessThanOrEqual => "lessThanOrEqual",
    }
}

fn missing_data_name(m: MissingData) -> &'static str {
    match m {
        MissingData::Missing => "missing",
        MissingData::NotBreaching => "notBreaching",
        MissingData::Breaching => "breaching",
        MissingData::Ignore => "ignore",
    }
}

/// A decimal as a JSON number carrying its normalized text (`1000`, `0.5`).
fn decimal_value(d: &Decimal) -> Value {
    number_value(&d.to_string())
}

fn number_value(text: &str) -> Value {
    serde_json::Number::from_str(text)
        .map(Value::Number)
        .unwrap_or_else(|_| Value::String(text.to_string()))
}

/// A live `f64` threshold as the decimal it prints as: the shortest decimal that round-trips
/// (`1000.0` → `1000`), so that it equals the blueprint's.
pub fn canonical_threshold(value: f64) -> Threshold {
    let text = value.to_string();
    match serde_json::from_value::<Decimal>(Value::String(text.clone())) {
        Ok(d) => Threshold::Decimal(d),
        Err(_) => Threshold::Unrepresentable(text),
    }
}

/// The threshold as CloudWatch's API takes it (converted only here, at the API edge).
fn threshold_f64(threshold: &Threshold) -> Option<f64> {
    match threshold {
        Threshold::Decimal(d) => d.to_string().parse().ok(),
        Threshold::Unrepresentable(text) => text.parse().ok(),
    }
}

pub(super) fn sorted_strings(list: &[String]) -> Vec<String> {
    let mut list = list.to_vec();
    list.sort();
    list.dedup();
    list
}

pub(super) fn optional_text(s: Option<&str>) -> Option<String> {
    s.filter(|s| !s.is_empty()).map(str::to_string)
}

/// A count as CloudWatch's API takes it; `None` (not sent) if it does not fit.
fn count(n: &u64) -> Option<i32> {
    i32::try_from(*n).ok()
}

/// A live alarm's typed state, canonicalized as `desired` builds it.
pub fn live_state(a: &MetricAlarm) -> AlarmState<Live> {
    let dimensions: BTreeMap<String, String> = a
        .dimensions()
        .iter()
        .map(|d| {
            (
                d.name().unwrap_or_default().to_string(),
                d.value().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let comparison = a.comparison_operator().map(|c| {
        COMPARISONS
            .iter()
            .find(|(_, aws)| *aws == c.as_str())
            .map(|(ours, _)| ours.to_string())
            .unwrap_or_else(|| c.as_str().to_string())
    });
    // A negative count (never reported) reads as unset, and so as drift.
    let count = |n: Option<i32>| n.and_then(|n| u64::try_from(n).ok());
    let evaluation_periods = a.evaluation_periods();
    AlarmState {
        namespace: optional_text(a.namespace()),
        metric: optional_text(a.metric_name()),
        dimensions: Some(Dimensions(dimensions)),
        statistic: a.statistic().map(|s| s.as_str().to_string()),
        period: count(a.period()),
        threshold: a.threshold().map(canonical_threshold),
        comparison,
        evaluation_periods: count(evaluation_periods),
        // Unset means "all evaluation periods".
        datapoints_to_alarm: count(a.datapoints_to_alarm().or(evaluation_periods)),
        treat_missing_data: Some(a.treat_missing_data().unwrap_or("missing").to_string()),
        actions: Some(sorted_strings(a.alarm_actions())),
        ok_actions: Some(sorted_strings(a.ok_actions())),
        insufficient_data_actions: Some(sorted_strings(a.insufficient_data_actions())),
        description: Some(optional_text(a.alarm_description())),
    }
}

/// The typed desired state of alarm `a`; its metric shorthand resolves through `bp`.
fn desired_state(
    bp: &Blueprint,
    resolved: &Resolved,
    a: &ballast_blueprint::Alarm,
) -> AlarmState<Desired> {
    // Topics by ARN; a topic not created yet makes its list known after apply.
    let actions = |list: &[String]| Want::exact_or_later(super::topic::action_arns(resolved, list));
    let (namespace, dimensions) = resolve_metric(bp, &a.metric);
    AlarmState {
        namespace: Want::Exact(namespace),
        metric: Want::Exact(a.metric.metric.clone()),
        dimensions: Want::Exact(Dimensions(dimensions)),
        statistic: Want::Exact(statistic_name(a.statistic).to_string()),
        period: Want::Exact(a.period.as_secs()),
        threshold: Want::Exact(Threshold::Decimal(a.threshold)),
        comparison: Want::Exact(comparison_name(a.comparison).to_string()),
        evaluation_periods: Want::Exact(u64::from(a.evaluation_periods)),
        datapoints_to_alarm: Want::Exact(u64::from(
            a.datapoints_to_alarm.unwrap_or(a.evaluation_periods),
        )),
        treat_missing_data: Want::Exact(missing_data_name(a.treat_missing_data).to_string()),
        actions: actions(&a.alarm_actions),
        ok_actions: actions(&a.ok_actions),
        insufficient_data_actions: actions(&a.insufficient_data_actions),
        description: Want::Exact(optional_text(a.description.as_deref())),
    }
}

/// Sets `desired`'s tags on the alarm `arn` (PutMetricAlarm ignores tags of an existing alarm).
pub(super) async fn tag_alarm(
    ctx: &ApplyContext<'_>,
    desired: &DesiredState,
    arn: &str,
) -> Result<(), ProvisionError> {
    ctx.clients
        .cloudwatch
        .tag_resource()
        .resource_arn(arn)
        .set_tags(Some(aws_tags(&desired.tags)))
        .send()
        .await
        .classify("cloudwatch:TagResource")
        .map_err(ProvisionError::aws(&desired.id))?;
    Ok(())
}

/// Deletes the alarm `name` of `live`; one already gone is not an error.
pub(super) async fn delete_alarm(
    ctx: &ApplyContext<'_>,
    live: &LiveState,
    name: &str,
) -> Result<(), ProvisionError> {
    ProvisionError::unless_gone(
        &live.id,
        ctx.clients
            .cloudwatch
            .delete_alarms()
            .alarm_names(name)
            .send()
            .await
            .classify("cloudwatch:DeleteAlarms"),
    )
}

pub(super) fn aws_tags(tags: &Tags) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

/// `PutMetricAlarm` with the whole desired configuration (it replaces the alarm's).
#[instrument(skip_all, fields(alarm = %desired.physical_name))]
async fn put_alarm(
    ctx: &ApplyContext<'_>,
    desired: &DesiredState,
    with_tags: bool,
) -> Result<(), ProvisionError> {
    let unexpected = |detail: String| ProvisionError::Unexpected {
        resource: desired.id.clone(),
        operation: "cloudwatch:PutMetricAlarm",
        detail,
    };
    let want = desired.state::<AlarmState<Desired>>()?;
    let threshold = want
        .threshold
        .exact()
        .and_then(threshold_f64)
        .ok_or_else(|| unexpected("threshold is not a number".into()))?;
    let comparison = want
        .comparison
        .exact()
        .and_then(|c| COMPARISONS.iter().find(|(ours, _)| ours == c))
        .map(|(_, aws)| ComparisonOperator::from(*aws))
        .ok_or_else(|| unexpected("unknown comparison".into()))?;
    let mut request = ctx
        .clients
        .cloudwatch
        .put_metric_alarm()
        .alarm_name(&desired.physical_name)
        .set_namespace(want.namespace.exact().cloned())
        .set_metric_name(want.metric.exact().cloned())
        .statistic(AwsStatistic::from(
            want.statistic.exact().map_or("Average", String::as_str),
        ))
        .set_period(want.period.exact().and_then(count))
        .threshold(threshold)
        .comparison_operator(comparison)
        .set_evaluation_periods(want.evaluation_periods.exact().and_then(count))
        .set_datapoints_to_alarm(want.datapoints_to_alarm.exact().and_then(count))
        .treat_missing_data(
            want.treat_missing_data
                .exact()
                .map_or("missing", String::as_str),
        )
        .set_alarm_actions(Some(want.actions.exact().cloned().unwrap_or_default()))
        .set_ok_actions(Some(want.ok_actions.exact().cloned().unwrap_or_default()))
        .set_insufficient_data_actions(Some(
            want.insufficient_data_actions
                .exact()
                .cloned()
                .unwrap_or_default(),
        ))
        .set_alarm_description(want.description.exact().cloned().flatten());
    if let Some(Dimensions(dimensions)) = want.dimensions.exact() {
        for (name, value) in dimensions {
            request = request.dimensions(Dimension::builder().name(name).value(value).build());
        }
    }
    if with_tags {
        request = request.set_tags(Some(aws_tags(&desired.tags)));
    }
    request
        .send()
        .await
        .classify("cloudwatch:PutMetricAlarm")
        .map_err(ProvisionError::aws(&desired.id))?;
    Ok(())
}

#[instrument(skip_all, fields(count = names.len()))]
pub(super) async fn describe_by_names(
    ctx: &ObserveContext<'_>,
    names: &[String],
) -> Result<Vec<MetricAlarm>, ProvisionError> {
    let mut alarms = Vec::new();
    for chunk in names.chunks(NAMES_PER_CALL) {
        let pages = ctx
            .clients
            .cloudwatch()
            .describe_alarms()
            .set_alarm_names(Some(chunk.to_vec()))
            .alarm_types(AlarmType::MetricAlarm)
            .into_paginator()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .classify("cloudwatch:DescribeAlarms")
            .map_err(ProvisionError::aws(&ResourceId::new(Alarms::KIND, "*")))?;
        alarms.extend(
            pages
                .into_iter()
                .flat_map(|p| p.metric_alarms.unwrap_or_default()),
        );
    }
    Ok(alarms)
}

#[instrument(skip_all, fields(arn = %arn))]
pub(super) async fn list_tags(
    cw: &aws_sdk_cloudwatch::Client,
    id: &ResourceId,
    arn: &str,
) -> Result<Tags, ProvisionError> {
    let out = cw
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await
        .classify("cloudwatch:ListTagsForResource")
        .map_err(ProvisionError::aws(id))?;
    Ok(out
        .tags()
        .iter()
        .filter_map(|t| {
            Some((
                t.key()?.to_string(),
                t.value().unwrap_or_default().to_string(),
            ))
        })
        .collect())
}

impl ResourceOps for Alarms {
    const KIND: ResourceKind = ResourceKind::Alarm;
    type Field = AlarmField;

    fn desired(bp: &Blueprint, resolved: &Resolved) -> Vec<DesiredState> {
        bp.spec
            .alarms
            .iter()
            .map(|a| {
                let state = desired_state(bp, resolved, a);
                let mut tags = bp.ownership_tags_for(&ResourceId::new(Self::KIND, &a.name));
                tags.extend(a.tags.clone());
                DesiredState {
                    id: ResourceId::new(Self::KIND, &a.name),
                    physical_name: bp.alarm_name(a),
                    fields: state.expected_fields(),
                    tags,
                    adopt: a.adopt,
                    deletion_policy: Blueprint::effective_deletion_policy(
                        Self::KIND,
                        a.deletion_policy,
                    ),
                    typed: TypedDesired::new(state),
                }
            })
            .collect()
    }

    #[instrument(skip_all, fields(kind = "alarm"))]
    async fn observe(ctx: &ObserveContext<'_>) -> Result<Observed, ProvisionError> {
        let cw = ctx.clients.cloudwatch();
        let bp = ctx.blueprint;
        let declared = declared(bp, Self::KIND);
        let prefix = format!("{}-", bp.metadata.name);
        // One paginated DescribeAlarms by the stack prefix finds declared and removed alarms.
        // AWS refuses AlarmNames together with AlarmNamePrefix, so custom-named alarms outside
        // the prefix take one more call (per 100 names), only when there are any.
        let pages = cw
            .describe_alarms()
            .alarm_name_prefix(&prefix)
            .alarm_types(AlarmType::MetricAlarm)
            .into_paginator()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .classify("cloudwatch:DescribeAlarms")
            .map_err(ProvisionError::aws(&ResourceId::new(Self::KIND, "*")))?;
        let mut alarms: Vec<MetricAlarm> = pages
            .into_iter()
            .flat_map(|p| p.metric_alarms.unwrap_or_default())
            .collect();
        let custom: Vec<String> = declared
            .iter()
            .filter(|(_, name)| !name.starts_with(&prefix))
            .map(|(_, name)| name.clone())
            .collect();
        if !custom.is_empty() {
            alarms.extend(describe_by_names(ctx, &custom).await?);
        }
        let found: Vec<(ResourceId, bool, MetricAlarm)> = alarms
            .into_iter()
            .filter_map(|a| {
                let name = a.alarm_name()?.to_string();
                match declared.iter().find(|(_, n)| *n == name) {
                    Some((id, _)) => Some((id.clone(), true, a)),
                    // Undeclared alarms under the prefix matter only when they are ours
                    // (removed from the blueprint): the tagging snapshot lists those. An alarm
                    // another kind declares (a scaling policy's dead-man's switch names its
                    // logical id in its tag) is that kind's to observe.
                    None if name.starts_with(&prefix)
                        && a.alarm_arn()
                            .and_then(|arn| ctx.shared.tagged.tags(arn))
                            .is_some_and(|tags| {
                                tagged_resource_id(tags).is_none_or(|id| id.kind == Self::KIND)
                            }) =>
                    {
                        Some((
                            ResourceId::new(Self::KIND, name.trim_start_matches(&prefix)),
                            false,
                            a,
                        ))
                    }
                    None => None,
                }
            })
            .collect();
        // Owned alarms' tags come from the tagging snapshot; the rest read their own.
        let tags = try_join_all(found.iter().map(|(id, _, a)| {
            tags_or_read(&ctx.shared.tagged, a.alarm_arn(), move || async move {
                match a.alarm_arn() {
                    Some(arn) => list_tags(cw, id, arn).await,
                    None => Ok(Tags::new()),
                }
            })
        }))
        .await?;
        let mut observed = Observed::default();
        for ((id, is_declared, alarm), tags) in found.into_iter().zip(tags) {
            let ownership = Ownership::from_tags(&tags, &bp.metadata.name);
            let name = alarm.alarm_name().unwrap_or_default().to_string();
            let state = live_state(&alarm);
            let live = LiveState {
                id,
                physical_id: name.clone(),
                physical_name: name,
                arn: alarm.alarm_arn().map(str::to_string),
                ownership,
                tags,
                fields: state.live_fields(),
                typed: TypedLive::new(state),
            };
            observed.file(live, is_declared);
        }
        Ok(observed)
    }

    #[instrument(skip_all, fields(alarm = %desired.physical_name))]
    async fn create(
        ctx: &ApplyContext<'_>,
        desired: &DesiredState,
    ) -> Result<LiveState, ProvisionError> {
        let want = desired.state::<AlarmState<Desired>>()?;
        put_alarm(ctx, desired, true).await?;
        // Read back for the ARN; CloudWatch is eventually consistent, so a miss is not an error.
        let observe = ObserveContext {
            clients: &ctx.clients.observer(),
            blueprint: ctx.blueprint,
            resolved: ctx.resolved,
            shared: &SharedReads::default(),
        };
        let found = describe_by_names(&observe, std::slice::from_ref(&desired.physical_name))
            .await?
            .into_iter()
            .find(|a| a.alarm_name() == Some(desired.physical_name.as_str()));
        if found.is_none() {
            warn!("alarm not visible yet after PutMetricAlarm");
        }
        let state = match &found {
            Some(a) => live_state(a),
            None => want.assumed_live(),
        };
        Ok(LiveState {
            id: desired.id.clone(),
            physical_name: desired.physical_name.clone(),
            physical_id: desired.physical_name.clone(),
            arn: found
                .as_ref()
                .and_then(|a| a.alarm_arn().map(str::to_string)),
            ownership: Ownership::Owned,
            tags: desired.tags.clone(),
            fields: state.live_fields(),
            typed: TypedLive::new(state),
        })
    }

    #[instrument(skip_all, fields(alarm = %desired.physical_name))]
    async fn update(
        ctx: &ApplyContext<'_>,
        desired: &DesiredState,
        live: &LiveState,
        changes: &[FieldChange],
    ) -> Result<(), ProvisionError> {
        let changes = Changes::<AlarmField>::of(changes);
        if changes.fields().next().is_some() {
            // PutMetricAlarm replaces the configuration; it ignores Tags for existing alarms.
            put_alarm(ctx, desired, false).await?;
        }
        if changes.tags() {
            let arn = live
                .arn
                .as_deref()
                .ok_or_else(|| ProvisionError::Unexpected {
                    resource: desired.id.clone(),
                    operation: "cloudwatch:TagResource",
                    detail: "the alarm has no ARN".into(),
                })?;
            tag_alarm(ctx, desired, arn).await?;
        }
        Ok(())
    }

    #[instrument(skip_all, fields(alarm = %live.physical_name))]
    async fn delete(ctx: &ApplyContext<'_>, live: &LiveState) -> Result<(), ProvisionError> {
        delete_alarm(ctx, live, &live.physical_id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provision::typed::testing::shop_blueprint;

    fn blueprint() -> Blueprint {
        shop_blueprint(
            r#"  queues:
    - name: orders
      queueName: orders-custom
  alarms:
    - name: depth
      queue: orders
      metric: ApproximateNumberOfMessagesVisible
      statistic: Maximum
      period: 60s
      threshold: 1000.50
      comparison: greaterThanOrEqual
      evaluationPeriods: 3
      alarmActions: ["arn:aws:sns:us-east-1:1:b", "arn:aws:sns:us-east-1:1:a"]
    - name: errors
      namespace: Shop/Worker
      metric: Errors
      dimensions: {Service: api}
      statistic: Sum
      period: 5m
      threshold: 5
      comparison: lessThan
      datapointsToAlarm: 1
      evaluationPeriods: 2
      treatMissingData: notBreaching
      description: Too few errors
"#,
        )
    }

    #[test]
    fn desired_resolves_the_queue_shorthand_and_defaults() {
        let bp = blueprint();
        let desired = Alarms::desired(&bp, &Resolved::default());
        let depth = &desired[0];
        assert_eq!(depth.physical_name, "shop-depth");
        assert_eq!(depth.value(AlarmField::Namespace), Some(&json!("AWS/SQS")));
        assert_eq!(
            depth.value(AlarmField::Dimensions),
            Some(&json!({"QueueName": "orders-custom"}))
        );
        assert_eq!(
            depth.value(AlarmField::Threshold).unwrap().to_string(),
            "1000.5"
        );
        assert_eq!(
            depth.value(AlarmField::Comparison),
            Some(&json!("greaterThanOrEqual"))
        );
        assert_eq!(depth.value(AlarmField::DatapointsToAlarm), Some(&json!(3)));
        assert_eq!(
            depth.value(AlarmField::TreatMissingData),
            Some(&json!("missing"))
        );
        assert_eq!(depth.value(AlarmField::Description), Some(&Value::Null));
        assert_eq!(
            depth.value(AlarmField::Actions),
            Some(&json!([
                "arn:aws:sns:us-east-1:1:a",
                "arn:aws:sns:us-east-1:1:b"
            ]))
        );
        let errors = &desired[1];
        assert_eq!(
            errors.value(AlarmField::Namespace),
            Some(&json!("Shop/Worker"))
        );
        assert_eq!(
            errors.value(AlarmField::Dimensions),
            Some(&json!({"Service": "api"}))
        );
        assert_eq!(errors.value(AlarmField::Period), Some(&json!(300)));
        assert_eq!(errors.value(AlarmField::DatapointsToAlarm), Some(&json!(1)));
        assert_eq!(
            errors.value(AlarmField::Description),
            Some(&json!("Too few errors"))
        );
    }

    #[test]
    fn fleet_with_a_custom_namespace_keeps_the_group_dimension() {
        let bp = blueprint();
        let m = MetricRef {
            queue: None,
            fleet: Some("workers".into()),
            namespace: Some("Ballast/Worker".into()),
            metric: "ProcessingErrors".into(),
            dimensions: BTreeMap::from([("Stage".into(), "prod".into())]),
        };
        let (ns, dims) = resolve_metric(&bp, &m);
        assert_eq!(ns, "Ballast/Worker");
        // Not declared in this blueprint: the name is used as given.
        assert_eq!(
            dims,
            BTreeMap::from([
                ("AutoScalingGroupName".into(), "workers".into()),
                ("Stage".into(), "prod".into())
            ])
        );
        let bare = MetricRef {
            namespace: None,
            dimensions: BTreeMap::new(),
            ..m
        };
        assert_eq!(resolve_metric(&bp, &bare).0, "AWS/AutoScaling");
    }

    #[test]
    fn live_alarms_canonicalize_like_desired() {
        let bp = blueprint();
        let desired = Alarms::desired(&bp, &Resolved::default());
        let live = MetricAlarm::builder()
            .alarm_name("shop-depth")
            .namespace("AWS/SQS")
            .metric_name("ApproximateNumberOfMessagesVisible")
            .dimensions(
                Dimension::builder()
                    .name("QueueName")
                    .value("orders-custom")
                    .build(),
            )
            .statistic(AwsStatistic::Maximum)
            .period(60)
            .threshold(1000.5)
            .comparison_operator(ComparisonOperator::GreaterThanOrEqualToThreshold)
            .evaluation_periods(3)
            .alarm_actions("arn:aws:sns:us-east-1:1:b")
            .alarm_actions("arn:aws:sns:us-east-1:1:a")
            .build();
        let state = live_state(&live);
        let fields = state.live_fields();
        assert!(
            desired[0]
                .state::<AlarmState<Desired>>()
                .unwrap()
                .changes(&state)
                .is_empty()
        );
        for f in &desired[0].fields {
            assert!(
                f.expect.satisfied_by(fields.get(f.name)),
                "{}: {:?} vs {:?}",
                f.name,
                f.expect,
                fields.get(f.name)
            );
        }
    }

    #[test]
    fn thresholds_compare_as_decimals() {
        let shown = |t: Threshold| t.to_value().to_string();
        assert_eq!(shown(canonical_threshold(1000.0)), "1000");
        assert_eq!(shown(canonical_threshold(0.1)), "0.1");
        assert_eq!(shown(canonical_threshold(-2.5)), "-2.5");
        let d: Decimal = serde_json::from_value(json!("1000.0")).unwrap();
        assert_eq!(Threshold::Decimal(d), canonical_threshold(1000.0));
        assert_eq!(
            Threshold::Decimal(d).to_value(),
            canonical_threshold(1000.0).to_value()
        );
        assert_eq!(threshold_f64(&Threshold::Decimal(d)), Some(1000.0));
        assert!(matches!(
            canonical_threshold(f64::NAN),
            Threshold::Unrepresentable(_)
        ));
    }

    #[test]
    fn an_alarm_differing_in_one_field_yields_exactly_that_change() {
        use crate::provision::diff::Action;
        use crate::provision::state::FieldName;
        use crate::provision::typed::testing::{changed_fields, owned_live, typed_diff};
        let desired = Alarms::desired(&blueprint(), &Resolved::default());
        for want in &desired {
            let same = want.state::<AlarmState<Desired>>().unwrap().assumed_live();
            let live = owned_live(want, same.clone(), same.live_fields());
            assert_eq!(typed_diff(want, &live), Action::NoChange);
            let mut drifted = same.clone();
            drifted.threshold = Some(canonical_threshold(7.25));
            let live = owned_live(want, drifted.clone(), drifted.live_fields());
            let action = typed_diff(want, &live);
            assert!(matches!(action, Action::Update { .. }), "{action:?}");
            assert_eq!(changed_fields(&action), vec![AlarmField::Threshold.name()]);
            let mut drifted = same;
            drifted.description = Some(Some("edited".into()));
            let live = owned_live(want, drifted.clone(), drifted.live_fields());
            assert_eq!(
                changed_fields(&typed_diff(want, &live)),
                vec![AlarmField::Description.name()]
            );
        }
    }
}
