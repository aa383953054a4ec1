//! `plan`, `drift`, `apply` and `destroy`: loading the blueprint with its values, planning
//! read-only and printing here; the writing commands in `apply.rs`, the writer lease and the
//! suspension record in `writer_lease.rs`.

mod apply;
mod writer_lease;

pub use apply::{apply, destroy};
use writer_lease::{check_not_suspended, holding, take_writer_lease};
pub use writer_lease::{force_unlock, resume, suspend};

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use ballast_aws::{CallRecorder, load_sdk_config_with_default_region};
use ballast_blueprint::target::{self, Direction, Selection};
use ballast_blueprint::{Blueprint, Loaded, ResourceId};

use crate::ci;
use crate::cli::{AwsArgs, PlanArgs, ReportFormat};
use crate::lease::suspension::default_suspender;
use crate::lease::{
    self, DynamoLease, HeldLease, LeaseSpec, LeaseStatus, SuspendOutcome, Suspension, Suspensions,
    blueprint_lease_name, default_holder, format_time,
};
use crate::provision::engine::{LogProgress, Outcome, OutcomeAction, Progress};
use crate::provision::kinds::Readiness;
use crate::provision::{self, Clients, Plan, ReadOnlyClients, render};
use crate::saved_plan::SavedPlan;
use ballast_runtime::SystemClock;

pub(super) const EXIT_CHANGES: u8 = 2;

/// The blueprint at `path` with its `values` files laid over it.
pub fn load_blueprint(path: &Path, values: &[PathBuf]) -> anyhow::Result<Blueprint> {
    Ok(ballast_blueprint::load_with_values(path, values)?.blueprint)
}

/// Each values file's absolute path and text, as read for a plan (and recorded in a saved one).
pub(super) fn read_values(values: &[PathBuf]) -> anyhow::Result<Vec<(PathBuf, String)>> {
    values
        .iter()
        .map(|path| {
            let absolute = std::path::absolute(path)
                .with_context(|| format!("resolving {}", path.display()))?;
            Ok((absolute, ballast_blueprint::read(path)?))
        })
        .collect()
}

/// `(label, text)` pairs for [`ballast_blueprint::parse_with_values`].
pub(super) fn labelled(values: &[(PathBuf, String)]) -> Vec<(String, String)> {
    values
        .iter()
        .map(|(path, text)| (path.display().to_string(), text.clone()))
        .collect()
}

pub(super) async fn sdk_config(
    aws: &AwsArgs,
    bp: &Blueprint,
) -> anyhow::Result<aws_types::SdkConfig> {
    let options = aws.options();
    Ok(load_sdk_config_with_default_region(&options, Some(&bp.metadata.region)).await?)
}

/// Observes through read-only clients and plans. Nothing on this path can write.
pub async fn read_only_plan(
    bp: &Blueprint,
    aws: &AwsArgs,
    recorder: &CallRecorder,
) -> anyhow::Result<Plan> {
    let config = sdk_config(aws, bp).await?;
    let clients = ReadOnlyClients::new(&config, recorder);
    let observation = provision::observe(&clients, bp).await?;
    Ok(provision::plan(bp, &observation))
}

pub(super) fn print_plan(
    plan: &Plan,
    loaded: &Loaded,
    kind: PlanKind,
    output: ReportFormat,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    match output {
        ReportFormat::Json => {
            serde_json::to_writer_pretty(&mut *out, plan)?;
            writeln!(out)?;
        }
        ReportFormat::Text => write!(out, "{}", render::plan_text(plan))?,
        ReportFormat::Markdown => write!(out, "{}", ci::plan_markdown(plan, loaded, kind.title()))?,
        ReportFormat::Github => {
            write!(out, "{}", ci::plan_annotations(plan, loaded, kind.level()))?
        }
    }
    Ok(())
}

/// Whether a plan is shown as a proposal (`plan`) or as a finding (`drift`).
#[derive(Clone, Copy)]
pub(super) enum PlanKind {
    Plan,
    Drift,
}

impl PlanKind {
    fn title(self) -> &'static str {
        match self {
            PlanKind::Plan => "Ballast plan",
            PlanKind::Drift => "Ballast drift",
        }
    }

    fn level(self) -> ci::Level {
        match self {
            PlanKind::Plan => ci::Level::Notice,
            PlanKind::Drift => ci::Level::Error,
        }
    }
}

/// The resources `--target`s select in `direction`, `None` without targets. Checked against the
/// blueprint before any AWS call, so a mistyped target costs nothing.
pub(super) fn selection(
    bp: &Blueprint,
    targets: &[String],
    direction: Direction,
) -> anyhow::Result<Option<Selection>> {
    if targets.is_empty() {
        return Ok(None);
    }
    Ok(Some(target::select(bp, targets, direction)?))
}

/// `plan` restricted to `selection`, if any (see [`Plan::targeted`]).
pub(super) fn scoped(plan: Plan, selection: Option<&Selection>) -> Plan {
    match selection {
        Some(selection) => plan.targeted(selection),
        None => plan,
    }
}

