//! SNS topics and their subscriptions.
//!
//! Subscriptions compare as a set of (protocol, endpoint): their order in the blueprint and in
//! `ListSubscriptionsByTopic` does not matter, and an `sqs` endpoint named by its blueprint queue
//! compares as the queue's ARN. An email subscription exists from `Subscribe` on, but delivers
//! nothing until its recipient follows the link SNS mails them: until then AWS lists it with the
//! ARN `PendingConfirmation`. Such a subscription counts as present (subscribing again would only
//! mail the link again), and the `pendingConfirmation` field lists it: delegated to the recipient,
//! so plan and drift show it and apply cannot change it.
//!
//! Ownership is by tags, read with `ListTagsForResource` per topic (moto's tagging API does not
//! list SNS topics, so the registry's `tagging` column is empty for this kind).

use std::collections::BTreeSet;

use aws_sdk_sns::types::{Subscription as AwsSubscription, Tag};
use ballast_aws::{BuildResultExt, SdkResultExt};
use ballast_blueprint::{Blueprint, ResourceId, ResourceKind, Tags};
use futures::future::try_join_all;
use serde_json::{Value, json};
use tracing::{instrument, warn};

use super::queue::canonical_key;
use super::{ApplyContext, ObserveContext, Observed, ResourceOps, declared};
use crate::provision::context::ReadOnlyClients;
use crate::provision::diff::FieldChange;
use crate::provision::error::ProvisionError;
use crate::provision::state::{Changes, DesiredState, LiveState, Ownership, Resolved};
use crate::provision::tagged::tags_or_read;
use crate::provision::typed::{Desired, FieldValue, Live, TypedDesired, TypedLive, Want};

pub struct Topics;

crate::provision::state::field_names! {
    /// The fields of Topics, as plan and drift output name them.
    pub enum TopicField {
        KmsKey = "kmsKey",
        Subscriptions = "subscriptions",
        PendingConfirmation = "pendingConfirmation",
    }
}

crate::provision::typed::typed_state! {
    /// A topic's compared state: `desired` builds it from the blueprint, `observe` from the
    /// topic's attributes and its subscriptions.
    pub struct TopicState for TopicField {
        /// The key by its canonical ARN; `None`: not encrypted.
        KmsKey => kms_key: Option<String> = Enforced,
        /// Every subscription, confirmed or not, sorted.
        Subscriptions => subscriptions: Vec<Subscription> = Enforced,
        /// The subscriptions still waiting for their recipient to confirm them.
        PendingConfirmation => pending_confirmation: Vec<Subscription> = Delegated,
    }
}

/// What SNS answers as the ARN of a subscription its recipient has not confirmed yet.
const PENDING_CONFIRMATION: &str = "PendingConfirmation";
/// What SNS answers as the ARN of a subscription being deleted.
const DELETED: &str = "Deleted";

/// One subscription as the topic compares it: the protocol and its endpoint (a queue by ARN).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Subscription {
    pub protocol: String,
    pub endpoint: String,
}

impl FieldValue for Subscription {
    fn to_value(&self) -> Value {
        json!({"protocol": self.protocol, "endpoint": self.endpoint})
    }
}

/// A subscription AWS listed, with the ARN `Unsubscribe` takes (none while pending).
#[derive(Debug, Clone, PartialEq, Eq)]
struct ListedSubscription {
    subscription: Subscription,
    arn: Option<String>,
    pending: bool,
}

fn listed(s: &AwsSubscription) -> Option<ListedSubscription> {
    let arn = s.subscription_arn().unwrap_or_default();
    if arn == DELETED {
        return None;
    }
    let pending = arn == PENDING_CONFIRMATION;
    Some(ListedSubscription {
        subscription: Subscription {
            protocol: s.protocol()?.to_string(),
            endpoint: s.endpoint()?.to_string(),
        },
        arn: (!pending && !arn.is_empty()).then(|| arn.to_string()),
        pending,
    })
}

/// The topic's typed desired state; queue and key references resolve through `resolved`.
fn desired_state(resolved: &Resolved, topic: &ballast_blueprint::Topic) -> TopicState<Desired> {
    let kms_key = match &topic.kms_key {
        None => Want::Exact(None),
        Some(name) => Want::exact_or_later(
            resolved
                .arn(&ResourceId::new(ResourceKind::KmsKey, name))
                .map(|arn| Some(arn.to_string())),
        ),
    };
    let endpoints: Option<BTreeSet<Subscription>> = topic
        .subscriptions
        .iter()
        .map(|s| {
            let endpoint = match s.queue_reference() {
                Some(queue) => resolved
                    .arn(&ResourceId::new(ResourceKind::Queue, queue))?
                    .to_string(),
                None => s.endpoint.clone(),
            };
            Some(Subscription {
                protocol: s.protocol.as_str().to_string(),
                endpoint,
            })
        })
        .collect();
    TopicState {
        kms_key,
        subscriptions: Want::exact_or_later(endpoints.map(|set| set.into_iter().collect())),
        pending_confirmation: Want::Exact(Vec::new()),
    }
}

