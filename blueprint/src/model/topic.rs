use super::{DeletionPolicy, Management, Tags};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A standard SNS topic and its subscriptions: where alarms send their notifications.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Topic {
    /// Blueprint name, used by references (`alarmActions: [oncall]`).
    pub name: String,
    /// Physical topic name. Default: `<metadata.name>-<name>`.
    #[serde(default)]
    pub topic_name: Option<String>,
    /// Blueprint name of a KMS key that encrypts messages at rest. Default: no encryption.
    #[serde(default)]
    pub kms_key: Option<String>,
    /// Who receives the topic's messages; compared as a set (order does not matter).
    #[serde(default)]
    pub subscriptions: Vec<TopicSubscription>,
    #[serde(default)]
    pub deletion_policy: Option<DeletionPolicy>,
    /// Take over an existing topic of this name that does not carry Ballast's tags.
    #[serde(default)]
    pub adopt: bool,
    /// `observe`: plan, drift and `ballast run` report this resource's drift, but apply and
    /// `ballast run` never create, change, replace or delete it. Default: `manage`.
    #[serde(default)]
    pub management: Management,
    #[serde(default)]
    pub tags: Tags,
}

/// One receiver of a topic's messages.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TopicSubscription {
    pub protocol: SubscriptionProtocol,
    /// `email`: an email address (the recipient must confirm it before it receives anything);
    /// `https`: an `https://` URL; `sqs`: the blueprint name of a queue, or a queue ARN.
    pub endpoint: String,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub enum SubscriptionProtocol {
    Email,
    Https,
    Sqs,
}

impl SubscriptionProtocol {
    /// The protocol as SNS names it.
    pub fn as_str(&self) -> &'static str {
        match self {
            SubscriptionProtocol::Email => "email",
            SubscriptionProtocol::Https => "https",
            SubscriptionProtocol::Sqs => "sqs",
        }
    }
}

impl TopicSubscription {
    /// The blueprint queue an `sqs` subscription names, unless it gives an ARN.
    pub fn queue_reference(&self) -> Option<&str> {
        (self.protocol == SubscriptionProtocol::Sqs && !self.endpoint.starts_with("arn:"))
            .then_some(self.endpoint.as_str())
    }
}

impl super::Blueprint {
    /// The blueprint's topics with an `sqs` subscription delivering to `queue`, named by its
    /// blueprint name or by its ARN.
    pub fn topics_delivering_to<'a>(
        &'a self,
        queue: &'a super::Queue,
    ) -> impl Iterator<Item = &'a Topic> + 'a {
        let physical = self.queue_name(queue);
        self.spec.topics.iter().filter(move |t| {
            t.subscriptions.iter().any(|s| {
                s.protocol == SubscriptionProtocol::Sqs
                    && (s.endpoint == queue.name
                        || (s.endpoint.starts_with("arn:")
                            && s.endpoint.rsplit(':').next() == Some(physical.as_str())))
            })
        })
    }
}

impl crate::registry::Resource for Topic {
    const REFERENCES: &'static [crate::ResourceKind] =
        &[crate::ResourceKind::KmsKey, crate::ResourceKind::Queue];

    fn in_spec(spec: &super::Spec) -> Vec<(&Self, String)> {
        let at = |(i, t)| (t, format!("spec.topics[{i}]"));
        spec.topics.iter().enumerate().map(at).collect()
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn physical_name(&self, bp: &super::Blueprint) -> Option<String> {
        Some(bp.topic_name(self))
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
        if let Some(key) = &self.kms_key {
            let at = format!("{path}.kmsKey");
            out.push(Reference::new(me, at, K::KmsKey, key, true));
        }
        for (j, s) in self.subscriptions.iter().enumerate() {
            if let Some(queue) = s.queue_reference() {
                let at = format!("{path}.subscriptions[{j}].endpoint");
                out.push(Reference::new(me, at, K::Queue, queue, true));
            }
        }
        out
    }
}
