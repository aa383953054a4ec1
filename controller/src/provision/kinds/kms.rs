//! KMS keys, owned through their tags; the alias is owned through its key.
//!
//! A key's identity is not its name: CreateKey and CreateAlias are two calls, and an apply killed
//! between them leaves a key without its alias. The key carries its logical id
//! (`ballast.dev/resource=kms-key/<name>`) from CreateKey on, so `observe` finds such a key in the
//! tagging snapshot and the next apply completes it (the `alias` field differs: CreateAlias)
//! instead of creating a second key.

use std::collections::{BTreeMap, BTreeSet};

use ballast_aws::{BuildResultExt, SdkResultExt};
use ballast_blueprint::key_policy::{KeyScope, aws_default_policy, key_policy};
use ballast_blueprint::{Blueprint, ResourceId, ResourceKind, tagged_resource_id};
use futures::future::try_join_all;
use tracing::instrument;

use super::policy_value::PolicyValue;
use super::{ApplyContext, ObserveContext, Observed, ResourceOps, declared};
use crate::provision::diff::FieldChange;
use crate::provision::error::ProvisionError;
use crate::provision::state::{Changes, DesiredState, LiveState, Ownership, Resolved};
use crate::provision::tagged::tags_or_read;
use crate::provision::typed::{Desired, Live, TypedDesired, TypedLive, Want};

pub struct KmsKeys;

crate::provision::state::field_names! {
    /// The fields of KmsKeys, as plan and drift output name them.
    pub enum KeyField {
        Rotation = "rotation",
        Enabled = "enabled",
        KeySpec = "keySpec",
        Description = "description",
        RotationPeriodDays = "rotationPeriodDays",
        /// The alias that points at the key; unset on a key whose create was interrupted.
        Alias = "alias",
        /// The key policy (see [`ballast_blueprint::key_policy`]).
        Policy = "policy",
    }
}

crate::provision::typed::typed_state! {
    /// A key's compared state: `desired` builds it from the blueprint, `observe` from
    /// DescribeKey and GetKeyRotationStatus (see [`read_key`]).
    pub struct KeyState for KeyField {
        Rotation => rotation: bool = Enforced,
        Enabled => enabled: bool = Enforced,
        /// Always `SYMMETRIC_DEFAULT`.
        KeySpec => key_spec: String = CreateOnly,
        /// Compared only when the blueprint sets one; no description reads as empty.
        Description => description: String = Enforced,
        /// Compared only when the blueprint rotates with its own period.
        RotationPeriodDays => rotation_period_days: u64 = Enforced,
        /// Unset on a key found by its logical-id tag alone (see the module docs).
        Alias => alias: String = Enforced,
        /// Known once the key exists: it names the key's account.
        Policy => policy: PolicyValue = Enforced,
    }
}

/// The key's typed desired state; its policy once `resolved` knows the key's ARN.
fn desired_state(
    bp: &Blueprint,
    resolved: &Resolved,
    k: &ballast_blueprint::KmsKey,
) -> KeyState<Desired> {
    let scope = resolved
        .arn(&ResourceId::new(ResourceKind::KmsKey, &k.name))
        .and_then(KeyScope::from_key_arn);
    let rotation_period_days = match k.rotation_period {
        Some(period) if k.rotation => Want::Exact(period.as_secs() / 86_400),
        _ => Want::Unchecked,
    };
    KeyState {
        rotation: Want::Exact(k.rotation),
        enabled: Want::Exact(true),
        key_spec: Want::Exact("SYMMETRIC_DEFAULT".to_string()),
        description: match &k.description {
            Some(description) => Want::Exact(description.clone()),
            None => Want::Unchecked,
        },
        rotation_period_days,
        alias: Want::Exact(bp.key_alias(k)),
        policy: Want::exact_or_later(
            scope.map(|scope| PolicyValue::Document(key_policy(bp, k, &scope))),
        ),
    }
}

impl ResourceOps for KmsKeys {
    const KIND: ResourceKind = ResourceKind::KmsKey;
    type Field = KeyField;

