//! SQS queues. Attributes arrive as strings and are canonicalized into numbers and JSON.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_sqs::types::QueueAttributeName as Attr;
use ballast_aws::SdkResultExt;
use ballast_blueprint::{
    Blueprint, QueueEncryptionKind, RedrivePermission, ResourceId, ResourceKind,
};
use futures::future::try_join_all;
use serde_json::{Value, json};
use tracing::instrument;

use super::{ApplyContext, ObserveContext, Observed, ResourceOps, declared};
use crate::provision::diff::FieldChange;
use crate::provision::error::ProvisionError;
use crate::provision::state::{
    Changes, DesiredState, Expect, Field, LiveFields, LiveState, Ownership, Resolved,
};
use crate::provision::tagged::tags_or_read;

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
    }
}

const FIELDS: &[(QueueField, Attr)] = &[
    (QueueField::VisibilityTimeout, Attr::VisibilityTimeout),
    (QueueField::Retention, Attr::MessageRetentionPeriod),
    (
        QueueField::ReceiveWaitTime,
        Attr::ReceiveMessageWaitTimeSeconds,
    ),
    (QueueField::Delay, Attr::DelaySeconds),
    (QueueField::MaxMessageSize, Attr::MaximumMessageSize),
];

fn queue_arn_guess(resolved: &Resolved, id: &ResourceId) -> Expect {
    match resolved.arn(id) {
        Some(arn) => Expect::Exact(Value::String(arn.to_string())),
        None => Expect::KnownAfterApply,
    }
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
                let mut fields = vec![
                    Field::enforced(QueueField::VisibilityTimeout, q.visibility_timeout.as_secs()),
                    Field::enforced(QueueField::Retention, q.retention.as_secs()),
                    Field::enforced(QueueField::ReceiveWaitTime, q.receive_wait_time.as_secs()),
                    Field::enforced(QueueField::Delay, q.delay.as_secs()),
                    Field::enforced(QueueField::MaxMessageSize, q.max_message_size),
                    Field::create_only(QueueField::Fifo, false),
                ];
                let encryption = match q.encryption.kind {
                    QueueEncryptionKind::SqsManaged => Expect::Exact(json!({"type": "sqsManaged"})),
                    QueueEncryptionKind::None => Expect::Exact(json!({"type": "none"})),
                    QueueEncryptionKind::Kms => match (&q.encryption.kms_key, &q.encryption.kms_key_arn) {
                        (_, Some(arn)) => Expect::Exact(json!({"type": "kms", "key": arn})),
                        (Some(name), None) => match resolved.arn(&ResourceId::new(ResourceKind::KmsKey, name)) {
                            Some(arn) => Expect::Exact(json!({"type": "kms", "key": arn})),
                            None => Expect::KnownAfterApply,
                        },
                        (None, None) => Expect::KnownAfterApply,
                    },
                };
                fields.push(Field::enforced(QueueField::Encryption, Value::Null).with_expect(encryption));
                if q.encryption.kind == QueueEncryptionKind::Kms {
                    let reuse = q.encryption.data_key_reuse.map(|d| d.as_secs()).unwrap_or(300);
                    fields.push(Field::enforced(QueueField::EncryptionDataKeyReuse, reuse));
                }
                let redrive = match &q.dead_letter {
                    None => Expect::Exact(Value::Null),
                    Some(dl) => match queue_arn_guess(resolved, &ResourceId::new(Self::KIND, &dl.queue)) {
                        Expect::Exact(arn) => Expect::Exact(json!({"deadLetterTargetArn": arn, "maxReceiveCount": dl.max_receive_count})),
                        other => other,
                    },
                };
                fields.push(Field::enforced(QueueField::DeadLetter, Value::Null).with_expect(redrive));
                if q.redrive_allow.is_some() {
                    // The list names its sources by ARN, which follow from this queue's own ARN.
                    let expect = match resolved.arn(&id) {
                        Some(own) => Expect::Exact(redrive_allow_value(bp, q, own)),
                        None => Expect::KnownAfterApply,
                    };
                    fields.push(Field::enforced(QueueField::RedriveAllow, Value::Null).with_expect(expect));
                }
                let mut tags = bp.ownership_tags();
                tags.extend(q.tags.clone());
                DesiredState {
                    id,
                    physical_name: bp.queue_name(q),
                    fields,
                    tags,
                    adopt: q.adopt,
                    deletion_policy: Blueprint::effective_deletion_policy(Self::KIND, q.deletion_policy),
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
                let live = LiveState {
                    ownership: Ownership::from_tags(&tags, &bp.metadata.name),
                    id,
                    physical_name: name,
                    arn: attrs.get(&Attr::QueueArn).cloned(),
                    fields: canonical_fields(&attrs, ctx.resolved, bp),
                    physical_id: url,
                    tags,
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
        let mut request = ctx
            .clients
            .sqs
            .create_queue()
            .queue_name(&desired.physical_name);
        for (attr, value) in attributes(desired, None) {
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
        let attrs = ctx
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
        if let (Some(queue), Some(own)) = (ctx.blueprint.queue(&desired.id.name), &arn)
            && queue.redrive_allow.is_some()
        {
            ctx.clients
                .sqs
                .set_queue_attributes()
                .queue_url(&url)
                .attributes(
                    Attr::RedriveAllowPolicy,
                    redrive_allow_value(ctx.blueprint, queue, own).to_string(),
                )
                .send()
                .await
                .classify("sqs:SetQueueAttributes")
                .map_err(ProvisionError::aws(&desired.id))?;
        }
        Ok(LiveState {
            id: desired.id.clone(),
            physical_name: desired.physical_name.clone(),
            physical_id: url,
            arn,
            ownership: Ownership::Owned,
            tags: desired.tags.clone(),
            fields: canonical_fields(&attrs, ctx.resolved, ctx.blueprint),
        })
    }

    #[instrument(skip_all, fields(queue = %desired.physical_name))]
    async fn update(
        ctx: &ApplyContext<'_>,
        desired: &DesiredState,
        live: &LiveState,
        changes: &[FieldChange],
    ) -> Result<(), ProvisionError> {
        let changes_empty = changes.is_empty();
        let changes = Changes::<QueueField>::of(changes);
        // No listed change (adopting as is) writes every attribute, as a create does.
        let attrs = attributes(desired, Some(&changes).filter(|_| !changes_empty));
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

/// SQS attributes for the desired fields; with `changes`, only the changed ones.
fn attributes(
    desired: &DesiredState,
    changes: Option<&Changes<QueueField>>,
) -> Vec<(Attr, String)> {
    let wanted = |field: QueueField| changes.is_none_or(|c| c.has(field));
    let mut out = Vec::new();
    for (field, attr) in FIELDS {
        if wanted(*field)
            && let Some(v) = desired.value(*field)
        {
            out.push((attr.clone(), v.to_string()));
        }
    }
    if wanted(QueueField::Encryption) || wanted(QueueField::EncryptionDataKeyReuse) {
        match desired.value(QueueField::Encryption) {
            Some(v) if v["type"] == "kms" => {
                out.push((
                    Attr::KmsMasterKeyId,
                    v["key"].as_str().unwrap_or_default().to_string(),
                ));
                if let Some(reuse) = desired.value(QueueField::EncryptionDataKeyReuse) {
                    out.push((Attr::KmsDataKeyReusePeriodSeconds, reuse.to_string()));
                }
            }
            Some(v) if v["type"] == "sqsManaged" => {
                out.push((Attr::SqsManagedSseEnabled, "true".into()))
            }
            Some(_) => {
                out.push((Attr::SqsManagedSseEnabled, "false".into()));
                out.push((Attr::KmsMasterKeyId, String::new()));
            }
            None => {}
        }
    }
    if wanted(QueueField::DeadLetter) {
        match desired.value(QueueField::DeadLetter) {
            Some(Value::Null) if changes.is_some() => {
                out.push((Attr::RedrivePolicy, String::new()))
            }
            Some(v) if !v.is_null() => out.push((Attr::RedrivePolicy, v.to_string())),
            _ => {}
        }
    }
    if wanted(QueueField::RedriveAllow)
        && let Some(v) = desired.value(QueueField::RedriveAllow)
        && !v.is_null()
    {
        out.push((Attr::RedriveAllowPolicy, v.to_string()));
    }
    out
}

fn number(attrs: &std::collections::HashMap<Attr, String>, attr: &Attr) -> Value {
    attrs
        .get(attr)
        .and_then(|v| v.parse::<u64>().ok())
        .map(Value::from)
        .unwrap_or(Value::Null)
}

/// Live attributes in the shape `desired` uses: numbers as numbers, policies as parsed JSON.
fn canonical_fields(
    attrs: &std::collections::HashMap<Attr, String>,
    resolved: &Resolved,
    bp: &Blueprint,
) -> BTreeMap<String, Value> {
    let mut fields = BTreeMap::new();
    for (field, attr) in FIELDS {
        fields.put(*field, number(attrs, attr));
    }
    fields.put(
        QueueField::Fifo,
        Value::Bool(attrs.get(&Attr::FifoQueue).is_some_and(|v| v == "true")),
    );
    let kms = attrs.get(&Attr::KmsMasterKeyId).filter(|k| !k.is_empty());
    let encryption = match kms {
        Some(key) => json!({"type": "kms", "key": canonical_key(resolved, bp, key)}),
        None if attrs
            .get(&Attr::SqsManagedSseEnabled)
            .is_some_and(|v| v == "true") =>
        {
            json!({"type": "sqsManaged"})
        }
        None => json!({"type": "none"}),
    };
    fields.put(QueueField::Encryption, encryption);
    if kms.is_some() {
        fields.put(
            QueueField::EncryptionDataKeyReuse,
            number(attrs, &Attr::KmsDataKeyReusePeriodSeconds),
        );
    }
    let redrive = attrs
        .get(&Attr::RedrivePolicy)
        .and_then(|p| serde_json::from_str::<Value>(p).ok())
        .map(|p| {
            // maxReceiveCount may come back as a string or a number.
            let count = p.get("maxReceiveCount").and_then(|c| {
                c.as_u64()
                    .or_else(|| c.as_str().and_then(|s| s.parse().ok()))
            });
            let target = p.get("deadLetterTargetArn").cloned().unwrap_or(Value::Null);
            json!({"deadLetterTargetArn": target, "maxReceiveCount": count})
        })
        .unwrap_or(Value::Null);
    fields.put(QueueField::DeadLetter, redrive);
    let allow = attrs
        .get(&Attr::RedriveAllowPolicy)
        .and_then(|p| serde_json::from_str::<Value>(p).ok())
        .map(|p| {
            let mut sources: Vec<Value> = p
                .get("sourceQueueArns")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            sources.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
            let permission = p.get("redrivePermission").cloned().unwrap_or(Value::Null);
            json!({"redrivePermission": permission, "sourceQueueArns": sources})
        })
        .unwrap_or(Value::Null);
    fields.put(QueueField::RedriveAllow, allow);
    fields
}

/// The redrive-allow policy of `queue`, its source queues named by ARN next to `own_arn`.
fn redrive_allow_value(bp: &Blueprint, queue: &ballast_blueprint::Queue, own_arn: &str) -> Value {
    let Some(ra) = &queue.redrive_allow else {
        return Value::Null;
    };
    let permission = match ra.policy {
        RedrivePermission::AllowAll => "allowAll",
        RedrivePermission::DenyAll => "denyAll",
        RedrivePermission::ByQueue => "byQueue",
    };
    let mut sources: Vec<Value> = ra
        .source_queues
        .iter()
        .map(|s| {
            let name = bp
                .queue(s)
                .map(|sq| bp.queue_name(sq))
                .unwrap_or_else(|| s.clone());
            Value::String(sibling_arn(own_arn, &name))
        })
        .collect();
    sources.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
    json!({"redrivePermission": permission, "sourceQueueArns": sources})
}

/// The ARN of queue `name` in the same account and region as `arn`.
fn sibling_arn(arn: &str, name: &str) -> String {
    match arn.rsplit_once(':') {
        Some((prefix, _)) => format!("{prefix}:{name}"),
        None => name.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provision::state::FieldName;

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
        let fields = canonical_fields(&attrs, &Resolved::default(), &bp);
        assert_eq!(
            fields[QueueField::DeadLetter.name()],
            json!({"deadLetterTargetArn": "arn:aws:sqs:r:1:dlq", "maxReceiveCount": 3})
        );
        assert_eq!(fields[QueueField::VisibilityTimeout.name()], json!(60));
        assert_eq!(
            fields[QueueField::Encryption.name()],
            json!({"type": "sqsManaged"})
        );
    }

    #[test]
    fn sibling_arns_share_account_and_region() {
        assert_eq!(
            sibling_arn("arn:aws:sqs:us-east-1:123:dlq", "src"),
            "arn:aws:sqs:us-east-1:123:src"
        );
    }
}
