//! EC2 instance profiles: the container that gives a launch template's instances a role.
//!
//! A profile holds at most one role; the blueprint names it, and the profile compares by the
//! role's name. A change swaps the role (remove, then add).

use ballast_aws::SdkResultExt;
use ballast_blueprint::{Blueprint, InstanceProfile, ResourceId, ResourceKind};
use futures::future::try_join_all;
use tracing::instrument;

use super::iam::{Candidate, candidates, iam_tags, is_ours, tags_of};
use super::{ApplyContext, ObserveContext, Observed, ResourceOps};
use crate::provision::diff::FieldChange;
use crate::provision::error::ProvisionError;
use crate::provision::state::{Changes, DesiredState, LiveState, Ownership, Resolved};
use crate::provision::typed::{Desired, Live, TypedDesired, TypedLive, Want};

pub struct InstanceProfiles;

crate::provision::state::field_names! {
    /// The fields of InstanceProfiles, as plan and drift output name them.
    pub enum ProfileField {
        Role = "role",
    }
}

crate::provision::typed::typed_state! {
    /// A profile's compared state: the name of its role (`None`: no role).
    pub struct ProfileState for ProfileField {
        Role => role: Option<String> = Enforced,
    }
}

fn desired_state(bp: &Blueprint, profile: &InstanceProfile) -> ProfileState<Desired> {
    // The role's name is the blueprint's (IAM names are identities), so it is known before
    // the role exists; validation refuses a role the blueprint does not declare.
    ProfileState {
        role: Want::exact_or_later(bp.iam_role(&profile.role).map(|r| Some(bp.role_name(r)))),
    }
}

/// The profile `name` as IAM has it: its ARN, its roles' names and its tags.
#[derive(Debug)]
struct Read {
    arn: String,
    roles: Vec<String>,
    tags: ballast_blueprint::Tags,
}

#[instrument(skip_all, fields(instance_profile = %name))]
async fn get_profile(
    iam: &aws_sdk_iam::Client,
    id: &ResourceId,
    name: &str,
) -> Result<Read, ProvisionError> {
    let profile = iam
        .get_instance_profile()
        .instance_profile_name(name)
        .send()
        .await
        .classify("iam:GetInstanceProfile")
        .map_err(ProvisionError::aws(id))?
        .instance_profile
        .ok_or_else(|| ProvisionError::Unexpected {
            resource: id.clone(),
            operation: "iam:GetInstanceProfile",
            detail: "no instance profile in the answer".into(),
        })?;
    Ok(Read {
        arn: profile.arn().to_string(),
        roles: profile
            .roles()
            .iter()
            .map(|r| r.role_name().to_string())
            .collect(),
        tags: tags_of(profile.tags()),
    })
}

async fn read_profile(
    iam: &aws_sdk_iam::Client,
    bp: &Blueprint,
    candidate: Candidate,
) -> Result<Option<LiveState>, ProvisionError> {
    let read = get_profile(iam, &candidate.id, &candidate.name).await?;
    if !is_ours(&candidate, &read.tags, bp) {
        return Ok(None);
    }
    let id = candidate.logical_id(&read.tags);
    let state = ProfileState::<Live> {
        role: Some(read.roles.first().cloned()),
    };
    Ok(Some(LiveState {
        ownership: Ownership::from_tags(&read.tags, &bp.metadata.name),
        physical_id: candidate.name.clone(),
        physical_name: candidate.name,
        arn: Some(read.arn),
        tags: read.tags,
        fields: state.live_fields(),
        typed: TypedLive::new(state),
        id,
    }))
}

