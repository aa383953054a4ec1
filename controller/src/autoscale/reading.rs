//! Reading the queue and the fleet for one evaluation.
//!
//! * The queue: ONE `GetQueueAttributes` call per evaluation for
//!   `ApproximateNumberOfMessages`, `ApproximateNumberOfMessagesNotVisible` and
//!   `ApproximateNumberOfMessagesDelayed`; the queue URL is resolved once with
//!   `GetQueueUrl` and cached (and resolved again after the queue went missing).
//! * Optionally `ApproximateAgeOfOldestMessage` from CloudWatch
//!   (`GetMetricStatistics`, the latest one-minute maximum of the last five minutes).
//! * The Auto Scaling group: `DescribeAutoScalingGroups`, counting only instances
//!   whose lifecycle state is `InService`, plus the group's desired/min/max.
//!
//! * In `mode: queueing`, the last [`RATE_WINDOW`] of the queue's `AWS/SQS
//!   NumberOfMessagesSent` and `ApproximateNumberOfMessagesVisible` and the group's
//!   `Ballast/Worker TransactionsProcessed` (sum and sample count) in ONE
//!   `GetMetricData` call ([`read_rates`]), for the measured λ and μ
//!   ([`super::measured`]).
//!
//! A failed read becomes [`Observation::Missing`](super::Observation::Missing) in
//! the control loop; the policy never scales in on missing metrics.

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use aws_sdk_autoscaling::types::LifecycleState;
use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat, Statistic};
use aws_sdk_sqs::types::QueueAttributeName;
use ballast_aws::{AwsError, SdkResultExt};
use tracing::instrument;

use super::actuator::{FleetCapacity, FleetId};
use super::measured::{RateMinute, RateWindow};

/// How far back each evaluation reads the rate metrics.
pub const RATE_WINDOW: Duration = Duration::from_secs(300);
/// A minute of the rate metrics is read only once it closed this long ago. CloudWatch may still
/// be aggregating a younger minute, and the policy takes λ from the newest minute as is: a
/// partial sum would read as a fall of the load and shed capacity. (The simulator's default
/// `--metric-delay` is the same minute.)
pub const RATE_SETTLE: Duration = Duration::from_secs(60);
/// The SQS metric of messages added to a queue.
pub const NUMBER_OF_MESSAGES_SENT: &str = "NumberOfMessagesSent";
/// The SQS metric of messages waiting to be received (sampled once a minute).
pub const MESSAGES_VISIBLE: &str = "ApproximateNumberOfMessagesVisible";
/// CloudWatch namespace of SQS's metrics.
pub const SQS_NAMESPACE: &str = "AWS/SQS";
/// Datapoints per `GetMetricData` page: one day of minutes.
const DATAPOINTS_PER_PAGE: i32 = 1440;

/// Why a reading failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadingError {
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error("{operation} returned no {attribute}")]
    MissingAttribute {
        operation: &'static str,
        attribute: &'static str,
    },
    #[error("{operation} returned {attribute}={value:?}, not a count")]
    BadAttribute {
        operation: &'static str,
        attribute: &'static str,
        value: String,
    },
    #[error("Auto Scaling group `{0}` does not exist")]
    GroupNotFound(String),
    #[error("Auto Scaling group `{group}`: {field} is {value}, not a count")]
    BadGroupField {
        group: String,
        field: &'static str,
        value: i32,
    },
}

/// The queue's approximate counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueDepth {
    pub visible: u64,
    pub in_flight: u64,
    pub delayed: u64,
    pub oldest_message_age: Option<Duration>,
}

/// Reads one SQS queue (and optionally its age metric from CloudWatch).
#[derive(Debug)]
pub struct QueueSource {
    sqs: aws_sdk_sqs::Client,
    cloudwatch: Option<aws_sdk_cloudwatch::Client>,
    queue_name: String,
    url: Mutex<Option<String>>,
}

const GET_ATTRIBUTES: &str = "sqs:GetQueueAttributes";

impl QueueSource {
    /// `cloudwatch`: read `ApproximateAgeOfOldestMessage` too (one more call).
    pub fn new(
        sqs: aws_sdk_sqs::Client,
        queue_name: impl Into<String>,
        cloudwatch: Option<aws_sdk_cloudwatch::Client>,
    ) -> Self {
        QueueSource {
            sqs,
            cloudwatch,
            queue_name: queue_name.into(),
            url: Mutex::new(None),
        }
    }

    pub fn queue_name(&self) -> &str {
        &self.queue_name
    }

