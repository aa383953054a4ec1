//! Interceptors every Ballast client carries: one counts AWS calls by service, operation and
//! outcome; the other makes a client read-only, so a read-only command cannot reach a mutating
//! AWS call no matter which code path runs.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

/// Operations that only read. Anything else is a mutation. Takes an operation name
/// (`DescribeTable`) or its label (`dynamodb:DescribeTable`).
pub fn is_read_only_operation(operation: &str) -> bool {
    const READ_PREFIXES: &[&str] = &["Describe", "Get", "List", "Query", "Scan", "BatchGet"];
    let operation = crate::label::operation_name(operation);
    // SQS ReceiveMessage changes visibility, and it matches no prefix: it counts as a mutation.
    READ_PREFIXES.iter().any(|p| operation.starts_with(p))
}

/// One kind of counted call: its service (the IAM prefix, `sqs`), operation name and outcome.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct CallKey {
    pub service: String,
    pub operation: String,
    pub outcome: &'static str,
}

impl CallKey {
    /// The call's label, `service:Operation`.
    pub fn label(&self) -> String {
        format!("{}:{}", self.service, self.operation)
    }
}

/// Counts every AWS call that reached its end, by service, operation and outcome.
#[derive(Debug, Clone, Default)]
pub struct CallRecorder {
    /// A poisoned lock is taken over (`PoisonError::into_inner`): a panic elsewhere can at worst
    /// lose one increment, and counting must never turn it into a second panic.
    counts: Arc<Mutex<BTreeMap<CallKey, u64>>>,
}

impl CallRecorder {
    pub fn snapshot(&self) -> BTreeMap<CallKey, u64> {
        self.counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn total(&self) -> u64 {
        self.snapshot().values().sum()
    }

    /// Mutating calls that were sent (refused ones never left the process).
    pub fn mutating(&self) -> u64 {
        self.snapshot()
            .iter()
            .filter(|(k, _)| !is_read_only_operation(&k.operation) && k.outcome != "refused")
            .map(|(_, n)| n)
            .sum()
    }

    pub fn reset(&self) {
        self.counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

impl Intercept for CallRecorder {
    fn name(&self) -> &'static str {
        "BallastCallRecorder"
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(metadata) = cfg.load::<Metadata>() {
            let outcome = match context.output_or_error() {
                _ if cfg.load::<Refused>().is_some() => "refused",
                Some(Ok(_)) => "ok",
                _ => "error",
            };
            let key = CallKey {
                service: crate::label::service_prefix(metadata.service()).into_owned(),
                operation: metadata.name().to_string(),
                outcome,
            };
            *self
                .counts
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(key)
                .or_default() += 1;
        }
        Ok(())
    }
}

/// Marks a call the guard refused, so the recorder does not count it as sent.
#[derive(Debug, Clone)]
struct Refused;

impl aws_smithy_types::config_bag::Storable for Refused {
    type Storer = aws_smithy_types::config_bag::StoreReplace<Self>;
}

/// Refuses, before anything is sent, every operation that is not a read.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReadOnlyGuard;

#[derive(Debug, thiserror::Error)]
#[error("{service}:{operation} refused: this client is read-only")]
pub struct MutationRefused {
    pub service: String,
    pub operation: String,
}

impl Intercept for ReadOnlyGuard {
    fn name(&self) -> &'static str {
        "BallastReadOnlyGuard"
    }

    // The operation's metadata is in the config bag from serialization on.
    fn read_before_serialization(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let refusal = match cfg.load::<Metadata>() {
            Some(m) if is_read_only_operation(m.name()) => return Ok(()),
            Some(m) => MutationRefused {
                service: crate::label::service_prefix(m.service()).into_owned(),
                operation: m.name().to_string(),
            },
            None => MutationRefused {
                service: "unknown".into(),
                operation: "unknown".into(),
            },
        };
        cfg.interceptor_state().store_put(Refused);
        Err(Box::new(refusal))
    }
}

#[cfg(test)]
mod tests {
    use super::is_read_only_operation;

    #[test]
    fn reads_and_writes_are_told_apart() {
        for op in [
            "DescribeKey",
            "GetQueueAttributes",
            "ListTagsOfResource",
            "DescribeAutoScalingGroups",
            "GetQueueUrl",
            "dynamodb:DescribeTable",
        ] {
            assert!(is_read_only_operation(op), "{op}");
        }
        for op in [
            "CreateQueue",
            "SetQueueAttributes",
            "PutMetricAlarm",
            "DeleteTable",
            "ReceiveMessage",
            "SetDesiredCapacity",
            "TagResource",
            "UpdateContinuousBackups",
            "ScheduleKeyDeletion",
            "EnableKeyRotation",
            "sqs:ReceiveMessage",
        ] {
            assert!(!is_read_only_operation(op), "{op}");
        }
    }
}
