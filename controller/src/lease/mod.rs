//! One writer at a time: leader election among `ballast run` replicas and the apply lease.
//!
//! A [`Lease`] is a named, expiring claim held by one holder identity. Two backends implement it:
//!
//! - [`dynamo::DynamoLease`]: one item per lease in a DynamoDB table (default
//!   [`DEFAULT_TABLE`]), written with conditional puts, for controllers outside a cluster and
//!   for `ballast apply` / `ballast destroy`, which take the same lease as a running controller
//!   of the blueprint ([`blueprint_lease_name`]).
//! - [`kube::KubeLease`]: a `coordination.k8s.io/v1` Lease object, for replicas in a cluster.
//!
//! Neither backend needs its holder to clean up: a lease that is not renewed within its
//! duration expires, and the next contender takes it over. "Now" comes from an injected
//! [`Clock`], so expiry is tested by moving a [`ballast_runtime::ManualClock`].
//!
//! [`LeaderElector`] keeps trying to take (or renew) a lease every third of its duration and
//! publishes whether this process leads; [`HeldLease`] keeps a lease that was taken once
//! (the CLI's apply lease) renewed until it is released, and reports when it is lost.

pub mod dynamo;
pub mod kube;
pub mod suspension;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ballast_aws::AwsError;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use dynamo::{DynamoLease, LeaseRecord, ensure_table};
pub use kube::KubeLease;
pub use suspension::{SuspendOutcome, Suspension, Suspensions};

/// The DynamoDB table that holds lease items unless told otherwise (`--lease-table`).
pub const DEFAULT_TABLE: &str = "ballast-leases";

/// The lease every writer of one blueprint takes: `ballast apply`, `ballast destroy` and the
/// controller running it.
pub fn blueprint_lease_name(blueprint_name: &str) -> String {
    format!("ballast-blueprint-{blueprint_name}")
}

/// What to claim, as whom, for how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseSpec {
    /// The lease's name: the DynamoDB item key or the Kubernetes Lease object name.
    pub name: String,
    /// This process's identity, e.g. [`default_holder`].
    pub holder: String,
    /// How long one acquisition or renewal lasts without being renewed.
    pub duration: Duration,
}

/// The outcome of [`Lease::try_acquire`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseStatus {
    /// We hold the lease until `until` unless we renew it.
    Held { until: SystemTime },
    /// Someone else holds it, at least until `until`.
    HeldByOther { holder: String, until: SystemTime },
}

impl LeaseStatus {
    pub fn is_held(&self) -> bool {
        matches!(self, LeaseStatus::Held { .. })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error("Kubernetes API: {0}")]
    Kube(#[from] ::kube::Error),
    /// Another holder took the lease while we thought we held it.
    #[error("lease `{name}` was lost: {holder} holds it until {}", format_time(*until))]
    Lost {
        name: String,
        holder: String,
        until: SystemTime,
    },
    /// Renewing failed until the lease ran out.
    #[error("lease `{name}` expired: it could not be renewed")]
    RenewalFailed {
        name: String,
        #[source]
        source: Box<LeaseError>,
    },
    #[error("lease table `{table}` is not ACTIVE after {waited:?} (status {status})")]
    TableNotActive {
        table: String,
        status: String,
        waited: Duration,
    },
    #[error(
        "lease item `{name}` in table `{table}`: attribute `{attribute}` is missing or malformed"
    )]
    MalformedItem {
        table: String,
        name: String,
        attribute: &'static str,
    },
    #[error("lease duration {0:?} does not fit a Kubernetes Lease (whole seconds, at most 2^31-1)")]
    InvalidDuration(Duration),
    #[error("time {millis} ms after the epoch cannot be written as a Kubernetes timestamp")]
    TimeOutOfRange { millis: u64 },
}

/// A lease in one of the backends. Enum dispatch keeps the futures `Send` without boxing.
#[derive(Debug)]
pub enum Lease {
    Dynamo(dynamo::DynamoLease),
    Kube(kube::KubeLease),
}

impl From<dynamo::DynamoLease> for Lease {
    fn from(lease: dynamo::DynamoLease) -> Self {
        Lease::Dynamo(lease)
    }
}

