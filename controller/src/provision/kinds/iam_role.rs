//! IAM roles: the trust policy (who may assume the role) and the managed policies attached to
//! it.
//!
//! The trust policy is written from `assumedBy` (an `sts:AssumeRole` allow to those service
//! principals) and compared semantically ([`PolicyValue`]); a change is `UpdateAssumeRolePolicy`.
//! The attached policies compare as a set of ARNs (a blueprint policy by the ARN IAM gave it)
//! and are the whole truth: one attached by hand is detached by apply.

use std::collections::BTreeSet;

use ballast_aws::SdkResultExt;
use ballast_blueprint::policy::{Effect, PolicyDocument, Principal, Statement};
use ballast_blueprint::{Blueprint, IamRole, ResourceId, ResourceKind, is_policy_arn};
use futures::future::try_join_all;
use tracing::instrument;

use super::iam::{Candidate, candidates, iam_tags, is_ours, tags_of};
use super::policy_value::PolicyValue;
use super::support::SetDelta;
use super::{ApplyContext, ObserveContext, Observed, ResourceOps};
use crate::provision::diff::FieldChange;
use crate::provision::error::ProvisionError;
use crate::provision::state::{Changes, DesiredState, LiveState, Ownership, Resolved};
use crate::provision::typed::{Desired, Live, TypedDesired, TypedLive, Want};

pub struct IamRoles;

crate::provision::state::field_names! {
    /// The fields of IamRoles, as plan and drift output name them.
    pub enum RoleField {
        AssumeRolePolicy = "assumeRolePolicy",
        Policies = "policies",
    }
}

crate::provision::typed::typed_state! {
    /// A role's compared state: `desired` builds it from the blueprint, `observe` from
    /// `GetRole` and `ListAttachedRolePolicies`.
    pub struct RoleState for RoleField {
        /// The trust policy, compared semantically.
        AssumeRolePolicy => assume_role_policy: PolicyValue = Enforced,
        /// ARNs of the attached managed policies, sorted.
        Policies => policies: Vec<String> = Enforced,
    }
}

/// The action a trust policy allows its principals.
const ASSUME_ROLE: &str = "sts:AssumeRole";

/// The trust policy of a role assumed by `services`.
pub fn trust_policy(services: &[String]) -> PolicyDocument {
    let principal = Principal::ByType([("Service".to_string(), services.to_vec())].into());
    PolicyDocument::new(vec![Statement {
        sid: None,
        effect: Effect::Allow,
        principal: Some(principal),
        actions: vec![ASSUME_ROLE.into()],
        resources: Vec::new(),
        conditions: Default::default(),
    }])
}

/// The ARNs of the policies a role attaches: blueprint policies through `resolved`, ARNs as
/// written; `None` while a blueprint policy does not exist yet.
fn policy_arns(resolved: &Resolved, role: &IamRole) -> Option<Vec<String>> {
    let arns: Option<BTreeSet<String>> = role
        .policies
        .iter()
        .map(|p| {
            if is_policy_arn(p) {
                Some(p.clone())
            } else {
                resolved
                    .arn(&ResourceId::new(ResourceKind::ManagedPolicy, p))
                    .map(str::to_string)
            }
        })
        .collect();
    arns.map(|set| set.into_iter().collect())
}

fn desired_state(resolved: &Resolved, role: &IamRole) -> RoleState<Desired> {
    RoleState {
        assume_role_policy: Want::Exact(PolicyValue::Document(trust_policy(&role.assumed_by))),
        policies: Want::exact_or_later(policy_arns(resolved, role)),
    }
}

#[instrument(skip_all, fields(role = %name))]
async fn attached_policies(
    iam: &aws_sdk_iam::Client,
    id: &ResourceId,
    name: &str,
) -> Result<Vec<String>, ProvisionError> {
    let attached = iam
        .list_attached_role_policies()
        .role_name(name)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .classify("iam:ListAttachedRolePolicies")
        .map_err(ProvisionError::aws(id))?;
    let arns: BTreeSet<String> = attached
        .iter()
        .filter_map(|p| p.policy_arn().map(str::to_string))
        .collect();
    Ok(arns.into_iter().collect())
}