/// Removes every role but `wanted` from the profile and adds `wanted` if it is missing.
async fn hold_exactly(
    ctx: &ApplyContext<'_>,
    id: &ResourceId,
    name: &str,
    wanted: Option<&str>,
) -> Result<(), ProvisionError> {
    let iam = &ctx.clients.iam;
    let have = get_profile(iam, id, name).await?.roles;
    for role in have.iter().filter(|r| Some(r.as_str()) != wanted) {
        ProvisionError::unless_gone(
            id,
            iam.remove_role_from_instance_profile()
                .instance_profile_name(name)
                .role_name(role)
                .send()
                .await
                .classify("iam:RemoveRoleFromInstanceProfile"),
        )?;
    }
    if let Some(role) = wanted.filter(|w| !have.iter().any(|h| h == w)) {
        iam.add_role_to_instance_profile()
            .instance_profile_name(name)
            .role_name(role)
            .send()
            .await
            .classify("iam:AddRoleToInstanceProfile")
            .map_err(ProvisionError::aws(id))?;
    }
    Ok(())
}

impl ResourceOps for InstanceProfiles {
    const KIND: ResourceKind = ResourceKind::InstanceProfile;
    type Field = ProfileField;

    fn desired(bp: &Blueprint, _resolved: &Resolved) -> Vec<DesiredState> {
        bp.spec
            .instance_profiles
            .iter()
            .map(|p| {
                let state = desired_state(bp, p);
                let id = ResourceId::new(Self::KIND, &p.name);
                let mut tags = bp.ownership_tags_for(&id);
                tags.extend(p.tags.clone());
                DesiredState {
                    id,
                    physical_name: bp.instance_profile_name(p),
                    fields: state.expected_fields(),
                    tags,
                    adopt: p.adopt,
                    deletion_policy: Blueprint::effective_deletion_policy(
                        Self::KIND,
                        p.deletion_policy,
                    ),
                    typed: TypedDesired::new(state),
                }
            })
            .collect()
    }

    /// One paginated `ListInstanceProfiles`, then `GetInstanceProfile` (its tags) for each
    /// declared profile and each under the stack's prefix or path.
    #[instrument(skip_all, fields(kind = "instance-profile"))]
    async fn observe(ctx: &ObserveContext<'_>) -> Result<Observed, ProvisionError> {
        let iam = ctx.clients.iam();
        let bp = ctx.blueprint;
        let everything = ResourceId::new(Self::KIND, "*");
        let profiles = iam
            .list_instance_profiles()
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .classify("iam:ListInstanceProfiles")
            .map_err(ProvisionError::aws(&everything))?;
        let found = candidates(
            bp,
            Self::KIND,
            profiles
                .iter()
                .map(|p| (p.instance_profile_name(), p.path())),
        );
        let reads = found.into_iter().map(|candidate| async move {
            let declared = candidate.declared;
            let live = read_profile(iam, bp, candidate).await?;
            Ok::<_, ProvisionError>(live.map(|l| (declared, l)))
        });
        let mut observed = Observed::default();
        for (declared, live) in try_join_all(reads).await?.into_iter().flatten() {
            observed.file(live, declared);
        }
        Ok(observed)
    }

    #[instrument(skip_all, fields(instance_profile = %desired.physical_name))]
    async fn create(
        ctx: &ApplyContext<'_>,
        desired: &DesiredState,
    ) -> Result<LiveState, ProvisionError> {
        let want = desired.state::<ProfileState<Desired>>()?;
        let profile = ctx
            .clients
            .iam
            .create_instance_profile()
            .instance_profile_name(&desired.physical_name)
            .path(ctx.blueprint.iam_path())
            .set_tags(Some(iam_tags(
                &desired.id,
                &desired.tags,
                "iam:CreateInstanceProfile",
            )?))
            .send()
            .await
            .classify("iam:CreateInstanceProfile")
            .map_err(ProvisionError::aws(&desired.id))?
            .instance_profile
            .ok_or_else(|| ProvisionError::Unexpected {
                resource: desired.id.clone(),
                operation: "iam:CreateInstanceProfile",
                detail: "no instance profile in the answer".into(),
            })?;
        // Interrupted here, the next observe finds the profile by its name and tags, without
        // its role, and the update adds it.
        if let Some(Some(role)) = want.role.exact() {
            ctx.clients
                .iam
                .add_role_to_instance_profile()
                .instance_profile_name(&desired.physical_name)
                .role_name(role)
                .send()
                .await
                .classify("iam:AddRoleToInstanceProfile")
                .map_err(ProvisionError::aws(&desired.id))?;
        }
        let state = want.assumed_live();
        Ok(LiveState {
            id: desired.id.clone(),
            physical_name: desired.physical_name.clone(),
            physical_id: desired.physical_name.clone(),
            arn: Some(profile.arn().to_string()),
            ownership: Ownership::Owned,
            tags: desired.tags.clone(),
            fields: state.live_fields(),
            typed: TypedLive::new(state),
        })
    }

