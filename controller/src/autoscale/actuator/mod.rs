//! Actuators: what the control loop reads the fleet size from and writes the
//! desired capacity to.
//!
//! * [`AsgActuator`]: an EC2 Auto Scaling group (`SetDesiredCapacity`).
//! * [`DeploymentActuator`]: a Kubernetes Deployment's `scale` subresource.
//! * [`DryRunActuator`]: reads through another actuator and never writes.
//!
//! Every actuator refuses a capacity outside the fleet's `[min, max]` and makes
//! no call when the capacity would not change.

mod asg;
mod deployment;

use std::fmt;

use futures::future::BoxFuture;
use serde::Serialize;

pub use asg::AsgActuator;
pub use deployment::DeploymentActuator;

use super::reading::ReadingError;

/// The fleet as the actuator sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FleetCapacity {
    /// The capacity currently asked for.
    pub desired: u32,
    /// Instances (or replicas) actually serving.
    pub in_service: u32,
    pub min: u32,
    pub max: u32,
}

/// What a fleet is called, for logs and the CloudWatch dimension.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FleetId {
    /// An Auto Scaling group, by physical name.
    AutoScalingGroup { name: String },
    /// A Kubernetes Deployment.
    Deployment { namespace: String, name: String },
}

impl FleetId {
    /// The CloudWatch dimension identifying this fleet.
    pub fn dimension(&self) -> (&'static str, String) {
        match self {
            FleetId::AutoScalingGroup { name } => ("AutoScalingGroupName", name.clone()),
            FleetId::Deployment { namespace, name } => {
                ("Deployment", format!("{namespace}/{name}"))
            }
        }
    }
}

impl fmt::Display for FleetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FleetId::AutoScalingGroup { name } => write!(f, "autoscaling group {name}"),
            FleetId::Deployment { namespace, name } => write!(f, "deployment {namespace}/{name}"),
        }
    }
}

/// What [`Actuator::set_desired`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SetOutcome {
    /// The capacity was changed.
    Changed { from: u32, to: u32 },
    /// The capacity already had that value; nothing was written.
    Unchanged { desired: u32 },
    /// Dry run: this change would have been made.
    DryRun { from: u32, to: u32 },
}

/// When the fleet last changed size, as far as its own history tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LastActivity {
    /// The fleet keeps no history Ballast can read (a Deployment).
    Unknown,
    /// The history is empty: no scaling activity within its retention
    /// (six weeks for an Auto Scaling group).
    Never,
    /// The most recent activity started at this time.
    At(super::Timestamp),
}

/// Why an actuator failed.
#[derive(Debug, thiserror::Error)]
pub enum ActuatorError {
    #[error(transparent)]
    Aws(#[from] ballast_aws::AwsError),
    #[error(transparent)]
    Read(#[from] ReadingError),
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("refusing to set {fleet} to {requested}: outside [{min}, {max}]")]
    OutOfBounds {
        fleet: FleetId,
        requested: u32,
        min: u32,
        max: u32,
    },
    #[error("{fleet}: {field} is {value}, not a count")]
    BadValue {
        fleet: FleetId,
        field: &'static str,
        value: i64,
    },
}

/// Reads and sets a fleet's desired capacity.
///
/// `current` is called once per evaluation, before `set_desired`; actuators may
/// remember what it returned to avoid a second read.
pub trait Actuator: Send + Sync + fmt::Debug {
    /// The fleet this actuator drives.
    fn fleet(&self) -> &FleetId;
    /// The fleet's desired and in-service capacity and its bounds.
    fn current(&self) -> BoxFuture<'_, Result<FleetCapacity, ActuatorError>>;
    /// Sets the desired capacity: refuses values outside `[min, max]`, writes
    /// nothing when the value does not change.
    fn set_desired(&self, desired: u32) -> BoxFuture<'_, Result<SetOutcome, ActuatorError>>;
    /// When the fleet last scaled, from its own history, so a controller
    /// that starts can honour a cooldown begun before it. Default: unknown.
    fn last_activity(&self) -> BoxFuture<'_, Result<LastActivity, ActuatorError>> {
        Box::pin(async { Ok(LastActivity::Unknown) })
    }
}

