//! `apply` and `destroy`: the commands that write, under the writer lease.

use super::*;

/// Runs the changes of an apply or destroy with SIGINT/SIGTERM wired to one shutdown token:
/// the engine finishes the AWS calls in flight, starts nothing more, and the caller releases
/// the writer lease, so the next apply need not wait for it to expire. The handler is
/// installed only here, after the confirmation, so Ctrl-C at the prompt still ends the process.
pub(super) async fn until_shutdown<F, Fut, T>(changes: F) -> Fut::Output
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
            if !args.values.files.is_empty() {
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
                &labelled(&read_values(&args.values.files)?),
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
    let bp = load_blueprint(&args.file, &args.values.files)?;
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
