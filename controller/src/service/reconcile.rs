//! The reconcile loop of one blueprint: every resync, read the blueprint's suspension, re-read
//! the file, observe, plan and (when leading, not in dry-run and not suspended) converge. The
//! same steps run every time, whatever changed.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use aws_credential_types::provider::ProvideCredentials;
use aws_types::SdkConfig;
use ballast_blueprint::{Blueprint, ResourceId};
use ballast_runtime::jittered;
use tokio::sync::watch;
use tracing::{Instrument, error, info, info_span, warn};

use super::metrics::{BlueprintLabels, ReconcileLabels};
use super::status::{FailureClass, Tracker};
use super::{Context, Pause};
use crate::lease::Suspensions;
use crate::provision::engine::{EngineError, Outcome, OutcomeAction, Progress};
use crate::provision::{self, Clients, ProvisionError, ReadOnlyClients};

/// Provisioning clients: read-only ones in dry-run, so no write can be sent at all.
#[derive(Debug, Clone)]
pub enum ProvisionClients {
    ReadOnly(ReadOnlyClients),
    ReadWrite(Clients),
}

impl ProvisionClients {
    fn observer(&self) -> ReadOnlyClients {
        match self {
            ProvisionClients::ReadOnly(clients) => clients.clone(),
            ProvisionClients::ReadWrite(clients) => clients.observer(),
        }
    }
}

/// One blueprint file the controller keeps converged.
#[derive(Debug)]
pub struct Target {
    pub path: PathBuf,
    /// Values files laid over the blueprint, in order; re-read with it every round.
    pub values: Vec<PathBuf>,
    /// `metadata.name` when the controller started; a running controller does not rename.
    pub name: String,
    pub sdk: SdkConfig,
    pub clients: ProvisionClients,
    /// Where `ballast suspend` records the blueprint's suspension (the lease table), read at
    /// the start of every round.
    pub suspensions: Suspensions,
}

/// How a round ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoundResult {
    /// Observed and planned (and applied, when allowed); some resources may have failed.
    Ok,
    /// The blueprint file is unreadable or invalid: nothing was read from AWS.
    Invalid,
    /// AWS could not be observed.
    Error,
}

impl RoundResult {
    fn label(self) -> &'static str {
        match self {
            RoundResult::Ok => "ok",
            RoundResult::Invalid => "invalid",
            RoundResult::Error => "error",
        }
    }
}

pub struct Reconciler {
    target: Target,
    tracker: Tracker,
    /// Set after the first completed round.
    pub ready: Arc<AtomicBool>,
    /// The fingerprint under which the last invalid-blueprint error was logged.
    invalid_logged: Option<u64>,
    /// What the last round read of the suspension, for the autoscaler.
    pause: watch::Sender<Pause>,
    /// The blueprint as last read and found valid, for the autoscaler ([`super::scaling`]).
    published: watch::Sender<Blueprint>,
}

impl Reconciler {
    /// `published` starts with the blueprint the controller loaded at start; each round that
    /// reads a valid, different version sends it.
    pub fn new(target: Target, tracker: Tracker, published: watch::Sender<Blueprint>) -> Self {
        Reconciler {
            target,
            tracker,
            ready: Arc::new(AtomicBool::new(false)),
            invalid_logged: None,
            pause: watch::Sender::new(Pause::Unknown),
            published,
        }
    }

    /// Publishes what each round reads of the suspension on `pause` (the autoscaler's side).
    pub fn pausing(mut self, pause: watch::Sender<Pause>) -> Self {
        self.pause = pause;
        self
    }

    pub fn tracker(&self) -> &Tracker {
        &self.tracker
    }