    fn desired(bp: &Blueprint, resolved: &Resolved) -> Vec<DesiredState> {
        bp.spec
            .kms_keys
            .iter()
            .map(|k| {
                let state = desired_state(bp, resolved, k);
                let mut tags = bp.ownership_tags_for(&ResourceId::new(Self::KIND, &k.name));
                tags.extend(k.tags.clone());
                DesiredState {
                    id: ResourceId::new(Self::KIND, &k.name),
                    physical_name: bp.key_alias(k),
                    fields: state.expected_fields(),
                    tags,
                    adopt: k.adopt,
                    deletion_policy: Blueprint::effective_deletion_policy(
                        Self::KIND,
                        k.deletion_policy,
                    ),
                    typed: TypedDesired::new(state),
                }
            })
            .collect()
    }

    /// Declared keys by alias (DescribeKey takes `alias/<name>`), with their tags from the tagging
    /// snapshot. A declared key whose alias does not resolve is looked up by its logical-id tag in
    /// the snapshot (a create interrupted before CreateAlias). Keys the snapshot lists as owned
    /// that no declared alias resolves to are candidates for removal: only then does ListAliases
    /// run, to find their stack aliases.
    #[instrument(skip_all, fields(kind = "kms-key"))]
    async fn observe(ctx: &ObserveContext<'_>) -> Result<Observed, ProvisionError> {
        let kms = ctx.clients.kms();
        let bp = ctx.blueprint;
        let declared = declared(bp, Self::KIND);
        let mut observed = Observed::default();
        let found = try_join_all(
            declared
                .iter()
                .map(|(id, alias)| read_key(ctx, id, alias, alias, Aliased::Yes)),
        )
        .await?;
        let unaliased: Vec<_> = declared
            .iter()
            .zip(&found)
            .filter(|(_, live)| live.is_none())
            .map(|((id, alias), _)| (id, alias))
            .collect();
        observed.live.extend(found.into_iter().flatten());
        let adopted = try_join_all(
            unaliased
                .into_iter()
                .map(|(id, alias)| read_unaliased_key(ctx, id, alias)),
        )
        .await?;
        observed.live.extend(adopted.into_iter().flatten());
        let undeclared: BTreeSet<&str> = ctx
            .shared
            .tagged
            .resources("kms", "key/")
            .filter(|(arn, _)| !observed.live.iter().any(|l| l.arn.as_deref() == Some(arn)))
            .map(|(_, key_id)| key_id)
            .collect();
        if undeclared.is_empty() {
            return Ok(observed);
        }
        let any = ResourceId::new(Self::KIND, "*");
        let aliases = kms
            .list_aliases()
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .classify("kms:ListAliases")
            .map_err(ProvisionError::aws(&any))?;
        let prefix = format!("alias/{}-", bp.metadata.name);
        let removed = aliases.into_iter().filter_map(|alias| {
            let (Some(alias_name), Some(key_id)) = (alias.alias_name, alias.target_key_id) else {
                return None;
            };
            let short = alias_name.strip_prefix(&prefix)?.to_string();
            let undeclared = undeclared.contains(key_id.as_str())
                && !declared.iter().any(|(_, n)| *n == alias_name);
            undeclared.then(|| (ResourceId::new(Self::KIND, short), alias_name, key_id))
        });
        let removed: Vec<_> = removed.collect();
        let removed = try_join_all(
            removed
                .iter()
                .map(|(id, alias, key_id)| read_key(ctx, id, alias, key_id, Aliased::Yes)),
        )
        .await?;
        for live in removed.into_iter().flatten() {
            observed.file(live, false);
        }
        Ok(observed)
    }

