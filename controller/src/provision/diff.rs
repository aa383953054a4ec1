//! Desired versus live: a pure function per resource, and the plan over a whole blueprint.

use std::collections::BTreeSet;

use ballast_blueprint::target::Selection;
use ballast_blueprint::{DeletionPolicy, ResourceId, SafetyOverride};
use serde::Serialize;

use super::conflict::ConflictReason;
use super::orphan::Orphan;
use super::state::{DesiredState, Expect, FieldClass, LiveState, Ownership, display_value};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldChange {
    pub field: String,
    pub live: String,
    pub desired: String,
    pub class: FieldClass,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "action")]
pub enum Action {
    Create,
    Update {
        changes: Vec<FieldChange>,
    },
    /// A create-only field differs: the resource is deleted and created again.
    Replace {
        changes: Vec<FieldChange>,
    },
    /// Exists without Ballast's tags and the blueprint says `adopt: true`.
    Adopt {
        changes: Vec<FieldChange>,
    },
    /// Owned by the blueprint but no longer in it.
    Delete,
    /// Removed from the blueprint (or being destroyed) but kept by `deletionPolicy: retain`.
    Retain,
    NoChange,
    /// Exists under the same name but is not ours: never touched.
    Conflict {
        reason: ConflictReason,
    },
    /// Declared with `management: observe`: `would` is what apply would do to it under
    /// `management: manage` (its drift), and apply does nothing. Never nested.
    Observed {
        would: Box<Action>,
    },
}

impl Action {
    /// Whether apply would do something. An observed resource is never written, whatever it
    /// differs in.
    pub fn is_change(&self) -> bool {
        !matches!(
            self,
            Action::NoChange | Action::Retain | Action::Observed { .. }
        )
    }

    /// Whether AWS differs from the blueprint: a change, or what an observed resource would
    /// need under `management: manage`. What `ballast drift` and the controller report.
    pub fn is_drift(&self) -> bool {
        match self {
            Action::Observed { would } => would.is_change(),
            other => other.is_change(),
        }
    }

    /// Wraps `self` for a resource under `management: observe` (the pure planning filter).
    pub fn observed(self) -> Action {
        match self {
            // Idempotent, so the wrapper is never nested.
            Action::Observed { would } => Action::Observed { would },
            other => Action::Observed {
                would: Box::new(other),
            },
        }
    }

    pub fn symbol(&self) -> &'static str {
        match self {
            Action::Create => "+",
            Action::Update { .. } => "~",
            Action::Replace { .. } => "-/+",
            Action::Adopt { .. } => "&",
            Action::Delete => "-",
            Action::Retain => "=",
            Action::NoChange => " ",
            Action::Conflict { .. } => "!",
            Action::Observed { .. } => "o",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedChange {
    pub resource: ResourceId,
    pub physical_name: String,
    #[serde(flatten)]
    pub action: Action,
    /// For a resource to create: every attribute it is created with, so a reviewer (and a
    /// saved plan's comparison) sees values, not only a name. Empty for every other action.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<Attribute>,
}

/// One attribute of a resource to create, as the blueprint sets it (`known after apply` when
/// it depends on a resource this apply creates first).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Attribute {
    pub field: String,
    pub value: String,
    pub class: FieldClass,
}

/// The attributes `want` is created with, in its declaration order.
fn create_attributes(want: &DesiredState) -> Vec<Attribute> {
    want.fields
        .iter()
        .map(|field| Attribute {
            field: field.name.to_string(),
            value: field.expect.display(),
            class: field.class,
        })
        .collect()
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    pub create: usize,
    pub update: usize,
    pub replace: usize,
    pub adopt: usize,
    pub delete: usize,
    pub retain: usize,
    pub unchanged: usize,
    pub conflicts: usize,
    /// Resources under `management: observe` (in sync or not), counted here and nowhere else.
    pub observed: usize,
}

/// The stable, documented machine-readable plan (`ballast plan --output json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    pub format_version: u32,
    pub blueprint: String,
    pub changes: Vec<PlannedChange>,
    pub safety_overrides: Vec<SafetyOverride>,
    pub summary: Summary,
    /// Owned resources no declaration claims (see [`super::orphan`]); apply leaves them alone,
    /// drift fails on them. Empty in a targeted plan: an orphan is part of no target's graph.
    pub orphans: Vec<Orphan>,
    /// `--target`s in effect (see [`Plan::targeted`]); absent from the JSON when the plan covers
    /// the whole blueprint, so untargeted plans read as before.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<ResourceId>,
}

