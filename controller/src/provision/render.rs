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
        .filter(|c| !matches!(c.action, Action::NoChange))
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
        "\nPlan: {} to create, {} to update, {} to replace, {} to adopt, {} to delete ({} retained, {} unchanged, {} conflicts).",
        s.create, s.update, s.replace, s.adopt, s.delete, s.retain, s.unchanged, s.conflicts
    );
    out
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
        };
    }
    let count = |action| steps.iter().filter(|s| s.action == action).count();
    let _ = writeln!(
        out,
        "\n{} to delete, {} retained, {} skipped.",
        count(DestroyAction::Delete),
        count(DestroyAction::Retain),
        count(DestroyAction::Skip)
    );
    out
}
