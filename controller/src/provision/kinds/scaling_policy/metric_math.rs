//! The dead-man's switch alarm's metric math: the queries it reads (the autoscaler's heartbeat
//! and the queue's backlog, per minute) and the expression it evaluates, as the blueprint wants
//! them, as AWS returns them, and as `PutMetricAlarm` takes them.

use std::collections::BTreeMap;

use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat};
use ballast_blueprint::Blueprint;
use serde_json::{Value, json};

use crate::autoscale::actuator::FleetId;
use crate::autoscale::publish::{HEARTBEAT, NAMESPACE as AUTOSCALER_NAMESPACE};
use crate::provision::kinds::alarm::optional_text;
use crate::provision::typed::FieldValue;

/// The heartbeat and the backlog are read per minute.
pub(super) const PERIOD_SECS: u64 = 60;
const QUEUE_METRIC: &str = "ApproximateNumberOfMessagesVisible";

/// One query of the alarm's metric math: a metric read (`MetricStat`) or an expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub id: String,
    pub expression: Option<String>,
    pub metric: Option<QueryMetric>,
    /// Whether the alarm evaluates this query (exactly one does).
    pub return_data: bool,
}

/// The metric a query reads, with its statistic and period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryMetric {
    pub namespace: String,
    pub name: String,
    pub dimensions: BTreeMap<String, String>,
    pub stat: String,
    pub period: u64,
}

impl FieldValue for Query {
    fn to_value(&self) -> Value {
        let mut out = serde_json::Map::new();
        out.insert("id".into(), json!(self.id));
        if let Some(expression) = &self.expression {
            out.insert("expression".into(), json!(expression));
        }
        if let Some(m) = &self.metric {
            out.insert(
                "metric".into(),
                json!({
                    "namespace": m.namespace,
                    "name": m.name,
                    "dimensions": m.dimensions,
                    "stat": m.stat,
                    "period": m.period,
                }),
            );
        }
        out.insert("returnData".into(), json!(self.return_data));
        Value::Object(out)
    }
}

/// The metric math: the heartbeat and the backlog per minute, and the expression the alarm
/// evaluates.
pub(super) fn queries(
    bp: &Blueprint,
    p: &ballast_blueprint::ScalingPolicy,
    threshold: u32,
) -> Vec<Query> {
    let group = p
        .fleet
        .as_deref()
        .map(|fleet| {
            bp.auto_scaling_group(fleet)
                .map(|g| bp.group_name(g))
                .unwrap_or_else(|| fleet.to_string())
        })
        .unwrap_or_default();
    let queue = bp
        .queue(&p.queue)
        .map(|q| bp.queue_name(q))
        .unwrap_or_else(|| p.queue.clone());
    let (dimension, value) = FleetId::AutoScalingGroup { name: group }.dimension();
    vec![
        Query {
            id: "heartbeat".into(),
            expression: None,
            metric: Some(QueryMetric {
                namespace: AUTOSCALER_NAMESPACE.into(),
                name: HEARTBEAT.into(),
                dimensions: BTreeMap::from([(dimension.to_string(), value)]),
                stat: "SampleCount".into(),
                period: PERIOD_SECS,
            }),
            return_data: false,
        },
        Query {
            id: "backlog".into(),
            expression: None,
            metric: Some(QueryMetric {
                namespace: "AWS/SQS".into(),
                name: QUEUE_METRIC.into(),
                dimensions: BTreeMap::from([("QueueName".to_string(), queue)]),
                stat: "Maximum".into(),
                period: PERIOD_SECS,
            }),
            return_data: false,
        },
        Query {
            id: "switch".into(),
            // A minute without a heartbeat reads 0 (FILL), not "no data": a stopped controller
            // publishes nothing at all.
            expression: Some(format!(
                "IF(FILL(heartbeat, 0) == 0 AND backlog > {threshold}, 1, 0)"
            )),
            metric: None,
            return_data: true,
        },
    ]
}

/// A live query, canonicalized as [`queries`] builds them.
pub(super) fn live_query(q: &MetricDataQuery) -> Query {
    let metric = q.metric_stat().map(|stat| {
        let m = stat.metric();
        QueryMetric {
            namespace: m.and_then(Metric::namespace).unwrap_or_default().into(),
            name: m.and_then(Metric::metric_name).unwrap_or_default().into(),
            dimensions: m
                .map(Metric::dimensions)
                .unwrap_or_default()
                .iter()
                .map(|d| {
                    (
                        d.name().unwrap_or_default().to_string(),
                        d.value().unwrap_or_default().to_string(),
                    )
                })
                .collect(),
            stat: stat.stat().unwrap_or_default().into(),
            period: stat
                .period()
                .and_then(|p| u64::try_from(p).ok())
                .unwrap_or(0),
        }
    });
    Query {
        id: q.id().unwrap_or_default().into(),
        expression: optional_text(q.expression()),
        metric,
        // Unset means the query is returned (AWS's default).
        return_data: q.return_data().unwrap_or(true),
    }
}

pub(super) fn aws_query(q: &Query) -> MetricDataQuery {
    let mut out = MetricDataQuery::builder()
        .id(&q.id)
        .return_data(q.return_data)
        .set_expression(q.expression.clone());
    if let Some(m) = &q.metric {
        let dimensions = m
            .dimensions
            .iter()
            .map(|(name, value)| Dimension::builder().name(name).value(value).build())
            .collect();
        out = out.metric_stat(
            MetricStat::builder()
                .metric(
                    Metric::builder()
                        .namespace(&m.namespace)
                        .metric_name(&m.name)
                        .set_dimensions(Some(dimensions))
                        .build(),
                )
                .set_period(i32::try_from(m.period).ok())
                .stat(&m.stat)
                .build(),
        );
    }
    out.build()
}