impl Plan {
    pub fn has_changes(&self) -> bool {
        self.changes.iter().any(|c| c.action.is_change())
    }

    /// Changes to make, observed resources that differ, or orphans to report: what
    /// `ballast drift` fails on.
    pub fn has_drift(&self) -> bool {
        self.changes.iter().any(|c| c.action.is_drift()) || !self.orphans.is_empty()
    }

    /// Observed resources (`management: observe`) that differ from the blueprint.
    pub fn observed_drift(&self) -> impl Iterator<Item = &PlannedChange> {
        self.changes
            .iter()
            .filter(|c| matches!(c.action, Action::Observed { .. }) && c.action.is_drift())
    }

    /// The part of the plan within `selection` (`--target`): the selected resources' changes,
    /// their safety overrides, and the targets recorded, so the output can say the plan is
    /// partial. Left out, because no target reaches them: resources removed from the blueprint
    /// (a target must be declared, so none is ever selected) and orphans (claimed by no
    /// declaration, so in no target's graph). Apply leaves both alone under targeting.
    pub fn targeted(mut self, selection: &Selection) -> Plan {
        self.changes.retain(|c| selection.contains(&c.resource));
        self.safety_overrides
            .retain(|o| selection.contains(&o.resource));
        self.orphans.clear();
        self.summary = Summary::of(&self.changes);
        self.targets = selection.targets.clone();
        self
    }

    pub fn is_targeted(&self) -> bool {
        !self.targets.is_empty()
    }

    pub fn conflicts(&self) -> impl Iterator<Item = &PlannedChange> {
        self.changes
            .iter()
            .filter(|c| matches!(c.action, Action::Conflict { .. }))
    }
}

/// Compares only the fields the blueprint sets; AWS-added defaults and extra tags are not drift.
pub fn diff(desired: &DesiredState, live: Option<&LiveState>) -> Action {
    let Some(live) = live else {
        return Action::Create;
    };
    let typed = desired
        .typed
        .get()
        .zip(live.typed.get())
        .and_then(|(want, have)| want.changes(have));
    let mut changes = typed.unwrap_or_else(|| value_changes(desired, live));
    for (key, value) in &desired.tags {
        if live.tags.get(key) != Some(value) {
            changes.push(FieldChange {
                field: format!("tags.{key}"),
                live: live
                    .tags
                    .get(key)
                    .cloned()
                    .unwrap_or_else(|| "(unset)".into()),
                desired: value.clone(),
                class: FieldClass::Enforced,
            });
        }
    }
    match &live.ownership {
        Ownership::Owned => {}
        Ownership::Unowned if desired.adopt => return Action::Adopt { changes },
        Ownership::OwnedByOther(owner) if desired.adopt => {
            let _ = owner;
            return Action::Adopt { changes };
        }
        Ownership::Unowned => {
            return Action::Conflict {
                reason: ConflictReason::NotCreatedByBallast {
                    kind: desired.id.kind,
                    physical_name: desired.physical_name.clone(),
                },
            };
        }
        Ownership::OwnedByOther(owner) => {
            return Action::Conflict {
                reason: ConflictReason::OwnedByBlueprint {
                    kind: desired.id.kind,
                    physical_name: desired.physical_name.clone(),
                    owner: owner.clone(),
                },
            };
        }
    }
    if changes.iter().any(|c| c.class == FieldClass::CreateOnly) {
        Action::Replace { changes }
    } else if changes.is_empty() {
        Action::NoChange
    } else {
        Action::Update { changes }
    }
}

/// The untyped comparison of the rendered fields, for kinds not yet converted to typed state
/// (the bridge named in [`super::typed`]); converted kinds compare their typed states.
fn value_changes(desired: &DesiredState, live: &LiveState) -> Vec<FieldChange> {
    let mut changes = Vec::new();
    for field in &desired.fields {
        let have = live.fields.get(field.name);
        if field.expect.satisfied_by(have) {
            continue;
        }
        if field.class == FieldClass::Delegated && matches!(field.expect, Expect::KnownAfterApply) {
            continue;
        }
        changes.push(FieldChange {
            field: field.name.to_string(),
            live: have.map(display_value).unwrap_or_else(|| "(unset)".into()),
            desired: field.expect.display(),
            class: field.class,
        });
    }
    changes
}