    /// The queue URL, resolved with `GetQueueUrl` on first use and cached.
    #[instrument(skip(self), fields(queue = %self.queue_name))]
    pub async fn queue_url(&self) -> Result<String, ReadingError> {
        if let Some(url) = self.cached_url() {
            return Ok(url);
        }
        let out = self
            .sqs
            .get_queue_url()
            .queue_name(&self.queue_name)
            .send()
            .await
            .classify("sqs:GetQueueUrl")?;
        let url = out
            .queue_url
            .ok_or(ReadingError::MissingAttribute {
                operation: "sqs:GetQueueUrl",
                attribute: "QueueUrl",
            })?
            .to_string();
        *self.url.lock().unwrap_or_else(|e| e.into_inner()) = Some(url.clone());
        Ok(url)
    }

    fn cached_url(&self) -> Option<String> {
        self.url.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// One `GetQueueAttributes` call (plus `GetQueueUrl` the first time, plus
    /// `GetMetricStatistics` when the age metric is enabled).
    #[instrument(skip(self), fields(queue = %self.queue_name))]
    pub async fn read(&self) -> Result<QueueDepth, ReadingError> {
        let url = self.queue_url().await?;
        let result = self
            .sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
            .send()
            .await
            .classify(GET_ATTRIBUTES);
        let out = match result {
            Ok(out) => out,
            Err(err) => {
                if err.is_not_found() {
                    // The queue may have been recreated under a new URL.
                    *self.url.lock().unwrap_or_else(|e| e.into_inner()) = None;
                }
                return Err(err.into());
            }
        };
        let attributes = out.attributes.unwrap_or_default();
        let count = |name: QueueAttributeName, attribute: &'static str| {
            let value = attributes
                .get(&name)
                .ok_or(ReadingError::MissingAttribute {
                    operation: GET_ATTRIBUTES,
                    attribute,
                })?;
            value
                .trim()
                .parse::<u64>()
                .map_err(|_| ReadingError::BadAttribute {
                    operation: GET_ATTRIBUTES,
                    attribute,
                    value: value.clone(),
                })
        };
        let visible = count(
            QueueAttributeName::ApproximateNumberOfMessages,
            "ApproximateNumberOfMessages",
        )?;
        let in_flight = count(
            QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
            "ApproximateNumberOfMessagesNotVisible",
        )?;
        let delayed = count(
            QueueAttributeName::ApproximateNumberOfMessagesDelayed,
            "ApproximateNumberOfMessagesDelayed",
        )?;
        let oldest_message_age = match &self.cloudwatch {
            Some(cw) => match oldest_message_age(cw, &self.queue_name).await {
                Ok(age) => age,
                Err(err) => {
                    // Informational only: the policy does not use the age.
                    tracing::warn!(error = %err, "cannot read ApproximateAgeOfOldestMessage");
                    None
                }
            },
            None => None,
        };
        Ok(QueueDepth {
            visible,
            in_flight,
            delayed,
            oldest_message_age,
        })
    }
}

/// The latest one-minute maximum of `AWS/SQS ApproximateAgeOfOldestMessage` within
/// the last five minutes; `None` when CloudWatch has no datapoint.
#[instrument(skip(cw))]
pub async fn oldest_message_age(
    cw: &aws_sdk_cloudwatch::Client,
    queue_name: &str,
) -> Result<Option<Duration>, AwsError> {
    let end = SystemTime::now();
    let start = end - Duration::from_secs(300);
    let out = cw
        .get_metric_statistics()
        .namespace("AWS/SQS")
        .metric_name("ApproximateAgeOfOldestMessage")
        .dimensions(
            Dimension::builder()
                .name("QueueName")
                .value(queue_name)
                .build(),
        )
        .start_time(start.into())
        .end_time(end.into())
        .period(60)
        .statistics(Statistic::Maximum)
        .send()
        .await
        .classify("cloudwatch:GetMetricStatistics")?;
    let latest = out
        .datapoints
        .unwrap_or_default()
        .into_iter()
        .filter_map(|d| Some((d.timestamp?, d.maximum?)))
        .max_by(|a, b| a.0.cmp(&b.0));
    Ok(latest.map(|(_, secs)| Duration::from_secs_f64(secs.max(0.0))))
}

