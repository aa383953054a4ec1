//! Customer managed IAM policies, their document derived from the blueprint or written in it.
//!
//! A `document` is the blueprint's, as written. `grants: {for: worker}` is the worker's least-privilege policy, the same document
//! `ballast iam-policy FILE --for worker` prints ([`crate::iam_policy::worker`]), scoped to the
//! exact ARNs of the blueprint's resources. Their account and partition are AWS's: they are read
//! off the granted queue's ARN, so the document is known once the queue exists.
//!
//! The document is the policy's default version, compared semantically ([`PolicyValue`]). A
//! change is a new default version (`CreatePolicyVersion`); IAM keeps at most five versions, so
//! when five exist the oldest one that is not the default is deleted first.

use aws_sdk_iam::types::{EntityType, PolicyScopeType, PolicyVersion};
use ballast_aws::SdkResultExt;
use ballast_blueprint::policy::PolicyError;
use ballast_blueprint::{Blueprint, Grantee, ManagedPolicy, ResourceId, ResourceKind};
use futures::future::try_join_all;
use tracing::instrument;

use super::iam::{Candidate, candidates, iam_tags, is_ours, tags_of};
use super::policy_value::PolicyValue;
use super::{ApplyContext, ObserveContext, Observed, ResourceOps};
use crate::iam_policy::ArnScope;
use crate::iam_policy::worker::{self, WorkerNames};
use crate::provision::context::ReadOnlyClients;
use crate::provision::diff::FieldChange;
use crate::provision::error::ProvisionError;
use crate::provision::state::{Changes, DesiredState, LiveState, Ownership, Resolved};
use crate::provision::typed::{Desired, Live, TypedDesired, TypedLive, Want};

pub struct ManagedPolicies;

crate::provision::state::field_names! {
    /// The fields of ManagedPolicies, as plan and drift output name them.
    pub enum PolicyField {
        Document = "document",
    }
}

crate::provision::typed::typed_state! {
    /// A managed policy's compared state: its default version's document.
    pub struct PolicyState for PolicyField {
        /// Compared semantically.
        Document => document: PolicyValue = Enforced,
    }
}

/// How many versions IAM keeps of one managed policy.
pub const MAX_POLICY_VERSIONS: usize = 5;

/// The partition, region and account of the stack, read off the granted queue's ARN
/// (`arn:<partition>:sqs:<region>:<account>:<name>`); `None` until the queue exists.
fn scope_of(bp: &Blueprint, resolved: &Resolved, queue: &str) -> Option<ArnScope> {
    let arn = resolved.arn(&ResourceId::new(ResourceKind::Queue, queue))?;
    let parts: Vec<&str> = arn.split(':').collect();
    match parts.as_slice() {
        ["arn", _, "sqs", region, account, _] => {
            Some(ArnScope::new(bp, Some(region), Some(account)))
        }
        _ => None,
    }
}

/// The document the blueprint wants: as written, or derived once the granted queue exists.
fn desired_state(bp: &Blueprint, resolved: &Resolved, p: &ManagedPolicy) -> PolicyState<Desired> {
    let Some(grants) = &p.grants else {
        // Validation refuses a policy with neither; an unreadable one is never written.
        return PolicyState {
            document: match &p.document {
                Some(document) => Want::Exact(PolicyValue::read(&document.to_string())),
                None => Want::KnownAfterApply,
            },
        };
    };
    let document = scope_of(bp, resolved, &grants.queue).and_then(|scope| match grants.grantee {
        Grantee::Worker => {
            let names = WorkerNames {
                queue: grants.queue.clone(),
                accounts_table: grants.accounts_table.clone(),
                transactions_table: grants.transactions_table.clone(),
            };
            // Fails only for a queue or table the blueprint does not declare, which validation
            // refuses (they are references): nothing to write then.
            worker::policy(bp, &scope, &names).ok()
        }
    });
    PolicyState {
        document: Want::exact_or_later(document.map(PolicyValue::Document)),
    }
}

