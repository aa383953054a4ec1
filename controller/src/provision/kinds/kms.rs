//! KMS keys, owned through their tags; the alias is owned through its key.

use std::collections::BTreeMap;

use ballast_aws::SdkResultExt;
use ballast_blueprint::{Blueprint, ResourceId, ResourceKind};
use serde_json::Value;
use tracing::instrument;

use super::{ApplyContext, ObserveContext, Observed, ResourceOps, changed, changes_tags, declared};
use crate::provision::diff::FieldChange;
use crate::provision::error::ProvisionError;
use crate::provision::state::{DesiredState, Field, LiveState, Ownership, Resolved};

pub struct KmsKeys;

impl ResourceOps for KmsKeys {
    const KIND: ResourceKind = ResourceKind::KmsKey;

    fn desired(bp: &Blueprint, _resolved: &Resolved) -> Vec<DesiredState> {
        bp.spec
            .kms_keys
            .iter()
            .map(|k| {
                let mut fields = vec![
                    Field::enforced("rotation", k.rotation),
                    Field::enforced("enabled", true),
                    Field::create_only("keySpec", "SYMMETRIC_DEFAULT"),
                ];
                if let Some(description) = &k.description {
                    fields.push(Field::enforced("description", description.clone()));
                }
                if k.rotation
                    && let Some(period) = k.rotation_period
                {
                    fields.push(Field::enforced(
                        "rotationPeriodDays",
                        period.as_secs() / 86_400,
                    ));
                }
                let mut tags = bp.ownership_tags();
                tags.extend(k.tags.clone());
                DesiredState {
                    id: ResourceId::new(Self::KIND, &k.name),
                    physical_name: bp.key_alias(k),
                    fields,
                    tags,
                    adopt: k.adopt,
                    deletion_policy: Blueprint::effective_deletion_policy(
                        Self::KIND,
                        k.deletion_policy,
                    ),
                }
            })
            .collect()
    }

    #[instrument(skip_all, fields(kind = "kms-key"))]
    async fn observe(ctx: &ObserveContext<'_>) -> Result<Observed, ProvisionError> {
        let kms = ctx.clients.kms();
        let bp = ctx.blueprint;
        let any = ResourceId::new(Self::KIND, "*");
        let aliases = kms
            .list_aliases()
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .classify("ListAliases")
            .map_err(ProvisionError::aws(&any))?;
        let declared = declared(bp, Self::KIND);
        let mut observed = Observed::default();
        for alias in aliases {
            let (Some(alias_name), Some(key_id)) = (alias.alias_name, alias.target_key_id) else {
                continue;
            };
            if alias_name.starts_with("alias/aws/") {
                continue;
            }
            let declared_id = declared
                .iter()
                .find(|(_, n)| *n == alias_name)
                .map(|(id, _)| id.clone());
            let is_stack_alias = alias_name.starts_with(&format!("alias/{}-", bp.metadata.name));
            if declared_id.is_none() && !is_stack_alias {
                continue;
            }
            let id = declared_id.clone().unwrap_or_else(|| {
                ResourceId::new(
                    Self::KIND,
                    alias_name.trim_start_matches(&format!("alias/{}-", bp.metadata.name)),
                )
            });
            let (meta, rotation, tags) = tokio::try_join!(
                async {
                    kms.describe_key()
                        .key_id(&key_id)
                        .send()
                        .await
                        .classify("DescribeKey")
                },
                async {
                    kms.get_key_rotation_status()
                        .key_id(&key_id)
                        .send()
                        .await
                        .classify("GetKeyRotationStatus")
                },
                async {
                    kms.list_resource_tags()
                        .key_id(&key_id)
                        .send()
                        .await
                        .classify("ListResourceTags")
                },
            )
            .map_err(ProvisionError::aws(&id))?;
            let Some(meta) = meta.key_metadata else {
                continue;
            };
            let tags: BTreeMap<String, String> = tags
                .tags
                .unwrap_or_default()
                .into_iter()
                .map(|t| (t.tag_key, t.tag_value))
                .collect();
            let state = meta
                .key_state
                .as_ref()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default();
            if state == "PendingDeletion" {
                // A key scheduled for deletion is gone as far as the blueprint is concerned.
                continue;
            }
            let mut fields = BTreeMap::new();
            fields.insert(
                "rotation".into(),
                Value::Bool(rotation.key_rotation_enabled),
            );
            fields.insert("enabled".into(), Value::Bool(meta.enabled));
            fields.insert(
                "keySpec".into(),
                Value::from(
                    meta.key_spec
                        .as_ref()
                        .map(|s| s.as_str())
                        .unwrap_or("SYMMETRIC_DEFAULT"),
                ),
            );
            fields.insert(
                "description".into(),
                Value::from(meta.description.clone().unwrap_or_default()),
            );
            if let Some(days) = rotation.rotation_period_in_days {
                fields.insert("rotationPeriodDays".into(), Value::from(days));
            }
            let live = LiveState {
                id,
                physical_name: alias_name,
                physical_id: meta.key_id.clone(),
                arn: meta.arn.clone(),
                ownership: Ownership::from_tags(&tags, &bp.metadata.name),
                tags,
                fields,
            };
            match declared_id {
                Some(_) => observed.live.push(live),
                None if live.ownership == Ownership::Owned => observed.removed.push(live),
                None => {}
            }
        }
        Ok(observed)
    }

