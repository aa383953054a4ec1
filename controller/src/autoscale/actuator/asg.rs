//! An EC2 Auto Scaling group as the fleet.

use std::sync::Mutex;

use ballast_aws::SdkResultExt;
use futures::future::BoxFuture;
use tracing::instrument;

use super::{Actuator, ActuatorError, FleetCapacity, FleetId, SetOutcome, plan_change};
use crate::autoscale::metrics::describe_group;

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
}