#[instrument(skip_all, fields(policy = %arn))]
async fn read_policy(
    iam: &aws_sdk_iam::Client,
    bp: &Blueprint,
    candidate: Candidate,
    arn: &str,
) -> Result<Option<LiveState>, ProvisionError> {
    let id = candidate.id.clone();
    let policy = iam
        .get_policy()
        .policy_arn(arn)
        .send()
        .await
        .classify("iam:GetPolicy")
        .map_err(ProvisionError::aws(&id))?
        .policy
        .ok_or_else(|| ProvisionError::Unexpected {
            resource: id.clone(),
            operation: "iam:GetPolicy",
            detail: "no policy in the answer".into(),
        })?;
    let tags = tags_of(policy.tags());
    if !is_ours(&candidate, &tags, bp) {
        return Ok(None);
    }
    let id = candidate.logical_id(&tags);
    let document = match policy.default_version_id() {
        Some(version) => iam
            .get_policy_version()
            .policy_arn(arn)
            .version_id(version)
            .send()
            .await
            .classify("iam:GetPolicyVersion")
            .map_err(ProvisionError::aws(&id))?
            .policy_version
            .and_then(|v| v.document)
            .map(|text| PolicyValue::read(&text)),
        None => None,
    };
    let state = PolicyState::<Live> { document };
    Ok(Some(LiveState {
        ownership: Ownership::from_tags(&tags, &bp.metadata.name),
        physical_name: candidate.name,
        physical_id: arn.to_string(),
        arn: Some(arn.to_string()),
        tags,
        fields: state.live_fields(),
        typed: TypedLive::new(state),
        id,
    }))
}

/// The document to write: known (the granted queue exists) and readable.
fn document_text(bp: &Blueprint, desired: &DesiredState) -> Result<String, ProvisionError> {
    match desired.state::<PolicyState<Desired>>()?.document.exact() {
        Some(PolicyValue::Document(doc)) => Ok(doc.to_json().to_string()),
        Some(PolicyValue::Unreadable { problem, .. }) => Err(ProvisionError::InvalidDocument {
            resource: desired.id.clone(),
            source: problem.clone(),
        }),
        None => {
            let grants = bp
                .managed_policy(&desired.id.name)
                .and_then(|p| p.grants.as_ref());
            Err(match grants {
                Some(grants) => ProvisionError::MissingDependency {
                    resource: desired.id.clone(),
                    dependency: ResourceId::new(ResourceKind::Queue, &grants.queue),
                },
                None => ProvisionError::InvalidDocument {
                    resource: desired.id.clone(),
                    source: PolicyError::Invalid {
                        field: "document".into(),
                        problem: "is missing (and there are no `grants`)".into(),
                    },
                },
            })
        }
    }
}

#[instrument(skip_all, fields(policy = %arn))]
async fn list_versions(
    iam: &aws_sdk_iam::Client,
    id: &ResourceId,
    arn: &str,
) -> Result<Vec<PolicyVersion>, ProvisionError> {
    iam.list_policy_versions()
        .policy_arn(arn)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .classify("iam:ListPolicyVersions")
        .map_err(ProvisionError::aws(id))
}

/// The version to delete so that one more fits: the oldest that is not the default, once
/// [`MAX_POLICY_VERSIONS`] exist.
fn version_to_retire(versions: &[PolicyVersion]) -> Option<&str> {
    if versions.len() < MAX_POLICY_VERSIONS {
        return None;
    }
    versions
        .iter()
        .filter(|v| !v.is_default_version())
        .min_by_key(|v| {
            (
                v.create_date().map(|d| (d.secs(), d.subsec_nanos())),
                version_number(v),
            )
        })
        .and_then(|v| v.version_id())
}

/// `v3` → 3: IAM numbers versions in creation order (the tie-break of equal dates).
fn version_number(v: &PolicyVersion) -> u64 {
    v.version_id()
        .and_then(|id| id.strip_prefix('v'))
        .and_then(|n| n.parse().ok())
        .unwrap_or(u64::MAX)
}

impl ResourceOps for ManagedPolicies {
    const KIND: ResourceKind = ResourceKind::ManagedPolicy;
    type Field = PolicyField;

