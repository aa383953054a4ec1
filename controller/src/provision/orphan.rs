//! Orphans: resources that carry this blueprint's ownership tag but that no declaration claims.
//!
//! An apply killed between two calls can leave one behind (a KMS key created before a second
//! apply created another), and so can a resource whose logical id left the blueprint when its
//! kind cannot find it by name any more. Such a resource costs money and, for a key, holds
//! nothing but risk; nothing else reports it, because every kind observes what the blueprint
//! names. So after every kind is observed:
//!
//! - every resource the tagging snapshot ([`super::tagged`]) lists that no observed live or
//!   removed state claims is an orphan (a key scheduled for deletion is gone, not an orphan);
//! - a second live state with the same logical id (two VPCs with the blueprint's Name tag) is an
//!   orphan; the first stays the declared one.
//!
//! The kinds the snapshot does not cover (EC2, Auto Scaling) are observed by their ownership tag
//! already, so an owned one that is not declared is a removed resource (planned for deletion),
//! not an orphan. Dashboards cannot carry tags: their names are deterministic and their
//! ownership marker is inside the body, so an interrupted apply cannot leave a second one.
//!
//! Drift and plan list orphans in their own section and drift fails on them;
//! `destroy --include-orphans` deletes them after listing them ([`delete`]), never by default.

use std::collections::BTreeSet;

use ballast_aws::SdkResultExt;
use ballast_blueprint::{ResourceId, ResourceKind, Tags, tagged_resource_id};
use serde::Serialize;
use tracing::instrument;

use super::context::ReadOnlyClients;
use super::engine::{Outcome, OutcomeAction, Progress};
use super::error::ProvisionError;
use super::kinds::ApplyContext;
use super::state::{LiveState, Ownership};
use super::tagged::{TagSnapshot, resource_types};
use super::typed::TypedLive;

/// One owned resource that no declaration claims.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Orphan {
    pub kind: ResourceKind,
    /// The logical id its `ballast.dev/resource` tag names (none on a resource created before
    /// Ballast set that tag).
    pub resource: Option<ResourceId>,
    /// The ARN, or the id AWS knows it by when it has no ARN.
    pub arn: String,
    /// The id the kind's API takes (key id, queue URL, table name, alarm name, VPC id, …).
    pub physical_id: String,
    #[serde(flatten)]
    pub reason: OrphanReason,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "reason")]
pub enum OrphanReason {
    /// Its logical id is not declared (or it carries none).
    Undeclared,
    /// Another resource is the declared one with this logical id.
    Duplicate {
        /// The physical id of the declared one.
        of: String,
    },
}

impl Orphan {
    /// `kms-key/data` or, without a logical-id tag, the kind.
    pub fn label(&self) -> String {
        match &self.resource {
            Some(id) => id.to_string(),
            None => format!("{}/?", self.kind),
        }
    }

    pub fn why(&self) -> String {
        match &self.reason {
            OrphanReason::Undeclared => "owned by the stack, but no declaration claims it".into(),
            OrphanReason::Duplicate { of } => {
                format!("a second resource with this logical id; the declared one is `{of}`")
            }
        }
    }

    /// The live state the kind's `delete` takes. It names no alias or other secondary part: an
    /// orphan's alias, if any, belongs to the declared resource.
    fn live(&self) -> LiveState {
        LiveState {
            id: self
                .resource
                .clone()
                .unwrap_or_else(|| ResourceId::new(self.kind, &self.physical_id)),
            physical_name: self.physical_id.clone(),
            physical_id: self.physical_id.clone(),
            arn: Some(self.arn.clone()),
            ownership: Ownership::Owned,
            tags: Tags::new(),
            fields: Default::default(),
            typed: TypedLive::untyped(),
        }
    }
}

/// Removes every live state after the first with the same logical id, as duplicate orphans.
pub fn split_duplicates(live: &mut Vec<LiveState>) -> Vec<Orphan> {
    let mut seen: Vec<(ResourceId, String)> = Vec::new();
    let mut orphans = Vec::new();
    live.retain(|l| {
        if let Some((_, first)) = seen.iter().find(|(id, _)| id == &l.id) {
            orphans.push(Orphan {
                kind: l.id.kind,
                resource: Some(l.id.clone()),
                arn: l.arn.clone().unwrap_or_else(|| l.physical_id.clone()),
                physical_id: l.physical_id.clone(),
                reason: OrphanReason::Duplicate { of: first.clone() },
            });
            false
        } else {
            seen.push((l.id.clone(), l.physical_id.clone()));
            true
        }
    });
    orphans
}

/// The resources the snapshot lists that no observed state claims.
#[instrument(skip_all, fields(tagged = snapshot.len()))]
pub async fn unclaimed(
    clients: &ReadOnlyClients,
    snapshot: &TagSnapshot,
    live: &[LiveState],
    removed: &[LiveState],
) -> Result<Vec<Orphan>, ProvisionError> {
    let claimed: BTreeSet<&str> = live
        .iter()
        .chain(removed)
        .filter_map(|l| l.arn.as_deref())
        .collect();
    let mut orphans = Vec::new();
    for (kind, _) in resource_types() {
        let Some((service, prefix)) = arn_prefix(kind) else {
            continue;
        };
        for (arn, rest) in snapshot.resources(service, prefix) {
            if claimed.contains(arn) {
                continue;
            }
            let tags = snapshot.tags(arn).cloned().unwrap_or_default();
            let Some(physical_id) = physical_id(clients, kind, arn, rest).await? else {
                continue;
            };
            let resource = tagged_resource_id(&tags).filter(|id| id.kind == kind);
            let reason = match resource
                .as_ref()
                .and_then(|id| live.iter().find(|l| &l.id == id))
            {
                Some(declared) => OrphanReason::Duplicate {
                    of: declared.physical_id.clone(),
                },
                None => OrphanReason::Undeclared,
            };
            orphans.push(Orphan {
                kind,
                resource,
                arn: arn.to_string(),
                physical_id,
                reason,
            });
        }
    }
    Ok(orphans)
}

