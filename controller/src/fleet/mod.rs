//! A local fleet: one `ballast-worker consume` process per `InService` instance of an Auto
//! Scaling group, so that the autoscaler's decisions change real throughput on a laptop or in
//! a test (moto launches fake EC2 instances; this module gives each one a real worker).
//!
//! * [`plan_processes`] is the pure reconcile step: which instances need a worker started and
//!   which workers must stop.
//! * [`Supervisor`] polls the group every `poll` interval through an [`InstanceSource`]
//!   ([`AsgInstances`]: `DescribeAutoScalingGroups`), starts a worker for each new `InService`
//!   instance (passing its instance id), sends SIGTERM to the worker of an instance that left
//!   `InService` (terminated, terminating, detached, standby) and waits for it to drain (up to
//!   the drain timeout, then SIGKILL). A worker that exits on its own while its instance is
//!   still `InService` is restarted with exponential backoff. When the cancellation token
//!   fires, every worker gets SIGTERM and the supervisor returns once all have exited.
//!
//! Workers run in their own process group, so a Ctrl-C in the terminal reaches only the
//! supervisor, which then stops the workers in order. Signals are sent with `kill(1)`: the
//! workspace forbids `unsafe` and carries no libc wrapper.

use ballast_runtime::Backoff;
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use aws_sdk_autoscaling::types::LifecycleState;
use ballast_aws::{AwsError, SdkResultExt};
use futures::future::BoxFuture;
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::instrument;

/// Why the group could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error("Auto Scaling group `{0}` does not exist")]
    GroupNotFound(String),
}

/// The reconcile step: `(to_start, to_stop)`. An instance that is `InService` without a worker
/// gets one; a worker whose instance is no longer `InService` is stopped.
pub fn plan_processes(
    in_service: &BTreeSet<String>,
    running: &BTreeSet<String>,
) -> (BTreeSet<String>, BTreeSet<String>) {
    let to_start = in_service.difference(running).cloned().collect();
    let to_stop = running.difference(in_service).cloned().collect();
    (to_start, to_stop)
}

/// Where the supervisor learns which instances are `InService`.
pub trait InstanceSource: Send + Sync {
    /// The ids of the instances whose lifecycle state is `InService`.
    fn in_service(&self) -> BoxFuture<'_, Result<BTreeSet<String>, FleetError>>;
}

/// An Auto Scaling group, read with `DescribeAutoScalingGroups`.
#[derive(Debug, Clone)]
pub struct AsgInstances {
    client: aws_sdk_autoscaling::Client,
    group: String,
}

impl AsgInstances {
    pub fn new(client: aws_sdk_autoscaling::Client, group: impl Into<String>) -> Self {
        AsgInstances {
            client,
            group: group.into(),
        }
    }

    /// The group's physical name.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// One `DescribeAutoScalingGroups` call: the ids of the group's `InService` instances.
    #[instrument(skip(self), fields(group = %self.group))]
    pub async fn read(&self) -> Result<BTreeSet<String>, FleetError> {
        let out = self
            .client
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(&self.group)
            .send()
            .await
            .classify("autoscaling:DescribeAutoScalingGroups")?;
        let group = out
            .auto_scaling_groups
            .unwrap_or_default()
            .into_iter()
            .find(|g| g.auto_scaling_group_name.as_deref() == Some(self.group.as_str()))
            .ok_or_else(|| FleetError::GroupNotFound(self.group.clone()))?;
        Ok(group
            .instances
            .unwrap_or_default()
            .into_iter()
            .filter(|i| i.lifecycle_state == Some(LifecycleState::InService))
            .filter_map(|i| i.instance_id)
            .collect())
    }
}

impl InstanceSource for AsgInstances {
    fn in_service(&self) -> BoxFuture<'_, Result<BTreeSet<String>, FleetError>> {
        Box::pin(self.read())
    }
}

