//! Observe → plan → apply/destroy over every resource kind of a blueprint.

use std::collections::{BTreeMap, BTreeSet};

use ballast_blueprint::{
    Blueprint, DeletionPolicy, ResourceId, ResourceKind, dependency_order, graph, safety_overrides,
};
use futures::future::join_all;
use tracing::{info, instrument, warn};

use super::context::{Clients, ReadOnlyClients};
use super::diff::{self, Action, Plan};
use super::error::ProvisionError;
use super::kinds::{self, ApplyContext, ObserveContext, Readiness, ResourceOps, SharedReads};
use super::state::{DesiredState, LiveState, Resolved};
use super::tagged::{self, TagSnapshot};

/// Runs `$body` with `$ops` bound to the [`ResourceOps`] type of `$kind`.
macro_rules! with_kind {
    ($kind:expr, $ops:ident => $body:expr, else $other:expr) => {
        match $kind {
            ResourceKind::KmsKey => {
                type $ops = kinds::kms::KmsKeys;
                $body
            }
            ResourceKind::Queue => {
                type $ops = kinds::queue::Queues;
                $body
            }
            ResourceKind::Table => {
                type $ops = kinds::table::Tables;
                $body
            }
            ResourceKind::Alarm => {
                type $ops = kinds::alarm::Alarms;
                $body
            }
            ResourceKind::Dashboard => {
                type $ops = kinds::dashboard::Dashboards;
                $body
            }
            ResourceKind::Vpc => {
                type $ops = kinds::vpc::Vpcs;
                $body
            }
            ResourceKind::Subnet => {
                type $ops = kinds::subnet::Subnets;
                $body
            }
            ResourceKind::VpcEndpoint => {
                type $ops = kinds::endpoint::VpcEndpoints;
                $body
            }
            ResourceKind::LaunchTemplate => {
                type $ops = kinds::launch_template::LaunchTemplates;
                $body
            }
            ResourceKind::AutoScalingGroup => {
                type $ops = kinds::asg::AutoScalingGroups;
                $body
            }
            _ => $other,
        }
    };
}

/// Kinds in the order they are observed: a kind may canonicalize references to earlier ones.
pub const OBSERVE_ORDER: &[ResourceKind] = &[
    ResourceKind::KmsKey,
    ResourceKind::Vpc,
    ResourceKind::Subnet,
    ResourceKind::VpcEndpoint,
    ResourceKind::Queue,
    ResourceKind::Table,
    ResourceKind::LaunchTemplate,
    ResourceKind::AutoScalingGroup,
    ResourceKind::Alarm,
    ResourceKind::Dashboard,
];

/// Scaling policies are Ballast's own; nothing in AWS to provision.
fn is_provisioned(kind: ResourceKind) -> bool {
    kind != ResourceKind::ScalingPolicy
}