    /// Reconciles every resync period (jittered, slowed down after throttling) until
    /// cancelled. Cancellation also reaches a round in progress (through the readiness
    /// settings): its AWS calls in flight finish, its waits end and no further step starts;
    /// becoming leader starts a round at once.
    pub async fn run(mut self, ctx: Arc<Context>, mut leader: watch::Receiver<bool>) {
        loop {
            let may_write = !ctx.settings.dry_run && *leader.borrow_and_update();
            self.reconcile(&ctx, may_write).await;
            self.ready.store(true, Ordering::SeqCst);
            let delay = jittered(self.tracker.next_delay(ctx.settings.resync));
            tokio::select! {
                () = ctx.cancel.cancelled() => break,
                () = tokio::time::sleep(delay) => {}
                changed = leader.changed() => {
                    if changed.is_err() {
                        // The elector stopped: only shutdown does that.
                        ctx.cancel.cancelled().await;
                        break;
                    }
                }
            }
        }
        info!(blueprint = %self.target.name, "reconcile loop stopped");
    }

    /// One round: the same steps every time.
    pub async fn reconcile(&mut self, ctx: &Context, may_write: bool) -> RoundResult {
        let span = info_span!("reconcile", blueprint = %self.target.name, may_write);
        let started = Instant::now();
        let result = self.round(ctx, may_write).instrument(span).await;
        let blueprint = self.target.name.clone();
        ctx.metrics
            .reconcile_duration
            .get_or_create(&BlueprintLabels {
                blueprint: blueprint.clone(),
            })
            .observe(started.elapsed().as_secs_f64());
        ctx.metrics
            .reconciles
            .get_or_create(&ReconcileLabels {
                blueprint: blueprint.clone(),
                result: result.label(),
            })
            .inc();
        ctx.metrics.record_statuses(&blueprint, &self.tracker);
        result
    }

    async fn round(&mut self, ctx: &Context, may_write: bool) -> RoundResult {
        let now = ctx.clock.now();
        // First, so that the autoscaler learns it even while the blueprint file is invalid.
        let suspended = self.read_suspension(ctx).await;
        let may_write = may_write && !suspended;
        // The same bounded read as every command (size cap, UTF-8 with the byte offset).
        let path = self.target.path.clone();
        let values = self.target.values.clone();
        let read = tokio::task::spawn_blocking(move || read_sources(&path, &values)).await;
        let sources = match read {
            Ok(Ok(sources)) => sources,
            Ok(Err(err)) => {
                error!(file = %self.target.path.display(), error = %err, "cannot read the blueprint");
                return RoundResult::Invalid;
            }
            Err(err) => {
                error!(file = %self.target.path.display(), error = %err, "cannot read the blueprint");
                return RoundResult::Invalid;
            }
        };
        let fingerprint = fingerprint(&sources, credential_id(&self.target.sdk).await.as_deref());
        let bp = match self.load(&sources, fingerprint) {
            Some(bp) => bp,
            None => return RoundResult::Invalid,
        };
        self.published.send_if_modified(|current| {
            let edited = *current != bp;
            if edited {
                info!(file = %self.target.path.display(), "blueprint edited: this round applies the new version");
                *current = bp.clone();
            }
            edited
        });

        let observation = match provision::observe(&self.target.clients.observer(), &bp).await {
            Ok(observation) => observation,
            Err(err) => {
                let throttled = self.record_engine_error(&err, now, fingerprint);
                self.tracker.end_round(throttled);
                warn!(error = %err, "cannot observe the blueprint's resources");
                return RoundResult::Error;
            }
        };
        let plan = provision::plan(&bp, &observation);
        ctx.metrics
            .observed
            .get_or_create(&BlueprintLabels {
                blueprint: self.target.name.clone(),
            })
            .set(i64::try_from(plan.summary.observed).unwrap_or(i64::MAX));
        if plan.summary.observed > 0 {
            let drifted: Vec<String> = plan
                .observed_drift()
                .map(|c| c.resource.to_string())
                .collect();
            info!(
                observed = plan.summary.observed,
                drifted = ?drifted,
                "resources under management: observe: drift reported, never corrected"
            );
        }
        for conflict in plan.conflicts() {
            if let provision::Action::Conflict { reason } = &conflict.action {
                self.tracker.failed(
                    &conflict.resource,
                    FailureClass::Terminal,
                    reason.to_string(),
                    now,
                    fingerprint,
                );
            }
        }
        let held = self.tracker.held(now, fingerprint);
        self.tracker.observed(&plan, &held);
        for (id, status) in self.tracker.statuses() {
            match status {
                super::status::ResourceStatus::Drifted { fields } => {
                    info!(resource = %id, fields = ?fields, "drift");
                }
                super::status::ResourceStatus::Error { reason, terminal } => {
                    warn!(resource = %id, terminal, reason, "resource in error");
                }
                super::status::ResourceStatus::Synced => {}
            }
        }
        // The controller never deletes an orphan; it reports each one every round.
        for orphan in &plan.orphans {
            warn!(resource = %orphan.label(), arn = %orphan.arn, reason = %orphan.why(), "orphan: owned, claimed by no declaration");
        }

        let mut throttled = false;
        if let (true, ProvisionClients::ReadWrite(clients)) = (may_write, &self.target.clients) {
            let progress = Collected::default();
            let result = provision::engine::apply_except(
                clients,
                &bp,
                observation,
                ctx.settings.readiness.clone(),
                &progress,
                &held,
            )
            .await;
            for outcome in progress
                .outcomes
                .into_inner()
                .unwrap_or_else(PoisonError::into_inner)
            {
                // An observed resource was left as it is: it stays drifted, not synced.
                if outcome.ok && outcome.action != OutcomeAction::Observed {
                    self.tracker.succeeded(&outcome.resource);
                }
            }
            if let Err(err) = result {
                throttled = self.record_engine_error(&err, now, fingerprint);
            }
        }
        self.tracker.end_round(throttled);
        RoundResult::Ok
    }

