use ballast_aws::AwsError;
use ballast_blueprint::ResourceId;

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// An AWS call failed; the error keeps the AWS code and message.
    #[error("{resource}: {source}")]
    Aws {
        resource: ResourceId,
        #[source]
        source: AwsError,
    },
    /// AWS answered with something Ballast cannot read.
    #[error("{resource}: unexpected response from {operation}: {detail}")]
    Unexpected {
        resource: ResourceId,
        operation: &'static str,
        detail: String,
    },
    #[error("{resource}: not ready after {waited_secs}s waiting for {what}")]
    NotReady {
        resource: ResourceId,
        what: &'static str,
        waited_secs: u64,
    },
    /// Shutdown was requested while waiting; the next apply converges from what is there.
    #[error("{resource}: interrupted while waiting for {what}")]
    Interrupted {
        resource: ResourceId,
        what: &'static str,
    },
    /// A resource to apply that the blueprint does not declare (a planner bug, reported rather
    /// than a panic).
    #[error("{resource}: not declared in the blueprint")]
    NotDeclared { resource: ResourceId },
    /// A converted kind got a state without its typed state (an engine bug, reported rather
    /// than a panic).
    #[error("{resource}: the {side} state carries no typed state {expected}")]
    Untyped {
        resource: ResourceId,
        side: &'static str,
        expected: &'static str,
    },
    /// A policy document the blueprint writes out that is not one (validation refuses it;
    /// reported rather than sent).
    #[error("{resource}: the blueprint's policy document cannot be written: {source}")]
    InvalidDocument {
        resource: ResourceId,
        #[source]
        source: ballast_blueprint::policy::PolicyError,
    },
    #[error("{resource}: needs {dependency}, which does not exist")]
    MissingDependency {
        resource: ResourceId,
        dependency: ResourceId,
    },
    /// A resource needs one that has `management: observe` and does not exist: apply never
    /// creates an observed resource, so it cannot create this one either.
    #[error(
        "{resource}: skipped: needs {dependency}, which does not exist and is not created (management: observe); create it by hand or set `management: manage` on it"
    )]
    ObservedMissing {
        resource: ResourceId,
        dependency: ResourceId,
    },
}

impl ProvisionError {
    pub fn aws(resource: &ResourceId) -> impl FnOnce(AwsError) -> ProvisionError + '_ {
        move |source| ProvisionError::Aws {
            resource: resource.clone(),
            source,
        }
    }

    /// The outcome of a delete: a resource that is already gone has been deleted.
    pub fn unless_gone<T>(
        resource: &ResourceId,
        result: Result<T, AwsError>,
    ) -> Result<(), ProvisionError> {
        match result {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(ProvisionError::aws(resource)(e)),
        }
    }

    pub fn resource(&self) -> &ResourceId {
        match self {
            ProvisionError::Aws { resource, .. }
            | ProvisionError::Unexpected { resource, .. }
            | ProvisionError::NotReady { resource, .. }
            | ProvisionError::Interrupted { resource, .. }
            | ProvisionError::NotDeclared { resource }
            | ProvisionError::Untyped { resource, .. }
            | ProvisionError::InvalidDocument { resource, .. }
            | ProvisionError::MissingDependency { resource, .. }
            | ProvisionError::ObservedMissing { resource, .. } => resource,
        }
    }

    pub fn aws_error(&self) -> Option<&AwsError> {
        match self {
            ProvisionError::Aws { source, .. } => Some(source),
            _ => None,
        }
    }
}