    #[instrument(skip_all, fields(alias = %desired.physical_name))]
    async fn create(
        ctx: &ApplyContext<'_>,
        desired: &DesiredState,
    ) -> Result<LiveState, ProvisionError> {
        let want = desired.state::<KeyState<Desired>>()?;
        let kms = &ctx.clients.kms;
        let mut request = kms.create_key();
        if let Some(d) = want.description.exact() {
            request = request.description(d);
        }
        for (k, v) in &desired.tags {
            request = request.tags(
                aws_sdk_kms::types::Tag::builder()
                    .tag_key(k)
                    .tag_value(v)
                    .build()
                    .built("kms:CreateKey")
                    .map_err(ProvisionError::aws(&desired.id))?,
            );
        }
        let meta = request
            .send()
            .await
            .classify("kms:CreateKey")
            .map_err(ProvisionError::aws(&desired.id))?
            .key_metadata
            .ok_or_else(|| ProvisionError::Unexpected {
                resource: desired.id.clone(),
                operation: "kms:CreateKey",
                detail: "no key metadata".into(),
            })?;
        // An apply killed before the alias leaves a key that the next observe finds by its
        // logical-id tag (set by CreateKey above) and completes.
        kms.create_alias()
            .alias_name(&desired.physical_name)
            .target_key_id(&meta.key_id)
            .send()
            .await
            .classify("kms:CreateAlias")
            .map_err(ProvisionError::aws(&desired.id))?;
        let policy = put_policy_if_needed(ctx, desired, &meta).await?;
        let created = KeyState::<Live> {
            rotation: None,
            enabled: None,
            key_spec: None,
            description: None,
            rotation_period_days: None,
            alias: Some(desired.physical_name.clone()),
            policy,
        };
        let live = LiveState {
            id: desired.id.clone(),
            physical_name: desired.physical_name.clone(),
            physical_id: meta.key_id.clone(),
            arn: meta.arn.clone(),
            ownership: Ownership::Owned,
            tags: desired.tags.clone(),
            // Not read back: the created key is reported with its alias only.
            fields: created.live_fields(),
            typed: TypedLive::new(created),
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
        let want = desired.state::<KeyState<Desired>>()?;
        let changes = Changes::<KeyField>::of(changes);
        let kms = &ctx.clients.kms;
        let err = || ProvisionError::aws(&desired.id);
        if changes.has(KeyField::Rotation) || changes.has(KeyField::RotationPeriodDays) {
            set_rotation(ctx, desired, live).await?;
        }
        if changes.has(KeyField::Alias) {
            // Only a key found by its logical-id tag lacks its alias (see the module docs).
            kms.create_alias()
                .alias_name(&desired.physical_name)
                .target_key_id(&live.physical_id)
                .send()
                .await
                .classify("kms:CreateAlias")
                .map_err(err())?;
        }
        if changes.has(KeyField::Policy)
            && let Some(policy) = want.policy.exact()
        {
            put_policy(ctx, &desired.id, &live.physical_id, policy).await?;
        }
        if changes.has(KeyField::Enabled) {
            kms.enable_key()
                .key_id(&live.physical_id)
                .send()
                .await
                .classify("kms:EnableKey")
                .map_err(err())?;
        }
        if changes.has(KeyField::Description)
            && let Some(d) = want.description.exact()
        {
            kms.update_key_description()
                .key_id(&live.physical_id)
                .description(d)
                .send()
                .await
                .classify("kms:UpdateKeyDescription")
                .map_err(err())?;
        }
        if changes.tags() {
            let mut request = kms.tag_resource().key_id(&live.physical_id);
            for (k, v) in &desired.tags {
                request = request.tags(
                    aws_sdk_kms::types::Tag::builder()
                        .tag_key(k)
                        .tag_value(v)
                        .build()
                        .built("kms:TagResource")
                        .map_err(err())?,
                );
            }
            request
                .send()
                .await
                .classify("kms:TagResource")
                .map_err(err())?;
        }
        Ok(())
    }

    /// Never deletes at once: the alias goes, the key is scheduled with the blueprint's window
    /// (30 days for a key the blueprint does not declare).
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
        // A key without an alias (an orphan, or one whose create was interrupted) has none to
        // delete; an orphan's alias name would be the declared key's.
        // An orphan is observed by its tags alone and has no typed state.
        let aliased = live
            .state::<KeyState<Live>>()
            .map(|state| state.alias.is_some())
            .unwrap_or(false);
        if aliased {
            match kms
                .delete_alias()
                .alias_name(&live.physical_name)
                .send()
                .await
                .classify("kms:DeleteAlias")
            {
                Ok(_) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(ProvisionError::aws(&live.id)(e)),
            }
        }
        kms.schedule_key_deletion()
            .key_id(&live.physical_id)
            .pending_window_in_days(window_days)
            .send()
            .await
            .classify("kms:ScheduleKeyDeletion")
            .map_err(ProvisionError::aws(&live.id))?;
        Ok(())
    }
}

