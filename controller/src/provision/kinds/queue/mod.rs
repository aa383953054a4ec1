//! SQS queues. Attributes arrive as strings and are canonicalized into numbers and JSON
//! (`attributes.rs`).
//!
//! Every queue carries a queue policy (the `Policy` attribute) that denies `sqs:*` to anyone
//! when `aws:SecureTransport` is false, unless the blueprint writes `tlsOnly: false` (a safety
//! override), and one statement per blueprint topic delivering to the queue (see `policy.rs`).
//! The policy is the whole truth: a statement added or changed by hand is drift and apply writes
//! the blueprint's policy back. It is compared as a `PolicyDocument` (semantically: statement
//! order, one value or a list, JSON layout do not matter). Its `Resource` is the queue's ARN, which AWS assigns: before the queue exists it is
//! derived from the stack's other ARNs (same partition, region and account) so that `CreateQueue`
//! carries the policy, and when there are none yet the policy is set right after the create.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_sqs::types::QueueAttributeName as Attr;
use ballast_aws::SdkResultExt;
use ballast_blueprint::{Blueprint, QueueEncryptionKind, ResourceId, ResourceKind};
use futures::future::try_join_all;
use tracing::instrument;

mod attributes;
mod policy;

pub use attributes::{QueueEncryption, Redrive, RedriveAllow};
use attributes::{attributes, live_state, redrive_allow};
use policy::wanted_policy;
pub use policy::{TLS_ONLY_SID, tls_only_policy};

use super::policy_value::PolicyValue;

use super::{ApplyContext, ObserveContext, Observed, ResourceOps, declared};
use crate::provision::diff::FieldChange;
use crate::provision::error::ProvisionError;
use crate::provision::state::{Changes, DesiredState, LiveState, Ownership, Resolved};
use crate::provision::tagged::tags_or_read;
use crate::provision::typed::{Desired, FieldValue, TypedDesired, TypedLive, Want};

pub struct Queues;

crate::provision::state::field_names! {
    /// The fields of Queues, as plan and drift output name them.
    pub enum QueueField {
        VisibilityTimeout = "visibilityTimeout",
        Retention = "retention",
        ReceiveWaitTime = "receiveWaitTime",
        Delay = "delay",
        MaxMessageSize = "maxMessageSize",
        Fifo = "fifo",
        Encryption = "encryption",
        EncryptionDataKeyReuse = "encryption.dataKeyReuse",
        DeadLetter = "deadLetter",
        RedriveAllow = "redriveAllow",
        Policy = "policy",
    }
}

crate::provision::typed::typed_state! {
    /// A queue's compared state: `desired` builds it from the blueprint, `observe` from the
    /// queue's attributes (strings, canonicalized into numbers and typed policies).
    pub struct QueueState for QueueField {
        VisibilityTimeout => visibility_timeout: u64 = Enforced,
        Retention => retention: u64 = Enforced,
        ReceiveWaitTime => receive_wait_time: u64 = Enforced,
        Delay => delay: u64 = Enforced,
        MaxMessageSize => max_message_size: u64 = Enforced,
        Fifo => fifo: bool = CreateOnly,
        Encryption => encryption: QueueEncryption = Enforced,
        /// Compared only for KMS encryption.
        EncryptionDataKeyReuse => data_key_reuse: u64 = Enforced,
        /// `None`: no redrive policy.
        DeadLetter => dead_letter: Option<Redrive> = Enforced,
        /// Compared only when the blueprint sets one.
        RedriveAllow => redrive_allow: Option<RedriveAllow> = Enforced,
        /// `None`: no queue policy (`tlsOnly: false`). Compared semantically.
        Policy => policy: Option<PolicyValue> = Enforced,
    }
}