impl From<kube::KubeLease> for Lease {
    fn from(lease: kube::KubeLease) -> Self {
        Lease::Kube(lease)
    }
}

impl Lease {
    /// Takes the lease if it is free, expired or already ours (then it is renewed); otherwise
    /// reports who holds it. Never waits for it.
    pub async fn try_acquire(&self) -> Result<LeaseStatus, LeaseError> {
        match self {
            Lease::Dynamo(lease) => lease.try_acquire().await,
            Lease::Kube(lease) => lease.try_acquire().await,
        }
    }

    /// Gives the lease up, only if we hold it; a lease someone else holds is left alone.
    pub async fn release(&self) -> Result<(), LeaseError> {
        match self {
            Lease::Dynamo(lease) => lease.release().await,
            Lease::Kube(lease) => lease.release().await,
        }
    }

    pub fn spec(&self) -> &LeaseSpec {
        match self {
            Lease::Dynamo(lease) => lease.spec(),
            Lease::Kube(lease) => lease.spec(),
        }
    }

    fn now(&self) -> SystemTime {
        let clock = match self {
            Lease::Dynamo(lease) => lease.clock(),
            Lease::Kube(lease) => lease.clock(),
        };
        clock.now().to_system_time()
    }
}

/// Runs leader election on one lease.
pub struct LeaderElector;

impl LeaderElector {
    /// Spawns the election loop; the watch channel says whether we lead right now. On cancel it
    /// releases the lease (if held) and the JoinHandle completes.
    ///
    /// Every `duration / 3` the loop tries to take or renew the lease. A failed attempt (the
    /// store is unreachable) keeps leadership only while the last successful renewal lasts, so
    /// by the time another replica can take over, this one has stepped down.
    pub fn spawn(
        lease: Lease,
        cancel: CancellationToken,
    ) -> (watch::Receiver<bool>, JoinHandle<()>) {
        let (tx, rx) = watch::channel(false);
        let handle = tokio::spawn(elect(lease, cancel, tx));
        (rx, handle)
    }
}

fn renew_period(duration: Duration) -> Duration {
    (duration / 3).max(Duration::from_millis(10))
}

async fn elect(lease: Lease, cancel: CancellationToken, leading: watch::Sender<bool>) {
    let spec = lease.spec().clone();
    let period = renew_period(spec.duration);
    // Until when our last successful acquisition lasts.
    let mut held_until: Option<SystemTime> = None;
    // Whether an attempt was cut short by cancellation: it may have taken the lease.
    let mut interrupted = false;
    loop {
        let attempt = tokio::select! {
            biased;
            () = cancel.cancelled() => {
                interrupted = true;
                break;
            }
            attempt = lease.try_acquire() => attempt,
        };
        let lead = match attempt {
            Ok(LeaseStatus::Held { until }) => {
                held_until = Some(until);
                true
            }
            Ok(LeaseStatus::HeldByOther { holder, until }) => {
                held_until = None;
                tracing::debug!(lease = %spec.name, %holder, until = %format_time(until), "lease held by another replica");
                false
            }
            Err(error) => {
                let still = held_until.is_some_and(|until| lease.now() < until);
                if !still {
                    held_until = None;
                }
                tracing::warn!(lease = %spec.name, error = %error, still_leading = still, "lease attempt failed");
                still
            }
        };
        leading.send_if_modified(|current| {
            if *current == lead {
                return false;
            }
            *current = lead;
            if lead {
                tracing::info!(lease = %spec.name, holder = %spec.holder, "became leader");
            } else {
                tracing::info!(lease = %spec.name, holder = %spec.holder, "stopped leading");
            }
            true
        });
        tokio::select! {
            biased;
            () = cancel.cancelled() => break,
            () = tokio::time::sleep(period) => {}
        }
    }
    leading.send_replace(false);
    if held_until.is_some() || interrupted {
        match lease.release().await {
            Ok(()) => tracing::info!(lease = %spec.name, holder = %spec.holder, "released lease"),
            Err(error) => {
                tracing::warn!(lease = %spec.name, error = %error, "could not release lease; it will expire on its own");
            }
        }
    }
}