    /// Reads the blueprint's suspension, exports it, tells the autoscaler and logs it (once per
    /// round). Returns whether to hold every write this round: suspended, or unknown because it
    /// could not be read (a pause must not be missed because of one failed read).
    async fn read_suspension(&mut self, ctx: &Context) -> bool {
        let labels = BlueprintLabels {
            blueprint: self.target.name.clone(),
        };
        let state = match self.target.suspensions.read(&self.target.name).await {
            Ok(Some(suspension)) => {
                warn!(
                    by = %suspension.by,
                    at = %crate::lease::format_time(suspension.at),
                    reason = suspension.reason.as_deref().unwrap_or(""),
                    "blueprint suspended (`ballast resume` ends it): observing and reporting only, nothing is written and the autoscaler does not scale"
                );
                Pause::Suspended(suspension)
            }
            Ok(None) => Pause::Running,
            Err(err) => {
                warn!(table = %self.target.suspensions.table(), error = %err, "cannot read the blueprint's suspension; writing nothing this round");
                return true;
            }
        };
        let suspended = state.is_suspended();
        ctx.metrics
            .suspended
            .get_or_create(&labels)
            .set(i64::from(suspended));
        self.pause.send_replace(state);
        suspended
    }

    /// Parses the blueprint; an invalid one is logged once per version of the file.
    fn load(&mut self, sources: &Sources, fingerprint: u64) -> Option<Blueprint> {
        let path = self.target.path.display().to_string();
        match ballast_blueprint::parse_with_values(&path, &sources.blueprint, &sources.values) {
            Ok(loaded) if loaded.blueprint.metadata.name == self.target.name => {
                self.invalid_logged = None;
                Some(loaded.blueprint)
            }
            Ok(loaded) => {
                if self.invalid_logged != Some(fingerprint) {
                    error!(
                        file = %path,
                        was = %self.target.name,
                        now = %loaded.blueprint.metadata.name,
                        "metadata.name changed under a running controller; restart it to manage the renamed stack"
                    );
                    self.invalid_logged = Some(fingerprint);
                }
                None
            }
            Err(diagnostics) => {
                if self.invalid_logged != Some(fingerprint) {
                    error!(file = %path, "blueprint is invalid; nothing is changed until the file is fixed:\n{diagnostics}");
                    self.invalid_logged = Some(fingerprint);
                }
                None
            }
        }
    }

