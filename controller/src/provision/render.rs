//! Human-readable plans.

use std::fmt::Write;

use ballast_blueprint::ResourceId;

use super::diff::{Action, Plan};
use super::engine::{DestroyAction, DestroyStep};

/// The warning of a targeted plan (`--target`), as Terraform gives it: what the plan covers and
/// what it leaves out, so that a partial plan is not read as the whole stack's.
pub fn targeting_warning(targets: &[ResourceId]) -> String {
    format!(
        "Warning: resource targeting is in effect ({}); the plan may be incomplete: it covers \
         the targets and what they depend on only, and leaves out every other resource, the \
         resources removed from the blueprint and the orphans.",
        list(targets)
    )
}

/// The warning of a targeted destroy (`--target`): which resources it is limited to.
pub fn destroy_targeting_warning(targets: &[ResourceId]) -> String {
    format!(
        "Warning: resource targeting is in effect ({}); destroying the targets and what depends \
         on them only: every other resource, the resources removed from the blueprint and the \
         orphans are left alone.",
        list(targets)
    )
}

fn list(targets: &[ResourceId]) -> String {
    targets
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn plan_text(plan: &Plan) -> String {
    let mut out = String::new();
    if plan.is_targeted() {
        let _ = writeln!(
            out,
            "{}
",
            targeting_warning(&plan.targets)
        );
    }
    let changes: Vec<_> = plan
        .changes
        .iter()
        .filter(|c| c.action.is_drift() || matches!(c.action, Action::Conflict { .. }))
        .collect();
    if changes.is_empty() && plan.is_targeted() {
        let _ = writeln!(
            out,
            "No changes: the targeted resources of blueprint `{}` match AWS.",
            plan.blueprint
        );
    } else if changes.is_empty() {
        let _ = writeln!(
            out,
            "No changes: blueprint `{}` matches AWS.",
            plan.blueprint
        );
    } else {
        let _ = writeln!(out, "Blueprint `{}`:", plan.blueprint);
        for c in changes {
            let head = format!("{} {} ({})", c.action.symbol(), c.resource, c.physical_name);
            match &c.action {
                Action::Create => {
                    let _ = writeln!(out, "  {head}");
                }
                Action::Update { changes } | Action::Adopt { changes } => {
                    let note = if matches!(c.action, Action::Adopt { .. }) {
                        " adopt"
                    } else {
                        ""
                    };
                    let _ = writeln!(out, "  {head}{note}");
                    for f in changes {
                        let _ = writeln!(out, "      {}: {} → {}", f.field, f.live, f.desired);
                    }
                }
                Action::Replace { changes } => {
                    let reasons: Vec<String> = changes
                        .iter()
                        .filter(|f| f.class == super::state::FieldClass::CreateOnly)
                        .map(|f| format!("{} cannot change in place", f.field))
                        .collect();
                    let _ = writeln!(out, "  {head} replace ({})", reasons.join("; "));
                    for f in changes {
                        let _ = writeln!(out, "      {}: {} → {}", f.field, f.live, f.desired);
                    }
                }
                Action::Delete => {
                    let _ = writeln!(out, "  {head} delete (no longer in the blueprint)");
                }
                Action::Retain => {
                    let _ = writeln!(
                        out,
                        "  {head} retained (no longer in the blueprint; deletionPolicy: retain)"
                    );
                }
                Action::Conflict { reason } => {
                    let _ = writeln!(out, "  {head} conflict: {reason}");
                }
                Action::Observed { would } => observed_text(&mut out, &head, would),
                Action::NoChange => {}
            }
        }
    }
    if !plan.orphans.is_empty() {
        let _ = writeln!(
            out,
            "\nOrphans: owned by the stack, claimed by no declaration (`ballast destroy --include-orphans` deletes them):"
        );
        for o in &plan.orphans {
            let _ = writeln!(out, "  ? {} {}: {}", o.label(), o.arn, o.why());
        }
    }
    if !plan.safety_overrides.is_empty() {
        let _ = writeln!(out, "\nSafety defaults switched off:");
        for o in &plan.safety_overrides {
            let _ = writeln!(out, "  ! {} {}: {}", o.resource, o.field, o.what);
        }
    }
    let s = &plan.summary;
    let _ = writeln!(
        out,
        "\nPlan: {} to create, {} to update, {} to replace, {} to adopt, {} to delete ({} retained, {} unchanged, {} conflicts{}).",
        s.create,
        s.update,
        s.replace,
        s.adopt,
        s.delete,
        s.retain,
        s.unchanged,
        s.conflicts,
        match (s.observed, plan.observed_drift().count()) {
            (0, _) => String::new(),
            (n, drifted) => format!("; {n} observed, {drifted} of them drifted, left as they are"),
        }
    );
    out
}

/// One observed resource (`management: observe`): what apply would do to it, which it does not.
fn observed_text(out: &mut String, head: &str, would: &Action) {
    let note = "observed (management: observe), left as it is";
    let _ = match would {
        Action::Create => writeln!(out, "  {head} {note}: does not exist, not created"),
        Action::Update { changes } | Action::Adopt { changes } | Action::Replace { changes } => {
            let _ = writeln!(out, "  {head} {note}; drift:");
            for f in changes {
                let _ = writeln!(
                    out,
                    "      {}: {} (blueprint: {})",
                    f.field, f.live, f.desired
                );
            }
            Ok(())
        }
        Action::Conflict { reason } => writeln!(out, "  {head} {note}, read only: {reason}"),
        // An observed resource in sync is not listed; one being removed is not declared,
        // so not observed.
        Action::NoChange | Action::Delete | Action::Retain | Action::Observed { .. } => Ok(()),
    };
}

/// What `destroy` will do, one line per resource (kind/name and physical name), for the
/// confirmation: deleted ones first-class, retained and skipped ones marked with why.
pub fn destroy_text(blueprint: &str, steps: &[DestroyStep]) -> String {
    let mut out = String::new();
    if steps.is_empty() {
        let _ = writeln!(out, "Blueprint `{blueprint}`: nothing to destroy.");
        return out;
    }
    let _ = writeln!(out, "Destroying blueprint `{blueprint}`:");
    for step in steps {
        let head = format!("{} ({})", step.live.id, step.live.physical_name);
        let _ = match step.action {
            DestroyAction::Delete => writeln!(out, "  - {head} delete"),
            DestroyAction::Retain => writeln!(out, "  = {head} retained (deletionPolicy: retain)"),
            DestroyAction::Skip => {
                writeln!(out, "  ! {head} skipped (not owned by this blueprint)")
            }
            DestroyAction::Observed => {
                writeln!(out, "  o {head} kept (management: observe)")
            }
        };
    }
    let count = |action| steps.iter().filter(|s| s.action == action).count();
    let _ = writeln!(
        out,
        "\n{} to delete, {} retained, {} skipped{}.",
        count(DestroyAction::Delete),
        count(DestroyAction::Retain),
        count(DestroyAction::Skip),
        match count(DestroyAction::Observed) {
            0 => String::new(),
            n => format!(", {n} observed (kept)"),
        }
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provision::diff::{FieldChange, PlannedChange, Summary};
    use crate::provision::state::FieldClass;
    use ballast_blueprint::{ResourceId, ResourceKind};

    fn observed(name: &str, would: Action) -> PlannedChange {
        PlannedChange {
            resource: ResourceId::new(ResourceKind::AutoScalingGroup, name),
            physical_name: format!("bp-{name}"),
            action: would.observed(),
            attributes: Vec::new(),
        }
    }

    #[test]
    fn observed_resources_show_their_drift_and_that_it_is_left_alone() {
        let max = FieldChange {
            field: "maxSize".into(),
            live: "8".into(),
            desired: "4".into(),
            class: FieldClass::Enforced,
        };
        let plan = Plan {
            format_version: 1,
            blueprint: "bp".into(),
            changes: vec![
                observed("a", Action::Update { changes: vec![max] }),
                observed("b", Action::Create),
                observed("c", Action::NoChange),
            ],
            safety_overrides: vec![],
            summary: Summary {
                observed: 3,
                ..Summary::default()
            },
            orphans: vec![],
            targets: vec![],
        };
        let text = plan_text(&plan);
        assert!(
            text.contains(
                "  o auto-scaling-group/a (bp-a) observed (management: observe), left as it is; drift:\n      maxSize: 8 (blueprint: 4)\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("  o auto-scaling-group/b (bp-b) observed (management: observe), left as it is: does not exist, not created\n"),
            "{text}"
        );
        assert!(
            !text.contains("auto-scaling-group/c"),
            "in sync: not listed\n{text}"
        );
        assert!(
            text.contains("; 3 observed, 2 of them drifted, left as they are)."),
            "{text}"
        );
    }
}