/// The ARN of queue `physical_name`: its own if it exists under that name, else derived from
/// another ARN of the stack (`arn:<partition>:<service>:<region>:<account>:…`) in the
/// blueprint's region, since AWS names a queue `arn:<partition>:sqs:<region>:<account>:<name>`.
fn queue_arn(
    bp: &Blueprint,
    resolved: &Resolved,
    id: &ResourceId,
    physical_name: &str,
) -> Option<String> {
    if let Some(live) = resolved.get(id)
        && live.physical_name == physical_name
        && let Some(arn) = &live.arn
    {
        return Some(arn.clone());
    }
    resolved.arns().find_map(|arn| {
        let mut parts = arn.splitn(6, ':');
        let (Some("arn"), Some(partition), Some(_service), Some(region), Some(account)) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return None;
        };
        let account_ok = account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit());
        (region == bp.metadata.region && account_ok && !partition.is_empty())
            .then(|| format!("arn:{partition}:sqs:{region}:{account}:{physical_name}"))
    })
}

/// A key reference as the canonical key ARN, whichever form AWS returns (id, ARN or alias).
pub fn canonical_key(resolved: &Resolved, bp: &Blueprint, value: &str) -> String {
    for key in &bp.spec.kms_keys {
        if let Some(live) = resolved.get(&ResourceId::new(ResourceKind::KmsKey, &key.name)) {
            let arn = live.arn.clone().unwrap_or_default();
            if value == live.physical_id
                || value == arn
                || value == live.physical_name
                || value == bp.key_alias(key)
            {
                return arn;
            }
        }
    }
    value.to_string()
}

impl ResourceOps for Queues {
    const KIND: ResourceKind = ResourceKind::Queue;
    type Field = QueueField;

    fn desired(bp: &Blueprint, resolved: &Resolved) -> Vec<DesiredState> {
        bp.spec
            .queues
            .iter()
            .map(|q| {
                let id = ResourceId::new(Self::KIND, &q.name);
                let state = desired_state(bp, resolved, q, &id);
                let mut tags = bp.ownership_tags_for(&ResourceId::new(Self::KIND, &q.name));
                tags.extend(q.tags.clone());
                DesiredState {
                    id,
                    physical_name: bp.queue_name(q),
                    fields: state.expected_fields(),
                    tags,
                    adopt: q.adopt,
                    deletion_policy: Blueprint::effective_deletion_policy(
                        Self::KIND,
                        q.deletion_policy,
                    ),
                    typed: TypedDesired::new(state),
                }
            })
            .collect()
    }

    #[instrument(skip_all, fields(kind = "queue"))]
    async fn observe(ctx: &ObserveContext<'_>) -> Result<Observed, ProvisionError> {
        let sqs = ctx.clients.sqs();
        let bp = ctx.blueprint;
        let declared = declared(bp, Self::KIND);
        // One ListQueues by the stack prefix finds both declared queues and removed ones.
        let prefix = format!("{}-", bp.metadata.name);
        let mut urls: Vec<String> = sqs
            .list_queues()
            .queue_name_prefix(&prefix)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .classify("sqs:ListQueues")
            .map_err(ProvisionError::aws(&ResourceId::new(Self::KIND, "*")))?;
        for (id, name) in &declared {
            if !name.starts_with(&prefix) {
                match sqs
                    .get_queue_url()
                    .queue_name(name)
                    .send()
                    .await
                    .classify("sqs:GetQueueUrl")
                {
                    Ok(out) => urls.extend(out.queue_url),
                    Err(e) if e.is_not_found() => {}
                    Err(e) => return Err(ProvisionError::aws(id)(e)),
                }
            }
        }
        // Queues under the prefix that the blueprint does not declare matter only when they are
        // ours (removed from the blueprint): the tagging snapshot names those, so another
        // blueprint's `<name>-…` queues cost no reads.
        let owned: BTreeSet<&str> = ctx
            .shared
            .tagged
            .resources("sqs", "")
            .map(|(_, name)| name)
            .collect();
        let reads = urls.into_iter().filter_map(|url| {
            let name = url.rsplit('/').next().unwrap_or_default().to_string();
            let declared_id = declared
                .iter()
                .find(|(_, n)| *n == name)
                .map(|(id, _)| id.clone());
            if declared_id.is_none() && !owned.contains(name.as_str()) {
                return None;
            }
            let id = declared_id
                .clone()
                .unwrap_or_else(|| ResourceId::new(Self::KIND, name.trim_start_matches(&prefix)));
            Some(async move {
                let attrs = sqs
                    .get_queue_attributes()
                    .queue_url(&url)
                    .attribute_names(Attr::All)
                    .send()
                    .await
                    .classify("sqs:GetQueueAttributes")
                    .map_err(ProvisionError::aws(&id))?
                    .attributes
                    .unwrap_or_default();
                // Owned queues' tags come from the tagging snapshot, keyed by the queue ARN.
                let tags = tags_or_read(
                    &ctx.shared.tagged,
                    attrs.get(&Attr::QueueArn).map(String::as_str),
                    || async {
                        Ok(sqs
                            .list_queue_tags()
                            .queue_url(&url)
                            .send()
                            .await
                            .classify("sqs:ListQueueTags")
                            .map_err(ProvisionError::aws(&id))?
                            .tags
                            .unwrap_or_default()
                            .into_iter()
                            .collect::<BTreeMap<String, String>>())
                    },
                )
                .await?;
                let state = live_state(&attrs, ctx.resolved, bp);
                let live = LiveState {
                    ownership: Ownership::from_tags(&tags, &bp.metadata.name),
                    id,
                    physical_name: name,
                    arn: attrs.get(&Attr::QueueArn).cloned(),
                    fields: state.live_fields(),
                    physical_id: url,
                    tags,
                    typed: TypedLive::new(state),
                };
                Ok::<_, ProvisionError>((declared_id.is_some(), live))
            })
        });
        let mut observed = Observed::default();
        for (is_declared, live) in try_join_all(reads).await? {
            observed.file(live, is_declared);
        }
        Ok(observed)
    }