#[derive(Debug, Default)]
pub struct Observation {
    pub live: Vec<LiveState>,
    pub removed: Vec<LiveState>,
    pub resolved: Resolved,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{0}")]
    Provision(#[from] ProvisionError),
    #[error("resource kind `{0}` is not supported by this version of Ballast")]
    Unsupported(ResourceKind),
    #[error("{} resource(s) exist but are not owned by this blueprint:\n{}", .0.len(), .0.join("\n"))]
    Conflicts(Vec<String>),
    #[error("apply failed for {} resource(s):\n{}", .0.len(), .0.iter().map(|e| format!("  {e}")).collect::<Vec<_>>().join("\n"))]
    Failed(Vec<ProvisionError>),
}

fn kinds_in(bp: &Blueprint) -> BTreeSet<ResourceKind> {
    graph::resources(bp)
        .into_iter()
        .map(|(id, _)| id.kind)
        .collect()
}

/// Reads live state kind by kind. Only read-only clients can be passed in.
///
/// Ownership tags of keys, queues, tables and alarms come from one tagging-API read up front
/// (see [`tagged`]), not from one tag read per resource.
#[instrument(skip_all, fields(blueprint = %bp.metadata.name))]
pub async fn observe(
    clients: &ReadOnlyClients,
    bp: &Blueprint,
) -> Result<Observation, EngineError> {
    let snapshot = tagged::read(clients, bp).await?;
    observe_with(clients, bp, snapshot).await
}

/// [`observe`] with a tagging snapshot read earlier (or, in tests, one that has not caught up
/// with AWS yet): resources the snapshot does not list read their own tags.
#[instrument(skip_all, fields(blueprint = %bp.metadata.name, tagged = snapshot.len()))]
pub async fn observe_with(
    clients: &ReadOnlyClients,
    bp: &Blueprint,
    snapshot: TagSnapshot,
) -> Result<Observation, EngineError> {
    let present = kinds_in(bp);
    let shared = SharedReads::new(snapshot);
    let mut observation = Observation::default();
    for kind in OBSERVE_ORDER {
        let observed = {
            let ctx = ObserveContext {
                clients,
                blueprint: bp,
                resolved: &observation.resolved,
                shared: &shared,
            };
            with_kind!(*kind, Ops => Some(Ops::observe(&ctx).await?), else {
                if present.contains(kind) {
                    return Err(EngineError::Unsupported(*kind));
                }
                None
            })
        };
        if let Some(observed) = observed {
            for live in &observed.live {
                observation.resolved.insert(live.clone());
            }
            observation.live.extend(observed.live);
            observation.removed.extend(observed.removed);
        }
    }
    Ok(observation)
}

pub fn desired_states(bp: &Blueprint, resolved: &Resolved) -> Vec<DesiredState> {
    let mut out = Vec::new();
    for kind in OBSERVE_ORDER {
        with_kind!(*kind, Ops => out.extend(Ops::desired(bp, resolved)), else {});
    }
    out
}

/// A pure function of the blueprint and what was observed.
pub fn plan(bp: &Blueprint, observation: &Observation) -> Plan {
    let desired = desired_states(bp, &observation.resolved);
    let order: Vec<ResourceId> = dependency_order(bp)
        .into_iter()
        .filter(|id| is_provisioned(id.kind))
        .collect();
    let removed: Vec<(LiveState, DeletionPolicy)> = observation
        .removed
        .iter()
        .map(|l| (l.clone(), removed_policy(l.id.kind)))
        .collect();
    diff::plan(
        &bp.metadata.name,
        &order,
        &desired,
        &observation.live,
        &removed,
        safety_overrides(bp),
    )
}

/// A resource gone from the blueprint has no declared policy left: stateful kinds are retained.
fn removed_policy(kind: ResourceKind) -> DeletionPolicy {
    Blueprint::effective_deletion_policy(kind, None)
}

/// What happened to each resource during apply or destroy.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Outcome {
    pub resource: ResourceId,
    pub action: &'static str,
    pub ok: bool,
    pub detail: Option<String>,
}

pub trait Progress: Sync {
    fn started(&self, resource: &ResourceId, action: &str);
    fn finished(&self, outcome: &Outcome);
}

/// Structured logs, for non-interactive runs.
pub struct LogProgress;

impl Progress for LogProgress {
    fn started(&self, resource: &ResourceId, action: &str) {
        info!(%resource, action, "started");
    }
    fn finished(&self, outcome: &Outcome) {
        if outcome.ok {
            info!(resource = %outcome.resource, action = outcome.action, "done");
        } else {
            warn!(resource = %outcome.resource, action = outcome.action, error = outcome.detail.as_deref().unwrap_or(""), "failed");
        }
    }
}

fn dependencies(bp: &Blueprint) -> BTreeMap<ResourceId, BTreeSet<ResourceId>> {
    let mut deps: BTreeMap<ResourceId, BTreeSet<ResourceId>> = BTreeMap::new();
    for r in graph::references(bp)
        .into_iter()
        .filter(|r| r.ordering && r.from != r.to)
    {
        deps.entry(r.from).or_default().insert(r.to);
    }
    deps
}

/// Applies the blueprint: creates, updates, adopts and replaces in dependency order, independent
/// resources in parallel, then removes what the blueprint dropped (under its deletion policy).
/// Re-running after a failure converges: every step re-reads what the last one left.
pub async fn apply(
    clients: &Clients,
    bp: &Blueprint,
    observation: Observation,
    readiness: Readiness,
    progress: &dyn Progress,
) -> Result<Vec<Outcome>, EngineError> {
    apply_except(
        clients,
        bp,
        observation,
        readiness,
        progress,
        &BTreeSet::new(),
    )
    .await
}

