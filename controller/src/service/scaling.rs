//! The autoscaler inside `ballast run`: the blueprint's scaling loops run while this replica
//! leads (in dry-run, always, and they only report), follow the blueprint as the reconcile loop
//! re-reads it, and every evaluation lands in metrics.
//! While the blueprint is suspended they run as in dry-run: they decide and report, and never
//! set a capacity; a change of the suspension restarts them in the other mode.

use std::sync::Arc;

use ballast_blueprint::Blueprint;
use tokio::sync::{mpsc, watch};
use tracing::{debug, error, info, warn};

use super::metrics::{PolicyLabels, ScalingLabels};
use super::{Context, Pause};
use crate::autoscale::Action;
use crate::autoscale::actuator::SetOutcome;
use crate::autoscale::config::{ScalingInputs, scaling_changes, scaling_inputs};
use crate::autoscale::runner::{self, Actuation, Evaluation, Mode, SetupError};

/// Runs the blueprint's scaling policies until shutdown, following the blueprint the
/// reconcile loop publishes in `blueprints` (the file as last read and found valid): when what
/// the policies take from it changes ([`scaling_inputs`]), the loops are rebuilt and the change
/// is logged. A blueprint without policies waits for one to be added.
///
/// A policy that cannot be set up fails the service at start. After an edit, it is logged and the
/// loops of the last version that ran are started again, until another edit comes: a bad edit
/// never leaves the fleet without its autoscaler.
pub async fn supervise(
    ctx: Arc<Context>,
    clients: runner::Clients,
    mut blueprints: watch::Receiver<Blueprint>,
    mut leader: watch::Receiver<bool>,
    mut pause: watch::Receiver<Pause>,
) -> Result<(), SetupError> {
    let mut bp = blueprints.borrow_and_update().clone();
    let blueprint = bp.metadata.name.clone();
    let (sink, evaluations) = mpsc::unbounded_channel();
    let recorder = tokio::spawn(record(ctx.clone(), blueprint.clone(), evaluations));
    let mut inputs = scaling_inputs(&bp);
    // Until the blueprint is first edited or the loops first run, a setup error ends the service.
    let mut at_start = true;
    // The last version whose loops were built, and the inputs of an edit that could not be.
    let mut last_good = bp.clone();
    let mut rejected: Option<Vec<ScalingInputs>> = None;
    let edited_since =
        |new: &Blueprint, current: &[ScalingInputs], rejected: &Option<Vec<ScalingInputs>>| {
            let new = scaling_inputs(new);
            new != current && rejected.as_ref() != Some(&new)
        };
    loop {
        if inputs.is_empty() {
            // Nothing to scale until an edit adds a policy.
            tokio::select! {
                () = ctx.cancel.cancelled() => break,
                edited = blueprints.wait_for(|new| edited_since(new, &inputs, &rejected)) => {
                    let Ok(edited) = edited else { break };
                    bp = edited.clone();
                }
            }
            inputs = log_changes(&blueprint, &inputs, &bp);
            at_start = false;
            continue;
        }
        if !ctx.settings.dry_run {
            tokio::select! {
                () = ctx.cancel.cancelled() => break,
                leading = leader.wait_for(|leading| *leading) => {
                    if leading.is_err() { break; }
                }
            }
        }
        // An edit made while another replica led.
        let latest = blueprints.borrow_and_update().clone();
        if edited_since(&latest, &inputs, &rejected) {
            bp = latest;
            inputs = log_changes(&blueprint, &inputs, &bp);
            at_start = false;
            continue;
        }
        // Never write before the suspension has been read once.
        let suspended = tokio::select! {
            () = ctx.cancel.cancelled() => break,
            known = pause.wait_for(Pause::is_known) => match known.map(|state| state.is_suspended()) {
                Ok(suspended) => suspended,
                // The reconciler is gone: only shutdown does that.
                Err(_) => break,
            },
        };
        let term = ctx.cancel.child_token();
        let scaling = runner::Context {
            clients: clients.clone(),
            clock: ctx.clock.clone(),
            cancel: term.clone(),
            mode: if ctx.settings.dry_run || suspended {
                Mode::DryRun
            } else {
                Mode::Live
            },
            oldest_message_age: false,
        };
        let loops = match runner::build_loops(&scaling, &bp, None, ctx.settings.scale_interval) {
            Ok(loops) => loops,
            Err(err) if at_start => return Err(err),
            Err(err) => {
                error!(%blueprint, error = %err, "the edited scaling policies cannot run; the last version that ran goes on until the next edit");
                rejected = Some(inputs);
                bp = last_good.clone();
                inputs = scaling_inputs(&bp);
                continue;
            }
        };
        last_good = bp.clone();
        at_start = false;
        info!(%blueprint, policies = loops.len(), dry_run = ctx.settings.dry_run, suspended, "autoscaler started");
        let leader_lost = async {
            if ctx.settings.dry_run {
                std::future::pending::<()>().await;
            }
            let _ = leader.wait_for(|leading| !*leading).await;
            info!(%blueprint, "lost the lease: autoscaler paused");
        };
        let pause_changed = async {
            let gone = pause
                .wait_for(|state| state.is_known() && state.is_suspended() != suspended)
                .await
                .is_err();
            if gone {
                // Shutdown: the cancellation ends the loops.
                std::future::pending::<()>().await;
            }
            if suspended {
                info!(%blueprint, "blueprint resumed: autoscaler writes again");
            } else {
                info!(%blueprint, "blueprint suspended: autoscaler reports only");
            }
        };
        let lost = async {
            tokio::select! {
                () = leader_lost => {}
                () = pause_changed => {}
            }
        };
        let edited = async {
            let edited = blueprints
                .wait_for(|new| edited_since(new, &inputs, &rejected))
                .await
                .map(|edited| edited.clone());
            match edited {
                Ok(edited) => Some(edited),
                // The reconcile loop is gone: only shutdown does that.
                Err(_) => std::future::pending().await,
            }
        };
        tokio::select! {
            () = runner::run_loops(&scaling, loops, false, sink.clone()) => {}
            () = lost => {}
            edited = edited => {
                if let Some(edited) = edited {
                    bp = edited;
                }
            }
        }
        term.cancel();
        if ctx.cancel.is_cancelled() {
            break;
        }
        if scaling_inputs(&bp) != inputs {
            inputs = log_changes(&blueprint, &inputs, &bp);
        }
    }
    drop(sink);
    let _ = recorder.await;
    Ok(())
}

