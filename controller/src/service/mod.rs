//! `ballast run`: the long-lived controller. Per blueprint, a reconcile loop and the
//! autoscaler, both writing only while this replica holds the blueprint's lease; one HTTP
//! endpoint for health and metrics; one cancellation token for shutdown.

pub mod http;
pub mod metrics;
pub mod reconcile;
pub mod scaling;
pub mod status;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ballast_blueprint::Blueprint;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::autoscale::runner::{self, SetupError};
use crate::lease::{LeaderElector, Lease, Suspension};
use crate::provision::kinds::Readiness;
use ballast_runtime::Clock;
use metrics::{BlueprintLabels, ServiceMetrics};
use reconcile::{Reconciler, Target};
use status::{Backoff, Tracker};

/// Tuning of the service.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Observe and report only: no write of any kind.
    pub dry_run: bool,
    /// Time between reconciles of a blueprint (jittered ±10 %).
    pub resync: Duration,
    /// Overrides each scaling policy's evaluation interval.
    pub scale_interval: Option<Duration>,
    pub readiness: Readiness,
    /// Per-resource backoff after errors.
    pub backoff: Backoff,
}

/// What every task of the service shares.
#[derive(Debug)]
pub struct Context {
    pub metrics: Arc<ServiceMetrics>,
    pub clock: Arc<dyn Clock>,
    pub cancel: CancellationToken,
    pub settings: Settings,
}

/// What the reconciler last read of its blueprint's suspension (`ballast suspend`), shared
/// with the autoscaler of the same blueprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pause {
    /// Not read yet: the autoscaler waits for the first read, so a controller started on a
    /// suspended blueprint never scales it, not even once.
    Unknown,
    Running,
    Suspended(Suspension),
}

impl Pause {
    pub fn is_known(&self) -> bool {
        !matches!(self, Pause::Unknown)
    }

    pub fn is_suspended(&self) -> bool {
        matches!(self, Pause::Suspended(_))
    }
}

/// One blueprint under management.
pub struct Stack {
    pub target: Target,
    pub blueprint: Blueprint,
    pub scaling_clients: runner::Clients,
    /// `None` in dry-run: an observer takes no lease (taking one is a write).
    pub lease: Option<Lease>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("cannot serve metrics on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("blueprint `{blueprint}`: {source}")]
    Scaling {
        blueprint: String,
        #[source]
        source: SetupError,
    },
}

/// Runs until `ctx.cancel` fires, then lets every loop finish its current step and releases
/// the leases last, so no other replica writes while this one still does.
pub async fn run(
    ctx: Arc<Context>,
    stacks: Vec<Stack>,
    metrics_addr: SocketAddr,
) -> Result<(), ServiceError> {
    let release = CancellationToken::new();
    let mut loops = Vec::new();
    let mut electors = Vec::new();
    let mut ready = Vec::new();
    // Senders of observers' "never leading" channels, kept open until shutdown.
    let mut followers = Vec::new();
    for stack in stacks {
        let name = stack.blueprint.metadata.name.clone();
        let leader = match stack.lease {
            Some(lease) => {
                let (leader, elector) = LeaderElector::spawn(lease, release.clone());
                electors.push(elector);
                leader
            }
            None => {
                let (never, leader) = watch::channel(false);
                followers.push(never);
                leader
            }
        };
        loops.push(tokio::spawn(report_leadership(
            ctx.clone(),
            name.clone(),
            leader.clone(),
        )));
        let (pause_tx, pause) = watch::channel(Pause::Unknown);
        let (published, blueprints) = watch::channel(stack.blueprint);
        let reconciler =
            Reconciler::new(stack.target, Tracker::new(ctx.settings.backoff), published)
                .pausing(pause_tx);
        ready.push(reconciler.ready.clone());
        loops.push(tokio::spawn(reconciler.run(ctx.clone(), leader.clone())));
        let scaling_ctx = ctx.clone();
        let clients = stack.scaling_clients;
        loops.push(tokio::spawn(async move {
            if let Err(err) =
                scaling::supervise(scaling_ctx.clone(), clients, blueprints, leader, pause).await
            {
                warn!(blueprint = %name, error = %err, "autoscaler cannot start; stopping");
                scaling_ctx.cancel.cancel();
            }
        }));
    }
    let router = http::router(ctx.metrics.clone(), ready);
    let (addr, server) = http::serve(metrics_addr, router, ctx.cancel.clone())
        .await
        .map_err(|source| ServiceError::Listen {
            addr: metrics_addr,
            source,
        })?;
    info!(%addr, dry_run = ctx.settings.dry_run, "controller running");

    ctx.cancel.cancelled().await;
    info!("shutting down: finishing the current steps");
    for task in loops {
        let _ = task.await;
    }
    release.cancel();
    drop(followers);
    for elector in electors {
        let _ = elector.await;
    }
    let _ = server.await;
    info!("stopped");
    Ok(())
}

async fn report_leadership(
    ctx: Arc<Context>,
    blueprint: String,
    mut leader: watch::Receiver<bool>,
) {
    let labels = BlueprintLabels {
        blueprint: blueprint.clone(),
    };
    loop {
        let leading = *leader.borrow_and_update();
        ctx.metrics
            .leader
            .get_or_create(&labels)
            .set(i64::from(leading));
        if !ctx.settings.dry_run {
            info!(%blueprint, leading, "leadership");
        }
        tokio::select! {
            () = ctx.cancel.cancelled() => break,
            changed = leader.changed() => if changed.is_err() { break },
        }
    }
}