/// How a worker process is launched: `program args... --instance-id <id> extra...`.
#[derive(Debug, Clone)]
pub struct WorkerCommand {
    pub program: PathBuf,
    /// Arguments before `--instance-id`.
    pub args: Vec<OsString>,
    /// Arguments after `--instance-id <id>` (the user's pass-through arguments).
    pub extra: Vec<OsString>,
}

impl WorkerCommand {
    /// The command for the worker of `instance_id`: stdin and stdout are closed (stdout belongs
    /// to the supervisor's status lines), stderr (the worker's logs) is inherited, the
    /// environment (AWS credentials, region, endpoint) is inherited, and the process gets its
    /// own process group. It is killed if its handle is dropped.
    pub fn command(&self, instance_id: &str) -> Command {
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .arg("--instance-id")
            .arg(instance_id)
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        #[cfg(unix)]
        command.process_group(0);
        command
    }

    /// The command line, for logs.
    pub fn display(&self, instance_id: &str) -> String {
        let mut words = vec![self.program.to_string_lossy().into_owned()];
        words.extend(self.args.iter().map(|a| a.to_string_lossy().into_owned()));
        words.push("--instance-id".into());
        words.push(instance_id.into());
        words.extend(self.extra.iter().map(|a| a.to_string_lossy().into_owned()));
        words.join(" ")
    }
}

/// Delay before restarting a worker that exited on its own: `base × 2^(failures−1)`, at most
/// `max` (the shared [`Backoff`]). A worker that ran for at least `max` starts the count again.
pub const DEFAULT_RESTART_BACKOFF: Backoff = Backoff {
    base: Duration::from_secs(1),
    max: Duration::from_secs(30),
};

/// Supervisor timing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SupervisorConfig {
    /// Time between reads of the group.
    pub poll: Duration,
    /// How long a stopping worker may drain before it is killed.
    pub drain_timeout: Duration,
    pub restart: Backoff,
}

/// What the supervisor did; the CLI prints [`FleetEvent::Workers`] and the tests watch the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FleetEvent {
    /// A worker process started for an instance.
    Started { instance_id: String, pid: u32 },
    /// The worker process could not be started; retried after `retry_in`.
    StartFailed {
        instance_id: String,
        error: String,
        retry_in: Duration,
    },
    /// The worker exited on its own while its instance was `InService`; restarted after
    /// `restart_in`.
    Exited {
        instance_id: String,
        pid: u32,
        status: String,
        restart_in: Duration,
    },
    /// SIGTERM sent: the instance left `InService`, or the supervisor is stopping.
    Stopping { instance_id: String, pid: u32 },
    /// A stopped worker is gone; `killed` when it did not drain in time and got SIGKILL.
    Stopped {
        instance_id: String,
        pid: u32,
        status: Option<String>,
        killed: bool,
    },
    /// The group could not be read; the workers are kept as they are.
    ReadFailed { error: String },
    /// The set of instances with a running worker changed (sorted ids).
    Workers(Vec<String>),
}

/// `fleet: 3 workers (i-1, i-2, i-3)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetStatus<'a>(pub &'a [String]);

impl fmt::Display for FleetStatus<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        write!(f, "fleet: {n} worker{}", if n == 1 { "" } else { "s" })?;
        if n > 0 {
            write!(f, " ({})", self.0.join(", "))?;
        }
        Ok(())
    }
}

enum Slot {
    Running {
        child: Child,
        pid: u32,
        since: Instant,
        failures: u32,
    },
    Backoff {
        until: Instant,
        failures: u32,
    },
}

/// Keeps one worker process per `InService` instance.
pub struct Supervisor<S> {
    source: S,
    worker: WorkerCommand,
    config: SupervisorConfig,
}

impl<S: InstanceSource> Supervisor<S> {
    pub fn new(source: S, worker: WorkerCommand, config: SupervisorConfig) -> Self {
        Supervisor {
            source,
            worker,
            config,
        }
    }