fn aws_tags(id: &ResourceId, tags: &Tags) -> Result<Vec<Tag>, ProvisionError> {
    tags.iter()
        .map(|(k, v)| {
            Tag::builder()
                .key(k)
                .value(v)
                .build()
                .built("sns:TagResource")
                .map_err(ProvisionError::aws(id))
        })
        .collect()
}

#[instrument(skip_all, fields(topic = %arn))]
async fn list_subscriptions(
    sns: &aws_sdk_sns::Client,
    id: &ResourceId,
    arn: &str,
) -> Result<Vec<ListedSubscription>, ProvisionError> {
    let pages = sns
        .list_subscriptions_by_topic()
        .topic_arn(arn)
        .into_paginator()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .classify("sns:ListSubscriptionsByTopic")
        .map_err(ProvisionError::aws(id))?;
    Ok(pages
        .iter()
        .flat_map(|p| p.subscriptions())
        .filter_map(listed)
        .collect())
}

#[instrument(skip_all, fields(topic = %arn))]
async fn list_tags(
    sns: &aws_sdk_sns::Client,
    id: &ResourceId,
    arn: &str,
) -> Result<Tags, ProvisionError> {
    let out = sns
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await
        .classify("sns:ListTagsForResource")
        .map_err(ProvisionError::aws(id))?;
    Ok(out
        .tags()
        .iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect())
}

/// One topic's live state: its attributes and subscriptions, with the given tags.
#[instrument(skip_all, fields(topic = %arn))]
async fn read_topic(
    clients: &ReadOnlyClients,
    bp: &Blueprint,
    resolved: &Resolved,
    id: ResourceId,
    arn: &str,
    tags: Tags,
) -> Result<LiveState, ProvisionError> {
    let sns = clients.sns();
    let attributes = sns
        .get_topic_attributes()
        .topic_arn(arn)
        .send()
        .await
        .classify("sns:GetTopicAttributes")
        .map_err(ProvisionError::aws(&id))?
        .attributes
        .unwrap_or_default();
    let subscriptions = list_subscriptions(sns, &id, arn).await?;
    let state = live_state(&attributes, &subscriptions, resolved, bp);
    Ok(LiveState {
        ownership: Ownership::from_tags(&tags, &bp.metadata.name),
        physical_name: topic_name(arn).to_string(),
        physical_id: arn.to_string(),
        arn: Some(arn.to_string()),
        tags,
        fields: state.live_fields(),
        typed: TypedLive::new(state),
        id,
    })
}

/// The topic's typed live state from its attributes and listed subscriptions.
fn live_state(
    attributes: &std::collections::HashMap<String, String>,
    subscriptions: &[ListedSubscription],
    resolved: &Resolved,
    bp: &Blueprint,
) -> TopicState<Live> {
    let kms_key = attributes
        .get("KmsMasterKeyId")
        .filter(|k| !k.is_empty())
        .map(|k| canonical_key(resolved, bp, k));
    let all: BTreeSet<Subscription> = subscriptions
        .iter()
        .map(|s| s.subscription.clone())
        .collect();
    let pending: BTreeSet<Subscription> = subscriptions
        .iter()
        .filter(|s| s.pending)
        .map(|s| s.subscription.clone())
        .collect();
    TopicState {
        kms_key: Some(kms_key),
        subscriptions: Some(all.into_iter().collect()),
        pending_confirmation: Some(pending.into_iter().collect()),
    }
}

/// The topic name, the last part of its ARN.
fn topic_name(arn: &str) -> &str {
    arn.rsplit(':').next().unwrap_or(arn)
}

impl ResourceOps for Topics {
    const KIND: ResourceKind = ResourceKind::Topic;
    type Field = TopicField;