/// Whether `alias` points at the key being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Aliased {
    Yes,
    /// Found by its logical-id tag: the alias is what the next apply creates.
    No,
}

/// The key `key_id` (an alias name or a key id) under `alias`; `None` when it does not exist or
/// is scheduled for deletion (gone as far as the blueprint is concerned).
#[instrument(skip_all, fields(alias = %alias))]
async fn read_key(
    ctx: &ObserveContext<'_>,
    id: &ResourceId,
    alias: &str,
    key_id: &str,
    aliased: Aliased,
) -> Result<Option<LiveState>, ProvisionError> {
    let kms = ctx.clients.kms();
    let meta = match kms
        .describe_key()
        .key_id(key_id)
        .send()
        .await
        .classify("kms:DescribeKey")
    {
        Ok(out) => out.key_metadata,
        Err(e) if e.is_not_found() => None,
        Err(e) => return Err(ProvisionError::aws(id)(e)),
    };
    let Some(meta) = meta else {
        return Ok(None);
    };
    if meta
        .key_state
        .as_ref()
        .is_some_and(|s| s.as_str() == "PendingDeletion")
    {
        return Ok(None);
    }
    // GetKeyRotationStatus and GetKeyPolicy do not take aliases: the key id from DescribeKey.
    let (rotation, policy, tags) = tokio::try_join!(
        async {
            kms.get_key_rotation_status()
                .key_id(&meta.key_id)
                .send()
                .await
                .classify("kms:GetKeyRotationStatus")
                .map_err(ProvisionError::aws(id))
        },
        async {
            kms.get_key_policy()
                .key_id(&meta.key_id)
                .policy_name(DEFAULT_POLICY_NAME)
                .send()
                .await
                .classify("kms:GetKeyPolicy")
                .map_err(ProvisionError::aws(id))
        },
        tags_or_read(&ctx.shared.tagged, meta.arn.as_deref(), || async {
            Ok(kms
                .list_resource_tags()
                .key_id(&meta.key_id)
                .send()
                .await
                .classify("kms:ListResourceTags")
                .map_err(ProvisionError::aws(id))?
                .tags
                .unwrap_or_default()
                .into_iter()
                .map(|t| (t.tag_key, t.tag_value))
                .collect::<BTreeMap<String, String>>())
        }),
    )?;
    let state = KeyState::<Live> {
        rotation: Some(rotation.key_rotation_enabled),
        enabled: Some(meta.enabled),
        key_spec: Some(
            meta.key_spec
                .as_ref()
                .map_or("SYMMETRIC_DEFAULT", |s| s.as_str())
                .to_string(),
        ),
        description: Some(meta.description.clone().unwrap_or_default()),
        // A negative period (never reported) reads as unset, and so as drift.
        rotation_period_days: rotation
            .rotation_period_in_days
            .and_then(|days| u64::try_from(days).ok()),
        alias: (aliased == Aliased::Yes).then(|| alias.to_string()),
        // A key without a policy reads as an empty one: drift that apply repairs.
        policy: Some(PolicyValue::read(policy.policy().unwrap_or("{}"))),
    };
    Ok(Some(LiveState {
        id: id.clone(),
        physical_name: alias.to_string(),
        physical_id: meta.key_id.clone(),
        arn: meta.arn.clone(),
        ownership: Ownership::from_tags(&tags, &ctx.blueprint.metadata.name),
        tags,
        fields: state.live_fields(),
        typed: TypedLive::new(state),
    }))
}

/// The key of this blueprint that carries `id` as its logical-id tag although `alias` does not
/// point at it: the first by ARN that is not scheduled for deletion (drift reports any second
/// one as an orphan). Its live state has no `alias`, which is what the next apply creates.
async fn read_unaliased_key(
    ctx: &ObserveContext<'_>,
    id: &ResourceId,
    alias: &str,
) -> Result<Option<LiveState>, ProvisionError> {
    let snapshot = &ctx.shared.tagged;
    let candidates = snapshot.resources("kms", "key/").filter(|(arn, _)| {
        snapshot
            .tags(arn)
            .and_then(tagged_resource_id)
            .is_some_and(|tagged| &tagged == id)
    });
    for (arn, _) in candidates {
        if let Some(live) = read_key(ctx, id, alias, arn, Aliased::No).await? {
            return Ok(Some(live));
        }
    }
    Ok(None)
}

