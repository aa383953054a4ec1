//! `ballast scale`: run the autoscaler's control loop for a blueprint's scaling policies.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::autoscale::Action;
use crate::autoscale::actuator::SetOutcome;
use crate::autoscale::runner::{
    Actuation, Clients, Context, Evaluation, Mode, Publication, build_loops, run_loops,
};
use crate::cli::{OutputFormat, ScaleArgs};
use ballast_runtime::SystemClock;

/// Loads the blueprint, builds one loop per scaling policy and runs them until
/// Ctrl-C/SIGTERM (or once each with `--once`).
pub async fn run(args: &ScaleArgs, out: &mut impl Write) -> anyhow::Result<ExitCode> {
    let loaded = args.values.load(&args.file)?;
    let bp = &loaded.blueprint;
    let options = args.aws.options();
    let sdk = ballast_aws::load_sdk_config_with_default_region(&options, Some(&bp.metadata.region))
        .await?;
    let mut clients = Clients::from_sdk_config(&sdk);
    if bp.spec.scaling_policies.iter().any(|p| {
        p.fleet.is_none()
            && p.deployment.is_some()
            && args.policy.as_deref().is_none_or(|n| n == p.name)
    }) {
        clients.kube = Some(
            kube::Client::try_default()
                .await
                .context("connecting to the Kubernetes API server")?,
        );
    }
    let cancel = CancellationToken::new();
    let ctx = Context {
        clients,
        clock: Arc::new(SystemClock::new()),
        cancel: cancel.clone(),
        mode: if args.dry_run {
            Mode::DryRun
        } else {
            Mode::Live
        },
        oldest_message_age: args.oldest_message_age,
    };
    let loops = build_loops(
        &ctx,
        bp,
        args.policy.as_deref(),
        args.interval.map(|d| d.std()),
    )?;
    tracing::info!(
        policies = loops.len(),
        dry_run = args.dry_run,
        once = args.once,
        "starting the autoscaler"
    );
    let signals = ballast_runtime::spawn_signal_handler(cancel.clone());

    let (tx, mut rx) = mpsc::unbounded_channel::<Evaluation>();
    let mut failures = 0usize;
    let mut write_error = None;
    let printer = async {
        while let Some(evaluation) = rx.recv().await {
            if matches!(evaluation.actuation, Actuation::Failed(_)) {
                failures += 1;
            }
            if let Err(err) = print_evaluation(out, &evaluation, args.output) {
                write_error = Some(err);
                cancel.cancel();
                break;
            }
        }
    };
    tokio::join!(run_loops(&ctx, loops, args.once, tx), printer);
    signals.abort();
    if let Some(err) = write_error {
        return Err(err);
    }
    Ok(if args.once && failures > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// One line per evaluation: text or JSON.
pub fn print_evaluation(
    out: &mut impl Write,
    evaluation: &Evaluation,
    format: OutputFormat,
) -> anyhow::Result<()> {
    match format {
        OutputFormat::Json => {
            serde_json::to_writer(&mut *out, &evaluation.record())?;
            writeln!(out)?;
        }
        OutputFormat::Text => writeln!(out, "{}", format_evaluation(evaluation))?,
    }
    out.flush()?;
    Ok(())
}

/// `policy backlog: visible 500, in flight 0, in service 2, backlog/instance 250.00,
/// desired 2 -> 5, action scale-out (set); reason: ...`
pub fn format_evaluation(e: &Evaluation) -> String {
    let r = e.record();
    let show = |v: Option<u64>| v.map_or_else(|| "?".to_string(), |v| v.to_string());
    let action = match e.decision.action {
        Action::ScaleOut { .. } => "scale-out",
        Action::ScaleIn { .. } => "scale-in",
        Action::NoChange => "no-change",
    };
    let actuation = match &e.actuation {
        Actuation::NotNeeded => String::new(),
        Actuation::Done(SetOutcome::Changed { .. }) => " (set)".to_string(),
        Actuation::Done(SetOutcome::Unchanged { .. }) => " (already set)".to_string(),
        Actuation::Done(SetOutcome::DryRun { .. }) => " (dry run: not set)".to_string(),
        Actuation::Failed(err) => format!(" (FAILED: {err})"),
    };
    let published = match &e.publication {
        Publication::Failed(err) => format!("; metrics not published: {err}"),
        _ => String::new(),
    };
    format!(
        "policy {}: visible {}, in flight {}, in service {}, backlog/instance {}, desired {} -> {}, action {action}{actuation}; reason: {}{published}",
        e.policy,
        show(r.visible),
        show(r.in_flight),
        show(r.in_service.map(u64::from)),
        r.backlog_per_instance.as_deref().unwrap_or("?"),
        r.current,
        r.desired,
        r.reason,
    )
}
