//! An EC2 Auto Scaling group as the fleet.

use std::sync::Mutex;

use ballast_aws::SdkResultExt;
use futures::future::BoxFuture;
use tracing::instrument;

use super::{
    Actuator, ActuatorError, FleetCapacity, FleetId, LastActivity, SetOutcome, plan_change,
};
use crate::autoscale::Timestamp;
use crate::autoscale::reading::describe_group;

/// Drives one Auto Scaling group with `SetDesiredCapacity` (`HonorCooldown=false`:
/// the policy has its own cooldown). Never touches the group's min/max.
#[derive(Debug)]
pub struct AsgActuator {
    client: aws_sdk_autoscaling::Client,
    fleet: FleetId,
    group_name: String,
    last: Mutex<Option<FleetCapacity>>,
}

impl AsgActuator {
    pub fn new(client: aws_sdk_autoscaling::Client, group_name: impl Into<String>) -> Self {
        let group_name = group_name.into();
        AsgActuator {
            client,
            fleet: FleetId::AutoScalingGroup {
                name: group_name.clone(),
            },
            group_name,
            last: Mutex::new(None),
        }
    }

    fn remember(&self, capacity: FleetCapacity) {
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(capacity);
    }

    #[instrument(skip(self), fields(group = %self.group_name))]
    async fn read(&self) -> Result<FleetCapacity, ActuatorError> {
        let capacity = describe_group(&self.client, &self.group_name).await?;
        self.remember(capacity);
        Ok(capacity)
    }

    #[instrument(skip(self), fields(group = %self.group_name))]
    async fn write(&self, desired: u32) -> Result<SetOutcome, ActuatorError> {
        let cached = *self.last.lock().unwrap_or_else(|e| e.into_inner());
        let capacity = match cached {
            Some(c) => c,
            None => self.read().await?,
        };
        let Some(from) = plan_change(&self.fleet, &capacity, desired)? else {
            return Ok(SetOutcome::Unchanged { desired });
        };
        let value = i32::try_from(desired).map_err(|_| ActuatorError::OutOfBounds {
            fleet: self.fleet.clone(),
            requested: desired,
            min: capacity.min,
            max: capacity.max,
        })?;
        self.client
            .set_desired_capacity()
            .auto_scaling_group_name(&self.group_name)
            .desired_capacity(value)
            .honor_cooldown(false)
            .send()
            .await
            .classify("autoscaling:SetDesiredCapacity")?;
        tracing::info!(from, to = desired, "set desired capacity");
        self.remember(FleetCapacity {
            desired,
            ..capacity
        });
        Ok(SetOutcome::Changed { from, to: desired })
    }
}

impl AsgActuator {
    /// `DescribeScalingActivities` for the group, newest first: the start of
    /// the most recent activity of any cause (a scaling action, a
    /// replacement), which is the conservative reading for a cooldown.
    #[instrument(skip(self), fields(group = %self.group_name))]
    async fn activity(&self) -> Result<LastActivity, ActuatorError> {
        let out = self
            .client
            .describe_scaling_activities()
            .auto_scaling_group_name(&self.group_name)
            .max_records(1)
            .send()
            .await
            .classify("autoscaling:DescribeScalingActivities")?;
        let latest = out
            .activities
            .unwrap_or_default()
            .iter()
            .filter_map(|a| a.start_time)
            .filter_map(|t| std::time::SystemTime::try_from(t).ok())
            .max();
        Ok(match latest {
            Some(at) => LastActivity::At(Timestamp::from_system_time(at)),
            None => LastActivity::Never,
        })
    }
}

impl Actuator for AsgActuator {
    fn fleet(&self) -> &FleetId {
        &self.fleet
    }

    fn current(&self) -> BoxFuture<'_, Result<FleetCapacity, ActuatorError>> {
        Box::pin(self.read())
    }

    fn set_desired(&self, desired: u32) -> BoxFuture<'_, Result<SetOutcome, ActuatorError>> {
        Box::pin(self.write(desired))
    }

    fn last_activity(&self) -> BoxFuture<'_, Result<LastActivity, ActuatorError>> {
        Box::pin(self.activity())
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_autoscaling::Client;
    use aws_sdk_autoscaling::operation::describe_scaling_activities::DescribeScalingActivitiesOutput;
    use aws_sdk_autoscaling::types::{Activity, ScalingActivityStatusCode};
    use aws_smithy_mocks::{RuleMode, mock, mock_client};
    use aws_smithy_types::DateTime;

    use super::*;

    fn activity(secs: i64) -> Activity {
        Activity::builder()
            .activity_id("a")
            .auto_scaling_group_name("g")
            .cause("set desired capacity")
            .start_time(DateTime::from_secs(secs))
            .status_code(ScalingActivityStatusCode::Successful)
            .build()
    }

    #[tokio::test]
    async fn the_newest_activity_is_the_last_scaling_action() {
        let rule = mock!(Client::describe_scaling_activities)
            .match_requests(|r| {
                r.auto_scaling_group_name() == Some("g") && r.max_records() == Some(1)
            })
            .then_output(|| {
                DescribeScalingActivitiesOutput::builder()
                    .activities(activity(1_700_000_000))
                    .build()
            });
        let client = mock_client!(aws_sdk_autoscaling, RuleMode::Sequential, [&rule]);
        let actuator = AsgActuator::new(client, "g");
        assert_eq!(
            actuator.last_activity().await.unwrap(),
            LastActivity::At(Timestamp::from_secs(1_700_000_000))
        );
    }

    #[tokio::test]
    async fn an_empty_history_means_never() {
        let rule = mock!(Client::describe_scaling_activities)
            .then_output(|| DescribeScalingActivitiesOutput::builder().build());
        let client = mock_client!(aws_sdk_autoscaling, RuleMode::Sequential, [&rule]);
        let actuator = AsgActuator::new(client, "g");
        assert_eq!(actuator.last_activity().await.unwrap(), LastActivity::Never);
    }
}