pub async fn plan(args: &PlanArgs, out: &mut impl Write) -> anyhow::Result<ExitCode> {
    let text = ballast_blueprint::read(&args.file)?;
    let values = read_values(&args.values.files)?;
    let loaded = ballast_blueprint::parse_with_values(
        &args.file.display().to_string(),
        &text,
        &labelled(&values),
    )
    .map_err(ballast_blueprint::LoadError::Invalid)?;
    let selection = selection(&loaded.blueprint, &args.targets, Direction::Dependencies)?;
    let plan = read_only_plan(&loaded.blueprint, &args.aws, &CallRecorder::default()).await?;
    let plan = scoped(plan, selection.as_ref());
    print_plan(&plan, &loaded, PlanKind::Plan, args.output, out)?;
    if let Some(plan_file) = &args.out {
        let blueprint_file = std::path::absolute(&args.file)
            .with_context(|| format!("resolving {}", args.file.display()))?;
        let saved = SavedPlan::new(&blueprint_file, &text, &values, &plan)?;
        std::fs::write(plan_file, serde_json::to_string_pretty(&saved)?)
            .with_context(|| format!("writing the plan to {}", plan_file.display()))?;
        let targeted = if plan.is_targeted() {
            " (with its targets)"
        } else {
            ""
        };
        eprintln!(
            "Saved the plan to {0}; `ballast apply {0}` applies exactly it{targeted}.",
            plan_file.display()
        );
    }
    Ok(if args.detailed_exitcode && plan.has_changes() {
        ExitCode::from(EXIT_CHANGES)
    } else {
        ExitCode::SUCCESS
    })
}

/// The CI check: 0 in sync, 2 drifted, 1 error. Read-only by construction: it only ever builds
/// [`ReadOnlyClients`], whose every client refuses non-read operations before sending them.
pub async fn drift(args: &PlanArgs, out: &mut impl Write) -> anyhow::Result<ExitCode> {
    let loaded = ballast_blueprint::load_with_values(&args.file, &args.values.files)?;
    let bp = &loaded.blueprint;
    let selection = selection(bp, &args.targets, Direction::Dependencies)?;
    let plan = read_only_plan(bp, &args.aws, &CallRecorder::default()).await?;
    let plan = scoped(plan, selection.as_ref());
    let total = plan.changes.len();
    if total > 0 && plan.summary.create == total {
        let which = if plan.is_targeted() { "targeted " } else { "" };
        bail!(
            "none of the {total} {which}resources of blueprint `{}` exist: wrong credentials, account or region? \
             (drift compares a deployed stack; run `ballast apply` first for a new one)",
            bp.metadata.name
        );
    }
    print_plan(&plan, &loaded, PlanKind::Drift, args.output, out)?;
    Ok(if plan.has_drift() {
        ExitCode::from(EXIT_CHANGES)
    } else {
        ExitCode::SUCCESS
    })
}

/// Progress lines on a terminal: one line as each resource starts and finishes.
pub(super) struct TtyProgress {
    started: std::sync::Mutex<std::collections::BTreeMap<ResourceId, Instant>>,
}

impl Progress for TtyProgress {
    fn started(&self, resource: &ResourceId, action: OutcomeAction) {
        // A poisoned lock is taken over: at worst a progress line misses its elapsed time.
        self.started
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(resource.clone(), Instant::now());
        eprintln!("  … {action:<8} {resource}");
    }

    fn finished(&self, outcome: &Outcome) {
        let elapsed = self
            .started
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&outcome.resource)
            .map(|t| format!(" ({:.1}s)", t.elapsed().as_secs_f32()))
            .unwrap_or_default();
        let mark = if outcome.ok { "✓" } else { "✗" };
        let detail = outcome
            .detail
            .as_deref()
            .map(|d| format!(": {d}"))
            .unwrap_or_default();
        eprintln!(
            "  {mark} {:<8} {}{elapsed}{detail}",
            outcome.action, outcome.resource
        );
    }
}

pub(super) fn progress() -> Box<dyn Progress> {
    if std::io::stderr().is_terminal() {
        Box::new(TtyProgress {
            started: Default::default(),
        })
    } else {
        Box::new(LogProgress)
    }
}

/// Refuses when a confirmation will be needed and cannot be asked (stdin is not a terminal and
/// there is no --auto-approve). `apply` and `destroy` call it before their first AWS call, so a
/// refused run creates nothing, not even the lease table.
pub(super) fn ensure_can_confirm(auto_approve: bool) -> anyhow::Result<()> {
    if auto_approve || std::io::stdin().is_terminal() {
        return Ok(());
    }
    bail!(
        "refusing to change AWS without confirmation: stdin is not a terminal; pass --auto-approve"
    )
}

pub(super) fn confirm(question: &str, auto_approve: bool) -> anyhow::Result<bool> {
    ensure_can_confirm(auto_approve)?;
    if auto_approve {
        return Ok(true);
    }
    eprint!("{question} Only 'yes' will be accepted: ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(answer.trim() == "yes")
}
