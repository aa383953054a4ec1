//! A queue's SQS attributes, which arrive and leave as strings: the typed values of the
//! compared fields (encryption, redrive, redrive-allow), what a desired state writes
//! ([`attributes`]) and how a live queue reads ([`live_state`]).

use aws_sdk_sqs::types::QueueAttributeName as Attr;
use ballast_blueprint::{Blueprint, RedrivePermission};
use serde_json::{Value, json};

use super::super::policy_value::PolicyValue;
use super::{QueueField, QueueState, canonical_key};
use crate::provision::state::{Changes, Resolved};
use crate::provision::typed::{Desired, FieldValue, Live, Want};

/// Server-side encryption of a queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueEncryption {
    None,
    SqsManaged,
    /// The key by its canonical ARN (see [`canonical_key`]).
    Kms {
        key: String,
    },
}

impl FieldValue for QueueEncryption {
    fn to_value(&self) -> Value {
        match self {
            QueueEncryption::None => json!({"type": "none"}),
            QueueEncryption::SqsManaged => json!({"type": "sqsManaged"}),
            QueueEncryption::Kms { key } => json!({"type": "kms", "key": key}),
        }
    }
}

/// A redrive policy: where messages go after `max_receive_count` receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redrive {
    pub target_arn: Option<String>,
    pub max_receive_count: Option<u64>,
}

impl FieldValue for Redrive {
    fn to_value(&self) -> Value {
        json!({"deadLetterTargetArn": self.target_arn, "maxReceiveCount": self.max_receive_count})
    }
}

/// A redrive-allow policy: which source queues may use this queue as their dead-letter queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedriveAllow {
    pub permission: Option<String>,
    /// Sorted, so that the order AWS returns them in is not drift.
    pub source_queue_arns: Vec<String>,
}

impl FieldValue for RedriveAllow {
    fn to_value(&self) -> Value {
        json!({"redrivePermission": self.permission, "sourceQueueArns": self.source_queue_arns})
    }
}

/// The numeric attributes, with their desired values.
pub(super) fn numbers(state: &QueueState<Desired>) -> [(QueueField, Attr, &Want<u64>); 5] {
    [
        (
            QueueField::VisibilityTimeout,
            Attr::VisibilityTimeout,
            &state.visibility_timeout,
        ),
        (
            QueueField::Retention,
            Attr::MessageRetentionPeriod,
            &state.retention,
        ),
        (
            QueueField::ReceiveWaitTime,
            Attr::ReceiveMessageWaitTimeSeconds,
            &state.receive_wait_time,
        ),
        (QueueField::Delay, Attr::DelaySeconds, &state.delay),
        (
            QueueField::MaxMessageSize,
            Attr::MaximumMessageSize,
            &state.max_message_size,
        ),
    ]
}

/// SQS attributes for the desired state; with `changes`, only the changed ones.
pub(super) fn attributes(
    want: &QueueState<Desired>,
    changes: Option<&Changes<QueueField>>,
) -> Vec<(Attr, String)> {
    let wanted = |field: QueueField| changes.is_none_or(|c| c.has(field));
    let mut out = Vec::new();
    for (field, attr, value) in numbers(want) {
        if wanted(field)
            && let Some(v) = value.exact()
        {
            out.push((attr, v.to_string()));
        }
    }
    if wanted(QueueField::Encryption) || wanted(QueueField::EncryptionDataKeyReuse) {
        match want.encryption.exact() {
            Some(QueueEncryption::Kms { key }) => {
                out.push((Attr::KmsMasterKeyId, key.clone()));
                if let Some(reuse) = want.data_key_reuse.exact() {
                    out.push((Attr::KmsDataKeyReusePeriodSeconds, reuse.to_string()));
                }
            }
            Some(QueueEncryption::SqsManaged) => {
                out.push((Attr::SqsManagedSseEnabled, "true".into()))
            }
            Some(QueueEncryption::None) => {
                out.push((Attr::SqsManagedSseEnabled, "false".into()));
                out.push((Attr::KmsMasterKeyId, String::new()));
            }
            None => {}
        }
    }
    if wanted(QueueField::DeadLetter) {
        match want.dead_letter.exact() {
            // An empty policy removes the live one (only on update: a new queue has none).
            Some(None) if changes.is_some() => out.push((Attr::RedrivePolicy, String::new())),
            Some(Some(redrive)) => out.push((Attr::RedrivePolicy, redrive.to_value().to_string())),
            _ => {}
        }
    }
    if wanted(QueueField::RedriveAllow)
        && let Some(Some(allow)) = want.redrive_allow.exact()
    {
        out.push((Attr::RedriveAllowPolicy, allow.to_value().to_string()));
    }
    let policy = want.policy.exact();
    if wanted(QueueField::Policy) {
        match policy {
            // An empty policy removes the live one (only on update: a new queue has none).
            Some(None) if changes.is_some() => out.push((Attr::Policy, String::new())),
            Some(Some(policy)) => out.extend(policy.text().map(|text| (Attr::Policy, text))),
            _ => {}
        }
    }
    // moto clears a queue's policy on any SetQueueAttributes that does not name it (AWS keeps
    // it): restating the unchanged policy with every other write is harmless on AWS and keeps
    // moto from showing the next plan a policy that only the emulator removed.
    if changes.is_some()
        && !out.is_empty()
        && !out.iter().any(|(attr, _)| *attr == Attr::Policy)
        && let Some(Some(policy)) = policy
    {
        out.extend(policy.text().map(|text| (Attr::Policy, text)));
    }
    out
}