/// The name of a key's one policy: KMS has no other.
const DEFAULT_POLICY_NAME: &str = "default";

/// After CreateKey, which cannot carry the policy because the account is known only from the
/// ARN it returns: writes the key's policy unless AWS's default is already it. Returns the
/// policy the key now has. An apply killed before this leaves AWS's default, which the next
/// observe reports as drift in `policy` and the next apply completes.
async fn put_policy_if_needed(
    ctx: &ApplyContext<'_>,
    desired: &DesiredState,
    meta: &aws_sdk_kms::types::KeyMetadata,
) -> Result<Option<PolicyValue>, ProvisionError> {
    let (Some(key), Some(scope)) = (
        ctx.blueprint.kms_key(&desired.id.name),
        meta.arn.as_deref().and_then(KeyScope::from_key_arn),
    ) else {
        return Ok(None);
    };
    let wanted = PolicyValue::Document(key_policy(ctx.blueprint, key, &scope));
    let aws_default = PolicyValue::Document(aws_default_policy(&scope));
    if wanted != aws_default {
        put_policy(ctx, &desired.id, &meta.key_id, &wanted).await?;
    }
    Ok(Some(wanted))
}

#[instrument(skip_all, fields(key = %key_id))]
async fn put_policy(
    ctx: &ApplyContext<'_>,
    id: &ResourceId,
    key_id: &str,
    policy: &PolicyValue,
) -> Result<(), ProvisionError> {
    // An unreadable policy is never what the blueprint wants, so never written.
    let Some(text) = policy.text() else {
        return Ok(());
    };
    ctx.clients
        .kms
        .put_key_policy()
        .key_id(key_id)
        .policy_name(DEFAULT_POLICY_NAME)
        .policy(text)
        .send()
        .await
        .classify("kms:PutKeyPolicy")
        .map_err(ProvisionError::aws(id))?;
    Ok(())
}