    /// Records the failures of an engine error; returns whether AWS throttled us.
    fn record_engine_error(
        &mut self,
        err: &EngineError,
        now: crate::autoscale::Timestamp,
        fingerprint: u64,
    ) -> bool {
        let mut throttled = false;
        let mut record = |e: &ProvisionError| {
            let class = e
                .aws_error()
                .map(|aws| FailureClass::of_aws(aws.kind()))
                .unwrap_or(FailureClass::Retry);
            throttled |= class == FailureClass::Throttled;
            self.tracker
                .failed(e.resource(), class, e.to_string(), now, fingerprint);
        };
        match err {
            EngineError::Provision(e) => record(e),
            EngineError::Failed(errors) => errors.iter().for_each(record),
            // Conflicts are recorded from the plan.
            EngineError::Conflicts(_) => {}
            // Shutting down: nothing is retried, so nothing is tracked.
            EngineError::Interrupted { .. } => {}
        }
        throttled
    }
}

/// Collects outcomes (and logs them) during an apply.
#[derive(Default)]
struct Collected {
    outcomes: Mutex<Vec<Outcome>>,
}

impl Progress for Collected {
    fn started(&self, resource: &ResourceId, action: OutcomeAction) {
        info!(%resource, action = action.as_str(), "applying");
    }

    fn finished(&self, outcome: &Outcome) {
        if outcome.ok {
            info!(resource = %outcome.resource, action = outcome.action.as_str(), "applied");
        } else {
            warn!(resource = %outcome.resource, action = outcome.action.as_str(), error = outcome.detail.as_deref().unwrap_or(""), "apply failed");
        }
        // A poisoned lock is taken over: an outcome list is still worth reporting.
        self.outcomes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(outcome.clone());
    }
}

/// What a terminal error waits on: the blueprint text and the credentials in use.
/// The texts of a blueprint and its values files (labelled by path), as read for one round.
#[derive(Debug, Hash)]
struct Sources {
    blueprint: String,
    values: Vec<(String, String)>,
}

/// Reads the blueprint and its values files, each within the blueprint's limits.
fn read_sources(path: &Path, values: &[PathBuf]) -> Result<Sources, ballast_blueprint::LoadError> {
    Ok(Sources {
        blueprint: ballast_blueprint::read(path)?,
        values: ballast_blueprint::read_values(values)?,
    })
}

fn fingerprint(sources: &Sources, credential: Option<&str>) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    sources.hash(&mut hasher);
    credential.hash(&mut hasher);
    hasher.finish()
}

/// The access key id of the current credentials (it changes when they rotate).
async fn credential_id(sdk: &SdkConfig) -> Option<String> {
    let provider = sdk.credentials_provider()?;
    match provider.provide_credentials().await {
        Ok(credentials) => Some(credentials.access_key_id().to_string()),
        Err(err) => {
            warn!(error = %err, "cannot load AWS credentials");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources(blueprint: &str, values: &[&str]) -> Sources {
        Sources {
            blueprint: blueprint.into(),
            values: values
                .iter()
                .map(|text| ("prod.yaml".to_string(), text.to_string()))
                .collect(),
        }
    }

    #[test]
    fn the_fingerprint_changes_with_the_texts_or_the_credentials() {
        let base = fingerprint(&sources("a: 1", &["b: 1"]), Some("AKIA1"));
        assert_eq!(
            base,
            fingerprint(&sources("a: 1", &["b: 1"]), Some("AKIA1"))
        );
        assert_ne!(
            base,
            fingerprint(&sources("a: 2", &["b: 1"]), Some("AKIA1"))
        );
        assert_ne!(
            base,
            fingerprint(&sources("a: 1", &["b: 2"]), Some("AKIA1"))
        );
        assert_ne!(base, fingerprint(&sources("a: 1", &[]), Some("AKIA1")));
        assert_ne!(
            base,
            fingerprint(&sources("a: 1", &["b: 1"]), Some("AKIA2"))
        );
    }
}