#[instrument(skip_all, fields(role = %candidate.name))]
async fn read_role(
    iam: &aws_sdk_iam::Client,
    bp: &Blueprint,
    candidate: Candidate,
) -> Result<Option<LiveState>, ProvisionError> {
    let id = candidate.id.clone();
    let role = iam
        .get_role()
        .role_name(&candidate.name)
        .send()
        .await
        .classify("iam:GetRole")
        .map_err(ProvisionError::aws(&id))?
        .role
        .ok_or_else(|| ProvisionError::Unexpected {
            resource: id.clone(),
            operation: "iam:GetRole",
            detail: "no role in the answer".into(),
        })?;
    let tags = tags_of(role.tags());
    if !is_ours(&candidate, &tags, bp) {
        return Ok(None);
    }
    let id = candidate.logical_id(&tags);
    let state = RoleState::<Live> {
        assume_role_policy: role.assume_role_policy_document().map(PolicyValue::read),
        policies: Some(attached_policies(iam, &id, &candidate.name).await?),
    };
    Ok(Some(LiveState {
        ownership: Ownership::from_tags(&tags, &bp.metadata.name),
        physical_name: candidate.name.clone(),
        physical_id: candidate.name,
        arn: Some(role.arn().to_string()),
        tags,
        fields: state.live_fields(),
        typed: TypedLive::new(state),
        id,
    }))
}

/// Attaches and detaches policies so that exactly `wanted` are attached to the role `name`.
async fn attach_exactly(
    ctx: &ApplyContext<'_>,
    id: &ResourceId,
    name: &str,
    wanted: &[String],
) -> Result<(), ProvisionError> {
    let iam = &ctx.clients.iam;
    // Read again rather than trust a plan that may be minutes old.
    let have = attached_policies(iam, id, name).await?;
    let delta = SetDelta::between(
        wanted.iter().map(String::as_str),
        have.iter().map(String::as_str),
    );
    for arn in &delta.add {
        iam.attach_role_policy()
            .role_name(name)
            .policy_arn(arn)
            .send()
            .await
            .classify("iam:AttachRolePolicy")
            .map_err(ProvisionError::aws(id))?;
    }
    for arn in &delta.remove {
        ProvisionError::unless_gone(
            id,
            iam.detach_role_policy()
                .role_name(name)
                .policy_arn(arn)
                .send()
                .await
                .classify("iam:DetachRolePolicy"),
        )?;
    }
    Ok(())
}

impl ResourceOps for IamRoles {
    const KIND: ResourceKind = ResourceKind::IamRole;
    type Field = RoleField;

    fn desired(bp: &Blueprint, resolved: &Resolved) -> Vec<DesiredState> {
        bp.spec
            .iam_roles
            .iter()
            .map(|r| {
                let state = desired_state(resolved, r);
                let id = ResourceId::new(Self::KIND, &r.name);
                let mut tags = bp.ownership_tags_for(&id);
                tags.extend(r.tags.clone());
                DesiredState {
                    id,
                    physical_name: bp.role_name(r),
                    fields: state.expected_fields(),
                    tags,
                    adopt: r.adopt,
                    deletion_policy: Blueprint::effective_deletion_policy(
                        Self::KIND,
                        r.deletion_policy,
                    ),
                    typed: TypedDesired::new(state),
                }
            })
            .collect()
    }

    /// One paginated `ListRoles`, then `GetRole` (tags, trust policy) and
    /// `ListAttachedRolePolicies` for each declared role and each under the stack's prefix or
    /// path.
    #[instrument(skip_all, fields(kind = "iam-role"))]
    async fn observe(ctx: &ObserveContext<'_>) -> Result<Observed, ProvisionError> {
        let iam = ctx.clients.iam();
        let bp = ctx.blueprint;
        let everything = ResourceId::new(Self::KIND, "*");
        let roles = iam
            .list_roles()
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .classify("iam:ListRoles")
            .map_err(ProvisionError::aws(&everything))?;
        let found = candidates(
            bp,
            Self::KIND,
            roles.iter().map(|r| (r.role_name(), r.path())),
        );
        let reads = found.into_iter().map(|candidate| async move {
            let declared = candidate.declared;
            let live = read_role(iam, bp, candidate).await?;
            Ok::<_, ProvisionError>(live.map(|l| (declared, l)))
        });
        let mut observed = Observed::default();
        for (declared, live) in try_join_all(reads).await?.into_iter().flatten() {
            observed.file(live, declared);
        }
        Ok(observed)
    }