/// A lease taken once and kept renewed in the background until [`HeldLease::release`].
///
/// Used by `ballast apply` / `ballast destroy`: the command takes the lease with
/// [`Lease::try_acquire`], then hands it to [`HeldLease::start`], and races its work against
/// [`HeldLease::lost`].
#[derive(Debug)]
pub struct HeldLease {
    lease: Arc<Lease>,
    stop: CancellationToken,
    renewer: JoinHandle<()>,
    lost: oneshot::Receiver<LeaseError>,
}

impl HeldLease {
    /// Starts renewing a lease we hold every `renew_every` (a third of its duration is usual).
    pub fn start(lease: Lease, renew_every: Duration) -> Self {
        let lease = Arc::new(lease);
        let stop = CancellationToken::new();
        let (lost_tx, lost) = oneshot::channel();
        let renewer = tokio::spawn(renew(
            Arc::clone(&lease),
            renew_every,
            stop.clone(),
            lost_tx,
        ));
        HeldLease {
            lease,
            stop,
            renewer,
            lost,
        }
    }

    pub fn spec(&self) -> &LeaseSpec {
        self.lease.spec()
    }

    /// Completes only if the lease is lost: another holder took it, or renewing failed until it
    /// expired. Race the guarded work against this; poll it at most once to completion.
    pub async fn lost(&mut self) -> LeaseError {
        match (&mut self.lost).await {
            Ok(error) => error,
            // The renewer stopped without losing the lease: nothing will ever be lost.
            Err(_) => std::future::pending().await,
        }
    }

    /// Stops renewing and releases the lease (only if we still hold it).
    pub async fn release(self) -> Result<(), LeaseError> {
        self.stop.cancel();
        if let Err(error) = self.renewer.await {
            tracing::warn!(%error, "lease renewer panicked");
        }
        self.lease.release().await
    }
}

async fn renew(
    lease: Arc<Lease>,
    every: Duration,
    stop: CancellationToken,
    lost: oneshot::Sender<LeaseError>,
) {
    let name = lease.spec().name.clone();
    // Checked: an absurd --lease-duration must not panic the renewal task; counting the lease
    // as held only until now is the safe reading (a failed renewal then reports the loss).
    let now = lease.now();
    let mut held_until = now.checked_add(lease.spec().duration).unwrap_or(now);
    loop {
        tokio::select! {
            biased;
            () = stop.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        let attempt = tokio::select! {
            biased;
            () = stop.cancelled() => return,
            attempt = lease.try_acquire() => attempt,
        };
        match attempt {
            Ok(LeaseStatus::Held { until }) => held_until = until,
            Ok(LeaseStatus::HeldByOther { holder, until }) => {
                let _ = lost.send(LeaseError::Lost {
                    name,
                    holder,
                    until,
                });
                return;
            }
            Err(error) if lease.now() >= held_until => {
                let _ = lost.send(LeaseError::RenewalFailed {
                    name,
                    source: Box::new(error),
                });
                return;
            }
            Err(error) => {
                tracing::warn!(lease = %name, %error, until = %format_time(held_until), "could not renew lease; retrying");
            }
        }
    }
}

/// Default holder identity: `$POD_NAME`, else `$HOSTNAME`, else the kernel's host name, then
/// `-` and the process id.
pub fn default_holder() -> String {
    let host = ["POD_NAME", "HOSTNAME"]
        .iter()
        .filter_map(|var| std::env::var(var).ok())
        .chain(
            ["/proc/sys/kernel/hostname", "/etc/hostname"]
                .iter()
                .filter_map(|path| std::fs::read_to_string(path).ok()),
        )
        .map(|name| name.trim().to_string())
        .find(|name| !name.is_empty())
        .unwrap_or_else(|| "unknown-host".to_string());
    format!("{host}-{}", std::process::id())
}

/// `2025-01-02T03:04:05Z` (UTC, whole seconds).
pub fn format_time(time: SystemTime) -> String {
    use k8s_openapi::jiff;
    match jiff::Timestamp::try_from(time) {
        Ok(ts) => ts
            .round(jiff::Unit::Second)
            .unwrap_or(ts)
            .strftime("%Y-%m-%dT%H:%M:%SZ")
            .to_string(),
        Err(_) => format!("{time:?}"),
    }
}

#[cfg(test)]
mod tests;
