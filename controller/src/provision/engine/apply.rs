//! Apply: converge AWS to the blueprint in dependency order.

use std::collections::{BTreeMap, BTreeSet};

use ballast_blueprint::target::Selection;
use ballast_blueprint::{Blueprint, DeletionPolicy, ResourceId, ResourceKind, graph};
use futures::future::join_all;
use tracing::instrument;

use super::{
    EngineError, Observation, Outcome, OutcomeAction, Progress, desired_states, plan,
    provisioned_order, removed_policy,
};
use crate::provision::conflict::Conflict;
use crate::provision::context::Clients;
use crate::provision::diff::{self, Action};
use crate::provision::error::ProvisionError;
use crate::provision::kinds::{self, ApplyContext, Readiness, ResourceOps};
use crate::provision::state::{DesiredState, LiveState};

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
///
/// Resources under `management: observe` are never written. One that exists counts as done:
/// its dependents are applied against it as it is (its drift is reported as an
/// [`OutcomeAction::Observed`] outcome). One that does not exist is not created: it is reported,
/// and every resource that needs it is skipped with
/// [`ProvisionError::ObservedMissing`], so the apply fails naming both, as a dependent cannot be
/// created without it (Terraform's missing data source; Argo CD's unsynced dependency).
pub async fn apply_except(
    clients: &Clients,
    bp: &Blueprint,
    observation: Observation,
    readiness: Readiness,
    progress: &dyn Progress,
    held: &BTreeSet<ResourceId>,
) -> Result<Vec<Outcome>, EngineError> {
    apply_scoped(clients, bp, observation, readiness, progress, held, None).await
}

/// [`apply`] of the `selection` only (`ballast apply --target`): its resources, which include
/// everything they depend on, are converged as a whole apply would; nothing else is touched, not
/// even resources removed from the blueprint ([`Plan::targeted`](crate::provision::diff::Plan::targeted) is the plan of exactly this).
pub async fn apply_targeted(
    clients: &Clients,
    bp: &Blueprint,
    observation: Observation,
    readiness: Readiness,
    progress: &dyn Progress,
    selection: &Selection,
) -> Result<Vec<Outcome>, EngineError> {
    apply_scoped(
        clients,
        bp,
        observation,
        readiness,
        progress,
        &BTreeSet::new(),
        Some(selection),
    )
    .await
}

