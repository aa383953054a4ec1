use super::{Decimal, DeletionPolicy, Duration, Management, Tags};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A CloudWatch metric alarm.
///
/// Shorthand: `queue: <name>` fills the `AWS/SQS` namespace and the `QueueName` dimension,
/// `fleet: <name>` the `AWS/AutoScaling` namespace and the `AutoScalingGroupName` dimension.
/// With an explicit `namespace`, `fleet` still adds the group's dimension (custom metrics).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
// Unknown fields are rejected by the schema check; serde cannot combine that with `flatten`.
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct Alarm {
    pub name: String,
    /// Physical name. Default: `<metadata.name>-<name>`.
    #[serde(default)]
    pub alarm_name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(flatten)]
    pub metric: MetricRef,
    pub statistic: Statistic,
    /// 10s, 30s or a multiple of 60s.
    pub period: Duration,
    pub threshold: Decimal,
    pub comparison: Comparison,
    /// Default: 1.
    #[serde(default = "one")]
    pub evaluation_periods: u32,
    /// Default: `evaluationPeriods`.
    #[serde(default)]
    pub datapoints_to_alarm: Option<u32>,
    #[serde(default)]
    pub treat_missing_data: MissingData,
    /// Notified when the alarm fires: blueprint topic names, or ARNs (`arn:…`).
    #[serde(default)]
    pub alarm_actions: Vec<String>,
    /// Notified when the alarm returns to OK: blueprint topic names, or ARNs.
    #[serde(default)]
    pub ok_actions: Vec<String>,
    /// Notified when the alarm lacks data: blueprint topic names, or ARNs.
    #[serde(default)]
    pub insufficient_data_actions: Vec<String>,
    #[serde(default)]
    pub deletion_policy: Option<DeletionPolicy>,
    #[serde(default)]
    pub adopt: bool,
    /// `observe`: plan, drift and `ballast run` report this resource's drift, but apply and
    /// `ballast run` never create, change, replace or delete it. Default: `manage`.
    #[serde(default)]
    pub management: Management,
    #[serde(default)]
    pub tags: Tags,
}