    /// Runs until `cancel` fires, then stops every worker (SIGTERM, drain, SIGKILL after the
    /// drain timeout) and returns when none is left. Events go to `events` (a closed receiver
    /// is fine).
    pub async fn run(self, cancel: CancellationToken, events: mpsc::UnboundedSender<FleetEvent>) {
        let mut slots: BTreeMap<String, Slot> = BTreeMap::new();
        let mut draining = JoinSet::new();
        let mut reported: Option<Vec<String>> = None;
        loop {
            self.reap(&mut slots, &events);
            let read = tokio::select! {
                read = self.source.in_service() => read,
                () = cancel.cancelled() => break,
            };
            match read {
                Ok(in_service) => {
                    let running: BTreeSet<String> = slots.keys().cloned().collect();
                    let (to_start, to_stop) = plan_processes(&in_service, &running);
                    for id in to_stop {
                        match slots.remove(&id) {
                            Some(Slot::Running { child, pid, .. }) => {
                                tracing::info!(instance_id = %id, pid, "instance left InService: stopping its worker");
                                draining.spawn(self.stop(child, id, pid, events.clone()));
                            }
                            Some(Slot::Backoff { .. }) => {
                                tracing::info!(instance_id = %id, "instance left InService: restart cancelled");
                            }
                            None => {}
                        }
                    }
                    for id in to_start {
                        let slot = self.start(&id, 0, &events);
                        slots.insert(id, slot);
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot read the Auto Scaling group; keeping the current workers");
                    let _ = events.send(FleetEvent::ReadFailed {
                        error: error.to_string(),
                    });
                }
            }
            let now = Instant::now();
            for (id, slot) in &mut slots {
                if let Slot::Backoff { until, failures } = slot
                    && *until <= now
                {
                    let failures = *failures;
                    *slot = self.start(id, failures, &events);
                }
            }
            report(&slots, &mut reported, &events);
            while draining.try_join_next().is_some() {}
            tokio::select! {
                () = tokio::time::sleep(self.config.poll) => {}
                () = cancel.cancelled() => break,
            }
        }

        tracing::info!(
            workers = slots.len(),
            draining = draining.len(),
            "stopping every worker"
        );
        for (id, slot) in std::mem::take(&mut slots) {
            if let Slot::Running { child, pid, .. } = slot {
                draining.spawn(self.stop(child, id, pid, events.clone()));
            }
        }
        report(&slots, &mut reported, &events);
        while draining.join_next().await.is_some() {}
        tracing::info!("every worker has stopped");
    }

    /// Starts the worker of `instance_id`; on failure, schedules a retry.
    fn start(
        &self,
        instance_id: &str,
        failures: u32,
        events: &mpsc::UnboundedSender<FleetEvent>,
    ) -> Slot {
        match self.worker.command(instance_id).spawn() {
            Ok(child) => {
                let pid = child.id().unwrap_or_default();
                tracing::info!(
                    instance_id,
                    pid,
                    command = %self.worker.display(instance_id),
                    "worker started"
                );
                let _ = events.send(FleetEvent::Started {
                    instance_id: instance_id.to_string(),
                    pid,
                });
                Slot::Running {
                    child,
                    pid,
                    since: Instant::now(),
                    failures,
                }
            }
            Err(error) => {
                let failures = failures + 1;
                let retry_in = self.config.restart.delay(failures);
                tracing::error!(
                    instance_id,
                    program = %self.worker.program.display(),
                    %error,
                    retry_in_ms = retry_in.as_millis() as u64,
                    "cannot start the worker"
                );
                let _ = events.send(FleetEvent::StartFailed {
                    instance_id: instance_id.to_string(),
                    error: error.to_string(),
                    retry_in,
                });
                Slot::Backoff {
                    until: Instant::now() + retry_in,
                    failures,
                }
            }
        }
    }

    /// Notices workers that exited on their own and schedules their restart.
    fn reap(&self, slots: &mut BTreeMap<String, Slot>, events: &mpsc::UnboundedSender<FleetEvent>) {
        for (id, slot) in slots.iter_mut() {
            let Slot::Running {
                child,
                pid,
                since,
                failures,
            } = slot
            else {
                continue;
            };
            let status = match child.try_wait() {
                Ok(Some(status)) => status,
                Ok(None) => continue,
                Err(error) => {
                    tracing::warn!(instance_id = %id, pid = *pid, %error, "cannot check the worker");
                    continue;
                }
            };
            let failures = if since.elapsed() >= self.config.restart.max {
                1
            } else {
                *failures + 1
            };
            let restart_in = self.config.restart.delay(failures);
            tracing::warn!(
                instance_id = %id,
                pid = *pid,
                %status,
                restart_in_ms = restart_in.as_millis() as u64,
                "worker exited while its instance is InService; restarting it"
            );
            let _ = events.send(FleetEvent::Exited {
                instance_id: id.clone(),
                pid: *pid,
                status: status.to_string(),
                restart_in,
            });
            *slot = Slot::Backoff {
                until: Instant::now() + restart_in,
                failures,
            };
        }
    }

    /// SIGTERM, then wait for the worker to drain; SIGKILL after the drain timeout.
    fn stop(
        &self,
        child: Child,
        instance_id: String,
        pid: u32,
        events: mpsc::UnboundedSender<FleetEvent>,
    ) -> impl Future<Output = ()> + Send + 'static {
        let timeout = self.config.drain_timeout;
        stop_worker(child, instance_id, pid, timeout, events)
    }
}