    fn desired(bp: &Blueprint, resolved: &Resolved) -> Vec<DesiredState> {
        bp.spec
            .topics
            .iter()
            .map(|t| {
                let state = desired_state(resolved, t);
                let mut tags = bp.ownership_tags_for(&ResourceId::new(Self::KIND, &t.name));
                tags.extend(t.tags.clone());
                DesiredState {
                    id: ResourceId::new(Self::KIND, &t.name),
                    physical_name: bp.topic_name(t),
                    fields: state.expected_fields(),
                    tags,
                    adopt: t.adopt,
                    deletion_policy: Blueprint::effective_deletion_policy(
                        Self::KIND,
                        t.deletion_policy,
                    ),
                    typed: TypedDesired::new(state),
                }
            })
            .collect()
    }

    /// One paginated `ListTopics` finds declared topics and, under the stack prefix, removed
    /// ones; only topics that are declared or carry this blueprint's tags are read further.
    #[instrument(skip_all, fields(kind = "topic"))]
    async fn observe(ctx: &ObserveContext<'_>) -> Result<Observed, ProvisionError> {
        let sns = ctx.clients.sns();
        let bp = ctx.blueprint;
        let declared = declared(bp, Self::KIND);
        let prefix = format!("{}-", bp.metadata.name);
        let everything = ResourceId::new(Self::KIND, "*");
        let pages = sns
            .list_topics()
            .into_paginator()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .classify("sns:ListTopics")
            .map_err(ProvisionError::aws(&everything))?;
        let candidates: Vec<(ResourceId, bool, String)> = pages
            .iter()
            .flat_map(|p| p.topics())
            .filter_map(|t| {
                let arn = t.topic_arn()?;
                let name = topic_name(arn);
                match declared.iter().find(|(_, n)| n == name) {
                    Some((id, _)) => Some((id.clone(), true, arn.to_string())),
                    None => name.strip_prefix(&prefix).map(|rest| {
                        let id = ResourceId::new(Self::KIND, rest);
                        (id, false, arn.to_string())
                    }),
                }
            })
            .collect();
        let reads = candidates
            .into_iter()
            .map(|(id, is_declared, arn)| async move {
                let tags =
                    tags_or_read(&ctx.shared.tagged, Some(&arn), || list_tags(sns, &id, &arn))
                        .await?;
                // Another stack's `<name>-…` topic is not ours to read further.
                if !is_declared
                    && Ownership::from_tags(&tags, &bp.metadata.name) != Ownership::Owned
                {
                    return Ok(None);
                }
                let live = read_topic(ctx.clients, bp, ctx.resolved, id, &arn, tags).await?;
                Ok::<_, ProvisionError>(Some((is_declared, live)))
            });
        let mut observed = Observed::default();
        for (is_declared, live) in try_join_all(reads).await?.into_iter().flatten() {
            observed.file(live, is_declared);
        }
        Ok(observed)
    }

    #[instrument(skip_all, fields(topic = %desired.physical_name))]
    async fn create(
        ctx: &ApplyContext<'_>,
        desired: &DesiredState,
    ) -> Result<LiveState, ProvisionError> {
        let want = desired.state::<TopicState<Desired>>()?;
        let mut request = ctx
            .clients
            .sns
            .create_topic()
            .name(&desired.physical_name)
            .set_tags(Some(aws_tags(&desired.id, &desired.tags)?));
        if let Some(Some(key)) = want.kms_key.exact() {
            request = request.attributes("KmsMasterKeyId", key);
        }
        let arn = request
            .send()
            .await
            .classify("sns:CreateTopic")
            .map_err(ProvisionError::aws(&desired.id))?
            .topic_arn
            .ok_or_else(|| ProvisionError::Unexpected {
                resource: desired.id.clone(),
                operation: "sns:CreateTopic",
                detail: "no topic ARN in the answer".into(),
            })?;
        for s in want.subscriptions.exact().into_iter().flatten() {
            subscribe(ctx, &desired.id, &arn, s).await?;
        }
        read_topic(
            &ctx.clients.observer(),
            ctx.blueprint,
            ctx.resolved,
            desired.id.clone(),
            &arn,
            desired.tags.clone(),
        )
        .await
    }