    #[instrument(skip_all, fields(queue = %desired.physical_name))]
    async fn create(
        ctx: &ApplyContext<'_>,
        desired: &DesiredState,
    ) -> Result<LiveState, ProvisionError> {
        let want = desired.state::<QueueState<Desired>>()?;
        let mut request = ctx
            .clients
            .sqs
            .create_queue()
            .queue_name(&desired.physical_name);
        for (attr, value) in attributes(want, None) {
            request = request.attributes(attr, value);
        }
        for (k, v) in &desired.tags {
            request = request.tags(k, v);
        }
        let out = request
            .send()
            .await
            .classify("sqs:CreateQueue")
            .map_err(ProvisionError::aws(&desired.id))?;
        let url = out.queue_url.unwrap_or_default();
        let mut attrs = ctx
            .clients
            .sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(Attr::All)
            .send()
            .await
            .classify("sqs:GetQueueAttributes")
            .map_err(ProvisionError::aws(&desired.id))?
            .attributes
            .unwrap_or_default();
        let arn = attrs.get(&Attr::QueueArn).cloned();
        // What names this queue's own ARN can only be written now that AWS assigned it.
        let mut follow_up = Vec::new();
        if let (Some(queue), Some(own)) = (ctx.blueprint.queue(&desired.id.name), &arn) {
            if let Some(allow) = redrive_allow(ctx.blueprint, queue, own) {
                follow_up.push((Attr::RedriveAllowPolicy, allow.to_value().to_string()));
            }
            // CreateQueue carried the policy when the ARN could be derived beforehand; set it
            // when it could not (the stack's first resource) or was derived wrongly, and with
            // any other write (moto clears an unnamed policy, see `attributes`).
            if let Some(policy) = wanted_policy(ctx.blueprint, queue, own) {
                let live = live_state(&attrs, ctx.resolved, ctx.blueprint).policy;
                if live != Some(Some(policy.clone())) || !follow_up.is_empty() {
                    follow_up.extend(policy.text().map(|text| (Attr::Policy, text)));
                }
            }
        }
        if !follow_up.is_empty() {
            let mut request = ctx.clients.sqs.set_queue_attributes().queue_url(&url);
            for (attr, value) in &follow_up {
                request = request.attributes(attr.clone(), value.clone());
            }
            request
                .send()
                .await
                .classify("sqs:SetQueueAttributes")
                .map_err(ProvisionError::aws(&desired.id))?;
            // The reported state is what was just written, without reading it back.
            attrs.extend(follow_up);
        }
        let state = live_state(&attrs, ctx.resolved, ctx.blueprint);
        Ok(LiveState {
            id: desired.id.clone(),
            physical_name: desired.physical_name.clone(),
            physical_id: url,
            arn,
            ownership: Ownership::Owned,
            tags: desired.tags.clone(),
            fields: state.live_fields(),
            typed: TypedLive::new(state),
        })
    }