/// What apply does to one declared resource: [`diff`], wrapped in [`Action::Observed`] for a
/// resource under `management: observe` (so a conflict with an unowned resource does not block
/// an apply that would never touch it either).
pub fn planned_action(
    desired: &DesiredState,
    live: Option<&LiveState>,
    observed: &BTreeSet<ResourceId>,
) -> Action {
    let action = diff(desired, live);
    if observed.contains(&desired.id) {
        action.observed()
    } else {
        action
    }
}

/// The plan in dependency order; resources to remove come last, in reverse order. `observed`
/// are the resources declared with `management: observe`.
pub fn plan(
    blueprint: &str,
    order: &[ResourceId],
    desired: &[DesiredState],
    live: &[LiveState],
    removed: &[(LiveState, DeletionPolicy)],
    observed: &BTreeSet<ResourceId>,
    safety_overrides: Vec<SafetyOverride>,
) -> Plan {
    let mut changes = Vec::new();
    for id in order {
        let Some(want) = desired.iter().find(|d| &d.id == id) else {
            continue;
        };
        let have = live.iter().find(|l| &l.id == id);
        let action = planned_action(want, have, observed);
        let attributes = if action == Action::Create {
            create_attributes(want)
        } else {
            Vec::new()
        };
        changes.push(PlannedChange {
            resource: id.clone(),
            physical_name: want.physical_name.clone(),
            action,
            attributes,
        });
    }
    for (gone, policy) in removed.iter().rev() {
        changes.push(PlannedChange {
            resource: gone.id.clone(),
            physical_name: gone.physical_name.clone(),
            action: match policy {
                DeletionPolicy::Delete => Action::Delete,
                DeletionPolicy::Retain => Action::Retain,
            },
            attributes: Vec::new(),
        });
    }
    Plan {
        format_version: 1,
        blueprint: blueprint.to_string(),
        summary: Summary::of(&changes),
        changes,
        safety_overrides,
        orphans: Vec::new(),
        targets: Vec::new(),
    }
}

