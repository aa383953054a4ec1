//! Observe → plan → apply/destroy over every resource kind of a blueprint.

use std::collections::{BTreeMap, BTreeSet};

use ballast_blueprint::target::Selection;
use ballast_blueprint::{
    Blueprint, DeletionPolicy, ResourceId, ResourceKind, dependency_order, graph, safety_overrides,
};
use futures::future::join_all;
use tracing::{info, instrument, warn};

use super::conflict::{self, Conflict};
use super::context::{Clients, ReadOnlyClients};
use super::diff::{self, Action, Plan};
use super::error::ProvisionError;
use super::kinds::{self, ApplyContext, ObserveContext, Readiness, ResourceOps, SharedReads};
use super::orphan::{self, Orphan};
use super::state::{DesiredState, LiveState, Resolved};
use super::tagged::{self, TagSnapshot};

/// Runs `$body` with `$ops` bound to the [`ResourceOps`] type of `$kind`, or `$other` for a kind
/// with nothing to provision. The match is generated from the blueprint crate's registry
/// ([`ballast_blueprint::resource_kinds!`]) and has no `_ =>` arm: a kind added there without a
/// provisioning entry fails to compile here.
macro_rules! with_kind {
    ($kind:expr, $ops:ident => $body:expr, else $other:expr) => {
        ballast_blueprint::resource_kinds!(dispatch_kind, $kind, $ops, $body, $other)
    };
}

/// The callback of [`with_kind!`]: one arm per registry entry.
macro_rules! dispatch_kind {
    (
        [$kind:expr, $ops:ident, $body:expr, $other:expr]
        $($variant:ident {
            name: $name:literal,
            model: $model:ident,
            stateful: $stateful:literal,
            tagging: [$($tagging:literal)?],
            ops: [$($path:tt)*]
        })*
    ) => {
        match $kind {
            $(ResourceKind::$variant => dispatch_kind!(@arm $ops, $body, $other, [$($path)*]),)*
        }
    };
    (@arm $ops:ident, $body:expr, $other:expr, []) => {
        $other
    };
    (@arm $ops:ident, $body:expr, $other:expr, [$($path:tt)+]) => {{
        type $ops = kinds::$($path)+;
        $body
    }};
}

/// Whether the kind has something in AWS to provision (every kind does today; a scaling
/// policy's is its dead-man's switch).
pub fn is_provisioned(kind: ResourceKind) -> bool {
    with_kind!(kind, _Ops => true, else false)
}

/// The blueprint's resources that have something in AWS, in dependency order: a resource of a
/// provisioned kind with a physical name (a scaling policy has one only with a dead-man's
/// switch), so that apply waits for, and an interrupted apply reports, nothing that is not there.
fn provisioned_order(bp: &Blueprint) -> Vec<ResourceId> {
    let in_aws: BTreeSet<ResourceId> = observe_order()
        .flat_map(|kind| ballast_blueprint::declared(bp, kind))
        .map(|(id, _)| id)
        .collect();
    dependency_order(bp)
        .into_iter()
        .filter(|id| in_aws.contains(id))
        .collect()
}

/// Kinds in the order they are observed: registry order, so a kind may canonicalize references
/// to the kinds observed before it (the registry's tests check that it comes after them).
pub fn observe_order() -> impl Iterator<Item = ResourceKind> {
    ResourceKind::ALL
        .iter()
        .copied()
        .filter(|kind| is_provisioned(*kind))
}