/// [`apply`], leaving the `held` resources (and whatever depends on them) untouched: the
/// controller holds back resources that are backing off after errors.
#[instrument(skip_all, fields(blueprint = %bp.metadata.name, held = held.len()))]
pub async fn apply_except(
    clients: &Clients,
    bp: &Blueprint,
    observation: Observation,
    readiness: Readiness,
    progress: &dyn Progress,
    held: &BTreeSet<ResourceId>,
) -> Result<Vec<Outcome>, EngineError> {
    let first_plan = plan(bp, &observation);
    let conflicts: Vec<String> = first_plan
        .conflicts()
        .filter(|c| !held.contains(&c.resource))
        .map(|c| match &c.action {
            Action::Conflict { reason } => format!("  {}: {reason}", c.resource),
            _ => String::new(),
        })
        .collect();
    if !conflicts.is_empty() {
        return Err(EngineError::Conflicts(conflicts));
    }
    let deps = dependencies(bp);
    let order: Vec<ResourceId> = dependency_order(bp)
        .into_iter()
        .filter(|id| is_provisioned(id.kind))
        .collect();
    let mut live: BTreeMap<ResourceId, LiveState> = observation
        .live
        .into_iter()
        .map(|l| (l.id.clone(), l))
        .collect();
    let mut resolved = observation.resolved;
    let mut done: BTreeSet<ResourceId> = BTreeSet::new();
    let mut failed: BTreeSet<ResourceId> = BTreeSet::new();
    let mut outcomes = Vec::new();
    for id in order.iter().filter(|id| held.contains(*id)) {
        outcomes.push(Outcome {
            resource: id.clone(),
            action: "held",
            ok: false,
            detail: Some("held back after earlier errors".into()),
        });
        failed.insert(id.clone());
    }
    let mut errors = Vec::new();
    while done.len() + failed.len() < order.len() {
        let wave: Vec<ResourceId> = order
            .iter()
            .filter(|id| !done.contains(*id) && !failed.contains(*id))
            .filter(|id| {
                deps.get(*id)
                    .is_none_or(|d| d.iter().all(|x| done.contains(x) || !order.contains(x)))
            })
            .cloned()
            .collect();
        let blocked: Vec<ResourceId> = order
            .iter()
            .filter(|id| !done.contains(*id) && !failed.contains(*id) && !wave.contains(id))
            .filter(|id| {
                deps.get(*id)
                    .is_some_and(|d| d.iter().any(|x| failed.contains(x)))
            })
            .cloned()
            .collect();
        for id in blocked {
            outcomes.push(Outcome {
                resource: id.clone(),
                action: "skipped",
                ok: false,
                detail: Some("a dependency failed".into()),
            });
            failed.insert(id);
        }
        if wave.is_empty() {
            break;
        }
        let desired = desired_states(bp, &resolved);
        let ctx = ApplyContext {
            clients,
            blueprint: bp,
            resolved: &resolved,
            readiness,
        };
        let results = join_all(wave.iter().map(|id| {
            let want = desired.iter().find(|d| &d.id == id).cloned();
            let have = live.get(id).cloned();
            let ctx = &ctx;
            async move {
                let Some(want) = want else {
                    return (id.clone(), "none", Ok(None));
                };
                let action = diff::diff(&want, have.as_ref());
                let label = action_label(&action);
                if action.is_change() {
                    progress.started(id, label);
                }
                let result = act(ctx, &want, have.as_ref(), &action).await;
                (id.clone(), label, result)
            }
        }))
        .await;
        for (id, label, result) in results {
            match result {
                Ok(new_live) => {
                    if let Some(state) = new_live {
                        resolved.insert(state.clone());
                        live.insert(id.clone(), state);
                    }
                    if label != "none" && label != "no change" {
                        let outcome = Outcome {
                            resource: id.clone(),
                            action: label,
                            ok: true,
                            detail: None,
                        };
                        progress.finished(&outcome);
                        outcomes.push(outcome);
                    }
                    done.insert(id);
                }
                Err(e) => {
                    let outcome = Outcome {
                        resource: id.clone(),
                        action: label,
                        ok: false,
                        detail: Some(e.to_string()),
                    };
                    progress.finished(&outcome);
                    outcomes.push(outcome);
                    errors.push(e);
                    failed.insert(id);
                }
            }
        }
    }
    for removed in observation
        .removed
        .iter()
        .rev()
        .filter(|r| !held.contains(&r.id))
    {
        let policy = removed_policy(removed.id.kind);
        let ctx = ApplyContext {
            clients,
            blueprint: bp,
            resolved: &resolved,
            readiness,
        };
        let outcome = remove(&ctx, removed, policy, progress).await;
        if let Err(e) = outcome {
            errors.push(e);
        }
    }
    if errors.is_empty() {
        Ok(outcomes)
    } else {
        Err(EngineError::Failed(errors))
    }
}

