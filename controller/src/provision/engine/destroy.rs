//! Destroy: remove a blueprint's resources in reverse dependency order, under their deletion
//! policies, after showing exactly which steps it takes.

use ballast_blueprint::target::Selection;
use ballast_blueprint::{Blueprint, DeletionPolicy};
use tracing::instrument;

use super::apply::remove;
use super::{
    EngineError, Observation, Outcome, OutcomeAction, Progress, desired_states, provisioned_order,
    removed_policy,
};
use crate::provision::context::Clients;
use crate::provision::kinds::{ApplyContext, Readiness};
use crate::provision::state::{LiveState, Ownership};

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
        let action = if live.ownership != Ownership::Owned {
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
    use std::collections::BTreeMap;

    use ballast_blueprint::{ResourceId, ResourceKind};

    use super::*;

    fn owned(kind: ResourceKind, name: &str) -> LiveState {
        LiveState {
            id: ResourceId::new(kind, name),
            physical_name: format!("fx-{name}"),
            physical_id: format!("fx-{name}"),
            arn: None,
            ownership: Ownership::Owned,
            tags: Default::default(),
            fields: Default::default(),
            typed: crate::provision::typed::TypedLive::untyped(),
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
            ownership: Ownership::Owned,
            tags: Default::default(),
            fields: Default::default(),
            typed: crate::provision::typed::TypedLive::untyped(),
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
}
