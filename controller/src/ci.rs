//! Reports for CI systems: a Markdown summary (a pull-request comment or a job summary) and
//! GitHub Actions workflow commands (one annotation per problem, on the blueprint line that
//! declares it). Pure functions over a plan or diagnostics; the commands choose where they go.

use std::fmt::Write;

use ballast_blueprint::{Diagnostic, Loaded, Position, Severity};

use crate::provision::diff::{Action, FieldChange, PlannedChange};
use crate::provision::{Plan, state::FieldClass};

/// How loudly a plan's changes are annotated: drift fails a CI job, a plan only informs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Error,
    Warning,
    Notice,
}

impl Level {
    fn command(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warning => "warning",
            Level::Notice => "notice",
        }
    }
}

/// One finding of a plan, placed in the blueprint.
struct Finding {
    resource: String,
    what: String,
    field: Option<String>,
    live: Option<String>,
    desired: Option<String>,
    /// `None` for a resource the blueprint no longer declares.
    at: Option<Position>,
    conflict: bool,
}

fn findings(plan: &Plan, loaded: &Loaded) -> Vec<Finding> {
    let mut out = Vec::new();
    for change in plan.changes.iter().filter(|c| c.action.is_drift()) {
        let resource = format!("{} ({})", change.resource, change.physical_name);
        let whole = |what: &str, conflict: bool| Finding {
            resource: resource.clone(),
            what: what.to_string(),
            field: None,
            live: None,
            desired: None,
            at: loaded.declared_at(&change.resource, None),
            conflict,
        };
        match &change.action {
            Action::Create => out.push(whole("missing in AWS (would be created)", false)),
            Action::Delete => out.push(whole(
                "owned by the stack but no longer declared (would be deleted)",
                false,
            )),
            Action::Conflict { reason } => {
                out.push(whole(&format!("conflict: {reason}"), true));
            }
            Action::Update { changes } => fields(&mut out, loaded, change, changes, "differs"),
            Action::Adopt { changes } => {
                out.push(whole(
                    "exists without Ballast's tags (would be adopted)",
                    false,
                ));
                fields(&mut out, loaded, change, changes, "differs");
            }
            Action::Replace { changes } => fields(&mut out, loaded, change, changes, "differs"),
            Action::Observed { would } => match would.as_ref() {
                Action::Create => out.push(whole(
                    "missing in AWS, observed (management: observe): not created",
                    false,
                )),
                Action::Update { changes }
                | Action::Adopt { changes }
                | Action::Replace { changes } => fields(
                    &mut out,
                    loaded,
                    change,
                    changes,
                    "differs, observed (management: observe): left as it is",
                ),
                Action::Conflict { .. }
                | Action::Delete
                | Action::Retain
                | Action::NoChange
                | Action::Observed { .. } => {}
            },
            Action::Retain | Action::NoChange => {}
        }
    }
    out
}

fn fields(
    out: &mut Vec<Finding>,
    loaded: &Loaded,
    change: &PlannedChange,
    changes: &[FieldChange],
    what: &str,
) {
    for f in changes {
        let what = if f.class == FieldClass::CreateOnly {
            "differs and cannot change in place (would be replaced)"
        } else {
            what
        };
        out.push(Finding {
            resource: format!("{} ({})", change.resource, change.physical_name),
            what: what.to_string(),
            field: Some(f.field.clone()),
            live: Some(f.live.clone()),
            desired: Some(f.desired.clone()),
            at: loaded.declared_at(&change.resource, Some(&f.field)),
            conflict: false,
        });
    }
}

/// A Markdown report of `plan`: a summary line and one table row per drifted field, each naming
/// `FILE:LINE` of its declaration.
pub fn plan_markdown(plan: &Plan, loaded: &Loaded, title: &str) -> String {
    let mut out = String::new();
    let findings = findings(plan, loaded);
    let _ = writeln!(out, "### {title}: blueprint `{}`\n", cell(&plan.blueprint));
    if plan.is_targeted() {
        let _ = writeln!(
            out,
            "> [!WARNING]\n> {}\n",
            cell(&crate::provision::render::targeting_warning(&plan.targets))
        );
    }
    if findings.is_empty() && plan.is_targeted() {
        let _ = writeln!(
            out,
            "No drift: every targeted resource (and what it depends on) matches AWS."
        );
    } else if findings.is_empty() {
        let _ = writeln!(out, "No drift: every declared resource matches AWS.");
    } else {
        let _ = writeln!(
            out,
            "| resource | field | in AWS | in the blueprint | finding | declared at |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|");
        for f in &findings {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} |",
                code(&f.resource),
                f.field.as_deref().map(code).unwrap_or_default(),
                f.live.as_deref().map(code).unwrap_or_default(),
                f.desired.as_deref().map(code).unwrap_or_default(),
                cell(&f.what),
                f.at.map(|p| code(&format!("{}:{}", loaded.file, p.line)))
                    .unwrap_or_else(|| "not declared".to_string()),
            );
        }
    }
    if !plan.orphans.is_empty() {
        let _ = writeln!(
            out,
            "\nOrphans: owned by the stack, claimed by no declaration (`ballast destroy --include-orphans` deletes them):\n"
        );
        let _ = writeln!(out, "| resource | in AWS | finding |");
        let _ = writeln!(out, "|---|---|---|");
        for o in &plan.orphans {
            let _ = writeln!(
                out,
                "| {} | {} | {} |",
                code(&o.label()),
                code(&o.arn),
                cell(&o.why())
            );
        }
    }
    if !plan.safety_overrides.is_empty() {
        let _ = writeln!(out, "\nSafety defaults switched off:\n");
        for o in &plan.safety_overrides {
            let _ = writeln!(
                out,
                "- {} {}: {}",
                code(&o.resource.to_string()),
                code(o.field),
                cell(o.what)
            );
        }
    }
    let s = &plan.summary;
    let _ = writeln!(
        out,
        "\n{} to create, {} to update, {} to replace, {} to adopt, {} to delete ({} retained, {} unchanged, {} conflicts{}).",
        s.create,
        s.update,
        s.replace,
        s.adopt,
        s.delete,
        s.retain,
        s.unchanged,
        s.conflicts,
        match s.observed {
            0 => String::new(),
            n => format!(", {n} observed"),
        }
    );
    out
}