async fn stop_worker(
    mut child: Child,
    instance_id: String,
    pid: u32,
    timeout: Duration,
    events: mpsc::UnboundedSender<FleetEvent>,
) {
    let stopped = |status: Option<ExitStatus>, killed: bool| FleetEvent::Stopped {
        instance_id: instance_id.clone(),
        pid,
        status: status.map(|s| s.to_string()),
        killed,
    };
    // Not reaped yet, so the pid cannot have been reused.
    if let Ok(Some(status)) = child.try_wait() {
        tracing::info!(%instance_id, pid, %status, "worker had already exited");
        let _ = events.send(stopped(Some(status), false));
        return;
    }
    tracing::info!(%instance_id, pid, "SIGTERM: worker draining");
    let _ = events.send(FleetEvent::Stopping {
        instance_id: instance_id.clone(),
        pid,
    });
    if let Err(error) = sigterm(pid).await {
        tracing::error!(%instance_id, pid, %error, "cannot send SIGTERM; killing the worker");
        let _ = child.start_kill();
    }
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) => {
            tracing::info!(%instance_id, pid, %status, "worker stopped");
            let _ = events.send(stopped(Some(status), false));
        }
        Ok(Err(error)) => {
            tracing::warn!(%instance_id, pid, %error, "cannot wait for the worker");
            let _ = child.start_kill();
            let _ = events.send(stopped(None, true));
        }
        Err(_) => {
            tracing::warn!(
                %instance_id,
                pid,
                timeout_secs = timeout.as_secs(),
                "worker did not drain in time: SIGKILL"
            );
            let _ = child.start_kill();
            let status = child.wait().await.ok();
            let _ = events.send(stopped(status, true));
        }
    }
}

/// Sends SIGTERM with `kill(1)`.
async fn sigterm(pid: u32) -> std::io::Result<()> {
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .await?;
    if status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!("kill -TERM {pid}: {status}")))
    }
}

fn report(
    slots: &BTreeMap<String, Slot>,
    reported: &mut Option<Vec<String>>,
    events: &mpsc::UnboundedSender<FleetEvent>,
) {
    let live: Vec<String> = slots
        .iter()
        .filter(|(_, slot)| matches!(slot, Slot::Running { .. }))
        .map(|(id, _)| id.clone())
        .collect();
    if reported.as_ref() != Some(&live) {
        tracing::info!(workers = live.len(), instances = ?live, "fleet changed");
        let _ = events.send(FleetEvent::Workers(live.clone()));
        *reported = Some(live);
    }
}

#[cfg(test)]
mod tests;