    #[instrument(skip_all, fields(topic = %desired.physical_name))]
    async fn update(
        ctx: &ApplyContext<'_>,
        desired: &DesiredState,
        live: &LiveState,
        changes: &[FieldChange],
    ) -> Result<(), ProvisionError> {
        let want = desired.state::<TopicState<Desired>>()?;
        let changes = Changes::<TopicField>::of(changes);
        let sns = &ctx.clients.sns;
        let arn = &live.physical_id;
        if changes.has(TopicField::KmsKey)
            && let Some(key) = want.kms_key.exact()
        {
            // An empty key id switches encryption off.
            sns.set_topic_attributes()
                .topic_arn(arn)
                .attribute_name("KmsMasterKeyId")
                .attribute_value(key.clone().unwrap_or_default())
                .send()
                .await
                .classify("sns:SetTopicAttributes")
                .map_err(ProvisionError::aws(&desired.id))?;
        }
        if changes.has(TopicField::Subscriptions)
            && let Some(wanted) = want.subscriptions.exact()
        {
            // Unsubscribe takes the subscription ARN, which the compared state leaves out:
            // read the list again rather than trust a plan that may be minutes old.
            let have = list_subscriptions(sns, &desired.id, arn).await?;
            let wanted: BTreeSet<&Subscription> = wanted.iter().collect();
            let present: BTreeSet<&Subscription> = have.iter().map(|s| &s.subscription).collect();
            for s in wanted.difference(&present) {
                subscribe(ctx, &desired.id, arn, s).await?;
            }
            for extra in have.iter().filter(|h| !wanted.contains(&h.subscription)) {
                match &extra.arn {
                    Some(subscription_arn) => {
                        sns.unsubscribe()
                            .subscription_arn(subscription_arn)
                            .send()
                            .await
                            .classify("sns:Unsubscribe")
                            .map_err(ProvisionError::aws(&desired.id))?;
                    }
                    // SNS refuses to unsubscribe what was never confirmed; it drops it itself
                    // after three days.
                    None => warn!(
                        protocol = %extra.subscription.protocol,
                        endpoint = %extra.subscription.endpoint,
                        "an unconfirmed subscription cannot be removed; SNS expires it"
                    ),
                }
            }
        }
        if changes.tags() {
            sns.tag_resource()
                .resource_arn(arn)
                .set_tags(Some(aws_tags(&desired.id, &desired.tags)?))
                .send()
                .await
                .classify("sns:TagResource")
                .map_err(ProvisionError::aws(&desired.id))?;
        }
        Ok(())
    }

    #[instrument(skip_all, fields(topic = %live.physical_name))]
    async fn delete(ctx: &ApplyContext<'_>, live: &LiveState) -> Result<(), ProvisionError> {
        // Deleting a topic deletes its subscriptions.
        ProvisionError::unless_gone(
            &live.id,
            ctx.clients
                .sns
                .delete_topic()
                .topic_arn(&live.physical_id)
                .send()
                .await
                .classify("sns:DeleteTopic"),
        )
    }
}

#[instrument(skip_all, fields(protocol = %s.protocol, endpoint = %s.endpoint))]
async fn subscribe(
    ctx: &ApplyContext<'_>,
    id: &ResourceId,
    topic_arn: &str,
    s: &Subscription,
) -> Result<(), ProvisionError> {
    ctx.clients
        .sns
        .subscribe()
        .topic_arn(topic_arn)
        .protocol(&s.protocol)
        .endpoint(&s.endpoint)
        .send()
        .await
        .classify("sns:Subscribe")
        .map_err(ProvisionError::aws(id))?;
    Ok(())
}