async fn set_rotation(
    ctx: &ApplyContext<'_>,
    desired: &DesiredState,
    live: &LiveState,
) -> Result<(), ProvisionError> {
    let want = desired.state::<KeyState<Desired>>()?;
    let kms = &ctx.clients.kms;
    if want.rotation.exact() == Some(&true) {
        // A period too long for the API's i32 is not sent; the blueprint's validation bounds it.
        let days = want
            .rotation_period_days
            .exact()
            .and_then(|days| i32::try_from(*days).ok());
        let request = kms
            .enable_key_rotation()
            .key_id(&live.physical_id)
            .set_rotation_period_in_days(days);
        request
            .send()
            .await
            .classify("kms:EnableKeyRotation")
            .map_err(ProvisionError::aws(&desired.id))?;
    } else {
        kms.disable_key_rotation()
            .key_id(&live.physical_id)
            .send()
            .await
            .classify("kms:DisableKeyRotation")
            .map_err(ProvisionError::aws(&desired.id))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provision::diff::Action;
    use crate::provision::state::FieldName;
    use crate::provision::typed::testing::{changed_fields, owned_live, typed_diff};

    fn desired() -> Vec<DesiredState> {
        let bp = ballast_blueprint::parse(
            "t",
            "apiVersion: ballast.dev/v1\nkind: Blueprint\nmetadata: {name: t, region: us-east-1}\nspec:\n  kmsKeys:\n    - {name: data, description: Encrypts data, rotation: true, rotationPeriod: 180d}\n    - {name: plain}\n",
        )
        .unwrap()
        .blueprint;
        KmsKeys::desired(&bp, &resolved())
    }

    const DATA_ARN: &str = "arn:aws:kms:us-east-1:123456789012:key/data-id";

    /// Both keys exist: their ARNs name the account their policies grant.
    fn resolved() -> Resolved {
        let mut resolved = Resolved::default();
        for (name, arn) in [
            ("data", DATA_ARN),
            ("plain", "arn:aws:kms:us-east-1:123456789012:key/plain-id"),
        ] {
            resolved.insert(LiveState::referenced(
                ResourceKind::KmsKey,
                name,
                &format!("alias/t-{name}"),
                arn,
                Some(arn),
            ));
        }
        resolved
    }

    /// Before the key exists its policy is known after apply; once it does, a policy granting
    /// more than the blueprint declares is drift in `policy` alone, and a reordered,
    /// reformatted copy of the wanted one is not.
    #[test]
    fn the_policy_is_compared_semantically_once_the_key_exists() {
        let bp = ballast_blueprint::parse(
            "t",
            "apiVersion: ballast.dev/v1\nkind: Blueprint\nmetadata: {name: t, region: us-east-1}\nspec:\n  kmsKeys:\n    - {name: data}\n",
        )
        .unwrap()
        .blueprint;
        let later = KmsKeys::desired(&bp, &Resolved::default());
        let later = later[0].state::<KeyState<Desired>>().unwrap();
        assert_eq!(later.policy, Want::KnownAfterApply);

        let desired = KmsKeys::desired(&bp, &resolved());
        let want = desired[0].state::<KeyState<Desired>>().unwrap();
        let mut live = want.assumed_live();
        // As AWS hands back its default: an `Id`, single values as strings, other key order.
        live.policy = Some(PolicyValue::read(
            r#"{"Id":"key-default-1","Statement":[{"Resource":"*","Action":"kms:*","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Effect":"Allow","Sid":"Enable IAM User Permissions"}],"Version":"2012-10-17"}"#,
        ));
        assert!(want.changes(&live).is_empty(), "{:?}", want.changes(&live));

        live.policy = Some(PolicyValue::read(
            r#"{"Version":"2012-10-17","Statement":[{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"kms:*","Resource":"*"},{"Sid":"Added by hand","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::999999999999:root"},"Action":"kms:Decrypt","Resource":"*"}]}"#,
        ));
        let changes = want.changes(&live);
        assert_eq!(
            changes.iter().map(|c| c.field).collect::<Vec<_>>(),
            vec![KeyField::Policy]
        );
        // The plan line says what was added.
        assert!(
            changes[0].live.contains("Added by hand: Allow kms:Decrypt"),
            "{changes:?}"
        );
    }

    #[test]
    fn a_key_differing_in_one_field_yields_exactly_that_change() {
        let desired = desired();
        let data = desired[0].state::<KeyState<Desired>>().unwrap();
        assert_eq!(data.rotation_period_days, Want::Exact(180));
        let same = data.assumed_live();
        let live = owned_live(&desired[0], same.clone(), same.live_fields());
        assert_eq!(typed_diff(&desired[0], &live), Action::NoChange);

        let mut drifted = same.clone();
        drifted.rotation_period_days = Some(365);
        let live = owned_live(&desired[0], drifted.clone(), drifted.live_fields());
        let action = typed_diff(&desired[0], &live);
        assert!(matches!(action, Action::Update { .. }), "{action:?}");
        assert_eq!(
            changed_fields(&action),
            vec![KeyField::RotationPeriodDays.name()]
        );

        let mut drifted = same;
        drifted.key_spec = Some("RSA_2048".into());
        let live = owned_live(&desired[0], drifted.clone(), drifted.live_fields());
        let action = typed_diff(&desired[0], &live);
        assert!(matches!(action, Action::Replace { .. }), "{action:?}");
        assert_eq!(changed_fields(&action), vec![KeyField::KeySpec.name()]);
    }

    /// A description or rotation period the blueprint does not set is not compared.
    #[test]
    fn unset_description_and_period_are_not_compared() {
        let desired = desired();
        let plain = desired[1].state::<KeyState<Desired>>().unwrap();
        let mut live = plain.assumed_live();
        live.description = Some("set by hand".into());
        live.rotation_period_days = Some(90);
        let live = owned_live(&desired[1], live.clone(), live.live_fields());
        assert_eq!(typed_diff(&desired[1], &live), Action::NoChange);
        assert_eq!(
            desired[1].fields.iter().map(|f| f.name).collect::<Vec<_>>(),
            vec!["rotation", "enabled", "keySpec", "alias", "policy"]
        );
    }
}