    #[instrument(skip_all, fields(queue = %desired.physical_name))]
    async fn update(
        ctx: &ApplyContext<'_>,
        desired: &DesiredState,
        live: &LiveState,
        changes: &[FieldChange],
    ) -> Result<(), ProvisionError> {
        let want = desired.state::<QueueState<Desired>>()?;
        let changes_empty = changes.is_empty();
        let changes = Changes::<QueueField>::of(changes);
        // No listed change (adopting as is) writes every attribute, as a create does.
        let attrs = attributes(want, Some(&changes).filter(|_| !changes_empty));
        if !attrs.is_empty() {
            let mut request = ctx
                .clients
                .sqs
                .set_queue_attributes()
                .queue_url(&live.physical_id);
            for (attr, value) in attrs {
                request = request.attributes(attr, value);
            }
            request
                .send()
                .await
                .classify("sqs:SetQueueAttributes")
                .map_err(ProvisionError::aws(&desired.id))?;
        }
        if changes.tags() {
            let mut request = ctx.clients.sqs.tag_queue().queue_url(&live.physical_id);
            for (k, v) in &desired.tags {
                request = request.tags(k, v);
            }
            request
                .send()
                .await
                .classify("sqs:TagQueue")
                .map_err(ProvisionError::aws(&desired.id))?;
        }
        Ok(())
    }

    #[instrument(skip_all, fields(queue = %live.physical_name))]
    async fn delete(ctx: &ApplyContext<'_>, live: &LiveState) -> Result<(), ProvisionError> {
        ProvisionError::unless_gone(
            &live.id,
            ctx.clients
                .sqs
                .delete_queue()
                .queue_url(&live.physical_id)
                .send()
                .await
                .classify("sqs:DeleteQueue"),
        )
    }
}

/// The queue's typed desired state; references resolve through `resolved`.
fn desired_state(
    bp: &Blueprint,
    resolved: &Resolved,
    q: &ballast_blueprint::Queue,
    id: &ResourceId,
) -> QueueState<Desired> {
    let encryption = match q.encryption.kind {
        QueueEncryptionKind::SqsManaged => Want::Exact(QueueEncryption::SqsManaged),
        QueueEncryptionKind::None => Want::Exact(QueueEncryption::None),
        QueueEncryptionKind::Kms => {
            let key = match (&q.encryption.kms_key, &q.encryption.kms_key_arn) {
                (_, Some(arn)) => Some(arn.clone()),
                (Some(name), None) => resolved
                    .arn(&ResourceId::new(ResourceKind::KmsKey, name))
                    .map(str::to_string),
                (None, None) => None,
            };
            Want::exact_or_later(key.map(|key| QueueEncryption::Kms { key }))
        }
    };
    let data_key_reuse = match q.encryption.kind {
        QueueEncryptionKind::Kms => Want::Exact(
            q.encryption
                .data_key_reuse
                .map(|d| d.as_secs())
                .unwrap_or(300),
        ),
        _ => Want::Unchecked,
    };
    let dead_letter = match &q.dead_letter {
        None => Want::Exact(None),
        Some(dl) => Want::exact_or_later(
            resolved
                .arn(&ResourceId::new(ResourceKind::Queue, &dl.queue))
                .map(|arn| {
                    Some(Redrive {
                        target_arn: Some(arn.to_string()),
                        max_receive_count: Some(u64::from(dl.max_receive_count)),
                    })
                }),
        ),
    };
    // The list names its sources by ARN, which follow from this queue's own ARN.
    let redrive_allow = match &q.redrive_allow {
        None => Want::Unchecked,
        Some(_) => Want::exact_or_later(resolved.arn(id).map(|own| redrive_allow(bp, q, own))),
    };
    // Known to be none without the ARN: nothing the policy would say.
    let policy = if !q.tls_only && bp.topics_delivering_to(q).next().is_none() {
        Want::Exact(None)
    } else {
        Want::exact_or_later(
            queue_arn(bp, resolved, id, &bp.queue_name(q)).map(|arn| wanted_policy(bp, q, &arn)),
        )
    };
    QueueState {
        visibility_timeout: Want::Exact(q.visibility_timeout.as_secs()),
        retention: Want::Exact(q.retention.as_secs()),
        receive_wait_time: Want::Exact(q.receive_wait_time.as_secs()),
        delay: Want::Exact(q.delay.as_secs()),
        max_message_size: Want::Exact(q.max_message_size),
        fifo: Want::Exact(false),
        encryption,
        data_key_reuse,
        dead_letter,
        redrive_allow,
        policy,
    }
}