    #[instrument(skip_all, fields(alias = %desired.physical_name))]
    async fn create(
        ctx: &ApplyContext<'_>,
        desired: &DesiredState,
    ) -> Result<LiveState, ProvisionError> {
        let kms = &ctx.clients.kms;
        let mut request = kms.create_key();
        if let Some(Value::String(d)) = desired.value("description") {
            request = request.description(d);
        }
        for (k, v) in &desired.tags {
            request = request.tags(
                aws_sdk_kms::types::Tag::builder()
                    .tag_key(k)
                    .tag_value(v)
                    .build()
                    .expect("key and value set"),
            );
        }
        let meta = request
            .send()
            .await
            .classify("CreateKey")
            .map_err(ProvisionError::aws(&desired.id))?
            .key_metadata
            .ok_or_else(|| ProvisionError::Unexpected {
                resource: desired.id.clone(),
                operation: "CreateKey",
                detail: "no key metadata".into(),
            })?;
        // The alias comes right after the key: a re-run finds an unaliased key by nothing, so
        // keep this window small and report the key id if the alias fails.
        kms.create_alias()
            .alias_name(&desired.physical_name)
            .target_key_id(&meta.key_id)
            .send()
            .await
            .classify("CreateAlias")
            .map_err(ProvisionError::aws(&desired.id))?;
        let live = LiveState {
            id: desired.id.clone(),
            physical_name: desired.physical_name.clone(),
            physical_id: meta.key_id.clone(),
            arn: meta.arn.clone(),
            ownership: Ownership::Owned,
            tags: desired.tags.clone(),
            fields: BTreeMap::new(),
        };
        set_rotation(ctx, desired, &live).await?;
        Ok(live)
    }

    #[instrument(skip_all, fields(alias = %desired.physical_name))]
    async fn update(
        ctx: &ApplyContext<'_>,
        desired: &DesiredState,
        live: &LiveState,
        changes: &[FieldChange],
    ) -> Result<(), ProvisionError> {
        let kms = &ctx.clients.kms;
        let err = || ProvisionError::aws(&desired.id);
        if changed(changes, "rotation") || changed(changes, "rotationPeriodDays") {
            set_rotation(ctx, desired, live).await?;
        }
        if changed(changes, "enabled") {
            kms.enable_key()
                .key_id(&live.physical_id)
                .send()
                .await
                .classify("EnableKey")
                .map_err(err())?;
        }
        if changed(changes, "description")
            && let Some(Value::String(d)) = desired.value("description")
        {
            kms.update_key_description()
                .key_id(&live.physical_id)
                .description(d)
                .send()
                .await
                .classify("UpdateKeyDescription")
                .map_err(err())?;
        }
        if changes_tags(changes) {
            let mut request = kms.tag_resource().key_id(&live.physical_id);
            for (k, v) in &desired.tags {
                request = request.tags(
                    aws_sdk_kms::types::Tag::builder()
                        .tag_key(k)
                        .tag_value(v)
                        .build()
                        .expect("key and value set"),
                );
            }
            request
                .send()
                .await
                .classify("TagResource")
                .map_err(err())?;
        }
        Ok(())
    }

    /// Never deletes at once: the alias goes, the key is scheduled with the blueprint's window.
    #[instrument(skip_all, fields(alias = %live.physical_name))]
    async fn delete(ctx: &ApplyContext<'_>, live: &LiveState) -> Result<(), ProvisionError> {
        let kms = &ctx.clients.kms;
        let window_days = ctx
            .blueprint
            .spec
            .kms_keys
            .iter()
            .find(|k| k.name == live.id.name)
            .map(|k| k.deletion_window.as_secs() / 86_400)
            .unwrap_or(30) as i32;
        match kms
            .delete_alias()
            .alias_name(&live.physical_name)
            .send()
            .await
            .classify("DeleteAlias")
        {
            Ok(_) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(ProvisionError::aws(&live.id)(e)),
        }
        kms.schedule_key_deletion()
            .key_id(&live.physical_id)
            .pending_window_in_days(window_days)
            .send()
            .await
            .classify("ScheduleKeyDeletion")
            .map_err(ProvisionError::aws(&live.id))?;
        Ok(())
    }
}

async fn set_rotation(
    ctx: &ApplyContext<'_>,
    desired: &DesiredState,
    live: &LiveState,
) -> Result<(), ProvisionError> {
    let kms = &ctx.clients.kms;
    if desired.value("rotation") == Some(&Value::Bool(true)) {
        let mut request = kms.enable_key_rotation().key_id(&live.physical_id);
        if let Some(days) = desired.value("rotationPeriodDays").and_then(Value::as_i64) {
            request = request.rotation_period_in_days(days as i32);
        }
        request
            .send()
            .await
            .classify("EnableKeyRotation")
            .map_err(ProvisionError::aws(&desired.id))?;
    } else {
        kms.disable_key_rotation()
            .key_id(&live.physical_id)
            .send()
            .await
            .classify("DisableKeyRotation")
            .map_err(ProvisionError::aws(&desired.id))?;
    }
    Ok(())
}