/// `DescribeAutoScalingGroups` for one group: desired/min/max and the number of
/// instances in the `InService` lifecycle state (not `Pending`, `Terminating`,
/// `Standby`, ...).
#[instrument(skip(asg))]
pub async fn describe_group(
    asg: &aws_sdk_autoscaling::Client,
    group_name: &str,
) -> Result<FleetCapacity, ReadingError> {
    let out = asg
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(group_name)
        .send()
        .await
        .classify("autoscaling:DescribeAutoScalingGroups")?;
    let group = out
        .auto_scaling_groups
        .unwrap_or_default()
        .into_iter()
        .find(|g| g.auto_scaling_group_name.as_deref() == Some(group_name))
        .ok_or_else(|| ReadingError::GroupNotFound(group_name.to_string()))?;
    let field = |field: &'static str, value: Option<i32>| {
        let value = value.unwrap_or(0);
        u32::try_from(value).map_err(|_| ReadingError::BadGroupField {
            group: group_name.to_string(),
            field,
            value,
        })
    };
    let in_service = group
        .instances
        .unwrap_or_default()
        .iter()
        .filter(|i| i.lifecycle_state == Some(LifecycleState::InService))
        .count();
    Ok(FleetCapacity {
        desired: field("DesiredCapacity", group.desired_capacity)?,
        in_service: u32::try_from(in_service).unwrap_or(u32::MAX),
        min: field("MinSize", group.min_size)?,
        max: field("MaxSize", group.max_size)?,
    })
}

/// One metric's one-minute statistic (a count: `Sum`, `SampleCount` or `Minimum`), for
/// [`minute_sums`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MinuteMetric {
    /// The query id in `GetMetricData` (lowercase letters, digits, `_`).
    pub id: &'static str,
    pub namespace: &'static str,
    pub metric_name: &'static str,
    pub dimension: (&'static str, String),
    pub stat: &'static str,
}

impl MinuteMetric {
    /// `AWS/SQS NumberOfMessagesSent` of one queue (its physical name), `Sum`.
    pub fn messages_sent(queue_name: &str) -> Self {
        MinuteMetric {
            id: "sent",
            namespace: SQS_NAMESPACE,
            metric_name: NUMBER_OF_MESSAGES_SENT,
            dimension: ("QueueName", queue_name.to_string()),
            stat: "Sum",
        }
    }

    /// `AWS/SQS ApproximateNumberOfMessagesVisible` of one queue, `Minimum`.
    pub fn messages_visible(queue_name: &str) -> Self {
        MinuteMetric {
            id: "visible",
            metric_name: MESSAGES_VISIBLE,
            stat: "Minimum",
            ..Self::messages_sent(queue_name)
        }
    }

    /// `Ballast/Worker TransactionsProcessed` of a whole fleet, `Sum`.
    pub fn transactions_processed(fleet: &FleetId) -> Self {
        MinuteMetric {
            id: "processed",
            namespace: ballast_runtime::worker_metrics::NAMESPACE,
            metric_name: ballast_runtime::worker_metrics::TRANSACTIONS_PROCESSED,
            dimension: fleet.dimension(),
            stat: "Sum",
        }
    }

    /// `Ballast/Worker TransactionsProcessed` of a whole fleet, `SampleCount`: each worker
    /// publishes once a minute, so the worker-minutes.
    pub fn processed_reports(fleet: &FleetId) -> Self {
        MinuteMetric {
            id: "reports",
            stat: "SampleCount",
            ..Self::transactions_processed(fleet)
        }
    }

    fn query(&self) -> MetricDataQuery {
        let (name, value) = &self.dimension;
        MetricDataQuery::builder()
            .id(self.id)
            .metric_stat(
                MetricStat::builder()
                    .metric(
                        Metric::builder()
                            .namespace(self.namespace)
                            .metric_name(self.metric_name)
                            .dimensions(Dimension::builder().name(*name).value(value).build())
                            .build(),
                    )
                    .period(60)
                    .stat(self.stat)
                    .build(),
            )
            .return_data(true)
            .build()
    }
}