    #[instrument(skip_all, fields(instance_profile = %desired.physical_name))]
    async fn update(
        ctx: &ApplyContext<'_>,
        desired: &DesiredState,
        live: &LiveState,
        changes: &[FieldChange],
    ) -> Result<(), ProvisionError> {
        let want = desired.state::<ProfileState<Desired>>()?;
        let changes = Changes::<ProfileField>::of(changes);
        let name = &live.physical_id;
        if changes.has(ProfileField::Role)
            && let Some(role) = want.role.exact()
        {
            hold_exactly(ctx, &desired.id, name, role.as_deref()).await?;
        }
        if changes.tags() {
            ctx.clients
                .iam
                .tag_instance_profile()
                .instance_profile_name(name)
                .set_tags(Some(iam_tags(
                    &desired.id,
                    &desired.tags,
                    "iam:TagInstanceProfile",
                )?))
                .send()
                .await
                .classify("iam:TagInstanceProfile")
                .map_err(ProvisionError::aws(&desired.id))?;
        }
        Ok(())
    }

    /// IAM deletes only an empty profile: its role is removed first.
    #[instrument(skip_all, fields(instance_profile = %live.physical_name))]
    async fn delete(ctx: &ApplyContext<'_>, live: &LiveState) -> Result<(), ProvisionError> {
        let name = &live.physical_id;
        match hold_exactly(ctx, &live.id, name, None).await {
            Ok(()) => {}
            // Already gone: deleted.
            Err(e) if e.aws_error().is_some_and(|a| a.is_not_found()) => return Ok(()),
            Err(e) => return Err(e),
        }
        ProvisionError::unless_gone(
            &live.id,
            ctx.clients
                .iam
                .delete_instance_profile()
                .instance_profile_name(name)
                .send()
                .await
                .classify("iam:DeleteInstanceProfile"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provision::diff::Action;
    use crate::provision::state::FieldName;
    use crate::provision::typed::testing::shop_blueprint;
    use crate::provision::typed::testing::{changed_fields, owned_live, typed_diff};

    #[test]
    fn a_profile_with_another_role_yields_exactly_that_change() {
        let bp = shop_blueprint(
            r#"  iamRoles: [{name: worker, assumedBy: [ec2.amazonaws.com]}]
  instanceProfiles: [{name: worker, role: worker}]
"#,
        );
        let desired = InstanceProfiles::desired(&bp, &Resolved::default());
        let want = desired[0].state::<ProfileState<Desired>>().unwrap();
        assert_eq!(want.role, Want::Exact(Some("shop-worker".into())));
        let same = want.assumed_live();
        let live = owned_live(&desired[0], same.clone(), same.live_fields());
        assert_eq!(typed_diff(&desired[0], &live), Action::NoChange);
        let empty = ProfileState::<Live> { role: Some(None) };
        let live = owned_live(&desired[0], empty.clone(), empty.live_fields());
        assert_eq!(
            changed_fields(&typed_diff(&desired[0], &live)),
            vec![ProfileField::Role.name()]
        );
    }
}