    fn desired(bp: &Blueprint, resolved: &Resolved) -> Vec<DesiredState> {
        bp.spec
            .managed_policies
            .iter()
            .map(|p| {
                let state = desired_state(bp, resolved, p);
                let id = ResourceId::new(Self::KIND, &p.name);
                let mut tags = bp.ownership_tags_for(&id);
                tags.extend(p.tags.clone());
                DesiredState {
                    id,
                    physical_name: bp.managed_policy_name(p),
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

    /// One paginated `ListPolicies` of the account's customer managed policies, then each
    /// declared one and each under the stack's prefix or path is read (`GetPolicy` for its
    /// tags, and its default version).
    #[instrument(skip_all, fields(kind = "managed-policy"))]
    async fn observe(ctx: &ObserveContext<'_>) -> Result<Observed, ProvisionError> {
        observe_policies(ctx.clients, ctx.blueprint).await
    }

    #[instrument(skip_all, fields(policy = %desired.physical_name))]
    async fn create(
        ctx: &ApplyContext<'_>,
        desired: &DesiredState,
    ) -> Result<LiveState, ProvisionError> {
        let want = desired.state::<PolicyState<Desired>>()?;
        let text = document_text(ctx.blueprint, desired)?;
        let policy = ctx
            .clients
            .iam
            .create_policy()
            .policy_name(&desired.physical_name)
            .path(ctx.blueprint.iam_path())
            .policy_document(text)
            .set_tags(Some(iam_tags(
                &desired.id,
                &desired.tags,
                "iam:CreatePolicy",
            )?))
            .send()
            .await
            .classify("iam:CreatePolicy")
            .map_err(ProvisionError::aws(&desired.id))?
            .policy
            .ok_or_else(|| ProvisionError::Unexpected {
                resource: desired.id.clone(),
                operation: "iam:CreatePolicy",
                detail: "no policy in the answer".into(),
            })?;
        let arn = policy.arn().ok_or_else(|| ProvisionError::Unexpected {
            resource: desired.id.clone(),
            operation: "iam:CreatePolicy",
            detail: "no policy ARN in the answer".into(),
        })?;
        // Not read back: the new policy's only version is the document just sent.
        let state = want.assumed_live();
        Ok(LiveState {
            id: desired.id.clone(),
            physical_name: desired.physical_name.clone(),
            physical_id: arn.to_string(),
            arn: Some(arn.to_string()),
            ownership: Ownership::Owned,
            tags: desired.tags.clone(),
            fields: state.live_fields(),
            typed: TypedLive::new(state),
        })
    }

    #[instrument(skip_all, fields(policy = %desired.physical_name))]
    async fn update(
        ctx: &ApplyContext<'_>,
        desired: &DesiredState,
        live: &LiveState,
        changes: &[FieldChange],
    ) -> Result<(), ProvisionError> {
        let changes = Changes::<PolicyField>::of(changes);
        let iam = &ctx.clients.iam;
        let arn = &live.physical_id;
        let err = || ProvisionError::aws(&desired.id);
        if changes.has(PolicyField::Document) {
            let text = document_text(ctx.blueprint, desired)?;
            let versions = list_versions(iam, &desired.id, arn).await?;
            if let Some(oldest) = version_to_retire(&versions) {
                iam.delete_policy_version()
                    .policy_arn(arn)
                    .version_id(oldest)
                    .send()
                    .await
                    .classify("iam:DeletePolicyVersion")
                    .map_err(err())?;
            }
            iam.create_policy_version()
                .policy_arn(arn)
                .policy_document(text)
                .set_as_default(true)
                .send()
                .await
                .classify("iam:CreatePolicyVersion")
                .map_err(err())?;
        }
        if changes.tags() {
            iam.tag_policy()
                .policy_arn(arn)
                .set_tags(Some(iam_tags(&desired.id, &desired.tags, "iam:TagPolicy")?))
                .send()
                .await
                .classify("iam:TagPolicy")
                .map_err(err())?;
        }
        Ok(())
    }

    /// Detaches the policy from the roles it is attached to (IAM refuses to delete an attached
    /// policy), deletes its versions other than the default (likewise), then the policy.
    #[instrument(skip_all, fields(policy = %live.physical_name))]
    async fn delete(ctx: &ApplyContext<'_>, live: &LiveState) -> Result<(), ProvisionError> {
        let iam = &ctx.clients.iam;
        let arn = &live.physical_id;
        let err = || ProvisionError::aws(&live.id);
        let roles = iam
            .list_entities_for_policy()
            .policy_arn(arn)
            .entity_filter(EntityType::Role)
            .into_paginator()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .classify("iam:ListEntitiesForPolicy");
        let roles = match roles {
            Ok(pages) => pages,
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) => return Err(err()(e)),
        };
        for role in roles.iter().flat_map(|p| p.policy_roles()) {
            let Some(name) = role.role_name() else {
                continue;
            };
            ProvisionError::unless_gone(
                &live.id,
                iam.detach_role_policy()
                    .role_name(name)
                    .policy_arn(arn)
                    .send()
                    .await
                    .classify("iam:DetachRolePolicy"),
            )?;
        }
        for version in list_versions(iam, &live.id, arn).await? {
            let Some(version_id) = version
                .version_id()
                .filter(|_| !version.is_default_version())
            else {
                continue;
            };
            ProvisionError::unless_gone(
                &live.id,
                iam.delete_policy_version()
                    .policy_arn(arn)
                    .version_id(version_id)
                    .send()
                    .await
                    .classify("iam:DeletePolicyVersion"),
            )?;
        }
        ProvisionError::unless_gone(
            &live.id,
            iam.delete_policy()
                .policy_arn(arn)
                .send()
                .await
                .classify("iam:DeletePolicy"),
        )
    }
}

async fn observe_policies(
    clients: &ReadOnlyClients,
    bp: &Blueprint,
) -> Result<Observed, ProvisionError> {
    let iam = clients.iam();
    let everything = ResourceId::new(ResourceKind::ManagedPolicy, "*");
    let listed = iam
        .list_policies()
        .scope(PolicyScopeType::Local)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .classify("iam:ListPolicies")
        .map_err(ProvisionError::aws(&everything))?;
    let found = candidates(
        bp,
        ResourceKind::ManagedPolicy,
        listed
            .iter()
            .filter_map(|p| Some((p.policy_name()?, p.path().unwrap_or("/")))),
    );
    let reads = found.into_iter().filter_map(|candidate| {
        let arn = listed
            .iter()
            .find(|p| p.policy_name() == Some(candidate.name.as_str()))
            .and_then(|p| p.arn())?
            .to_string();
        Some(async move {
            let declared = candidate.declared;
            let live = read_policy(iam, bp, candidate, &arn).await?;
            Ok::<_, ProvisionError>(live.map(|l| (declared, l)))
        })
    });
    let mut observed = Observed::default();
    for (declared, live) in try_join_all(reads).await?.into_iter().flatten() {
        observed.file(live, declared);
    }
    Ok(observed)
}

#[cfg(test)]
mod tests {

    use aws_smithy_types::DateTime;

    use super::*;
    use crate::provision::diff::{Action, diff};
    use crate::provision::state::FieldName;
    use crate::provision::typed::testing::shop_blueprint;
    use crate::provision::typed::testing::{changed_fields, owned_live, typed_diff};

    fn blueprint() -> Blueprint {
        ballast_blueprint::load(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../blueprints/banking.yaml"),
        )
        .unwrap()
        .blueprint
    }

    fn resolved() -> Resolved {
        let mut resolved = Resolved::default();
        resolved.insert(LiveState::referenced(
            ResourceKind::Queue,
            "transactions",
            "banking-transactions",
            "url",
            Some("arn:aws:sqs:us-east-1:123456789012:banking-transactions"),
        ));
        resolved
    }

    #[test]
    fn the_worker_grants_are_the_iam_policy_commands_document_in_the_queues_account() {
        let bp = blueprint();
        let desired = ManagedPolicies::desired(&bp, &resolved());
        let want = desired[0].state::<PolicyState<Desired>>().unwrap();
        let scope = ArnScope::new(&bp, None, Some("123456789012"));
        let expected = worker::policy(
            &bp,
            &scope,
            &WorkerNames {
                queue: "transactions".into(),
                accounts_table: "accounts".into(),
                transactions_table: "transactions".into(),
            },
        )
        .unwrap();
        assert_eq!(want.document, Want::Exact(PolicyValue::Document(expected)));
        // Before the queue exists, its account is not known.
        let later = ManagedPolicies::desired(&bp, &Resolved::default());
        let state = later[0].state::<PolicyState<Desired>>().unwrap();
        assert_eq!(state.document, Want::KnownAfterApply);
    }

    #[test]
    fn a_policy_differing_in_its_document_yields_exactly_that_change() {
        let bp = blueprint();
        let desired = ManagedPolicies::desired(&bp, &resolved());
        let want = desired[0].state::<PolicyState<Desired>>().unwrap();
        let same = want.assumed_live();
        let live = owned_live(&desired[0], same.clone(), same.live_fields());
        assert_eq!(typed_diff(&desired[0], &live), Action::NoChange);
        // Reordered and with one-element lists as strings, as IAM may return it: the same.
        let Some(PolicyValue::Document(doc)) = same.document.clone() else {
            panic!("a document")
        };
        let mut reordered = doc.to_json();
        if let Some(statements) = reordered["Statement"].as_array_mut() {
            statements.reverse();
        }
        let reread = PolicyState::<Live> {
            document: Some(PolicyValue::read(&reordered.to_string())),
        };
        let live = owned_live(&desired[0], reread.clone(), reread.live_fields());
        assert_eq!(typed_diff(&desired[0], &live), Action::NoChange);

        let drifted = PolicyState::<Live> {
            document: Some(PolicyValue::read(
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#,
            )),
        };
        let live = owned_live(&desired[0], drifted.clone(), drifted.live_fields());
        // Shown statement by statement (the untyped diff would show raw JSON).
        assert_eq!(
            changed_fields(&diff(&desired[0], Some(&live))),
            vec![PolicyField::Document.name()]
        );
    }

    #[test]
    fn a_written_document_is_wanted_as_written_and_never_sent_unreadable() {
        let bp = shop_blueprint(
            r#"  managedPolicies:
    - name: artifacts
      document:
        Version: "2012-10-17"
        Statement:
          - {Effect: Allow, Action: [s3:GetObject], Resource: "arn:aws:s3:::artifacts/*"}
"#,
        );
        let desired = ManagedPolicies::desired(&bp, &Resolved::default());
        let want = desired[0].state::<PolicyState<Desired>>().unwrap();
        assert_eq!(
            want.document,
            Want::Exact(PolicyValue::read(
                r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":["arn:aws:s3:::artifacts/*"]}}"#
            ))
        );
        assert!(
            document_text(&bp, &desired[0])
                .unwrap()
                .contains("s3:GetObject")
        );
        // A document that is not one (validation refuses it) is reported, not sent.
        let mut unreadable = desired[0].clone();
        unreadable.typed = TypedDesired::new(PolicyState::<Desired> {
            document: Want::Exact(PolicyValue::read(r#"{"Statement":[{"NotAction":"*"}]}"#)),
        });
        assert!(matches!(
            document_text(&bp, &unreadable),
            Err(ProvisionError::InvalidDocument { .. })
        ));
    }

    fn version(id: &str, default: bool, secs: i64) -> PolicyVersion {
        PolicyVersion::builder()
            .version_id(id)
            .is_default_version(default)
            .create_date(DateTime::from_secs(secs))
            .build()
    }

    #[test]
    fn the_oldest_version_that_is_not_the_default_is_retired_at_five() {
        let four: Vec<_> = (1..=4)
            .map(|n| version(&format!("v{n}"), n == 4, n))
            .collect();
        assert_eq!(version_to_retire(&four), None);
        // The default is the oldest (a rollback): the next oldest goes.
        let five = vec![
            version("v1", true, 1),
            version("v2", false, 2),
            version("v3", false, 3),
            version("v4", false, 4),
            version("v5", false, 5),
        ];
        assert_eq!(version_to_retire(&five), Some("v2"));
        // Equal dates: by version number.
        let same_second: Vec<_> = (1..=5)
            .map(|n| version(&format!("v{n}"), n == 5, 7))
            .collect();
        assert_eq!(version_to_retire(&same_second), Some("v1"));
    }
}
