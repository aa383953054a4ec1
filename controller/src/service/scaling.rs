//! The autoscaler inside `ballast run`: the blueprint's scaling loops run while this replica
//! leads (in dry-run, always, and they only report), and every evaluation lands in metrics.
//! While the blueprint is suspended they run as in dry-run: they decide and report, and never
//! set a capacity; a change of the suspension restarts them in the other mode.

use std::sync::Arc;

use ballast_blueprint::Blueprint;
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

use super::metrics::{PolicyLabels, ScalingLabels};
use super::{Context, Pause};
use crate::autoscale::Action;
use crate::autoscale::actuator::SetOutcome;
use crate::autoscale::runner::{self, Actuation, Evaluation, Mode, SetupError};

/// Runs the blueprint's scaling policies until shutdown. A blueprint without policies
/// returns at once.
pub async fn supervise(
    ctx: Arc<Context>,
    clients: runner::Clients,
    bp: Blueprint,
    mut leader: watch::Receiver<bool>,
    mut pause: watch::Receiver<Pause>,
) -> Result<(), SetupError> {
    if bp.spec.scaling_policies.is_empty() {
        return Ok(());
    }
    let blueprint = bp.metadata.name.clone();
    let (sink, evaluations) = mpsc::unbounded_channel();
    let recorder = tokio::spawn(record(ctx.clone(), blueprint.clone(), evaluations));
    loop {
        if !ctx.settings.dry_run {
            tokio::select! {
                () = ctx.cancel.cancelled() => break,
                leading = leader.wait_for(|leading| *leading) => {
                    if leading.is_err() { break; }
                }
            }
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
        let loops = runner::build_loops(&scaling, &bp, None, ctx.settings.scale_interval)?;
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
            term.cancel();
        };
        tokio::select! {
            () = runner::run_loops(&scaling, loops, false, sink.clone()) => {}
            () = lost => {}
        }
        term.cancel();
        if ctx.cancel.is_cancelled() {
            break;
        }
    }
    drop(sink);
    let _ = recorder.await;
    Ok(())
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