#[cfg(test)]
mod tests {
    use super::attributes::sibling_arn;
    use super::*;
    use crate::provision::state::{FieldClass, FieldName};
    use crate::provision::typed::Change;
    use crate::provision::typed::Live;
    use ballast_blueprint::policy::{Effect, Principal, Statement};
    use serde_json::{Value, json};

    #[test]
    fn policies_compare_semantically() {
        let mut attrs = std::collections::HashMap::new();
        attrs.insert(
            Attr::RedrivePolicy,
            r#"{"maxReceiveCount":"3","deadLetterTargetArn":"arn:aws:sqs:r:1:dlq"}"#.to_string(),
        );
        attrs.insert(Attr::VisibilityTimeout, "60".to_string());
        attrs.insert(Attr::SqsManagedSseEnabled, "true".to_string());
        let bp = ballast_blueprint::parse(
            "t",
            "apiVersion: ballast.dev/v1\nkind: Blueprint\nmetadata: {name: t, region: us-east-1}\nspec: {queues: [{name: q}]}\n",
        )
        .unwrap()
        .blueprint;
        let state = live_state(&attrs, &Resolved::default(), &bp);
        assert_eq!(
            state.dead_letter,
            Some(Some(Redrive {
                target_arn: Some("arn:aws:sqs:r:1:dlq".into()),
                max_receive_count: Some(3),
            }))
        );
        assert_eq!(state.visibility_timeout, Some(60));
        assert_eq!(state.encryption, Some(QueueEncryption::SqsManaged));
        // Rendered for plan output in the shape the untyped diff used.
        let fields = state.live_fields();
        assert_eq!(
            fields[QueueField::DeadLetter.name()],
            json!({"deadLetterTargetArn": "arn:aws:sqs:r:1:dlq", "maxReceiveCount": 3})
        );
        assert_eq!(fields[QueueField::VisibilityTimeout.name()], json!(60));
        assert_eq!(
            fields[QueueField::Encryption.name()],
            json!({"type": "sqsManaged"})
        );
        assert_eq!(fields[QueueField::RedriveAllow.name()], Value::Null);
        assert!(!fields.contains_key(QueueField::EncryptionDataKeyReuse.name()));
    }