fn number(attrs: &std::collections::HashMap<Attr, String>, attr: &Attr) -> Option<u64> {
    attrs.get(attr).and_then(|v| v.parse::<u64>().ok())
}

/// The queue's typed live state from its attributes: numbers as numbers, policies parsed.
pub(super) fn live_state(
    attrs: &std::collections::HashMap<Attr, String>,
    resolved: &Resolved,
    bp: &Blueprint,
) -> QueueState<Live> {
    let kms = attrs.get(&Attr::KmsMasterKeyId).filter(|k| !k.is_empty());
    let encryption = match kms {
        Some(key) => QueueEncryption::Kms {
            key: canonical_key(resolved, bp, key),
        },
        None if attrs
            .get(&Attr::SqsManagedSseEnabled)
            .is_some_and(|v| v == "true") =>
        {
            QueueEncryption::SqsManaged
        }
        None => QueueEncryption::None,
    };
    let dead_letter = attrs
        .get(&Attr::RedrivePolicy)
        .and_then(|p| serde_json::from_str::<Value>(p).ok())
        .map(|p| Redrive {
            target_arn: p
                .get("deadLetterTargetArn")
                .and_then(Value::as_str)
                .map(str::to_string),
            // maxReceiveCount may come back as a string or a number.
            max_receive_count: p.get("maxReceiveCount").and_then(|c| {
                c.as_u64()
                    .or_else(|| c.as_str().and_then(|s| s.parse().ok()))
            }),
        });
    let redrive_allow = attrs
        .get(&Attr::RedriveAllowPolicy)
        .and_then(|p| serde_json::from_str::<Value>(p).ok())
        .map(|p| {
            let mut sources: Vec<String> = p
                .get("sourceQueueArns")
                .and_then(Value::as_array)
                .map(|arns| {
                    arns.iter()
                        .filter_map(|a| a.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            sources.sort();
            RedriveAllow {
                permission: p
                    .get("redrivePermission")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                source_queue_arns: sources,
            }
        });
    // An empty `Policy` is how SQS reports "no policy".
    let policy = attrs
        .get(&Attr::Policy)
        .filter(|text| !text.trim().is_empty())
        .map(|text| PolicyValue::read(text));
    QueueState {
        visibility_timeout: number(attrs, &Attr::VisibilityTimeout),
        retention: number(attrs, &Attr::MessageRetentionPeriod),
        receive_wait_time: number(attrs, &Attr::ReceiveMessageWaitTimeSeconds),
        delay: number(attrs, &Attr::DelaySeconds),
        max_message_size: number(attrs, &Attr::MaximumMessageSize),
        fifo: Some(attrs.get(&Attr::FifoQueue).is_some_and(|v| v == "true")),
        encryption: Some(encryption),
        data_key_reuse: kms.and_then(|_| number(attrs, &Attr::KmsDataKeyReusePeriodSeconds)),
        dead_letter: Some(dead_letter),
        redrive_allow: Some(redrive_allow),
        policy: Some(policy),
    }
}

/// The redrive-allow policy of `queue`, its source queues named by ARN next to `own_arn`.
pub(super) fn redrive_allow(
    bp: &Blueprint,
    queue: &ballast_blueprint::Queue,
    own_arn: &str,
) -> Option<RedriveAllow> {
    let ra = queue.redrive_allow.as_ref()?;
    let permission = match ra.policy {
        RedrivePermission::AllowAll => "allowAll",
        RedrivePermission::DenyAll => "denyAll",
        RedrivePermission::ByQueue => "byQueue",
    };
    let mut sources: Vec<String> = ra
        .source_queues
        .iter()
        .map(|s| {
            let name = bp
                .queue(s)
                .map(|sq| bp.queue_name(sq))
                .unwrap_or_else(|| s.clone());
            sibling_arn(own_arn, &name)
        })
        .collect();
    sources.sort();
    Some(RedriveAllow {
        permission: Some(permission.to_string()),
        source_queue_arns: sources,
    })
}

/// The ARN of queue `name` in the same account and region as `arn`.
pub(super) fn sibling_arn(arn: &str, name: &str) -> String {
    match arn.rsplit_once(':') {
        Some((prefix, _)) => format!("{prefix}:{name}"),
        None => name.to_string(),
    }
}