/// The ARNs of alarm actions: blueprint topic names resolve through `resolved`, ARNs stay as
/// written; sorted and deduplicated, as CloudWatch compares them. `None` while a named topic
/// does not exist yet (known after apply).
pub fn action_arns(resolved: &Resolved, actions: &[String]) -> Option<Vec<String>> {
    let arns: Option<BTreeSet<String>> = actions
        .iter()
        .map(|action| {
            if ballast_blueprint::is_action_arn(action) {
                Some(action.clone())
            } else {
                resolved
                    .arn(&ResourceId::new(ResourceKind::Topic, action))
                    .map(str::to_string)
            }
        })
        .collect();
    arns.map(|set| set.into_iter().collect())
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::provision::diff::{Action, diff};
    use crate::provision::state::FieldClass;
    use crate::provision::typed::testing::shop_blueprint;

    fn attributes(pairs: &[(&str, &str)]) -> std::collections::HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn blueprint() -> Blueprint {
        shop_blueprint(
            r#"  queues:
    - name: alerts
  topics:
    - name: oncall
      subscriptions:
        - { protocol: sqs, endpoint: alerts }
        - { protocol: email, endpoint: ops@example.com }
        - { protocol: https, endpoint: "https://hooks.example.com/a" }
"#,
        )
    }

    fn resolved_queue() -> Resolved {
        let mut resolved = Resolved::default();
        resolved.insert(LiveState::referenced(
            ResourceKind::Queue,
            "alerts",
            "shop-alerts",
            "url",
            Some("arn:aws:sqs:us-east-1:1:shop-alerts"),
        ));
        resolved
    }

    fn aws(protocol: &str, endpoint: &str, arn: &str) -> ListedSubscription {
        listed(
            &AwsSubscription::builder()
                .protocol(protocol)
                .endpoint(endpoint)
                .subscription_arn(arn)
                .build(),
        )
        .unwrap()
    }

    fn live(desired: &DesiredState, subscriptions: &[ListedSubscription]) -> LiveState {
        let bp = blueprint();
        let state = live_state(&attributes(&[]), subscriptions, &resolved_queue(), &bp);
        LiveState {
            id: desired.id.clone(),
            physical_name: desired.physical_name.clone(),
            physical_id: "arn:aws:sns:us-east-1:1:shop-oncall".into(),
            arn: None,
            ownership: Ownership::Owned,
            tags: desired.tags.clone(),
            fields: state.live_fields(),
            typed: TypedLive::new(state),
        }
    }

    #[test]
    fn subscriptions_compare_as_a_set_with_queues_by_arn() {
        let desired = Topics::desired(&blueprint(), &resolved_queue());
        let want = &desired[0];
        assert_eq!(want.physical_name, "shop-oncall");
        // AWS lists them in another order; the queue by its ARN.
        let have = [
            aws("https", "https://hooks.example.com/a", "arn:s:3"),
            aws("email", "ops@example.com", "arn:s:2"),
            aws("sqs", "arn:aws:sqs:us-east-1:1:shop-alerts", "arn:s:1"),
        ];
        assert_eq!(diff(want, Some(&live(want, &have))), Action::NoChange);
        // One missing and one extra: a change of the subscriptions field only.
        let other = [
            aws("https", "https://hooks.example.com/a", "arn:s:3"),
            aws("email", "ops@example.com", "arn:s:2"),
            aws("email", "someone@example.com", "arn:s:4"),
        ];
        let Action::Update { changes } = diff(want, Some(&live(want, &other))) else {
            panic!("expected an update");
        };
        assert_eq!(changes.len(), 1, "{changes:?}");
        assert_eq!(changes[0].field, "subscriptions");
    }

    #[test]
    fn a_subscription_pending_confirmation_is_present_and_reported() {
        let desired = Topics::desired(&blueprint(), &resolved_queue());
        let want = &desired[0];
        let have = [
            aws("https", "https://hooks.example.com/a", "arn:s:3"),
            aws("email", "ops@example.com", PENDING_CONFIRMATION),
            aws("sqs", "arn:aws:sqs:us-east-1:1:shop-alerts", "arn:s:1"),
        ];
        // Being deleted: not a subscription any more.
        let deleted = AwsSubscription::builder()
            .protocol("email")
            .endpoint("gone@example.com")
            .subscription_arn(DELETED)
            .build();
        assert_eq!(listed(&deleted), None);
        let Action::Update { changes } = diff(want, Some(&live(want, &have))) else {
            panic!("expected the pending subscription to be reported");
        };
        assert_eq!(changes.len(), 1, "{changes:?}");
        assert_eq!(changes[0].field, "pendingConfirmation");
        assert_eq!(changes[0].class, FieldClass::Delegated);
        assert!(changes[0].live.contains("ops@example.com"), "{changes:?}");
        assert_eq!(changes[0].desired, "[]");
    }

    #[test]
    fn a_queue_not_created_yet_makes_the_subscriptions_known_after_apply() {
        let desired = Topics::desired(&blueprint(), &Resolved::default());
        let state = desired[0].state::<TopicState<Desired>>().unwrap();
        assert_eq!(state.subscriptions, Want::KnownAfterApply);
        assert_eq!(state.kms_key, Want::Exact(None));
    }

    #[test]
    fn alarm_actions_resolve_topic_names_and_keep_arns() {
        let mut resolved = Resolved::default();
        assert_eq!(action_arns(&resolved, &["oncall".into()]), None);
        resolved.insert(LiveState::referenced(
            ResourceKind::Topic,
            "oncall",
            "shop-oncall",
            "arn:aws:sns:us-east-1:1:shop-oncall",
            Some("arn:aws:sns:us-east-1:1:shop-oncall"),
        ));
        assert_eq!(
            action_arns(
                &resolved,
                &[
                    "oncall".into(),
                    "arn:aws:sns:us-east-1:1:a".into(),
                    "oncall".into()
                ]
            ),
            Some(vec![
                "arn:aws:sns:us-east-1:1:a".to_string(),
                "arn:aws:sns:us-east-1:1:shop-oncall".to_string()
            ])
        );
    }
}