#[derive(Debug, Default)]
pub struct Observation {
    pub live: Vec<LiveState>,
    pub removed: Vec<LiveState>,
    pub resolved: Resolved,
    /// Owned resources no declaration claims (see [`orphan`]).
    pub orphans: Vec<Orphan>,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{0}")]
    Provision(#[from] ProvisionError),
    #[error("{} resource(s) exist but are not owned by this blueprint:\n{}", .0.len(), conflict::render(.0))]
    Conflicts(Vec<Conflict>),
    #[error("apply failed for {} resource(s):\n{}", .0.len(), .0.iter().map(|e| format!("  {e}")).collect::<Vec<_>>().join("\n"))]
    Failed(Vec<ProvisionError>),
    /// Shutdown was requested: the steps in flight finished, no further step started.
    #[error("interrupted by shutdown; {} resource(s) not reached{}", .not_reached.len(), .failed.iter().map(|e| format!("\n  {e}")).collect::<String>())]
    Interrupted {
        /// Resources whose step had not started (or, for destroy, whose removal had not).
        not_reached: Vec<ResourceId>,
        /// Failures of the steps that ran (waits cut short are among them).
        failed: Vec<ProvisionError>,
    },
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
    let shared = SharedReads::new(snapshot);
    let mut observation = Observation::default();
    for kind in observe_order() {
        let observed = {
            let ctx = ObserveContext {
                clients,
                blueprint: bp,
                resolved: &observation.resolved,
                shared: &shared,
            };
            // observe_order() yields provisioned kinds only; the registry guarantees every
            // provisioned kind has its ResourceOps, so there is no "unsupported kind" left.
            with_kind!(kind, Ops => Some(Ops::observe(&ctx).await?), else None)
        };
        if let Some(mut observed) = observed {
            // The first of two resources with one logical id is the declared one, for the
            // kinds observed later as for the plan; the other is an orphan.
            let duplicates = orphan::split_duplicates(&mut observed.live);
            observation.orphans.extend(duplicates);
            for live in &observed.live {
                observation.resolved.insert(live.clone());
            }
            observation.live.extend(observed.live);
            observation.removed.extend(observed.removed);
        }
    }
    let unclaimed = orphan::unclaimed(
        clients,
        &shared.tagged,
        &observation.live,
        &observation.removed,
    )
    .await?;
    observation.orphans.extend(unclaimed);
    Ok(observation)
}

pub fn desired_states(bp: &Blueprint, resolved: &Resolved) -> Vec<DesiredState> {
    let mut out = Vec::new();
    for kind in observe_order() {
        with_kind!(kind, Ops => out.extend(Ops::desired(bp, resolved)), else {});
    }
    out
}

/// A pure function of the blueprint and what was observed.
pub fn plan(bp: &Blueprint, observation: &Observation) -> Plan {
    let desired = desired_states(bp, &observation.resolved);
    let order = provisioned_order(bp);
    let removed: Vec<(LiveState, DeletionPolicy)> = observation
        .removed
        .iter()
        .map(|l| (l.clone(), removed_policy(l.id.kind)))
        .collect();
    let mut plan = diff::plan(
        &bp.metadata.name,
        &order,
        &desired,
        &observation.live,
        &removed,
        &ballast_blueprint::observed(bp),
        safety_overrides(bp),
    );
    plan.orphans = observation.orphans.clone();
    plan
}

/// A resource gone from the blueprint has no declared policy left: stateful kinds are retained.
fn removed_policy(kind: ResourceKind) -> DeletionPolicy {
    Blueprint::effective_deletion_policy(kind, None)
}

/// What apply or destroy did to a resource: the plan's [`Action`] without its details, plus the two
/// outcomes that are not plan actions (held back, skipped after a failed dependency).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OutcomeAction {
    Create,
    Update,
    Replace,
    Adopt,
    Delete,
    Retain,
    /// Held back by the controller after earlier errors.
    Held,
    /// Not attempted: a dependency failed.
    Skipped,
    /// Declared with `management: observe`: differs from the blueprint (or is missing) and was
    /// left as it is.
    Observed,
}

impl OutcomeAction {
    /// What applying `action` does; `None` when it does nothing (no change, or a conflict, which
    /// apply refuses before it starts).
    pub fn of(action: &Action) -> Option<Self> {
        match action {
            Action::Create => Some(Self::Create),
            Action::Update { .. } => Some(Self::Update),
            Action::Replace { .. } => Some(Self::Replace),
            Action::Adopt { .. } => Some(Self::Adopt),
            Action::Delete => Some(Self::Delete),
            Action::Retain => Some(Self::Retain),
            Action::NoChange | Action::Conflict { .. } | Action::Observed { .. } => None,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Update => "update",
            Self::Replace => "replace",
            Self::Adopt => "adopt",
            Self::Delete => "delete",
            Self::Retain => "retain",
            Self::Held => "held",
            Self::Skipped => "skipped",
            Self::Observed => "observed",
        }
    }
}

impl std::fmt::Display for OutcomeAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `pad`, not `write_str`: progress lines align actions with `{:<8}`.
        f.pad(self.as_str())
    }
}

/// What happened to each resource during apply or destroy.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Outcome {
    pub resource: ResourceId,
    pub action: OutcomeAction,
    pub ok: bool,
    pub detail: Option<String>,
}

pub trait Progress: Sync {
    fn started(&self, resource: &ResourceId, action: OutcomeAction);
    fn finished(&self, outcome: &Outcome);
}

/// Structured logs, for non-interactive runs.
pub struct LogProgress;