fn action_label(action: &Action) -> &'static str {
    match action {
        Action::Create => "create",
        Action::Update { .. } => "update",
        Action::Replace { .. } => "replace",
        Action::Adopt { .. } => "adopt",
        Action::Delete => "delete",
        Action::Retain => "retain",
        Action::NoChange => "no change",
        Action::Conflict { .. } => "conflict",
    }
}

async fn act(
    ctx: &ApplyContext<'_>,
    want: &DesiredState,
    have: Option<&LiveState>,
    action: &Action,
) -> Result<Option<LiveState>, ProvisionError> {
    let kind = want.id.kind;
    with_kind!(kind, Ops => {
        match (action, have) {
            (Action::Create, _) => Ops::create(ctx, want).await.map(Some),
            (Action::Update { changes } | Action::Adopt { changes }, Some(live)) => {
                Ops::update(ctx, want, live, changes).await?;
                Ok(None)
            }
            (Action::Replace { changes }, Some(live)) => {
                if kind.is_stateful() && want.deletion_policy == DeletionPolicy::Retain {
                    let reasons: Vec<String> = changes.iter().map(|c| format!("{}: {} → {}", c.field, c.live, c.desired)).collect();
                    return Err(ProvisionError::Unexpected {
                        resource: want.id.clone(),
                        operation: "replace",
                        detail: format!(
                            "refusing to replace a stateful resource with deletionPolicy: retain ({}); set deletionPolicy: delete to allow it",
                            reasons.join(", ")
                        ),
                    });
                }
                Ops::delete(ctx, live).await?;
                Ops::create(ctx, want).await.map(Some)
            }
            _ => Ok(None),
        }
    }, else Ok(None))
}

async fn remove(
    ctx: &ApplyContext<'_>,
    live: &LiveState,
    policy: DeletionPolicy,
    progress: &dyn Progress,
) -> Result<(), ProvisionError> {
    if policy == DeletionPolicy::Retain {
        progress.finished(&Outcome {
            resource: live.id.clone(),
            action: "retain",
            ok: true,
            detail: Some(format!(
                "kept `{}` (deletionPolicy: retain)",
                live.physical_name
            )),
        });
        return Ok(());
    }
    progress.started(&live.id, "delete");
    let result = with_kind!(live.id.kind, Ops => Ops::delete(ctx, live).await, else Ok(()));
    progress.finished(&Outcome {
        resource: live.id.clone(),
        action: "delete",
        ok: result.is_ok(),
        detail: result.as_ref().err().map(ToString::to_string),
    });
    result
}

/// Removes the blueprint's resources in reverse dependency order, honouring deletion policies.
#[instrument(skip_all, fields(blueprint = %bp.metadata.name))]
pub async fn destroy(
    clients: &Clients,
    bp: &Blueprint,
    observation: Observation,
    readiness: Readiness,
    progress: &dyn Progress,
) -> Result<Vec<Outcome>, EngineError> {
    let desired = desired_states(bp, &observation.resolved);
    let mut order: Vec<ResourceId> = dependency_order(bp)
        .into_iter()
        .filter(|id| is_provisioned(id.kind))
        .collect();
    order.reverse();
    let ctx = ApplyContext {
        clients,
        blueprint: bp,
        resolved: &observation.resolved,
        readiness,
    };
    let mut outcomes = Vec::new();
    let mut errors = Vec::new();
    let mut targets: Vec<(LiveState, DeletionPolicy)> = Vec::new();
    for id in &order {
        let Some(live) = observation.live.iter().find(|l| &l.id == id) else {
            continue;
        };
        if live.ownership != super::state::Ownership::Owned {
            outcomes.push(Outcome {
                resource: id.clone(),
                action: "skipped",
                ok: true,
                detail: Some("not owned by this blueprint".into()),
            });
            continue;
        }
        let policy = desired
            .iter()
            .find(|d| &d.id == id)
            .map(|d| d.deletion_policy)
            .unwrap_or(DeletionPolicy::Retain);
        targets.push((live.clone(), policy));
    }
    for removed in &observation.removed {
        targets.push((removed.clone(), removed_policy(removed.id.kind)));
    }
    for (live, policy) in targets {
        let result = remove(&ctx, &live, policy, progress).await;
        outcomes.push(Outcome {
            resource: live.id.clone(),
            action: if policy == DeletionPolicy::Retain {
                "retain"
            } else {
                "delete"
            },
            ok: result.is_ok(),
            detail: result.as_ref().err().map(ToString::to_string),
        });
        if let Err(e) = result {
            errors.push(e);
        }
    }
    if errors.is_empty() {
        Ok(outcomes)
    } else {
        Err(EngineError::Failed(errors))
    }
}
