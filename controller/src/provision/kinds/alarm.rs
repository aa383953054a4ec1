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
    Tags,
};
use futures::future::try_join_all;
use serde_json::{Value, json};
use tracing::{instrument, warn};

use super::{ApplyContext, ObserveContext, Observed, ResourceOps, SharedReads, declared};
use crate::provision::diff::FieldChange;
use crate::provision::error::ProvisionError;
use crate::provision::state::{
    Changes, DesiredState, Field, LiveFields, LiveState, Ownership, Resolved,
};
use crate::provision::tagged::tags_or_read;
use crate::provision::typed::{TypedDesired, TypedLive};

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
        Actions = "actions",
        OkActions = "okActions",
        Description = "description",
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

fn comparison_name(c: Comparison) -> &'static str {
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

/// A live `f64` threshold in the form [`decimal_value`] gives the blueprint's: the shortest
/// decimal that round-trips, normalized (`1000.0` → `1000`).
pub fn canonical_threshold(value: f64) -> Value {
    let text = value.to_string();
    match serde_json::from_value::<Decimal>(Value::String(text.clone())) {
        Ok(d) => decimal_value(&d),
        Err(_) => number_value(&text),
    }
}

/// The threshold as CloudWatch's API takes it.
fn threshold_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.to_string().parse().ok(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn sorted_strings(list: &[String]) -> Value {
    let mut list = list.to_vec();
    list.sort();
    list.dedup();
    json!(list)
}

fn optional_text(s: Option<&str>) -> Value {
    match s {
        Some(s) if !s.is_empty() => Value::String(s.to_string()),
        _ => Value::Null,
    }
}

/// A live alarm in the shape `desired` produces.
pub fn canonical_fields(a: &MetricAlarm) -> BTreeMap<String, Value> {
    let dimensions: BTreeMap<&str, &str> = a
        .dimensions()
        .iter()
        .map(|d| (d.name().unwrap_or_default(), d.value().unwrap_or_default()))
        .collect();
    let comparison = a.comparison_operator().map(|c| {
        COMPARISONS
            .iter()
            .find(|(_, aws)| *aws == c.as_str())
            .map(|(ours, _)| ours.to_string())
            .unwrap_or_else(|| c.as_str().to_string())
    });
    let evaluation_periods = a.evaluation_periods();
    let mut fields = BTreeMap::new();
    let mut put = |k: AlarmField, v: Value| {
        fields.put(k, v);
    };
    put(AlarmField::Namespace, optional_text(a.namespace()));
    put(AlarmField::Metric, optional_text(a.metric_name()));
    put(AlarmField::Dimensions, json!(dimensions));
    put(
        AlarmField::Statistic,
        a.statistic()
            .map(|s| Value::String(s.as_str().to_string()))
            .unwrap_or(Value::Null),
    );
    put(AlarmField::Period, json!(a.period()));
    put(
        AlarmField::Threshold,
        a.threshold()
            .map(canonical_threshold)
            .unwrap_or(Value::Null),
    );
    put(AlarmField::Comparison, json!(comparison));
    put(AlarmField::EvaluationPeriods, json!(evaluation_periods));
    // Unset means "all evaluation periods".
    put(
        AlarmField::DatapointsToAlarm,
        json!(a.datapoints_to_alarm().or(evaluation_periods)),
    );
    put(
        AlarmField::TreatMissingData,
        json!(a.treat_missing_data().unwrap_or("missing")),
    );
    put(AlarmField::Actions, sorted_strings(a.alarm_actions()));
    put(AlarmField::OkActions, sorted_strings(a.ok_actions()));
    put(
        AlarmField::Description,
        optional_text(a.alarm_description()),
    );
    fields
}

fn text(desired: &DesiredState, field: AlarmField) -> Option<&str> {
    desired.value(field).and_then(Value::as_str)
}

fn strings(desired: &DesiredState, field: AlarmField) -> Vec<String> {
    desired
        .value(field)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn int(desired: &DesiredState, field: AlarmField) -> Option<i32> {
    desired
        .value(field)
        .and_then(Value::as_u64)
        .and_then(|n| i32::try_from(n).ok())
}

fn aws_tags(tags: &Tags) -> Vec<Tag> {
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
    let threshold = desired
        .value(AlarmField::Threshold)
        .and_then(threshold_f64)
        .ok_or_else(|| unexpected("threshold is not a number".into()))?;
    let comparison = text(desired, AlarmField::Comparison)
        .and_then(|c| COMPARISONS.iter().find(|(ours, _)| *ours == c))
        .map(|(_, aws)| ComparisonOperator::from(*aws))
        .ok_or_else(|| unexpected("unknown comparison".into()))?;
    let mut request = ctx
        .clients
        .cloudwatch
        .put_metric_alarm()
        .alarm_name(&desired.physical_name)
        .namespace(text(desired, AlarmField::Namespace).unwrap_or_default())
        .metric_name(text(desired, AlarmField::Metric).unwrap_or_default())
        .statistic(AwsStatistic::from(
            text(desired, AlarmField::Statistic).unwrap_or("Average"),
        ))
        .set_period(int(desired, AlarmField::Period))
        .threshold(threshold)
        .comparison_operator(comparison)
        .set_evaluation_periods(int(desired, AlarmField::EvaluationPeriods))
        .set_datapoints_to_alarm(int(desired, AlarmField::DatapointsToAlarm))
        .treat_missing_data(text(desired, AlarmField::TreatMissingData).unwrap_or("missing"))
        .set_alarm_actions(Some(strings(desired, AlarmField::Actions)))
        .set_ok_actions(Some(strings(desired, AlarmField::OkActions)))
        .set_alarm_description(text(desired, AlarmField::Description).map(str::to_string));
    if let Some(dimensions) = desired
        .value(AlarmField::Dimensions)
        .and_then(Value::as_object)
    {
        for (name, value) in dimensions {
            request = request.dimensions(
                Dimension::builder()
                    .name(name)
                    .value(value.as_str().unwrap_or_default())
                    .build(),
            );
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
async fn describe_by_names(
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
async fn list_tags(
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

    fn desired(bp: &Blueprint, _resolved: &Resolved) -> Vec<DesiredState> {
        bp.spec
            .alarms
            .iter()
            .map(|a| {
                let (namespace, dimensions) = resolve_metric(bp, &a.metric);
                let mut actions = a.actions.clone();
                actions.sort();
                actions.dedup();
                let mut ok_actions = a.ok_actions.clone();
                ok_actions.sort();
                ok_actions.dedup();
                let fields = vec![
                    Field::enforced(AlarmField::Namespace, namespace),
                    Field::enforced(AlarmField::Metric, a.metric.metric.clone()),
                    Field::enforced(AlarmField::Dimensions, json!(dimensions)),
                    Field::enforced(AlarmField::Statistic, statistic_name(a.statistic)),
                    Field::enforced(AlarmField::Period, a.period.as_secs()),
                    Field::enforced(AlarmField::Threshold, decimal_value(&a.threshold)),
                    Field::enforced(AlarmField::Comparison, comparison_name(a.comparison)),
                    Field::enforced(AlarmField::EvaluationPeriods, a.evaluation_periods),
                    Field::enforced(
                        AlarmField::DatapointsToAlarm,
                        a.datapoints_to_alarm.unwrap_or(a.evaluation_periods),
                    ),
                    Field::enforced(
                        AlarmField::TreatMissingData,
                        missing_data_name(a.treat_missing_data),
                    ),
                    Field::enforced(AlarmField::Actions, json!(actions)),
                    Field::enforced(AlarmField::OkActions, json!(ok_actions)),
                    Field::enforced(
                        AlarmField::Description,
                        optional_text(a.description.as_deref()),
                    ),
                ];
                let mut tags = bp.ownership_tags_for(&ResourceId::new(Self::KIND, &a.name));
                tags.extend(a.tags.clone());
                DesiredState {
                    id: ResourceId::new(Self::KIND, &a.name),
                    physical_name: bp.alarm_name(a),
                    fields,
                    tags,
                    adopt: a.adopt,
                    deletion_policy: Blueprint::effective_deletion_policy(
                        Self::KIND,
                        a.deletion_policy,
                    ),
                    typed: TypedDesired::untyped(),
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
                    // (removed from the blueprint): the tagging snapshot lists those.
                    None if name.starts_with(&prefix)
                        && a.alarm_arn()
                            .is_some_and(|arn| ctx.shared.tagged.tags(arn).is_some()) =>
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
            let live = LiveState {
                id,
                physical_id: name.clone(),
                physical_name: name,
                arn: alarm.alarm_arn().map(str::to_string),
                ownership,
                tags,
                fields: canonical_fields(&alarm),
                typed: TypedLive::untyped(),
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
        Ok(LiveState {
            id: desired.id.clone(),
            physical_name: desired.physical_name.clone(),
            physical_id: desired.physical_name.clone(),
            arn: found
                .as_ref()
                .and_then(|a| a.alarm_arn().map(str::to_string)),
            ownership: Ownership::Owned,
            tags: desired.tags.clone(),
            fields: match &found {
                Some(a) => canonical_fields(a),
                None => desired
                    .fields
                    .iter()
                    .filter_map(|f| Some((f.name.to_string(), f.exact()?.clone())))
                    .collect(),
            },
            typed: TypedLive::untyped(),
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
            ctx.clients
                .cloudwatch
                .tag_resource()
                .resource_arn(arn)
                .set_tags(Some(aws_tags(&desired.tags)))
                .send()
                .await
                .classify("cloudwatch:TagResource")
                .map_err(ProvisionError::aws(&desired.id))?;
        }
        Ok(())
    }

    #[instrument(skip_all, fields(alarm = %live.physical_name))]
    async fn delete(ctx: &ApplyContext<'_>, live: &LiveState) -> Result<(), ProvisionError> {
        ProvisionError::unless_gone(
            &live.id,
            ctx.clients
                .cloudwatch
                .delete_alarms()
                .alarm_names(&live.physical_id)
                .send()
                .await
                .classify("cloudwatch:DeleteAlarms"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blueprint() -> Blueprint {
        ballast_blueprint::parse(
            "t.yaml",
            r#"apiVersion: ballast.dev/v1
kind: Blueprint
metadata: {name: shop, region: us-east-1}
spec:
  queues:
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
      actions: ["arn:aws:sns:us-east-1:1:b", "arn:aws:sns:us-east-1:1:a"]
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
        .unwrap()
        .blueprint
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
        let fields = canonical_fields(&live);
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
        assert_eq!(canonical_threshold(1000.0).to_string(), "1000");
        assert_eq!(canonical_threshold(0.1).to_string(), "0.1");
        assert_eq!(canonical_threshold(-2.5).to_string(), "-2.5");
        let d: Decimal = serde_json::from_value(json!("1000.0")).unwrap();
        assert_eq!(decimal_value(&d), canonical_threshold(1000.0));
        assert_eq!(threshold_f64(&decimal_value(&d)), Some(1000.0));
    }
}