/// GitHub Actions annotations for `plan`, one per finding, at its declaration (conflicts are
/// always errors).
pub fn plan_annotations(plan: &Plan, loaded: &Loaded, level: Level) -> String {
    let mut out = String::new();
    if plan.is_targeted() {
        // On the file, as a warning whatever the level: it qualifies every other annotation.
        annotation(
            &mut out,
            Level::Warning,
            &loaded.file,
            None,
            "ballast: resource targeting",
            &crate::provision::render::targeting_warning(&plan.targets),
        );
    }
    for o in &plan.orphans {
        // An orphan is declared nowhere: the annotation is on the file.
        let message = format!("{} ({}): orphan, {}", o.label(), o.arn, o.why());
        annotation(
            &mut out,
            level,
            &loaded.file,
            None,
            "ballast drift",
            &message,
        );
    }
    for f in findings(plan, loaded) {
        let level = if f.conflict { Level::Error } else { level };
        let message = match (&f.field, &f.live, &f.desired) {
            (Some(field), Some(live), Some(desired)) => format!(
                "{}: `{field}` {} (AWS: {live}, blueprint: {desired})",
                f.resource, f.what
            ),
            _ => format!("{}: {}", f.resource, f.what),
        };
        annotation(
            &mut out,
            level,
            &loaded.file,
            f.at,
            "ballast drift",
            &message,
        );
    }
    out
}

/// GitHub Actions annotations for validation diagnostics of `file`.
pub fn diagnostics_annotations(file: &str, diagnostics: &[Diagnostic]) -> String {
    let mut out = String::new();
    for d in diagnostics {
        let level = match d.severity {
            Severity::Error => Level::Error,
            Severity::Warning => Level::Warning,
        };
        let message = match &d.hint {
            Some(hint) => format!("{}\nhint: {hint}", d.message),
            None => d.message.clone(),
        };
        annotation(
            &mut out,
            level,
            file,
            Some(d.position),
            "ballast validate",
            &message,
        );
    }
    out
}

/// An error annotation on a whole file (one that could not be read).
pub fn file_annotation(file: &str, message: &str) -> String {
    let mut out = String::new();
    annotation(
        &mut out,
        Level::Error,
        file,
        None,
        "ballast validate",
        message,
    );
    out
}

/// A Markdown table of validation diagnostics of `file` (empty string when there are none).
pub fn diagnostics_markdown(file: &str, diagnostics: &[Diagnostic]) -> String {
    let mut out = String::new();
    if diagnostics.is_empty() {
        return out;
    }
    let _ = writeln!(out, "| where | severity | problem | hint |");
    let _ = writeln!(out, "|---|---|---|---|");
    for d in diagnostics {
        let severity = match d.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let _ = writeln!(
            out,
            "| {} | {severity} | {} | {} |",
            code(&format!("{file}:{}:{}", d.position.line, d.position.column)),
            cell(&d.message),
            d.hint.as_deref().map(cell).unwrap_or_default()
        );
    }
    out
}

/// One workflow command (`::error file=…,line=…,col=…,title=…::message`), escaped as the
/// Actions toolkit does so that a value cannot end the command or inject another one.
fn annotation(
    out: &mut String,
    level: Level,
    file: &str,
    at: Option<Position>,
    title: &str,
    message: &str,
) {
    let mut properties = format!("file={}", property(file));
    if let Some(at) = at {
        let _ = write!(properties, ",line={},col={}", at.line, at.column);
    }
    let _ = write!(properties, ",title={}", property(title));
    let _ = writeln!(out, "::{} {properties}::{}", level.command(), data(message));
}

fn data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn property(text: &str) -> String {
    data(text).replace(':', "%3A").replace(',', "%2C")
}

/// Text safe inside a Markdown table cell.
fn cell(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace(['\r', '\n'], " ")
}

