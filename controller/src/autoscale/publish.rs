//! The autoscaler's own CloudWatch metrics: one `PutMetricData` per evaluation.
//!
//! The [`HEARTBEAT`] datum is what a scaling policy's dead-man's switch watches (its alarm,
//! `provision::kinds::scaling_policy`): it is sent only by an evaluation that read the queue and
//! the fleet and did not fail to set the capacity, so a controller that is down, cut off from
//! AWS, dry-running or suspended leaves the switch armed.

use std::time::SystemTime;

use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
use ballast_aws::{AwsError, SdkResultExt};
use tracing::instrument;

use super::BacklogPerInstance;
use super::actuator::FleetId;

/// CloudWatch namespace of the autoscaler's metrics.
pub const NAMESPACE: &str = "Ballast/Autoscaler";
pub const BACKLOG_PER_INSTANCE: &str = "BacklogPerInstance";
pub const DESIRED_CAPACITY: &str = "DesiredCapacity";
pub const IN_SERVICE_CAPACITY: &str = "InServiceCapacity";
/// 1 per evaluation that was in charge of the fleet (see the module documentation).
pub const HEARTBEAT: &str = "Heartbeat";

/// What one evaluation publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// `None` when the queue could not be read (the datum is left out).
    pub backlog_per_instance: Option<BacklogPerInstance>,
    pub desired: u32,
    pub in_service: u32,
    /// Whether this evaluation sends a [`HEARTBEAT`].
    pub heartbeat: bool,
}

/// Publishes [`Sample`]s under [`NAMESPACE`], with the fleet's dimension
/// (`AutoScalingGroupName` or `Deployment`).
#[derive(Debug, Clone)]
pub struct MetricPublisher {
    client: aws_sdk_cloudwatch::Client,
}

impl MetricPublisher {
    pub fn new(client: aws_sdk_cloudwatch::Client) -> Self {
        MetricPublisher { client }
    }

    /// One `PutMetricData` call with up to four datums.
    #[instrument(skip(self, sample), fields(fleet = %fleet))]
    pub async fn publish(&self, fleet: &FleetId, sample: &Sample) -> Result<(), AwsError> {
        let (dimension_name, dimension_value) = fleet.dimension();
        let dimension = Dimension::builder()
            .name(dimension_name)
            .value(dimension_value)
            .build();
        let now = SystemTime::now();
        let datum = |name: &str, value: f64| {
            MetricDatum::builder()
                .metric_name(name)
                .dimensions(dimension.clone())
                .timestamp(now.into())
                .unit(StandardUnit::Count)
                .value(value)
                .build()
        };
        let mut data = Vec::with_capacity(4);
        if let Some(backlog) = sample.backlog_per_instance {
            // Hundredths, as displayed; CloudWatch stores doubles anyway.
            let hundredths = backlog.hundredths();
            data.push(datum(
                BACKLOG_PER_INSTANCE,
                (hundredths / 100) as f64 + (hundredths % 100) as f64 / 100.0,
            ));
        }
        data.push(datum(DESIRED_CAPACITY, f64::from(sample.desired)));
        data.push(datum(IN_SERVICE_CAPACITY, f64::from(sample.in_service)));
        if sample.heartbeat {
            data.push(datum(HEARTBEAT, 1.0));
        }
        self.client
            .put_metric_data()
            .namespace(NAMESPACE)
            .set_metric_data(Some(data))
            .send()
            .await
            .classify("cloudwatch:PutMetricData")?;
        Ok(())
    }
}