    /// Plan output of a converted kind is unchanged: the typed diff equals the untyped one.
    #[test]
    fn typed_diff_equals_the_untyped_diff() {
        use crate::provision::diff::diff;
        let bp = ballast_blueprint::parse(
            "t",
            "apiVersion: ballast.dev/v1\nkind: Blueprint\nmetadata: {name: t, region: us-east-1}\nspec:\n  queues:\n    - name: main\n      visibilityTimeout: 60s\n      deadLetter: {queue: dlq, maxReceiveCount: 3}\n    - name: dlq\n",
        )
        .unwrap()
        .blueprint;
        let desired = Queues::desired(&bp, &Resolved::default());
        let mut attrs = std::collections::HashMap::new();
        attrs.insert(Attr::VisibilityTimeout, "30".to_string());
        attrs.insert(Attr::KmsMasterKeyId, "arn:aws:kms:r:1:key/k".to_string());
        attrs.insert(
            Attr::RedrivePolicy,
            r#"{"maxReceiveCount":"3","deadLetterTargetArn":"arn:aws:sqs:r:1:t-dlq"}"#.to_string(),
        );
        let state = live_state(&attrs, &Resolved::default(), &bp);
        for want in &desired {
            let live = LiveState {
                id: want.id.clone(),
                physical_name: want.physical_name.clone(),
                physical_id: "url".into(),
                arn: None,
                ownership: Ownership::Owned,
                tags: want.tags.clone(),
                fields: state.live_fields(),
                typed: TypedLive::new(state.clone()),
            };
            let typed = diff(want, Some(&live));
            let mut untyped_want = want.clone();
            untyped_want.typed = TypedDesired::untyped();
            let untyped = diff(&untyped_want, Some(&live));
            assert_eq!(typed, untyped, "{}", want.id);
            assert!(typed.is_change());
        }
    }

    const ARN: &str = "arn:aws:sqs:us-east-1:123456789012:t-q";

    fn one_queue(extra: &str) -> Blueprint {
        ballast_blueprint::parse(
            "t",
            &format!("apiVersion: ballast.dev/v1\nkind: Blueprint\nmetadata: {{name: t, region: us-east-1}}\nspec:\n  queues:\n    - name: q\n{extra}"),
        )
        .unwrap()
        .blueprint
    }

    /// `resolved` with one live resource `kind/name` at `arn`.
    fn resolved_with(kind: ResourceKind, name: &str, physical: &str, arn: &str) -> Resolved {
        let mut resolved = Resolved::default();
        resolved.insert(LiveState::referenced(
            kind,
            name,
            physical,
            physical,
            Some(arn),
        ));
        resolved
    }

    fn live_with_policy(bp: &Blueprint, policy: Option<&str>) -> QueueState<Live> {
        let want = desired_state(
            bp,
            &resolved_with(ResourceKind::Queue, "q", "t-q", ARN),
            &bp.spec.queues[0],
            &ResourceId::new(ResourceKind::Queue, "q"),
        );
        let mut live = want.assumed_live();
        live.policy = Some(policy.map(PolicyValue::read));
        live
    }

    #[test]
    fn the_policy_field_compares_semantically_and_shows_changes_readably() {
        let bp = one_queue("");
        let want = desired_state(
            &bp,
            &resolved_with(ResourceKind::Queue, "q", "t-q", ARN),
            &bp.spec.queues[0],
            &ResourceId::new(ResourceKind::Queue, "q"),
        );
        assert_eq!(
            want.policy,
            Want::Exact(Some(PolicyValue::Document(tls_only_policy(ARN))))
        );
        // As written, and in the shapes AWS may hand it back: no change.
        let written = tls_only_policy(ARN).to_json().to_string();
        let reshaped = format!(
            r#"{{"Statement":{{"Condition":{{"Bool":{{"AWS:SecureTransport":false}}}},"Resource":"{ARN}","Action":"SQS:*","Principal":"*","Effect":"Deny","Sid":"{TLS_ONLY_SID}"}},"Version":"2012-10-17"}}"#
        );
        for same in [written.as_str(), reshaped.as_str()] {
            assert!(
                want.changes(&live_with_policy(&bp, Some(same))).is_empty(),
                "{same}"
            );
        }
        // Edited, removed, without Version, unreadable: exactly one change, the policy.
        let allowed = written.replace("\"false\"", "\"true\"");
        let no_version = written.replace(r#""Version":"2012-10-17","#, "");
        assert_ne!(no_version, written);
        let not_principal = format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Deny","NotPrincipal":{{"AWS":"x"}},"Action":"sqs:*","Resource":"{ARN}"}}]}}"#
        );
        let desired_text = format!(
            "{TLS_ONLY_SID}: Deny sqs:* to * on {ARN} when Bool aws:SecureTransport = false"
        );
        for (live, shown) in [
            (
                Some(allowed.as_str()),
                format!(
                    "{TLS_ONLY_SID}: Deny sqs:* to * on {ARN} when Bool aws:SecureTransport = true"
                ),
            ),
            (None, "(unset)".to_string()),
            (
                Some(no_version.as_str()),
                format!("{desired_text}; Version none (2008-10-17)"),
            ),
            (
                Some(not_principal.as_str()),
                format!(
                    "unreadable policy (`Statement[0].NotPrincipal` is not supported in policy documents Ballast compares; hint: use `Action`/`Resource`/`Principal` with `Effect: Deny` instead): {not_principal}"
                ),
            ),
        ] {
            let changes = want.changes(&live_with_policy(&bp, live));
            assert_eq!(
                changes,
                vec![Change {
                    field: QueueField::Policy,
                    class: FieldClass::Enforced,
                    live: shown,
                    desired: desired_text.clone(),
                }],
                "{live:?}"
            );
        }
    }

