//! `plan`, `drift`, `apply` and `destroy`.

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

const EXIT_CHANGES: u8 = 2;
/// How long the CLI's writer lease lasts unless renewed, and how often it is renewed. Short, so
/// that an apply killed with SIGKILL (which cannot release it) blocks the next writer for at most
/// this long; renewed three times per period, so two slow DynamoDB answers in a row do not lose
/// it.
const LEASE_DURATION: Duration = Duration::from_secs(15);
const LEASE_RENEW_EVERY: Duration = Duration::from_secs(5);

/// The blueprint at `path` with its `values` files laid over it.
pub fn load_blueprint(path: &Path, values: &[PathBuf]) -> anyhow::Result<Blueprint> {
    Ok(ballast_blueprint::load_with_values(path, values)?.blueprint)
}

/// Each values file's absolute path and text, as read for a plan (and recorded in a saved one).
fn read_values(values: &[PathBuf]) -> anyhow::Result<Vec<(PathBuf, String)>> {
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
fn labelled(values: &[(PathBuf, String)]) -> Vec<(String, String)> {
    values
        .iter()
        .map(|(path, text)| (path.display().to_string(), text.clone()))
        .collect()
}

async fn sdk_config(aws: &AwsArgs, bp: &Blueprint) -> anyhow::Result<aws_types::SdkConfig> {
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

fn print_plan(
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
enum PlanKind {
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
fn selection(
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
fn scoped(plan: Plan, selection: Option<&Selection>) -> Plan {
    match selection {
        Some(selection) => plan.targeted(selection),
        None => plan,
    }
}

pub async fn plan(args: &PlanArgs, out: &mut impl Write) -> anyhow::Result<ExitCode> {
    let text = ballast_blueprint::read(&args.file)?;
    let values = read_values(&args.values)?;
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
    let loaded = ballast_blueprint::load_with_values(&args.file, &args.values)?;
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
struct TtyProgress {
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

fn progress() -> Box<dyn Progress> {
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
fn ensure_can_confirm(auto_approve: bool) -> anyhow::Result<()> {
    if auto_approve || std::io::stdin().is_terminal() {
        return Ok(());
    }
    bail!(
        "refusing to change AWS without confirmation: stdin is not a terminal; pass --auto-approve"
    )
}

fn confirm(question: &str, auto_approve: bool) -> anyhow::Result<bool> {
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

/// Takes the blueprint's writer lease (the one a controller running it holds) before anything is
/// written, or fails naming whoever holds it. `apply` and `destroy` never write without it.
async fn take_writer_lease(
    dynamodb: &aws_sdk_dynamodb::Client,
    bp: &Blueprint,
    table: &str,
) -> anyhow::Result<HeldLease> {
    lease::ensure_table(dynamodb, table)
        .await
        .with_context(|| format!("preparing the lease table `{table}`"))?;
    let spec = LeaseSpec {
        name: blueprint_lease_name(&bp.metadata.name),
        holder: format!("cli@{}", default_holder()),
        duration: LEASE_DURATION,
    };
    let lease = DynamoLease::new(
        dynamodb.clone(),
        table.to_string(),
        spec,
        Arc::new(SystemClock::new()),
    );
    match lease
        .try_acquire()
        .await
        .with_context(|| format!("taking the writer lease in `{table}`"))?
    {
        LeaseStatus::Held { until } => {
            tracing::info!(lease = %lease.spec().name, holder = %lease.spec().holder, until = %format_time(until), "took the writer lease");
            Ok(HeldLease::start(lease.into(), LEASE_RENEW_EVERY))
        }
        LeaseStatus::HeldByOther { holder, until } => bail!(
            "another writer holds the lease for blueprint {}: {holder} until {}; wait for it or stop that controller \
             (a writer that was killed cannot release it: `ballast force-unlock FILE` removes it after asking)",
            bp.metadata.name,
            format_time(until)
        ),
    }
}

/// Refuses to write while the blueprint is suspended (`ballast suspend`), naming who suspended
/// it, when and why. Read under the writer lease, so a controller cannot be converging at the
/// same time; `--ignore-suspension` writes once and leaves the suspension in place (an operator
/// fixing something by blueprint while the controller stays paused).
async fn check_not_suspended(
    dynamodb: &aws_sdk_dynamodb::Client,
    bp: &Blueprint,
    args: &crate::cli::ApplyArgs,
    verb: &str,
) -> anyhow::Result<()> {
    let table = &args.lease_table;
    let Some(suspension) = Suspensions::new(dynamodb.clone(), table.clone())
        .read(&bp.metadata.name)
        .await
        .with_context(|| format!("reading the blueprint's suspension in `{table}`"))?
    else {
        return Ok(());
    };
    if args.ignore_suspension {
        tracing::warn!(blueprint = %bp.metadata.name, %suspension, "blueprint is suspended; going on (--ignore-suspension)");
        return Ok(());
    }
    bail!(
        "blueprint `{}` is {suspension}; refusing to {verb}, nothing was changed. \
         `ballast resume {}` ends the suspension (a running controller then converges at its next resync); \
         `--ignore-suspension` would {verb} once and keep it suspended",
        bp.metadata.name,
        args.file.display()
    )
}

/// `ballast suspend`: records the suspension in the lease table. It takes no lease, so an
/// apply in progress finishes; a running controller stops writing at its next resync.
pub async fn suspend(
    args: &crate::cli::SuspendArgs,
    out: &mut impl Write,
) -> anyhow::Result<ExitCode> {
    let bp = load_blueprint(&args.file, &args.values)?;
    let config = sdk_config(&args.aws, &bp).await?;
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    let table = &args.lease_table;
    lease::ensure_table(&dynamodb, table)
        .await
        .with_context(|| format!("preparing the lease table `{table}`"))?;
    let suspension = Suspension {
        by: args.by.clone().unwrap_or_else(default_suspender),
        at: std::time::SystemTime::now(),
        reason: args.reason.clone(),
    };
    let name = &bp.metadata.name;
    match Suspensions::new(dynamodb, table.clone())
        .suspend(name, &suspension)
        .await
        .with_context(|| format!("recording the suspension in `{table}`"))?
    {
        SuspendOutcome::Suspended => writeln!(
            out,
            "Blueprint `{name}` is {suspension}.\n`ballast apply` and `ballast destroy` refuse, and `ballast run` observes and reports only \
             (from its next resync), until `ballast resume {}`.",
            args.file.display()
        )?,
        SuspendOutcome::AlreadySuspended(existing) => writeln!(
            out,
            "Blueprint `{name}` is already {existing}; that record is kept."
        )?,
    }
    Ok(ExitCode::SUCCESS)
}

/// `ballast resume`: removes the suspension record.
pub async fn resume(
    args: &crate::cli::ResumeArgs,
    out: &mut impl Write,
) -> anyhow::Result<ExitCode> {
    let bp = load_blueprint(&args.file, &args.values)?;
    let config = sdk_config(&args.aws, &bp).await?;
    let table = &args.lease_table;
    let name = &bp.metadata.name;
    match Suspensions::new(aws_sdk_dynamodb::Client::new(&config), table.clone())
        .resume(name)
        .await
        .with_context(|| format!("removing the suspension in `{table}`"))?
    {
        Some(was) => writeln!(
            out,
            "Resumed blueprint `{name}` (it was {was}); a running controller converges at its next resync."
        )?,
        None => writeln!(out, "Blueprint `{name}` was not suspended.")?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `work` under the lease: stops it if the lease is lost, and releases the lease at the
/// end, also on error.
async fn holding<T>(
    mut held: HeldLease,
    work: impl Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    let result = tokio::select! {
        result = work => result,
        lost = held.lost() => Err(anyhow::Error::new(lost)
            .context("stopped before finishing: the writer lease was lost; run it again to converge")),
    };
    if let Err(error) = held.release().await {
        tracing::warn!(%error, "could not release the writer lease; it expires on its own");
    }
    result
}

/// Runs the changes of an apply or destroy with SIGINT/SIGTERM wired to one shutdown token:
/// the engine finishes the AWS calls in flight, starts nothing more, and the caller releases
/// the writer lease, so the next apply need not wait for it to expire. The handler is
/// installed only here, after the confirmation, so Ctrl-C at the prompt still ends the process.
async fn until_shutdown<F, Fut, T>(changes: F) -> Fut::Output
where
    F: FnOnce(tokio_util::sync::CancellationToken) -> Fut,
    Fut: Future<Output = T>,
{
    let shutdown = tokio_util::sync::CancellationToken::new();
    let signals = ballast_runtime::spawn_signal_handler(shutdown.clone());
    let result = changes(shutdown).await;
    signals.abort();
    result
}

pub async fn apply(
    command: &crate::cli::ApplyCommandArgs,
    out: &mut impl Write,
) -> anyhow::Result<ExitCode> {
    let args = &command.blueprint;
    let text = ballast_blueprint::read(&args.file)?;
    let file = args.file.display().to_string();
    // A saved plan names its blueprint; it is re-read and must be the text that was planned.
    let (saved, bp) = match SavedPlan::recognise(&file, &text) {
        Some(saved) => {
            let saved = saved?;
            if !args.values.is_empty() {
                bail!(
                    "--values cannot be used with a saved plan: {file} records the values files \
                     it was made with, and applying it applies exactly that"
                );
            }
            let blueprint_text = ballast_blueprint::read(&saved.blueprint_file)?;
            saved.check_blueprint(&blueprint_text)?;
            let values = read_values(&saved.values_paths())?;
            saved.check_values(&values)?;
            let bp = ballast_blueprint::parse_with_values(
                &saved.blueprint_file.display().to_string(),
                &blueprint_text,
                &labelled(&values),
            )
            .map_err(ballast_blueprint::LoadError::Invalid)?
            .blueprint;
            (Some(saved), bp)
        }
        None => (
            None,
            ballast_blueprint::parse_with_values(
                &file,
                &text,
                &labelled(&read_values(&args.values)?),
            )
            .map_err(ballast_blueprint::LoadError::Invalid)?
            .blueprint,
        ),
    };
    // A saved plan fixed its targets when it was made; others given now would apply something
    // other than what was reviewed.
    let targets = match &saved {
        Some(saved) if !command.targets.is_empty() => bail!(
            "--target cannot be used with a saved plan: {} was made {}, and applying it applies \
             exactly that; to target other resources, make a new plan with `ballast plan FILE \
             --target KIND/NAME --out PLANFILE`",
            args.file.display(),
            if saved.targets.is_empty() {
                "for the whole blueprint".to_string()
            } else {
                format!("with --target {}", saved.targets.join(" --target "))
            }
        ),
        Some(saved) => &saved.targets,
        None => &command.targets,
    };
    let selection = selection(&bp, targets, Direction::Dependencies)?;
    // A saved plan was reviewed when it was made and is applied without a question.
    if saved.is_none() {
        ensure_can_confirm(args.auto_approve)?;
    }
    let config = sdk_config(&args.aws, &bp).await?;
    let recorder = CallRecorder::default();
    let clients = Clients::read_write(&config, &recorder);
    let held = take_writer_lease(&clients.dynamodb, &bp, &args.lease_table).await?;
    holding(held, async {
        check_not_suspended(&clients.dynamodb, &bp, args, "apply").await?;
        let observation = provision::observe(&clients.observer(), &bp).await?;
        let plan = scoped(provision::plan(&bp, &observation), selection.as_ref());
        write!(out, "{}", render::plan_text(&plan))?;
        out.flush()?;
        if let Some(saved) = &saved {
            // Observed under the lease, so nothing else writes between this check and apply.
            saved.check_plan(&plan)?;
        }
        if !plan.has_changes() {
            return Ok(ExitCode::SUCCESS);
        }
        // A saved plan was reviewed when it was made, as `terraform apply PLANFILE`.
        if saved.is_none() && !confirm("Apply these changes?", args.auto_approve)? {
            writeln!(out, "Apply cancelled.")?;
            return Ok(ExitCode::FAILURE);
        }
        let progress = progress();
        let outcomes = until_shutdown(|shutdown| async {
            let readiness = Readiness::cancelled_by(shutdown);
            match &selection {
                Some(selection) => {
                    provision::apply_targeted(
                        &clients,
                        &bp,
                        observation,
                        readiness,
                        progress.as_ref(),
                        selection,
                    )
                    .await
                }
                None => {
                    provision::apply(&clients, &bp, observation, readiness, progress.as_ref()).await
                }
            }
        })
        .await
        .context("apply did not complete; run it again to converge")?;
        let changed = outcomes
            .iter()
            .filter(|o| o.ok && o.action != OutcomeAction::Retain)
            .count();
        writeln!(
            out,
            "Apply complete: {changed} resource(s) changed, {} AWS calls.",
            recorder.total()
        )?;
        Ok(ExitCode::SUCCESS)
    })
    .await
}

pub async fn destroy(
    destroy_args: &crate::cli::DestroyArgs,
    out: &mut impl Write,
) -> anyhow::Result<ExitCode> {
    let args = &destroy_args.blueprint;
    let bp = load_blueprint(&args.file, &args.values)?;
    let selection = selection(&bp, &destroy_args.targets, Direction::Dependents)?;
    ensure_can_confirm(args.auto_approve)?;
    let config = sdk_config(&args.aws, &bp).await?;
    let recorder = CallRecorder::default();
    let clients = Clients::read_write(&config, &recorder);
    let held = take_writer_lease(&clients.dynamodb, &bp, &args.lease_table).await?;
    holding(held, async {
        check_not_suspended(&clients.dynamodb, &bp, args, "destroy").await?;
        let observation = provision::observe(&clients.observer(), &bp).await?;
        let steps = provision::destroy_steps_in(&bp, &observation, selection.as_ref());
        if let Some(selection) = &selection {
            writeln!(
                out,
                "{}\n",
                render::destroy_targeting_warning(&selection.targets)
            )?;
        }
        write!(out, "{}", render::destroy_text(&bp.metadata.name, &steps))?;
        // Orphans are claimed by no declaration, so no target reaches them (and clap refuses
        // --include-orphans with --target): a targeted destroy neither lists nor deletes them.
        let orphans = if selection.is_some() {
            Vec::new()
        } else {
            observation.orphans.clone()
        };
        if !orphans.is_empty() {
            let what = if destroy_args.include_orphans {
                "to delete (--include-orphans)"
            } else {
                "kept: pass --include-orphans to delete them"
            };
            writeln!(
                out,
                "{} orphan(s), owned by the stack but claimed by no declaration, {what}:",
                orphans.len()
            )?;
            for o in &orphans {
                writeln!(out, "  ? {} {}: {}", o.label(), o.arn, o.why())?;
            }
        }
        out.flush()?;
        if steps.is_empty() && (orphans.is_empty() || !destroy_args.include_orphans) {
            return Ok(ExitCode::SUCCESS);
        }
        if !confirm(
            "Destroy these resources (stateful ones follow their deletionPolicy)?",
            args.auto_approve,
        )? {
            writeln!(out, "Destroy cancelled.")?;
            return Ok(ExitCode::FAILURE);
        }
        let progress = progress();
        let outcomes = until_shutdown(|shutdown| async {
            let mut outcomes = provision::destroy_in(
                &clients,
                &bp,
                observation,
                Readiness::cancelled_by(shutdown.clone()),
                progress.as_ref(),
                selection.as_ref(),
            )
            .await?;
            if destroy_args.include_orphans && !orphans.is_empty() {
                let ctx = provision::kinds::ApplyContext {
                    clients: &clients,
                    blueprint: &bp,
                    resolved: &Default::default(),
                    readiness: Readiness::cancelled_by(shutdown),
                };
                let (deleted, errors) =
                    provision::orphan::delete(&ctx, &orphans, progress.as_ref()).await;
                outcomes.extend(deleted);
                if !errors.is_empty() {
                    return Err(provision::EngineError::Failed(errors));
                }
            }
            Ok(outcomes)
        })
        .await
        .context("destroy did not complete; run it again to finish")?;
        for o in &outcomes {
            let detail = o
                .detail
                .as_deref()
                .map(|d| format!(" ({d})"))
                .unwrap_or_default();
            writeln!(out, "  {} {}{detail}", o.action, o.resource)?;
        }
        let retained = outcomes
            .iter()
            .filter(|o| o.action == OutcomeAction::Retain)
            .count();
        let deleted = outcomes
            .iter()
            .filter(|o| o.action == OutcomeAction::Delete && o.ok)
            .count();
        writeln!(
            out,
            "Destroy complete: {deleted} deleted, {retained} retained."
        )?;
        Ok(ExitCode::SUCCESS)
    })
    .await
}

/// `ballast force-unlock`: removes the blueprint's writer lease after showing who holds it and
/// asking. Only the lease shown is removed (a conditional delete on its holder and expiry); if the
/// holder is in fact alive, its next renewal fails and it stops writing.
pub async fn force_unlock(
    args: &crate::cli::ApplyArgs,
    out: &mut impl Write,
) -> anyhow::Result<ExitCode> {
    let bp = load_blueprint(&args.file, &args.values)?;
    let config = sdk_config(&args.aws, &bp).await?;
    let spec = LeaseSpec {
        name: blueprint_lease_name(&bp.metadata.name),
        holder: format!("cli@{}", default_holder()),
        duration: LEASE_DURATION,
    };
    let lease = DynamoLease::new(
        aws_sdk_dynamodb::Client::new(&config),
        args.lease_table.clone(),
        spec,
        Arc::new(SystemClock::new()),
    );
    let table = &args.lease_table;
    let Some(record) = lease
        .read()
        .await
        .with_context(|| format!("reading the writer lease in `{table}`"))?
    else {
        writeln!(
            out,
            "No writer lease is held for blueprint `{}`.",
            bp.metadata.name
        )?;
        return Ok(ExitCode::SUCCESS);
    };
    let state = if record.expires_at < std::time::SystemTime::now() {
        "expired at"
    } else {
        "valid until"
    };
    writeln!(
        out,
        "The writer lease of blueprint `{}` is held by {} ({state} {}).",
        bp.metadata.name,
        record.holder,
        format_time(record.expires_at)
    )?;
    out.flush()?;
    if !confirm(
        "If that writer is still running, removing its lease lets two writers change the stack at once. Remove it?",
        args.auto_approve,
    )? {
        writeln!(out, "Lease kept.")?;
        return Ok(ExitCode::FAILURE);
    }
    if lease
        .force_release(&record)
        .await
        .with_context(|| format!("removing the writer lease in `{table}`"))?
    {
        writeln!(out, "Removed the writer lease held by {}.", record.holder)?;
        Ok(ExitCode::SUCCESS)
    } else {
        bail!(
            "the lease changed after it was shown (renewed or taken by another writer); nothing was removed: run force-unlock again to see who holds it now"
        )
    }
}