#[instrument(skip_all, fields(blueprint = %bp.metadata.name, held = held.len(), targeted = only.is_some()))]
async fn apply_scoped(
    clients: &Clients,
    bp: &Blueprint,
    observation: Observation,
    readiness: Readiness,
    progress: &dyn Progress,
    held: &BTreeSet<ResourceId>,
    only: Option<&Selection>,
) -> Result<Vec<Outcome>, EngineError> {
    let in_scope = |id: &ResourceId| only.is_none_or(|s| s.contains(id));
    let first_plan = plan(bp, &observation);
    let conflicts: Vec<Conflict> = first_plan
        .conflicts()
        .filter(|c| !held.contains(&c.resource) && in_scope(&c.resource))
        .filter_map(|c| match &c.action {
            Action::Conflict { reason } => Some(Conflict {
                resource: c.resource.clone(),
                reason: reason.clone(),
            }),
            _ => None,
        })
        .collect();
    if !conflicts.is_empty() {
        return Err(EngineError::Conflicts(conflicts));
    }
    let deps = dependencies(bp);
    // A selection holds everything its resources depend on, so every wave's dependencies are
    // in `order` as in a whole apply.
    let order: Vec<ResourceId> = provisioned_order(bp)
        .into_iter()
        .filter(|id| in_scope(id))
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
            action: OutcomeAction::Held,
            ok: false,
            detail: Some("held back after earlier errors".into()),
        });
        failed.insert(id.clone());
    }
    let mut errors = Vec::new();
    let observed = ballast_blueprint::observed(bp);
    let mut missing_observed: BTreeSet<ResourceId> = BTreeSet::new();
    for change in first_plan.changes.iter().filter(|c| {
        observed.contains(&c.resource) && !held.contains(&c.resource) && in_scope(&c.resource)
    }) {
        let Action::Observed { would } = &change.action else {
            continue;
        };
        let id = &change.resource;
        let detail = match would.as_ref() {
            Action::Create => {
                missing_observed.insert(id.clone());
                failed.insert(id.clone());
                Some(format!(
                    "`{}` does not exist and is not created (management: observe)",
                    change.physical_name
                ))
            }
            Action::Update { changes }
            | Action::Adopt { changes }
            | Action::Replace { changes } => {
                done.insert(id.clone());
                let fields: Vec<&str> = changes.iter().map(|c| c.field.as_str()).collect();
                Some(format!(
                    "drift left as it is (management: observe): {}",
                    fields.join(", ")
                ))
            }
            Action::Conflict { .. }
            | Action::NoChange
            | Action::Delete
            | Action::Retain
            | Action::Observed { .. } => {
                done.insert(id.clone());
                None
            }
        };
        if let Some(detail) = detail {
            let outcome = Outcome {
                resource: id.clone(),
                action: OutcomeAction::Observed,
                ok: true,
                detail: Some(detail),
            };
            progress.finished(&outcome);
            outcomes.push(outcome);
        }
    }
    while done.len() + failed.len() < order.len() && !readiness.cancel.is_cancelled() {
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
            let missing = deps
                .get(&id)
                .and_then(|d| d.iter().find(|x| missing_observed.contains(*x)));
            let detail = match missing {
                Some(dependency) => {
                    let error = ProvisionError::ObservedMissing {
                        resource: id.clone(),
                        dependency: dependency.clone(),
                    };
                    let detail = error.to_string();
                    errors.push(error);
                    detail
                }
                None => "a dependency failed".into(),
            };
            let outcome = Outcome {
                resource: id.clone(),
                action: OutcomeAction::Skipped,
                ok: false,
                detail: Some(detail),
            };
            if missing.is_some() {
                progress.finished(&outcome);
            }
            outcomes.push(outcome);
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
            readiness: readiness.clone(),
        };
        let results = join_all(wave.iter().map(|id| {
            let want = desired.iter().find(|d| &d.id == id).cloned();
            let have = live.get(id).cloned();
            let ctx = &ctx;
            async move {
                let Some(want) = want else {
                    return (id.clone(), None, Ok(None));
                };
                let action = diff::diff(&want, have.as_ref());
                let step = OutcomeAction::of(&action);
                if let Some(step) = step
                    && action.is_change()
                {
                    progress.started(id, step);
                }
                let result = act(ctx, &want, have.as_ref(), &action).await;
                (id.clone(), step, result)
            }
        }))
        .await;
        for (id, step, result) in results {
            match (result, step) {
                (Ok(new_live), step) => {
                    if let Some(state) = new_live {
                        resolved.insert(state.clone());
                        live.insert(id.clone(), state);
                    }
                    if let Some(step) = step {
                        let outcome = Outcome {
                            resource: id.clone(),
                            action: step,
                            ok: true,
                            detail: None,
                        };
                        progress.finished(&outcome);
                        outcomes.push(outcome);
                    }
                    done.insert(id);
                }
                (Err(e), step) => {
                    // Only a step that does something can fail; should one that does nothing
                    // ever fail, its error is still reported (in `EngineError::Failed`).
                    if let Some(step) = step {
                        let outcome = Outcome {
                            resource: id.clone(),
                            action: step,
                            ok: false,
                            detail: Some(e.to_string()),
                        };
                        progress.finished(&outcome);
                        outcomes.push(outcome);
                    }
                    errors.push(e);
                    failed.insert(id);
                }
            }
        }
    }
    // Removed resources are in no selection: a targeted apply never removes anything.
    let removed: Vec<&LiveState> = observation
        .removed
        .iter()
        .filter(|r| only.is_none() && !held.contains(&r.id))
        .collect();
    if readiness.cancel.is_cancelled() {
        let not_reached = order
            .iter()
            .filter(|id| !done.contains(*id) && !failed.contains(*id))
            .chain(removed.iter().map(|r| &r.id))
            .cloned()
            .collect();
        return Err(EngineError::Interrupted {
            not_reached,
            failed: errors,
        });
    }
    for removed in removed.into_iter().rev() {
        let policy = removed_policy(removed.id.kind);
        let ctx = ApplyContext {
            clients,
            blueprint: bp,
            resolved: &resolved,
            readiness: readiness.clone(),
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

async fn act(
    ctx: &ApplyContext<'_>,
    want: &DesiredState,
    have: Option<&LiveState>,
    action: &Action,
) -> Result<Option<LiveState>, ProvisionError> {
    // Boxed: see `super::observe_with`.
    with_kind!(want.id.kind, Ops => Box::pin(act_as::<Ops>(ctx, want, have, action)).await, else Ok(None))
}

/// [`act`] for the kind `Ops`.
async fn act_as<Ops: ResourceOps>(
    ctx: &ApplyContext<'_>,
    want: &DesiredState,
    have: Option<&LiveState>,
    action: &Action,
) -> Result<Option<LiveState>, ProvisionError> {
    let kind = want.id.kind;
    match (action, have) {
        (Action::Create, _) => Ops::create(ctx, want).await.map(Some),
        (Action::Update { changes } | Action::Adopt { changes }, Some(live)) => {
            Ops::update(ctx, want, live, changes).await?;
            Ops::updated(ctx, want, live).await
        }
        (Action::Replace { changes }, Some(live)) => {
            if kind.is_stateful() && want.deletion_policy == DeletionPolicy::Retain {
                let reasons: Vec<String> = changes
                    .iter()
                    .map(|c| format!("{}: {} → {}", c.field, c.live, c.desired))
                    .collect();
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
}

pub(super) async fn remove(
    ctx: &ApplyContext<'_>,
    live: &LiveState,
    policy: DeletionPolicy,
    progress: &dyn Progress,
) -> Result<(), ProvisionError> {
    if policy == DeletionPolicy::Retain {
        progress.finished(&Outcome {
            resource: live.id.clone(),
            action: OutcomeAction::Retain,
            ok: true,
            detail: Some(format!(
                "kept `{}` (deletionPolicy: retain)",
                live.physical_name
            )),
        });
        return Ok(());
    }
    progress.started(&live.id, OutcomeAction::Delete);
    let result = delete_live(ctx, live).await;
    progress.finished(&Outcome {
        resource: live.id.clone(),
        action: OutcomeAction::Delete,
        ok: result.is_ok(),
        detail: result.as_ref().err().map(ToString::to_string),
    });
    result
}

/// Deletes `live` through its kind's `delete`.
pub(crate) async fn delete_live(
    ctx: &ApplyContext<'_>,
    live: &LiveState,
) -> Result<(), ProvisionError> {
    // Boxed: see `super::observe_with`.
    with_kind!(live.id.kind, Ops => Box::pin(Ops::delete(ctx, live)).await, else Ok(()))
}