/// Text as inline code in a table cell; values with backticks fall back to escaped plain text.
fn code(text: &str) -> String {
    if text.contains('`') {
        cell(text)
    } else {
        format!("`{}`", cell(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provision::diff::Summary;
    use ballast_blueprint::{ResourceId, ResourceKind};

    const BLUEPRINT: &str = "apiVersion: ballast.dev/v1
kind: Blueprint
metadata:
  name: fx
  region: us-east-1
spec:
  queues:
    - name: transactions
      visibilityTimeout: 60s
";

    fn queue() -> ResourceId {
        ResourceId {
            kind: ResourceKind::Queue,
            name: "transactions".into(),
        }
    }

    fn drifted() -> Plan {
        Plan {
            format_version: 1,
            blueprint: "fx".into(),
            changes: vec![
                PlannedChange {
                    resource: queue(),
                    physical_name: "fx-transactions".into(),
                    action: Action::Update {
                        changes: vec![FieldChange {
                            field: "visibilityTimeout".into(),
                            live: "30".into(),
                            desired: "60".into(),
                            class: FieldClass::Enforced,
                        }],
                    },
                    attributes: Vec::new(),
                },
                PlannedChange {
                    resource: ResourceId {
                        kind: ResourceKind::Queue,
                        name: "old|queue".into(),
                    },
                    physical_name: "fx-old".into(),
                    action: Action::Delete,
                    attributes: Vec::new(),
                },
            ],
            safety_overrides: Vec::new(),
            summary: Summary {
                update: 1,
                delete: 1,
                ..Summary::default()
            },
            orphans: Vec::new(),
            targets: Vec::new(),
        }
    }

    #[test]
    fn a_drifted_field_is_annotated_on_the_line_that_declares_it() {
        let loaded = ballast_blueprint::parse("blueprints/fx.yaml", BLUEPRINT).unwrap();
        let text = plan_annotations(&drifted(), &loaded, Level::Error);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "::error file=blueprints/fx.yaml,line=9,col=26,title=ballast drift::queue/transactions (fx-transactions): `visibilityTimeout` differs (AWS: 30, blueprint: 60)"
        );
        // Not declared any more: the annotation names the file only.
        assert!(
            lines[1].starts_with("::error file=blueprints/fx.yaml,title=ballast drift::"),
            "{}",
            lines[1]
        );
        assert_eq!(lines.len(), 2);
    }

    #[test]
    fn markdown_names_file_and_line_and_escapes_table_cells() {
        let loaded = ballast_blueprint::parse("blueprints/fx.yaml", BLUEPRINT).unwrap();
        let text = plan_markdown(&drifted(), &loaded, "Drift");
        assert!(
            text.contains("| `queue/transactions (fx-transactions)` | `visibilityTimeout` | `30` | `60` | differs | `blueprints/fx.yaml:9` |"),
            "{text}"
        );
        assert!(text.contains("`queue/old\\|queue (fx-old)`"), "{text}");
        assert!(text.contains("| not declared |"), "{text}");
    }

    #[test]
    fn a_targeted_plan_is_marked_partial_in_markdown_and_annotations() {
        let loaded = ballast_blueprint::parse("blueprints/fx.yaml", BLUEPRINT).unwrap();
        let mut plan = drifted();
        plan.targets = vec![queue()];
        let markdown = plan_markdown(&plan, &loaded, "Plan");
        assert!(
            markdown.contains(
                "> [!WARNING]\n> Warning: resource targeting is in effect (queue/transactions); the plan may be incomplete"
            ),
            "{markdown}"
        );
        let text = plan_annotations(&plan, &loaded, Level::Notice);
        let first = text.lines().next().unwrap_or_default();
        assert!(
            first.starts_with(
                "::warning file=blueprints/fx.yaml,title=ballast%3A resource targeting::Warning: resource targeting is in effect (queue/transactions)"
            ),
            "{text}"
        );
        // The whole plan's reports say nothing of targeting.
        assert!(!plan_markdown(&drifted(), &loaded, "Plan").contains("targeting"));
    }

    #[test]
    fn hostile_text_cannot_break_out_of_a_workflow_command() {
        let mut out = String::new();
        annotation(
            &mut out,
            Level::Notice,
            "a,b:c.yaml",
            None,
            "t",
            "50%\n::error::injected",
        );
        assert_eq!(
            out,
            "::notice file=a%2Cb%3Ac.yaml,title=t::50%25%0A::error::injected\n"
        );
        assert_eq!(out.lines().count(), 1);
    }

    #[test]
    fn validation_problems_become_positioned_annotations_with_their_hint() {
        let source = BLUEPRINT.replace("60s", "13h");
        let problems = ballast_blueprint::parse("fx.yaml", &source).unwrap_err();
        let text = diagnostics_annotations("fx.yaml", &problems.items);
        assert!(
            text.starts_with("::error file=fx.yaml,line=9,col=26,title=ballast validate::"),
            "{text}"
        );
        assert!(text.contains("%0Ahint: "), "{text}");
        let table = diagnostics_markdown("fx.yaml", &problems.items);
        assert!(table.contains("| `fx.yaml:9:26` | error |"), "{table}");
    }
}