    #[instrument(skip_all, fields(role = %desired.physical_name))]
    async fn create(
        ctx: &ApplyContext<'_>,
        desired: &DesiredState,
    ) -> Result<LiveState, ProvisionError> {
        let want = desired.state::<RoleState<Desired>>()?;
        let trust = want
            .assume_role_policy
            .exact()
            .and_then(PolicyValue::text)
            .unwrap_or_default();
        let role = ctx
            .clients
            .iam
            .create_role()
            .role_name(&desired.physical_name)
            .path(ctx.blueprint.iam_path())
            .assume_role_policy_document(trust)
            .set_tags(Some(iam_tags(
                &desired.id,
                &desired.tags,
                "iam:CreateRole",
            )?))
            .send()
            .await
            .classify("iam:CreateRole")
            .map_err(ProvisionError::aws(&desired.id))?
            .role
            .ok_or_else(|| ProvisionError::Unexpected {
                resource: desired.id.clone(),
                operation: "iam:CreateRole",
                detail: "no role in the answer".into(),
            })?;
        // Interrupted from here on, the next observe finds the role by its name and its
        // tags, and the update attaches what is missing.
        let policies = want.policies.exact().cloned().unwrap_or_default();
        attach_exactly(ctx, &desired.id, &desired.physical_name, &policies).await?;
        let state = want.assumed_live();
        Ok(LiveState {
            id: desired.id.clone(),
            physical_name: desired.physical_name.clone(),
            physical_id: desired.physical_name.clone(),
            arn: Some(role.arn().to_string()),
            ownership: Ownership::Owned,
            tags: desired.tags.clone(),
            fields: state.live_fields(),
            typed: TypedLive::new(state),
        })
    }

    #[instrument(skip_all, fields(role = %desired.physical_name))]
    async fn update(
        ctx: &ApplyContext<'_>,
        desired: &DesiredState,
        live: &LiveState,
        changes: &[FieldChange],
    ) -> Result<(), ProvisionError> {
        let want = desired.state::<RoleState<Desired>>()?;
        let changes = Changes::<RoleField>::of(changes);
        let iam = &ctx.clients.iam;
        let name = &live.physical_id;
        let err = || ProvisionError::aws(&desired.id);
        if changes.has(RoleField::AssumeRolePolicy)
            && let Some(trust) = want.assume_role_policy.exact().and_then(PolicyValue::text)
        {
            iam.update_assume_role_policy()
                .role_name(name)
                .policy_document(trust)
                .send()
                .await
                .classify("iam:UpdateAssumeRolePolicy")
                .map_err(err())?;
        }
        if changes.has(RoleField::Policies)
            && let Some(wanted) = want.policies.exact()
        {
            attach_exactly(ctx, &desired.id, name, wanted).await?;
        }
        if changes.tags() {
            iam.tag_role()
                .role_name(name)
                .set_tags(Some(iam_tags(&desired.id, &desired.tags, "iam:TagRole")?))
                .send()
                .await
                .classify("iam:TagRole")
                .map_err(err())?;
        }
        Ok(())
    }

    /// IAM deletes only a bare role: its managed policies are detached, it is removed from
    /// its instance profiles and its inline policies (none of Ballast's; one added by hand
    /// would block the delete) are deleted first.
    #[instrument(skip_all, fields(role = %live.physical_name))]
    async fn delete(ctx: &ApplyContext<'_>, live: &LiveState) -> Result<(), ProvisionError> {
        let iam = &ctx.clients.iam;
        let name = &live.physical_id;
        let id = &live.id;
        match attach_exactly(ctx, id, name, &[]).await {
            Ok(()) => {}
            // Already gone: deleted.
            Err(e) if e.aws_error().is_some_and(|a| a.is_not_found()) => return Ok(()),
            Err(e) => return Err(e),
        }
        let profiles = iam
            .list_instance_profiles_for_role()
            .role_name(name)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .classify("iam:ListInstanceProfilesForRole")
            .map_err(ProvisionError::aws(id))?;
        for profile in &profiles {
            ProvisionError::unless_gone(
                id,
                iam.remove_role_from_instance_profile()
                    .instance_profile_name(profile.instance_profile_name())
                    .role_name(name)
                    .send()
                    .await
                    .classify("iam:RemoveRoleFromInstanceProfile"),
            )?;
        }
        let inline = iam
            .list_role_policies()
            .role_name(name)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .classify("iam:ListRolePolicies")
            .map_err(ProvisionError::aws(id))?;
        for policy in &inline {
            ProvisionError::unless_gone(
                id,
                iam.delete_role_policy()
                    .role_name(name)
                    .policy_name(policy)
                    .send()
                    .await
                    .classify("iam:DeleteRolePolicy"),
            )?;
        }
        ProvisionError::unless_gone(
            id,
            iam.delete_role()
                .role_name(name)
                .send()
                .await
                .classify("iam:DeleteRole"),
        )
    }
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::provision::diff::{Action, diff};
    use crate::provision::state::FieldName;
    use crate::provision::typed::testing::shop_blueprint;
    use crate::provision::typed::testing::{changed_fields, owned_live, typed_diff};