impl Summary {
    /// The counts of each action among `changes`.
    pub fn of(changes: &[PlannedChange]) -> Summary {
        let mut summary = Summary::default();
        for c in changes {
            match c.action {
                Action::Create => summary.create += 1,
                Action::Update { .. } => summary.update += 1,
                Action::Replace { .. } => summary.replace += 1,
                Action::Adopt { .. } => summary.adopt += 1,
                Action::Delete => summary.delete += 1,
                Action::Retain => summary.retain += 1,
                Action::NoChange => summary.unchanged += 1,
                Action::Conflict { .. } => summary.conflicts += 1,
                Action::Observed { .. } => summary.observed += 1,
            }
        }
        summary
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provision::state::{Changes, Field, FieldName};
    use crate::provision::typed::{TypedDesired, TypedLive};
    use ballast_blueprint::{ResourceKind, Tags};
    use serde_json::json;
    use std::collections::BTreeMap;

    crate::provision::state::field_names! {
        enum QueueField {
            VisibilityTimeout = "visibilityTimeout",
            Fifo = "fifo",
            DesiredCapacity = "desiredCapacity",
        }
    }

    fn desired() -> DesiredState {
        DesiredState {
            id: ResourceId::new(ResourceKind::Queue, "q"),
            physical_name: "bp-q".into(),
            fields: vec![
                Field::enforced(QueueField::VisibilityTimeout, 60),
                Field::create_only(QueueField::Fifo, false),
            ],
            tags: Tags::from([("ballast.dev/managed".into(), "true".into())]),
            adopt: false,
            deletion_policy: DeletionPolicy::Retain,
            typed: TypedDesired::untyped(),
        }
    }

    fn live(visibility: i64, ownership: Ownership) -> LiveState {
        LiveState {
            id: ResourceId::new(ResourceKind::Queue, "q"),
            physical_name: "bp-q".into(),
            physical_id: "url".into(),
            arn: None,
            ownership,
            tags: Tags::from([
                ("ballast.dev/managed".into(), "true".into()),
                ("aws:added".into(), "x".into()),
            ]),
            fields: BTreeMap::from([
                ("visibilityTimeout".into(), json!(visibility)),
                ("fifo".into(), json!(false)),
                ("maximumMessageSize".into(), json!(262144)),
            ]),
            typed: TypedLive::untyped(),
        }
    }

    #[test]
    fn absent_is_create_and_equal_is_no_change() {
        assert_eq!(diff(&desired(), None), Action::Create);
        assert_eq!(
            diff(&desired(), Some(&live(60, Ownership::Owned))),
            Action::NoChange
        );
    }

    #[test]
    fn a_changed_field_is_an_update_naming_live_and_desired() {
        let Action::Update { changes } = diff(&desired(), Some(&live(30, Ownership::Owned))) else {
            panic!("update expected")
        };
        assert_eq!(changes.len(), 1);
        assert_eq!(
            (changes[0].live.as_str(), changes[0].desired.as_str()),
            ("30", "60")
        );
    }

    #[test]
    fn a_changed_field_yields_exactly_one_typed_change() {
        let mut l = live(30, Ownership::Owned);
        l.tags.insert("team".into(), "old".into());
        let mut d = desired();
        d.tags.insert("team".into(), "payments".into());
        let Action::Update { changes } = diff(&d, Some(&l)) else {
            panic!("update expected")
        };
        let typed = Changes::<QueueField>::of(&changes);
        assert_eq!(
            typed.fields().collect::<Vec<_>>(),
            vec![QueueField::VisibilityTimeout]
        );
        assert!(typed.has(QueueField::VisibilityTimeout));
        assert!(!typed.has(QueueField::Fifo));
        assert!(typed.tags());
        let untouched = Changes::<QueueField>::of(&[]);
        assert!(!untouched.tags() && untouched.fields().next().is_none());
    }

    #[test]
    fn field_names_round_trip() {
        for f in QueueField::ALL {
            assert_eq!(QueueField::from_name(f.name()), Some(*f));
        }
        assert_eq!(QueueField::from_name("visibilitytimeout"), None);
    }

    #[test]
    fn a_create_only_field_forces_replacement() {
        let mut l = live(60, Ownership::Owned);
        l.fields.insert("fifo".into(), json!(true));
        assert!(matches!(diff(&desired(), Some(&l)), Action::Replace { .. }));
    }

    #[test]
    fn unowned_resources_conflict_unless_adopted() {
        assert!(matches!(
            diff(&desired(), Some(&live(60, Ownership::Unowned))),
            Action::Conflict { .. }
        ));
        let other = Ownership::OwnedByOther("payments".into());
        let Action::Conflict { reason } = diff(&desired(), Some(&live(60, other))) else {
            panic!()
        };
        assert!(reason.to_string().contains("payments"));
        let mut adopting = desired();
        adopting.adopt = true;
        assert!(matches!(
            diff(&adopting, Some(&live(60, Ownership::Unowned))),
            Action::Adopt { .. }
        ));
    }

    #[test]
    fn delegated_capacity_drifts_only_outside_bounds() {
        let mut d = desired();
        d.fields = vec![Field::delegated(
            QueueField::DesiredCapacity,
            Expect::Within(2, 10),
        )];
        let mut l = live(60, Ownership::Owned);
        l.fields.insert("desiredCapacity".into(), json!(7));
        assert_eq!(diff(&d, Some(&l)), Action::NoChange);
        l.fields.insert("desiredCapacity".into(), json!(11));
        assert!(matches!(diff(&d, Some(&l)), Action::Update { .. }));
    }

    #[test]
    fn plan_orders_changes_and_counts_them() {
        let order = vec![ResourceId::new(ResourceKind::Queue, "q")];
        let mut removed_live = live(60, Ownership::Owned);
        removed_live.id = ResourceId::new(ResourceKind::Queue, "old");
        let plan = plan(
            "bp",
            &order,
            &[desired()],
            &[],
            &[(removed_live, DeletionPolicy::Retain)],
            &BTreeSet::new(),
            vec![],
        );
        assert_eq!(plan.summary.create, 1);
        assert_eq!(plan.summary.retain, 1);
        assert!(plan.has_changes());
        assert_eq!(plan.changes[1].action, Action::Retain);
    }

    #[test]
    fn an_observed_resource_reports_its_drift_and_is_no_change() {
        let order = vec![ResourceId::new(ResourceKind::Queue, "q")];
        let observed = BTreeSet::from([ResourceId::new(ResourceKind::Queue, "q")]);
        let plan = plan(
            "bp",
            &order,
            &[desired()],
            &[live(30, Ownership::Owned)],
            &[],
            &observed,
            vec![],
        );
        let Action::Observed { would } = &plan.changes[0].action else {
            panic!("observed expected: {:?}", plan.changes[0].action)
        };
        assert!(matches!(**would, Action::Update { .. }));
        assert!(!plan.has_changes(), "apply has nothing to do");
        assert!(plan.has_drift(), "drift reports it");
        assert_eq!(plan.observed_drift().count(), 1);
        assert_eq!((plan.summary.observed, plan.summary.update), (1, 0));
        let json = serde_json::to_value(&plan.changes[0]).unwrap();
        assert_eq!(json["action"], "observed");
        assert_eq!(json["would"]["action"], "update");
    }

    #[test]
    fn an_observed_resource_in_sync_is_no_drift_and_a_missing_one_is_not_created() {
        let observed = BTreeSet::from([ResourceId::new(ResourceKind::Queue, "q")]);
        let in_sync = planned_action(&desired(), Some(&live(60, Ownership::Owned)), &observed);
        assert!(!in_sync.is_change() && !in_sync.is_drift());
        let missing = planned_action(&desired(), None, &observed);
        assert_eq!(
            missing,
            Action::Observed {
                would: Box::new(Action::Create)
            }
        );
        assert!(!missing.is_change() && missing.is_drift());
        // An unowned same-named resource is only read: no conflict to refuse an apply with.
        let unowned = planned_action(&desired(), Some(&live(60, Ownership::Unowned)), &observed);
        assert!(!unowned.is_change());
        assert_eq!(unowned.clone().observed(), unowned, "never nested");
        let managed = planned_action(&desired(), None, &BTreeSet::new());
        assert_eq!(managed, Action::Create);
    }

    #[test]
    fn a_targeted_plan_keeps_the_selection_recounts_and_records_the_targets() {
        let q = ResourceId::new(ResourceKind::Queue, "q");
        let other = ResourceId::new(ResourceKind::Queue, "other");
        let mut other_desired = desired();
        other_desired.id = other.clone();
        let mut removed_live = live(60, Ownership::Owned);
        removed_live.id = ResourceId::new(ResourceKind::Queue, "old");
        let whole = plan(
            "bp",
            &[q.clone(), other.clone()],
            &[desired(), other_desired],
            &[],
            &[(removed_live, DeletionPolicy::Delete)],
            &BTreeSet::new(),
            vec![SafetyOverride {
                resource: other.clone(),
                field: "deletionPolicy",
                what: "deleted with its data",
            }],
        );
        assert_eq!((whole.summary.create, whole.summary.delete), (2, 1));
        let selection = Selection {
            targets: vec![q.clone()],
            resources: [q.clone()].into(),
        };
        let targeted = whole.targeted(&selection);
        let resources: Vec<&ResourceId> = targeted.changes.iter().map(|c| &c.resource).collect();
        assert_eq!(resources, [&q], "neither `other` nor the removed `old`");
        assert_eq!(
            targeted.summary,
            Summary {
                create: 1,
                ..Summary::default()
            }
        );
        assert!(targeted.safety_overrides.is_empty());
        assert_eq!(targeted.targets, std::slice::from_ref(&q));
        let text = crate::provision::render::plan_text(&targeted);
        assert!(
            text.starts_with(
                "Warning: resource targeting is in effect (queue/q); the plan may be incomplete"
            ),
            "{text}"
        );
        let json = serde_json::to_value(&targeted).unwrap();
        assert_eq!(json["targets"], json!([{ "kind": "queue", "name": "q" }]));
    }

    /// A resource to create shows every attribute it will be created with (JSON `attributes`);
    /// any other action leaves the list out.
    #[test]
    fn a_resource_to_create_lists_its_attributes_and_others_do_not() {
        let order = vec![ResourceId::new(ResourceKind::Queue, "q")];
        let created = plan(
            "bp",
            &order,
            &[desired()],
            &[],
            &[],
            &BTreeSet::new(),
            vec![],
        );
        assert_eq!(
            created.changes[0].attributes,
            vec![
                Attribute {
                    field: "visibilityTimeout".into(),
                    value: "60".into(),
                    class: FieldClass::Enforced,
                },
                Attribute {
                    field: "fifo".into(),
                    value: "false".into(),
                    class: FieldClass::CreateOnly,
                },
            ]
        );
        let json = serde_json::to_value(&created.changes[0]).unwrap();
        assert_eq!(json["action"], "create");
        assert_eq!(json["attributes"][0]["field"], "visibilityTimeout");
        assert_eq!(json["attributes"][0]["value"], "60");
        assert_eq!(json["attributes"][1]["class"], "create-only");

        let updated = plan(
            "bp",
            &order,
            &[desired()],
            &[live(30, Ownership::Owned)],
            &[],
            &BTreeSet::new(),
            vec![],
        );
        assert!(updated.changes[0].attributes.is_empty());
        let json = serde_json::to_value(&updated.changes[0]).unwrap();
        assert!(json.get("attributes").is_none(), "{json}");
    }
}
