//! A Kubernetes Deployment as the fleet, through its `scale` subresource.

use std::sync::Mutex;

use futures::future::BoxFuture;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, Patch, PatchParams};
use tracing::instrument;

use super::{Actuator, ActuatorError, FleetCapacity, FleetId, SetOutcome, plan_change};

/// Reads `GET .../deployments/{name}/scale` (`spec.replicas` is the desired
/// capacity, `status.replicas` the running replicas) and writes with a merge
/// patch of `spec.replicas` on the same subresource. The bounds come from the
/// scaling policy's `minReplicas`/`maxReplicas`.
#[derive(Debug)]
pub struct DeploymentActuator {
    api: Api<Deployment>,
    fleet: FleetId,
    name: String,
    min: u32,
    max: u32,
    last: Mutex<Option<FleetCapacity>>,
}

impl DeploymentActuator {
    pub fn new(client: kube::Client, namespace: &str, name: &str, min: u32, max: u32) -> Self {
        DeploymentActuator {
            api: Api::namespaced(client, namespace),
            fleet: FleetId::Deployment {
                namespace: namespace.to_string(),
                name: name.to_string(),
            },
            name: name.to_string(),
            min,
            max,
            last: Mutex::new(None),
        }
    }

    fn count(&self, field: &'static str, value: Option<i32>) -> Result<u32, ActuatorError> {
        let value = value.unwrap_or(0);
        u32::try_from(value).map_err(|_| ActuatorError::BadValue {
            fleet: self.fleet.clone(),
            field,
            value: i64::from(value),
        })
    }

    fn remember(&self, capacity: FleetCapacity) {
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(capacity);
    }

    #[instrument(skip(self), fields(deployment = %self.fleet))]
    async fn read(&self) -> Result<FleetCapacity, ActuatorError> {
        let scale = self.api.get_scale(&self.name).await?;
        let desired = self.count(
            "spec.replicas",
            scale.spec.as_ref().and_then(|s| s.replicas),
        )?;
        let in_service =
            self.count("status.replicas", scale.status.as_ref().map(|s| s.replicas))?;
        let capacity = FleetCapacity {
            desired,
            in_service,
            min: self.min,
            max: self.max,
        };
        self.remember(capacity);
        Ok(capacity)
    }

    #[instrument(skip(self), fields(deployment = %self.fleet))]
    async fn write(&self, desired: u32) -> Result<SetOutcome, ActuatorError> {
        let cached = *self.last.lock().unwrap_or_else(|e| e.into_inner());
        let capacity = match cached {
            Some(c) => c,
            None => self.read().await?,
        };
        let Some(from) = plan_change(&self.fleet, &capacity, desired)? else {
            return Ok(SetOutcome::Unchanged { desired });
        };
        let patch = serde_json::json!({ "spec": { "replicas": desired } });
        self.api
            .patch_scale(&self.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        tracing::info!(from, to = desired, "scaled deployment");
        self.remember(FleetCapacity {
            desired,
            ..capacity
        });
        Ok(SetOutcome::Changed { from, to: desired })
    }
}

impl Actuator for DeploymentActuator {
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