/// Logs each change from `old` to `bp`'s scaling inputs; returns the new inputs.
fn log_changes(blueprint: &str, old: &[ScalingInputs], bp: &Blueprint) -> Vec<ScalingInputs> {
    let new = scaling_inputs(bp);
    for change in scaling_changes(old, &new) {
        info!(%blueprint, %change, "blueprint edited: the autoscaler follows");
    }
    new
}

async fn record(
    ctx: Arc<Context>,
    blueprint: String,
    mut evaluations: mpsc::UnboundedReceiver<Evaluation>,
) {
    while let Some(evaluation) = evaluations.recv().await {
        let labels = PolicyLabels {
            blueprint: blueprint.clone(),
            policy: evaluation.policy.clone(),
        };
        let record = evaluation.record();
        ctx.metrics
            .desired_capacity
            .get_or_create(&labels)
            .set(i64::from(record.desired));
        if let Some(in_service) = record.in_service {
            ctx.metrics
                .in_service
                .get_or_create(&labels)
                .set(i64::from(in_service));
        }
        if let Some(backlog) = evaluation.decision.backlog_per_instance {
            ctx.metrics
                .backlog_per_instance
                .get_or_create(&labels)
                .set(backlog.hundredths() as f64 / 100.0);
        }
        let direction = match evaluation.decision.action {
            Action::ScaleOut { .. } => Some("out"),
            Action::ScaleIn { .. } => Some("in"),
            Action::NoChange => None,
        };
        match (&evaluation.actuation, direction) {
            (Actuation::Done(SetOutcome::Changed { .. }), Some(direction)) => {
                ctx.metrics
                    .scaling_actions
                    .get_or_create(&ScalingLabels {
                        blueprint: blueprint.clone(),
                        policy: evaluation.policy.clone(),
                        direction,
                    })
                    .inc();
                info!(policy = %evaluation.policy, from = record.current, to = record.desired, reason = %record.reason, "scaled");
            }
            (Actuation::Done(SetOutcome::DryRun { .. }), Some(_)) => {
                info!(policy = %evaluation.policy, from = record.current, to = record.desired, reason = %record.reason, "would scale (dry run)");
            }
            (Actuation::Failed(err), _) => {
                warn!(policy = %evaluation.policy, error = %err, "cannot set the desired capacity");
            }
            _ => debug!(policy = %evaluation.policy, desired = record.desired, "no scaling change"),
        }
    }
}