impl Progress for LogProgress {
    fn started(&self, resource: &ResourceId, action: OutcomeAction) {
        info!(%resource, action = action.as_str(), "started");
    }
    fn finished(&self, outcome: &Outcome) {
        if outcome.ok {
            info!(resource = %outcome.resource, action = outcome.action.as_str(), "done");
        } else {
            warn!(resource = %outcome.resource, action = outcome.action.as_str(), error = outcome.detail.as_deref().unwrap_or(""), "failed");
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
/// even resources removed from the blueprint ([`Plan::targeted`] is the plan of exactly this).
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
    let kind = want.id.kind;
    with_kind!(kind, Ops => {
        match (action, have) {
            (Action::Create, _) => Ops::create(ctx, want).await.map(Some),
            (Action::Update { changes } | Action::Adopt { changes }, Some(live)) => {
                Ops::update(ctx, want, live, changes).await?;
                Ops::updated(ctx, want, live).await
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
    with_kind!(live.id.kind, Ops => Ops::delete(ctx, live).await, else Ok(()))
}

/// What destroy will do to one observed resource, decided before anything is deleted so that
/// the confirmation shows exactly what [`destroy`] then does.
#[derive(Debug, Clone)]
pub struct DestroyStep {
    /// The resource as observed (its id and physical name).
    pub live: LiveState,
    pub action: DestroyAction,
}

/// What [`destroy`] does to one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DestroyAction {
    Delete,
    /// Its deletion policy keeps it.
    Retain,
    /// Declared with `management: observe`: never deleted, whatever its deletion policy.
    Observed,
    /// Not owned by this blueprint: left alone.
    Skip,
}

impl DestroyAction {
    /// The outcome reported for it.
    pub fn outcome(self) -> OutcomeAction {
        match self {
            DestroyAction::Delete => OutcomeAction::Delete,
            DestroyAction::Retain => OutcomeAction::Retain,
            DestroyAction::Skip => OutcomeAction::Skipped,
            DestroyAction::Observed => OutcomeAction::Observed,
        }
    }
}

/// The steps of [`destroy`], in the order it takes them: the blueprint's resources in reverse
/// dependency order, then the ones removed from the blueprint but still tagged with it.
pub fn destroy_steps(bp: &Blueprint, observation: &Observation) -> Vec<DestroyStep> {
    destroy_steps_in(bp, observation, None)
}

/// The steps of a destroy limited to `only` (`ballast destroy --target`, a selection of the
/// targets and their dependents): [`destroy_steps`] of those resources, in the same order. A
/// resource removed from the blueprint is in no selection and is left alone.
pub fn destroy_steps_in(
    bp: &Blueprint,
    observation: &Observation,
    only: Option<&Selection>,
) -> Vec<DestroyStep> {
    let mut steps = all_destroy_steps(bp, observation);
    if let Some(selection) = only {
        steps.retain(|step| selection.contains(&step.live.id));
    }
    steps
}

fn all_destroy_steps(bp: &Blueprint, observation: &Observation) -> Vec<DestroyStep> {
    let desired = desired_states(bp, &observation.resolved);
    let mut order = provisioned_order(bp);
    order.reverse();
    let by_policy = |policy: DeletionPolicy| match policy {
        DeletionPolicy::Retain => DestroyAction::Retain,
        DeletionPolicy::Delete => DestroyAction::Delete,
    };
    let observed = ballast_blueprint::observed(bp);
    let mut steps = Vec::new();
    for id in &order {
        let Some(live) = observation.live.iter().find(|l| &l.id == id) else {
            continue;
        };
        let action = if live.ownership != super::state::Ownership::Owned {
            DestroyAction::Skip
        } else if observed.contains(id) {
            DestroyAction::Observed
        } else {
            by_policy(
                desired
                    .iter()
                    .find(|d| &d.id == id)
                    .map(|d| d.deletion_policy)
                    .unwrap_or(DeletionPolicy::Retain),
            )
        };
        steps.push(DestroyStep {
            live: live.clone(),
            action,
        });
    }
    for removed in &observation.removed {
        steps.push(DestroyStep {
            live: removed.clone(),
            action: by_policy(removed_policy(removed.id.kind)),
        });
    }
    steps
}

/// Removes the blueprint's resources in reverse dependency order, honouring deletion policies
/// ([`destroy_steps`]).
#[instrument(skip_all, fields(blueprint = %bp.metadata.name))]
pub async fn destroy(
    clients: &Clients,
    bp: &Blueprint,
    observation: Observation,
    readiness: Readiness,
    progress: &dyn Progress,
) -> Result<Vec<Outcome>, EngineError> {
    destroy_in(clients, bp, observation, readiness, progress, None).await
}

/// [`destroy`] of [`destroy_steps_in`]: with a selection, its resources only.
pub async fn destroy_in(
    clients: &Clients,
    bp: &Blueprint,
    observation: Observation,
    readiness: Readiness,
    progress: &dyn Progress,
    only: Option<&Selection>,
) -> Result<Vec<Outcome>, EngineError> {
    let steps = destroy_steps_in(bp, &observation, only);
    let ctx = ApplyContext {
        clients,
        blueprint: bp,
        resolved: &observation.resolved,
        readiness,
    };
    let mut outcomes = Vec::new();
    let mut errors = Vec::new();
    let mut steps = steps.into_iter();
    while let Some(DestroyStep { live, action }) = steps.next() {
        if ctx.readiness.cancel.is_cancelled() {
            let not_reached = std::iter::once(live.id)
                .chain(steps.map(|step| step.live.id))
                .collect();
            return Err(EngineError::Interrupted {
                not_reached,
                failed: errors,
            });
        }
        let policy = match action {
            DestroyAction::Skip => {
                outcomes.push(Outcome {
                    resource: live.id.clone(),
                    action: action.outcome(),
                    ok: true,
                    detail: Some("not owned by this blueprint".into()),
                });
                continue;
            }
            DestroyAction::Observed => {
                outcomes.push(Outcome {
                    resource: live.id.clone(),
                    action: action.outcome(),
                    ok: true,
                    detail: Some("kept (management: observe)".into()),
                });
                continue;
            }
            DestroyAction::Retain => DeletionPolicy::Retain,
            DestroyAction::Delete => DeletionPolicy::Delete,
        };
        let result = remove(&ctx, &live, policy, progress).await;
        outcomes.push(Outcome {
            resource: live.id.clone(),
            action: action.outcome(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observe_order_lists_every_provisioned_kind_exactly_once() {
        let order: Vec<ResourceKind> = observe_order().collect();
        for kind in ResourceKind::ALL {
            let times = order.iter().filter(|k| *k == kind).count();
            let expected = usize::from(is_provisioned(*kind));
            assert_eq!(times, expected, "{kind} appears {times} time(s)");
        }
        // A scaling policy's dead-man's switch is provisioned.
        assert!(is_provisioned(ResourceKind::ScalingPolicy));
        assert!(is_provisioned(ResourceKind::Queue));
    }

    #[test]
    fn only_a_scaling_policy_with_a_dead_mans_switch_is_in_the_apply_order() {
        let bp = ballast_blueprint::parse(
            "t.yaml",
            r#"apiVersion: ballast.dev/v1
kind: Blueprint
metadata: {name: shop, region: us-east-1}
spec:
  queues: [{name: q}]
  launchTemplates: [{name: lt, imageId: ami-1, instanceTypes: [m6i.large]}]
  autoScalingGroups:
    - {name: g, launchTemplate: lt, subnets: [subnet-1], minSize: 1, maxSize: 2}
  scalingPolicies:
    - {name: switched, queue: q, fleet: g, targetBacklogPerInstance: 10, deadMansSwitch: {}}
    - {name: plain, queue: q, deployment: {namespace: n, name: d}, minReplicas: 1, maxReplicas: 2, targetBacklogPerInstance: 10}
"#,
        )
        .unwrap()
        .blueprint;
        let order = provisioned_order(&bp);
        assert!(order.contains(&ResourceId::new(ResourceKind::ScalingPolicy, "switched")));
        assert!(!order.contains(&ResourceId::new(ResourceKind::ScalingPolicy, "plain")));
        assert_eq!(order.len(), 4, "{order:?}");
    }

    #[test]
    fn observe_order_observes_a_kind_after_the_kinds_it_references() {
        let order: Vec<ResourceKind> = observe_order().collect();
        for (at, kind) in order.iter().enumerate() {
            for target in kind.references() {
                if target == kind || !is_provisioned(*target) {
                    continue;
                }
                let before = order.iter().position(|k| k == target);
                assert!(
                    before.is_some_and(|b| b < at),
                    "{kind} references {target}, which must be observed first"
                );
            }
        }
    }

    #[test]
    fn outcome_actions_render_as_before() {
        assert_eq!(format!("{:<8}|", OutcomeAction::Delete), "delete  |");
        assert_eq!(OutcomeAction::Skipped.to_string(), "skipped");
        assert_eq!(
            serde_json::to_value(OutcomeAction::Held).unwrap(),
            serde_json::json!("held")
        );
        assert_eq!(OutcomeAction::of(&Action::NoChange), None);
        assert_eq!(
            OutcomeAction::of(&Action::Update { changes: vec![] }),
            Some(OutcomeAction::Update)
        );
    }

    fn owned(kind: ResourceKind, name: &str) -> LiveState {
        LiveState {
            id: ResourceId::new(kind, name),
            physical_name: format!("fx-{name}"),
            physical_id: format!("fx-{name}"),
            arn: None,
            ownership: super::super::state::Ownership::Owned,
            tags: Default::default(),
            fields: Default::default(),
            typed: super::super::typed::TypedLive::untyped(),
        }
    }

    #[test]
    fn a_targeted_destroy_takes_the_selection_in_the_whole_destroys_order_and_nothing_removed() {
        let bp = ballast_blueprint::parse(
            "fx.yaml",
            r#"apiVersion: ballast.dev/v1
kind: Blueprint
metadata: { name: fx, region: us-east-1 }
spec:
  kmsKeys:
    - name: main
  queues:
    - name: work
      encryption: { type: kms, kmsKey: main }
      deadLetter: { queue: work-dlq, maxReceiveCount: 3 }
      deletionPolicy: delete
    - name: work-dlq
      encryption: { type: kms, kmsKey: main }
  tables:
    - name: items
      hashKey: { name: pk, type: S }
"#,
        )
        .unwrap_or_else(|e| panic!("{e}"))
        .blueprint;
        let observation = Observation {
            live: vec![
                owned(ResourceKind::KmsKey, "main"),
                owned(ResourceKind::Queue, "work"),
                owned(ResourceKind::Queue, "work-dlq"),
                owned(ResourceKind::Table, "items"),
            ],
            removed: vec![owned(ResourceKind::Queue, "old")],
            ..Observation::default()
        };
        let names = |steps: Vec<DestroyStep>| -> Vec<(String, DestroyAction)> {
            steps
                .into_iter()
                .map(|s| (s.live.id.to_string(), s.action))
                .collect()
        };
        let whole = names(destroy_steps(&bp, &observation));
        assert_eq!(whole.len(), 5, "{whole:?}");
        let selection = ballast_blueprint::target::select(
            &bp,
            &["queue/work-dlq"],
            ballast_blueprint::target::Direction::Dependents,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            names(destroy_steps_in(&bp, &observation, Some(&selection))),
            [
                ("queue/work".to_string(), DestroyAction::Delete),
                // A queue is stateful: retained by default, targeted or not.
                ("queue/work-dlq".to_string(), DestroyAction::Retain),
            ]
        );
    }

    #[test]
    fn destroy_keeps_an_observed_resource_whatever_its_deletion_policy() {
        let text = r#"
apiVersion: ballast.dev/v1
kind: Blueprint
metadata: { name: bp, region: us-east-1 }
spec:
  queues:
    - { name: kept, deletionPolicy: delete, management: observe }
    - { name: gone, deletionPolicy: delete }
"#;
        let bp = match ballast_blueprint::parse("t.yaml", text) {
            Ok(loaded) => loaded.blueprint,
            Err(e) => panic!("{e}"),
        };
        let live = |name: &str| LiveState {
            id: ResourceId::new(ResourceKind::Queue, name),
            physical_name: format!("bp-{name}"),
            physical_id: format!("url-{name}"),
            arn: None,
            ownership: super::super::state::Ownership::Owned,
            tags: Default::default(),
            fields: Default::default(),
            typed: super::super::typed::TypedLive::untyped(),
        };
        let observation = Observation {
            live: vec![live("kept"), live("gone")],
            ..Observation::default()
        };
        let steps: BTreeMap<String, DestroyAction> = destroy_steps(&bp, &observation)
            .into_iter()
            .map(|s| (s.live.id.name.clone(), s.action))
            .collect();
        assert_eq!(steps["kept"], DestroyAction::Observed);
        assert_eq!(steps["gone"], DestroyAction::Delete);
        assert_eq!(DestroyAction::Observed.outcome(), OutcomeAction::Observed);
    }

    #[test]
    fn tagged_kinds_come_from_the_registry() {
        let tagged: Vec<_> = tagged::resource_types().collect();
        assert_eq!(
            tagged,
            [
                (ResourceKind::KmsKey, "kms:key"),
                (ResourceKind::Queue, "sqs:queue"),
                (ResourceKind::Table, "dynamodb:table"),
                (ResourceKind::Alarm, "cloudwatch:alarm"),
            ]
        );
        for (kind, _) in tagged {
            assert!(is_provisioned(kind), "{kind}: tagged kinds are provisioned");
        }
    }
}
