use super::{DeletionPolicy, Duration, Management, Tags};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A standard SQS queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Queue {
    pub name: String,
    /// Physical queue name. Default: `<metadata.name>-<name>`.
    #[serde(default)]
    pub queue_name: Option<String>,
    /// 0s..12h. Default: 30s.
    #[serde(default = "default_visibility")]
    pub visibility_timeout: Duration,
    /// Message retention, 60s..14d. Default: 4d.
    #[serde(default = "default_retention")]
    pub retention: Duration,
    /// Long polling wait, 0s..20s. Default: 20s.
    #[serde(default = "default_wait")]
    pub receive_wait_time: Duration,
    /// Delivery delay, 0s..15m. Default: 0s.
    #[serde(default = "zero")]
    pub delay: Duration,
    /// Maximum message size in bytes, 1024..1048576. Default: 262144.
    #[serde(default = "default_max_message_size")]
    pub max_message_size: u64,
    /// Server-side encryption. Default: SQS-managed keys.
    #[serde(default)]
    pub encryption: QueueEncryption,
    /// Where messages go after too many receives.
    #[serde(default)]
    pub dead_letter: Option<DeadLetter>,
    /// Which queues may use this queue as their dead-letter queue.
    #[serde(default)]
    pub redrive_allow: Option<RedriveAllow>,
    /// Refuse every request not made over TLS: the queue policy denies `sqs:*` to anyone when
    /// `aws:SecureTransport` is false. Default: true; `false` is a safety override (the queue
    /// then has no policy, and one added by hand is removed as drift).
    #[serde(default = "super::kms::yes")]
    pub tls_only: bool,
    /// Statements of the queue's own policy, as in IAM (`Effect`, `Principal`, `Action`,
    /// `Resource: "*"`, which means this queue, and `Condition`), after the TLS-only statement
    /// and those letting blueprint topics deliver; e.g. another account that may send.
    #[serde(default)]
    pub policy_statements: Vec<serde_json::Value>,
    #[serde(default)]
    pub deletion_policy: Option<DeletionPolicy>,
    #[serde(default)]
    pub adopt: bool,
    /// `observe`: plan, drift and `ballast run` report this resource's drift, but apply and
    /// `ballast run` never create, change, replace or delete it. Default: `manage`.
    #[serde(default)]
    pub management: Management,
    #[serde(default)]
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct QueueEncryption {
    #[serde(default, rename = "type")]
    pub kind: QueueEncryptionKind,
    /// Blueprint name of a KMS key (with `type: kms`).
    #[serde(default)]
    pub kms_key: Option<String>,
    /// ARN of an existing KMS key (with `type: kms`).
    #[serde(default)]
    pub kms_key_arn: Option<String>,
    /// How long SQS reuses a data key, 60s..24h. Default: 5m.
    #[serde(default)]
    pub data_key_reuse: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum QueueEncryptionKind {
    /// SSE-SQS.
    #[default]
    SqsManaged,
    /// SSE-KMS with `kmsKey` or `kmsKeyArn`.
    Kms,
    /// No encryption at rest: a safety default switched off.
    None,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeadLetter {
    /// Blueprint name of the dead-letter queue.
    pub queue: String,
    /// Receives before a message moves to the dead-letter queue, 1..1000.
    pub max_receive_count: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RedriveAllow {
    pub policy: RedrivePermission,
    /// Blueprint names of the source queues (with `policy: byQueue`), at most 10.
    #[serde(default)]
    pub source_queues: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum RedrivePermission {
    AllowAll,
    DenyAll,
    ByQueue,
}

fn default_visibility() -> Duration {
    Duration::from_secs(30)
}
fn default_retention() -> Duration {
    Duration::from_secs(4 * 86_400)
}
fn default_wait() -> Duration {
    Duration::from_secs(20)
}
pub(crate) fn zero() -> Duration {
    Duration::from_secs(0)
}
fn default_max_message_size() -> u64 {
    262_144
}

impl crate::registry::Resource for Queue {
    const REFERENCES: &'static [crate::ResourceKind] =
        &[crate::ResourceKind::KmsKey, crate::ResourceKind::Queue];

    fn in_spec(spec: &super::Spec) -> Vec<(&Self, String)> {
        let at = |(i, q)| (q, format!("spec.queues[{i}]"));
        spec.queues.iter().enumerate().map(at).collect()
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn physical_name(&self, bp: &super::Blueprint) -> Option<String> {
        Some(bp.queue_name(self))
    }

    fn references(
        &self,
        me: &crate::ResourceId,
        path: &str,
        _spec: &super::Spec,
    ) -> Vec<crate::graph::Reference> {
        use crate::ResourceKind as K;
        use crate::graph::Reference;
        let mut out = Vec::new();
        if self.encryption.kind == QueueEncryptionKind::Kms
            && let Some(key) = &self.encryption.kms_key
        {
            let at = format!("{path}.encryption.kmsKey");
            out.push(Reference::new(me, at, K::KmsKey, key, true));
        }
        if let Some(dl) = &self.dead_letter {
            let at = format!("{path}.deadLetter.queue");
            out.push(Reference::new(me, at, K::Queue, &dl.queue, true));
        }
        if let Some(ra) = &self.redrive_allow {
            for (j, source) in ra.source_queues.iter().enumerate() {
                // A redrive-allow list only names its sources: no ordering.
                let at = format!("{path}.redriveAllow.sourceQueues[{j}]");
                out.push(Reference::new(me, at, K::Queue, source, false));
            }
        }
        out
    }
}