/// The metric an alarm or a dashboard line reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetricRef {
    /// Blueprint name of a queue.
    #[serde(default)]
    pub queue: Option<String>,
    /// Blueprint name of an Auto Scaling group.
    #[serde(default)]
    pub fleet: Option<String>,
    /// CloudWatch namespace; implied by `queue` or `fleet` when omitted.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Metric name, e.g. `ApproximateNumberOfMessagesVisible`.
    pub metric: String,
    #[serde(default)]
    pub dimensions: BTreeMap<String, String>,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Statistic {
    Average,
    Sum,
    Minimum,
    Maximum,
    SampleCount,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Comparison {
    GreaterThan,
    GreaterThanOrEqual,
    LessThan,
    LessThanOrEqual,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum MissingData {
    #[default]
    Missing,
    NotBreaching,
    Breaching,
    Ignore,
}

/// A CloudWatch dashboard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Dashboard {
    pub name: String,
    /// Physical name. Default: `<metadata.name>-<name>`.
    #[serde(default)]
    pub dashboard_name: Option<String>,
    pub widgets: Vec<Widget>,
    #[serde(default)]
    pub deletion_policy: Option<DeletionPolicy>,
    #[serde(default)]
    pub adopt: bool,
    /// `observe`: plan, drift and `ballast run` report this resource's drift, but apply and
    /// `ballast run` never create, change, replace or delete it. Default: `manage`.
    #[serde(default)]
    pub management: Management,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Widget {
    pub title: String,
    pub metrics: Vec<WidgetMetric>,
    /// Default: 60s.
    #[serde(default = "default_period")]
    pub period: Duration,
    #[serde(default)]
    pub view: WidgetView,
    /// Grid width, 1..24. Default: 12.
    #[serde(default = "default_width")]
    pub width: u32,
    /// Grid height. Default: 6.
    #[serde(default = "default_height")]
    pub height: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct WidgetMetric {
    #[serde(flatten)]
    pub metric: MetricRef,
    /// Default: Average.
    #[serde(default)]
    pub statistic: Option<Statistic>,
    #[serde(default)]
    pub label: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum WidgetView {
    #[default]
    TimeSeries,
    SingleValue,
}

fn default_period() -> Duration {
    Duration::from_secs(60)
}
fn default_width() -> u32 {
    12
}
fn default_height() -> u32 {
    6
}

/// The queue and fleet shorthands of a metric, as references from `me`.
fn metric_references(
    me: &crate::ResourceId,
    path: &str,
    metric: &MetricRef,
) -> Vec<crate::graph::Reference> {
    use crate::ResourceKind as K;
    use crate::graph::Reference;
    let mut out = Vec::new();
    if let Some(queue) = &metric.queue {
        let at = format!("{path}.queue");
        out.push(Reference::new(me, at, K::Queue, queue, true));
    }
    if let Some(fleet) = &metric.fleet {
        let at = format!("{path}.fleet");
        out.push(Reference::new(me, at, K::AutoScalingGroup, fleet, true));
    }
    out
}

impl Alarm {
    /// Each action list with its field name: `alarmActions`, `okActions`,
    /// `insufficientDataActions`.
    pub fn action_lists(&self) -> [(&'static str, &[String]); 3] {
        [
            ("alarmActions", &self.alarm_actions),
            ("okActions", &self.ok_actions),
            ("insufficientDataActions", &self.insufficient_data_actions),
        ]
    }
}

/// Whether an alarm action is written as an ARN rather than a blueprint topic name.
pub fn is_action_arn(action: &str) -> bool {
    action.starts_with("arn:")
}

impl crate::registry::Resource for Alarm {
    const REFERENCES: &'static [crate::ResourceKind] = &[
        crate::ResourceKind::Queue,
        crate::ResourceKind::AutoScalingGroup,
        crate::ResourceKind::Topic,
    ];

    fn in_spec(spec: &super::Spec) -> Vec<(&Self, String)> {
        let at = |(i, a)| (a, format!("spec.alarms[{i}]"));
        spec.alarms.iter().enumerate().map(at).collect()
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn physical_name(&self, bp: &super::Blueprint) -> Option<String> {
        Some(bp.alarm_name(self))
    }

    fn references(
        &self,
        me: &crate::ResourceId,
        path: &str,
        _spec: &super::Spec,
    ) -> Vec<crate::graph::Reference> {
        // The shorthands sit on the alarm itself (flattened metric), not under `metric`.
        let mut out = metric_references(me, path, &self.metric);
        for (field, actions) in self.action_lists() {
            for (j, action) in actions.iter().enumerate() {
                if !is_action_arn(action) {
                    let at = format!("{path}.{field}[{j}]");
                    out.push(crate::graph::Reference::new(
                        me,
                        at,
                        crate::ResourceKind::Topic,
                        action,
                        true,
                    ));
                }
            }
        }
        out
    }
}

impl crate::registry::Resource for Dashboard {
    const REFERENCES: &'static [crate::ResourceKind] = &[
        crate::ResourceKind::Queue,
        crate::ResourceKind::AutoScalingGroup,
    ];

    fn in_spec(spec: &super::Spec) -> Vec<(&Self, String)> {
        let at = |(i, d)| (d, format!("spec.dashboards[{i}]"));
        spec.dashboards.iter().enumerate().map(at).collect()
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn physical_name(&self, bp: &super::Blueprint) -> Option<String> {
        Some(bp.dashboard_name(self))
    }

    fn references(
        &self,
        me: &crate::ResourceId,
        path: &str,
        _spec: &super::Spec,
    ) -> Vec<crate::graph::Reference> {
        let mut out = Vec::new();
        for (j, w) in self.widgets.iter().enumerate() {
            for (k, m) in w.metrics.iter().enumerate() {
                let at = format!("{path}.widgets[{j}].metrics[{k}]");
                out.extend(metric_references(me, &at, &m.metric));
            }
        }
        out
    }
}