    #[test]
    fn statement_order_does_not_matter_to_a_queue_policy() {
        let other = Statement {
            sid: Some("FromTopic".into()),
            effect: Effect::Allow,
            principal: Some(Principal::ByType(
                [("Service".to_string(), vec!["sns.amazonaws.com".to_string()])].into(),
            )),
            actions: vec!["sqs:SendMessage".into()],
            resources: vec![ARN.into()],
            conditions: Default::default(),
        };
        let mut forward = tls_only_policy(ARN);
        forward.statements.push(other.clone());
        let mut backward = tls_only_policy(ARN);
        backward.statements.insert(0, other);
        assert_ne!(forward, backward);
        assert_eq!(
            PolicyValue::Document(forward.clone()),
            PolicyValue::Document(backward)
        );
        let mut fewer = forward.clone();
        fewer.statements.pop();
        assert_ne!(PolicyValue::Document(forward), PolicyValue::Document(fewer));
    }

    #[test]
    fn tls_only_false_wants_no_policy_and_an_update_removes_it() {
        let bp = one_queue("      tlsOnly: false\n");
        let resolved = resolved_with(ResourceKind::Queue, "q", "t-q", ARN);
        let id = ResourceId::new(ResourceKind::Queue, "q");
        let want = desired_state(&bp, &resolved, &bp.spec.queues[0], &id);
        assert_eq!(want.policy, Want::Exact(None));
        let written = tls_only_policy(ARN).to_json().to_string();
        let changes = want.changes(&live_with_policy(&bp, Some(&written)));
        assert_eq!(
            changes.iter().map(|c| c.field).collect::<Vec<_>>(),
            [QueueField::Policy]
        );
        let plan: Vec<FieldChange> = changes.into_iter().map(Into::into).collect();
        let attrs = attributes(&want, Some(&Changes::of(&plan)));
        assert_eq!(attrs, [(Attr::Policy, String::new())]);
        // A new queue is created without one.
        assert!(
            !attributes(&want, None)
                .iter()
                .any(|(a, _)| *a == Attr::Policy)
        );
    }

    /// A blueprint topic delivering to the queue gets one statement, scoped to that topic's
    /// ARN; with `tlsOnly: false` that statement is the whole policy.
    #[test]
    fn a_topic_delivering_to_the_queue_may_send_to_it_and_nothing_else() {
        let topics =
            "  topics:\n    - name: on-call\n      subscriptions: [{protocol: sqs, endpoint: q}]\n";
        let resolved = resolved_with(ResourceKind::Queue, "q", "t-q", ARN);
        let id = ResourceId::new(ResourceKind::Queue, "q");
        for (extra, tls) in [("", true), ("      tlsOnly: false\n", false)] {
            let bp = one_queue(&format!("{extra}{topics}"));
            let want = desired_state(&bp, &resolved, &bp.spec.queues[0], &id);
            let Want::Exact(Some(PolicyValue::Document(doc))) = &want.policy else {
                panic!("a policy expected: {:?}", want.policy);
            };
            let sids: Vec<_> = doc
                .statements
                .iter()
                .filter_map(|s| s.sid.as_deref())
                .collect();
            let expected: &[&str] = if tls {
                &[TLS_ONLY_SID, "AllowTopiconcall"]
            } else {
                &["AllowTopiconcall"]
            };
            assert_eq!(sids, expected);
            let topic = doc.statements.last().unwrap();
            assert_eq!(topic.effect, Effect::Allow);
            assert_eq!(topic.actions, ["sqs:SendMessage"]);
            assert_eq!(topic.resources, [ARN]);
            assert_eq!(
                topic.conditions["ArnEquals"]["aws:SourceArn"],
                ["arn:aws:sns:us-east-1:123456789012:t-on-call"]
            );
        }
        // Before the queue exists its ARN, and so the topic's statement, is not known yet.
        let bp = one_queue(&format!("      tlsOnly: false\n{topics}"));
        let later = desired_state(&bp, &Resolved::default(), &bp.spec.queues[0], &id);
        assert_eq!(later.policy, Want::KnownAfterApply);
    }

