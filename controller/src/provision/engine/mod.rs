//! Observe → plan → apply/destroy over every resource kind of a blueprint.
//!
//! This file observes and plans and holds what apply and destroy share (the kind dispatch,
//! outcomes, progress); [`apply`] converges a blueprint, [`destroy`] removes one.

use std::collections::BTreeSet;

use ballast_blueprint::{
    Blueprint, DeletionPolicy, ResourceId, ResourceKind, dependency_order, safety_overrides,
};
use tracing::{info, instrument, warn};

use super::conflict::{self, Conflict};
use super::context::ReadOnlyClients;
use super::diff::{self, Action, Plan};
use super::error::ProvisionError;
use super::kinds::{self, ObserveContext, ResourceOps, SharedReads};
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

mod apply;
mod destroy;

pub(crate) use apply::delete_live;
pub use apply::{apply, apply_except, apply_targeted};
pub use destroy::{
    DestroyAction, DestroyStep, destroy, destroy_in, destroy_steps, destroy_steps_in,
};

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
            // Boxed, as every kind's future is here: unboxed, the locals of every kind's arm
            // share this poll frame, which in debug builds outgrows a 2 MiB thread stack.
            with_kind!(kind, Ops => Some(Box::pin(Ops::observe(&ctx)).await?), else None)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provision::typed::testing::shop_blueprint;

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
        let bp = shop_blueprint(
            r#"  queues: [{name: q}]
  launchTemplates: [{name: lt, imageId: ami-1, instanceTypes: [m6i.large]}]
  autoScalingGroups:
    - {name: g, launchTemplate: lt, subnets: [subnet-1], minSize: 1, maxSize: 2}
  scalingPolicies:
    - {name: switched, queue: q, fleet: g, targetBacklogPerInstance: 10, deadMansSwitch: {}}
    - {name: plain, queue: q, deployment: {namespace: n, name: d}, minReplicas: 1, maxReplicas: 2, targetBacklogPerInstance: 10}
"#,
        );
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

    #[test]
    fn tagged_kinds_come_from_the_registry() {
        let tagged: Vec<_> = tagged::resource_types().collect();
        assert_eq!(
            tagged,
            [
                (ResourceKind::KmsKey, "kms:key"),
                (ResourceKind::Queue, "sqs:queue"),
                (ResourceKind::Table, "dynamodb:table"),
                (ResourceKind::Topic, "sns:topic"),
                (ResourceKind::Alarm, "cloudwatch:alarm"),
            ]
        );
        for (kind, _) in tagged {
            assert!(is_provisioned(kind), "{kind}: tagged kinds are provisioned");
        }
    }
}