    fn blueprint() -> Blueprint {
        shop_blueprint(
            r#"  queues: [{name: transactions}]
  tables:
    - {name: accounts, hashKey: {name: pk, type: S}}
    - {name: transactions, hashKey: {name: pk, type: S}}
  managedPolicies:
    - {name: worker, grants: {for: worker}}
  iamRoles:
    - name: worker
      assumedBy: [ec2.amazonaws.com]
      policies: [worker, "arn:aws:iam::aws:policy/CloudWatchAgentServerPolicy"]
"#,
        )
    }

    fn resolved() -> Resolved {
        let mut resolved = Resolved::default();
        resolved.insert(LiveState::referenced(
            ResourceKind::ManagedPolicy,
            "worker",
            "shop-worker",
            "arn:aws:iam::1:policy/shop-worker",
            Some("arn:aws:iam::1:policy/shop-worker"),
        ));
        resolved
    }

    #[test]
    fn a_role_differing_in_one_field_yields_exactly_that_change() {
        let desired = IamRoles::desired(&blueprint(), &resolved());
        let want = desired[0].state::<RoleState<Desired>>().unwrap();
        assert_eq!(desired[0].physical_name, "shop-worker");
        assert_eq!(
            want.policies,
            Want::Exact(vec![
                "arn:aws:iam::1:policy/shop-worker".to_string(),
                "arn:aws:iam::aws:policy/CloudWatchAgentServerPolicy".to_string(),
            ])
        );
        let same = want.assumed_live();
        let live = owned_live(&desired[0], same.clone(), same.live_fields());
        assert_eq!(typed_diff(&desired[0], &live), Action::NoChange);

        // IAM returns the trust policy URL-encoded, with the one service as a string.
        let reread = RoleState::<Live> {
            assume_role_policy: Some(PolicyValue::read(
                "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Principal%22%3A%7B%22Service%22%3A%22ec2.amazonaws.com%22%7D%2C%22Action%22%3A%22sts%3AAssumeRole%22%7D%5D%7D",
            )),
            ..same.clone()
        };
        let live = owned_live(&desired[0], reread.clone(), reread.live_fields());
        assert_eq!(typed_diff(&desired[0], &live), Action::NoChange);

        let mut drifted = same.clone();
        drifted.assume_role_policy = Some(PolicyValue::Document(trust_policy(&[
            "lambda.amazonaws.com".into(),
        ])));
        let live = owned_live(&desired[0], drifted.clone(), drifted.live_fields());
        // Shown statement by statement (the untyped diff would show raw JSON).
        assert_eq!(
            changed_fields(&diff(&desired[0], Some(&live))),
            vec![RoleField::AssumeRolePolicy.name()]
        );

        let mut detached = same;
        detached.policies = Some(vec!["arn:aws:iam::1:policy/shop-worker".into()]);
        let live = owned_live(&desired[0], detached.clone(), detached.live_fields());
        assert_eq!(
            changed_fields(&typed_diff(&desired[0], &live)),
            vec![RoleField::Policies.name()]
        );
    }

    #[test]
    fn a_policy_not_created_yet_makes_the_attachments_known_after_apply() {
        let desired = IamRoles::desired(&blueprint(), &Resolved::default());
        let want = desired[0].state::<RoleState<Desired>>().unwrap();
        assert_eq!(want.policies, Want::KnownAfterApply);
    }
}