    #[test]
    fn every_write_restates_the_policy_and_a_create_carries_it_when_the_arn_is_known() {
        let bp = one_queue("      visibilityTimeout: 60s\n");
        let id = ResourceId::new(ResourceKind::Queue, "q");
        // Not created yet, but the stack has a key: the queue's ARN follows from its account.
        let key = "arn:aws:kms:us-east-1:123456789012:key/k";
        let resolved = resolved_with(ResourceKind::KmsKey, "k", "k", key);
        let want = desired_state(&bp, &resolved, &bp.spec.queues[0], &id);
        let text = tls_only_policy(ARN).to_json().to_string();
        assert!(attributes(&want, None).contains(&(Attr::Policy, text.clone())));
        // Only the visibility timeout changed: the policy goes along (moto drops it otherwise).
        let change = FieldChange {
            field: QueueField::VisibilityTimeout.name().to_string(),
            live: "30".into(),
            desired: "60".into(),
            class: FieldClass::Enforced,
        };
        let attrs = attributes(&want, Some(&Changes::of(&[change])));
        assert_eq!(
            attrs,
            [
                (Attr::VisibilityTimeout, "60".to_string()),
                (Attr::Policy, text)
            ]
        );
        // Nothing to write: nothing restated.
        assert!(attributes(&want, Some(&Changes::of(&[]))).is_empty());
        // Nothing resolved yet: known only after the create.
        let first = desired_state(&bp, &Resolved::default(), &bp.spec.queues[0], &id);
        assert_eq!(first.policy, Want::KnownAfterApply);
        assert!(
            !attributes(&first, None)
                .iter()
                .any(|(a, _)| *a == Attr::Policy)
        );
    }

    #[test]
    fn a_queue_arn_is_its_own_or_follows_from_the_stacks_account_in_its_region() {
        let bp = one_queue("");
        let id = ResourceId::new(ResourceKind::Queue, "q");
        let own = resolved_with(ResourceKind::Queue, "q", "t-q", ARN);
        assert_eq!(queue_arn(&bp, &own, &id, "t-q").as_deref(), Some(ARN));
        let key = resolved_with(
            ResourceKind::KmsKey,
            "k",
            "k",
            "arn:aws-cn:kms:us-east-1:210987654321:key/k",
        );
        assert_eq!(
            queue_arn(&bp, &key, &id, "t-q").as_deref(),
            Some("arn:aws-cn:sqs:us-east-1:210987654321:t-q")
        );
        let elsewhere = resolved_with(
            ResourceKind::KmsKey,
            "k",
            "k",
            "arn:aws:kms:eu-west-1:123456789012:key/k",
        );
        assert_eq!(queue_arn(&bp, &elsewhere, &id, "t-q"), None);
        let no_account = resolved_with(ResourceKind::KmsKey, "k", "k", "arn:aws:s3:::bucket");
        assert_eq!(queue_arn(&bp, &no_account, &id, "t-q"), None);
    }

    #[test]
    fn sibling_arns_share_account_and_region() {
        assert_eq!(
            sibling_arn("arn:aws:sqs:us-east-1:123:dlq", "src"),
            "arn:aws:sqs:us-east-1:123:src"
        );
    }
}