/// Checks `requested` against the bounds and the current value: `Ok(None)` when
/// it is unchanged, `Ok(Some(from))` when a write is needed.
pub(crate) fn plan_change(
    fleet: &FleetId,
    capacity: &FleetCapacity,
    requested: u32,
) -> Result<Option<u32>, ActuatorError> {
    if requested < capacity.min || requested > capacity.max {
        return Err(ActuatorError::OutOfBounds {
            fleet: fleet.clone(),
            requested,
            min: capacity.min,
            max: capacity.max,
        });
    }
    Ok((requested != capacity.desired).then_some(capacity.desired))
}

/// Reads through `inner`, never writes: `set_desired` reports what it would do.
#[derive(Debug)]
pub struct DryRunActuator<A> {
    inner: A,
    last: std::sync::Mutex<Option<FleetCapacity>>,
}

impl<A: Actuator> DryRunActuator<A> {
    pub fn new(inner: A) -> Self {
        DryRunActuator {
            inner,
            last: std::sync::Mutex::new(None),
        }
    }
}

impl<A: Actuator> Actuator for DryRunActuator<A> {
    fn fleet(&self) -> &FleetId {
        self.inner.fleet()
    }

    fn current(&self) -> BoxFuture<'_, Result<FleetCapacity, ActuatorError>> {
        Box::pin(async move {
            let capacity = self.inner.current().await?;
            *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(capacity);
            Ok(capacity)
        })
    }

    fn set_desired(&self, desired: u32) -> BoxFuture<'_, Result<SetOutcome, ActuatorError>> {
        Box::pin(async move {
            let cached = *self.last.lock().unwrap_or_else(|e| e.into_inner());
            let capacity = match cached {
                Some(c) => c,
                None => self.current().await?,
            };
            Ok(match plan_change(self.fleet(), &capacity, desired)? {
                Some(from) => SetOutcome::DryRun { from, to: desired },
                None => SetOutcome::Unchanged { desired },
            })
        })
    }

    fn last_activity(&self) -> BoxFuture<'_, Result<LastActivity, ActuatorError>> {
        self.inner.last_activity()
    }
}

impl<A: Actuator + ?Sized> Actuator for std::sync::Arc<A> {
    fn fleet(&self) -> &FleetId {
        (**self).fleet()
    }
    fn current(&self) -> BoxFuture<'_, Result<FleetCapacity, ActuatorError>> {
        (**self).current()
    }
    fn set_desired(&self, desired: u32) -> BoxFuture<'_, Result<SetOutcome, ActuatorError>> {
        (**self).set_desired(desired)
    }
    fn last_activity(&self) -> BoxFuture<'_, Result<LastActivity, ActuatorError>> {
        (**self).last_activity()
    }
}

impl<A: Actuator + ?Sized> Actuator for Box<A> {
    fn fleet(&self) -> &FleetId {
        (**self).fleet()
    }
    fn current(&self) -> BoxFuture<'_, Result<FleetCapacity, ActuatorError>> {
        (**self).current()
    }
    fn set_desired(&self, desired: u32) -> BoxFuture<'_, Result<SetOutcome, ActuatorError>> {
        (**self).set_desired(desired)
    }
    fn last_activity(&self) -> BoxFuture<'_, Result<LastActivity, ActuatorError>> {
        (**self).last_activity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fleet() -> FleetId {
        FleetId::AutoScalingGroup { name: "g".into() }
    }

    fn cap(desired: u32) -> FleetCapacity {
        FleetCapacity {
            desired,
            in_service: desired,
            min: 2,
            max: 10,
        }
    }

    #[test]
    fn plan_change_refuses_out_of_bounds_and_skips_no_ops() {
        assert!(matches!(
            plan_change(&fleet(), &cap(5), 11),
            Err(ActuatorError::OutOfBounds {
                requested: 11,
                min: 2,
                max: 10,
                ..
            })
        ));
        assert!(matches!(
            plan_change(&fleet(), &cap(5), 1),
            Err(ActuatorError::OutOfBounds { .. })
        ));
        assert_eq!(plan_change(&fleet(), &cap(5), 5).unwrap(), None);
        assert_eq!(plan_change(&fleet(), &cap(5), 10).unwrap(), Some(5));
        assert_eq!(plan_change(&fleet(), &cap(5), 2).unwrap(), Some(5));
    }

    #[test]
    fn dimensions_name_the_fleet() {
        assert_eq!(
            fleet().dimension(),
            ("AutoScalingGroupName", "g".to_string())
        );
        let d = FleetId::Deployment {
            namespace: "ns".into(),
            name: "w".into(),
        };
        assert_eq!(d.dimension(), ("Deployment", "ns/w".to_string()));
    }
}