/// The one-minute statistics of `metrics` between `start` and `end`, per metric in
/// the order given: `(minute start, sum)` pairs, sorted by time, one per minute
/// that has a datapoint (CloudWatch leaves out minutes without data). Reads
/// every page of `GetMetricData` (a day of minutes per page). A negative or
/// non-finite value (never published by SQS or the worker) is left out.
#[instrument(skip(cw, metrics), fields(metrics = metrics.len()))]
pub async fn minute_sums(
    cw: &aws_sdk_cloudwatch::Client,
    metrics: &[MinuteMetric],
    start: SystemTime,
    end: SystemTime,
) -> Result<Vec<Vec<(SystemTime, u64)>>, AwsError> {
    let mut pages = cw
        .get_metric_data()
        .set_metric_data_queries(Some(metrics.iter().map(MinuteMetric::query).collect()))
        .start_time(start.into())
        .end_time(end.into())
        .max_datapoints(DATAPOINTS_PER_PAGE)
        .into_paginator()
        .send();
    let mut series: Vec<std::collections::BTreeMap<SystemTime, u64>> =
        vec![Default::default(); metrics.len()];
    while let Some(page) = pages.next().await {
        let page = page.classify("cloudwatch:GetMetricData")?;
        for result in page.metric_data_results() {
            let Some(index) = metrics.iter().position(|m| Some(m.id) == result.id()) else {
                continue;
            };
            let Some(points) = series.get_mut(index) else {
                continue;
            };
            for (at, value) in result.timestamps().iter().zip(result.values()) {
                let Ok(at) = SystemTime::try_from(*at) else {
                    continue;
                };
                if value.is_finite() && *value >= 0.0 {
                    // Counts: CloudWatch returns them as floating point.
                    let count = value.round() as u64;
                    let slot = points.entry(at).or_insert(0);
                    *slot = slot.saturating_add(count);
                }
            }
        }
    }
    Ok(series
        .into_iter()
        .map(|points| points.into_iter().collect())
        .collect())
}

/// `points` (one series of [`minute_sums`]) as consecutive per-minute counts over `minutes`
/// whole minutes from `start`: 0 for a minute without a datapoint (CloudWatch publishes
/// nothing for an idle queue); points outside the range are ignored.
pub fn per_minute(start: SystemTime, minutes: u64, points: &[(SystemTime, u64)]) -> Vec<u64> {
    let mut counts = vec![0u64; usize::try_from(minutes).unwrap_or(0)];
    for (at, count) in points {
        let Ok(offset) = at.duration_since(start) else {
            continue;
        };
        let index = usize::try_from(offset.as_secs().checked_div(60).unwrap_or(0));
        if let Some(slot) = index.ok().and_then(|i| counts.get_mut(i)) {
            *slot = slot.saturating_add(*count);
        }
    }
    counts
}

/// The queue's arrivals (`AWS/SQS NumberOfMessagesSent`) per minute over `minutes` whole
/// minutes from `start`: what `ballast trace export` writes and what the seasonal prediction
/// (`prediction:` on a scaling policy) learns from.
#[instrument(skip(cw))]
pub async fn arrival_history(
    cw: &aws_sdk_cloudwatch::Client,
    queue_name: &str,
    start: SystemTime,
    minutes: u64,
) -> Result<Vec<u64>, AwsError> {
    let end = start
        .checked_add(Duration::from_secs(minutes.saturating_mul(60)))
        .unwrap_or(start);
    let series = minute_sums(cw, &[MinuteMetric::messages_sent(queue_name)], start, end).await?;
    let points = series.into_iter().next().unwrap_or_default();
    Ok(per_minute(start, minutes, &points))
}

/// The last [`RATE_WINDOW`] before `end` of the queue's arrivals and visible messages and
/// the fleet's processed messages and worker-minutes, in one `GetMetricData` call; only the
/// minutes that closed [`RATE_SETTLE`] or more before `end`.
#[instrument(skip(cw), fields(fleet = %fleet))]
pub async fn read_rates(
    cw: &aws_sdk_cloudwatch::Client,
    queue_name: &str,
    fleet: &FleetId,
    end: SystemTime,
) -> Result<RateWindow, AwsError> {
    let metrics = [
        MinuteMetric::messages_sent(queue_name),
        MinuteMetric::transactions_processed(fleet),
        MinuteMetric::processed_reports(fleet),
        MinuteMetric::messages_visible(queue_name),
    ];
    let start = end
        .checked_sub(RATE_WINDOW)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let series = minute_sums(cw, &metrics, start, end).await?;
    // The minute starting at `at` closed at `at` + 60 s.
    let settled = |at: &SystemTime| {
        at.checked_add(Duration::from_secs(60).saturating_add(RATE_SETTLE))
            .is_some_and(|ready| ready <= end)
    };
    let mut minutes: std::collections::BTreeMap<u64, RateMinute> = Default::default();
    for (index, points) in series.iter().enumerate() {
        for (at, count) in points.iter().filter(|(at, _)| settled(at)) {
            let minute = at
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs().checked_div(60).unwrap_or(0));
            let row = minutes.entry(minute).or_insert(RateMinute {
                minute,
                ..RateMinute::default()
            });
            let slot = match index {
                0 => &mut row.sent,
                1 => &mut row.processed,
                2 => &mut row.reports,
                _ => &mut row.visible,
            };
            *slot = Some(*count);
        }
    }
    Ok(RateWindow {
        minutes: minutes.into_values().collect(),
    })
}