/// Where a tagged kind's ARNs put their resource part: `(service, prefix)`.
fn arn_prefix(kind: ResourceKind) -> Option<(&'static str, &'static str)> {
    match kind {
        ResourceKind::KmsKey => Some(("kms", "key/")),
        ResourceKind::Queue => Some(("sqs", "")),
        ResourceKind::Table => Some(("dynamodb", "table/")),
        ResourceKind::Alarm => Some(("cloudwatch", "alarm:")),
        ResourceKind::Topic => Some(("sns", "")),
        _ => None,
    }
}

/// The id the kind's API takes for the resource at `arn` (whose resource part after the kind's
/// prefix is `rest`); `None` when it is gone (a key scheduled for deletion, a deleted queue).
async fn physical_id(
    clients: &ReadOnlyClients,
    kind: ResourceKind,
    arn: &str,
    rest: &str,
) -> Result<Option<String>, ProvisionError> {
    let id = ResourceId::new(kind, rest);
    match kind {
        ResourceKind::KmsKey => {
            let described = clients
                .kms()
                .describe_key()
                .key_id(rest)
                .send()
                .await
                .classify("kms:DescribeKey");
            let meta = match described {
                Ok(out) => out.key_metadata,
                Err(e) if e.is_not_found() => None,
                Err(e) => return Err(ProvisionError::aws(&id)(e)),
            };
            Ok(meta
                .filter(|m| {
                    !m.key_state.as_ref().is_some_and(|s| {
                        matches!(s.as_str(), "PendingDeletion" | "PendingReplicaDeletion")
                    })
                })
                .map(|m| m.key_id))
        }
        ResourceKind::Queue => {
            let Some(account) = arn.split(':').nth(4) else {
                return Ok(None);
            };
            let url = clients
                .sqs()
                .get_queue_url()
                .queue_name(rest)
                .queue_owner_aws_account_id(account)
                .send()
                .await
                .classify("sqs:GetQueueUrl");
            match url {
                Ok(out) => Ok(out.queue_url),
                Err(e) if e.is_not_found() => Ok(None),
                Err(e) => Err(ProvisionError::aws(&id)(e)),
            }
        }
        // A topic's API takes its ARN; a deleted topic leaves the tagging index with it.
        ResourceKind::Topic => Ok(Some(arn.to_string())),
        _ => Ok(Some(rest.to_string())),
    }
}

/// Deletes orphans (`destroy --include-orphans`) through their kind's `delete`. A KMS key is
/// scheduled for deletion with the longest window, 30 days, during which it can be recovered.
pub async fn delete(
    ctx: &ApplyContext<'_>,
    orphans: &[Orphan],
    progress: &dyn Progress,
) -> (Vec<Outcome>, Vec<ProvisionError>) {
    let mut outcomes = Vec::new();
    let mut errors = Vec::new();
    for orphan in orphans {
        let live = orphan.live();
        progress.started(&live.id, OutcomeAction::Delete);
        let result = super::engine::delete_live(ctx, &live).await;
        let outcome = Outcome {
            resource: live.id.clone(),
            action: OutcomeAction::Delete,
            ok: result.is_ok(),
            detail: Some(match &result {
                Ok(()) => format!("orphan `{}`", orphan.arn),
                Err(e) => e.to_string(),
            }),
        };
        progress.finished(&outcome);
        outcomes.push(outcome);
        if let Err(e) = result {
            errors.push(e);
        }
    }
    (outcomes, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live(name: &str, physical_id: &str) -> LiveState {
        LiveState {
            id: ResourceId::new(ResourceKind::Vpc, name),
            physical_name: format!("bp-{name}"),
            physical_id: physical_id.into(),
            arn: None,
            ownership: Ownership::Owned,
            tags: Tags::new(),
            fields: Default::default(),
            typed: TypedLive::untyped(),
        }
    }

    #[test]
    fn the_first_of_two_resources_with_one_logical_id_stays_declared() {
        let mut states = vec![
            live("main", "vpc-1"),
            live("other", "vpc-2"),
            live("main", "vpc-3"),
        ];
        let orphans = split_duplicates(&mut states);
        let kept: Vec<&str> = states.iter().map(|l| l.physical_id.as_str()).collect();
        assert_eq!(kept, ["vpc-1", "vpc-2"]);
        assert_eq!(orphans.len(), 1);
        assert_eq!(orphans[0].physical_id, "vpc-3");
        assert_eq!(orphans[0].label(), "vpc/main");
        assert_eq!(
            orphans[0].reason,
            OrphanReason::Duplicate { of: "vpc-1".into() }
        );
        assert!(orphans[0].why().contains("`vpc-1`"));
    }

    #[test]
    fn an_orphan_is_deleted_without_the_declared_resources_alias() {
        let orphan = Orphan {
            kind: ResourceKind::KmsKey,
            resource: Some(ResourceId::new(ResourceKind::KmsKey, "data")),
            arn: "arn:aws:kms:us-east-1:1:key/k2".into(),
            physical_id: "k2".into(),
            reason: OrphanReason::Duplicate { of: "k1".into() },
        };
        let live = orphan.live();
        assert_eq!(live.physical_id, "k2");
        assert!(live.fields.is_empty(), "no alias: KmsKeys::delete keeps it");
    }
}
