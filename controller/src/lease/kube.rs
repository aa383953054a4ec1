//! Leases as `coordination.k8s.io/v1` Lease objects, for replicas inside a cluster.
//!
//! The object's `resourceVersion` makes every write conditional: a takeover or renewal replaces
//! the object as it was read, so of two concurrent writers one gets `409 Conflict` and reports
//! the lease as held by the other.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use k8s_openapi::api::coordination::v1::{Lease as K8sLease, LeaseSpec as K8sLeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff;
use kube::api::{Api, PostParams};
use tracing::instrument;

use super::{LeaseError, LeaseSpec, LeaseStatus};
use ballast_runtime::Clock;
use ballast_runtime::duration_millis;

/// A lease held in a Kubernetes Lease object.
#[derive(Debug)]
pub struct KubeLease {
    // Boxed: `Api` is large, and `Lease` holds either backend inline.
    api: Box<Api<K8sLease>>,
    namespace: String,
    spec: LeaseSpec,
    clock: Arc<dyn Clock>,
}

impl KubeLease {
    pub fn new(
        client: kube::Client,
        namespace: &str,
        spec: LeaseSpec,
        clock: Arc<dyn Clock>,
    ) -> Self {
        KubeLease {
            api: Box::new(Api::namespaced(client, namespace)),
            namespace: namespace.to_string(),
            spec,
            clock,
        }
    }

    pub fn spec(&self) -> &LeaseSpec {
        &self.spec
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    pub(crate) fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    fn duration_seconds(&self) -> Result<i32, LeaseError> {
        // Kubernetes counts whole seconds; round up so the object never promises less.
        let secs = duration_millis(self.spec.duration).div_ceil(1000).max(1);
        i32::try_from(secs).map_err(|_| LeaseError::InvalidDuration(self.spec.duration))
    }

    /// Creates the Lease when absent; takes it over when it is free or expired; renews it when
    /// it is ours. A `409 Conflict` (someone wrote first) reports whoever holds it now.
    #[instrument(skip(self), fields(namespace = %self.namespace, lease = %self.spec.name, holder = %self.spec.holder))]
    pub async fn try_acquire(&self) -> Result<LeaseStatus, LeaseError> {
        let now = self.clock.now();
        let now_time = micro_time(now.as_millis())?;
        let until = now.to_system_time() + self.spec.duration;
        let duration_seconds = self.duration_seconds()?;
        let Some(mut existing) = self.api.get_opt(&self.spec.name).await? else {
            let lease = K8sLease {
                metadata: ObjectMeta {
                    name: Some(self.spec.name.clone()),
                    namespace: Some(self.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(K8sLeaseSpec {
                    holder_identity: Some(self.spec.holder.clone()),
                    lease_duration_seconds: Some(duration_seconds),
                    acquire_time: Some(now_time.clone()),
                    renew_time: Some(now_time),
                    lease_transitions: Some(0),
                    ..K8sLeaseSpec::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => {
                    tracing::info!("created lease");
                    Ok(LeaseStatus::Held { until })
                }
                Err(err) if is_conflict(&err) => self.after_conflict().await,
                Err(err) => Err(err.into()),
            };
        };

        let current = existing.spec.take().unwrap_or_default();
        let holder = current
            .holder_identity
            .clone()
            .filter(|holder| !holder.is_empty());
        let ours = holder.as_deref() == Some(self.spec.holder.as_str());
        if let Some(other) = holder.as_ref().filter(|_| !ours)
            && let Some(other_until) = expiry(&current, self.spec.duration)
            && other_until > now.to_system_time()
        {
            return Ok(LeaseStatus::HeldByOther {
                holder: other.clone(),
                until: other_until,
            });
        }
        let transitions = current.lease_transitions.unwrap_or(0);
        existing.spec = Some(K8sLeaseSpec {
            holder_identity: Some(self.spec.holder.clone()),
            lease_duration_seconds: Some(duration_seconds),
            acquire_time: if ours {
                current.acquire_time.clone().or(Some(now_time.clone()))
            } else {
                Some(now_time.clone())
            },
            renew_time: Some(now_time),
            lease_transitions: Some(if ours {
                transitions
            } else {
                transitions.saturating_add(1)
            }),
            ..current
        });
        // `existing` still carries the resourceVersion we read: the replace is conditional on it.
        match self
            .api
            .replace(&self.spec.name, &PostParams::default(), &existing)
            .await
        {
            Ok(_) => {
                if !ours {
                    tracing::info!(previous = ?holder, "took over lease");
                }
                Ok(LeaseStatus::Held { until })
            }
            Err(err) if is_conflict(&err) => self.after_conflict().await,
            Err(err) => Err(err.into()),
        }
    }

    /// After losing a race: whoever holds the lease now, for the next round to retry.
    async fn after_conflict(&self) -> Result<LeaseStatus, LeaseError> {
        tracing::debug!("lease written concurrently by another replica");
        let now = self.clock.now().to_system_time();
        let current = self
            .api
            .get_opt(&self.spec.name)
            .await?
            .and_then(|lease| lease.spec)
            .unwrap_or_default();
        let holder = current
            .holder_identity
            .clone()
            .filter(|holder| !holder.is_empty())
            .unwrap_or_else(|| "(concurrent writer)".to_string());
        let until = expiry(&current, self.spec.duration)
            .filter(|until| *until > now)
            .unwrap_or(now);
        Ok(LeaseStatus::HeldByOther { holder, until })
    }

    /// Clears `holderIdentity` if we hold the lease, so the next contender takes it at once.
    #[instrument(skip(self), fields(namespace = %self.namespace, lease = %self.spec.name, holder = %self.spec.holder))]
    pub async fn release(&self) -> Result<(), LeaseError> {
        let Some(mut existing) = self.api.get_opt(&self.spec.name).await? else {
            return Ok(());
        };
        let Some(spec) = existing.spec.as_mut() else {
            return Ok(());
        };
        if spec.holder_identity.as_deref() != Some(self.spec.holder.as_str()) {
            tracing::debug!("lease not ours any more; nothing to release");
            return Ok(());
        }
        spec.holder_identity = None;
        match self
            .api
            .replace(&self.spec.name, &PostParams::default(), &existing)
            .await
        {
            Ok(_) => Ok(()),
            // Written or deleted by someone else since we read it: not ours to release.
            Err(err) if is_conflict(&err) || is_not_found(&err) => {
                tracing::debug!(error = %err, "lease changed before release; leaving it");
                Ok(())
            }
            Err(err) => Err(err.into()),
        }
    }
}

/// When the holder's claim runs out: last renewal (or acquisition) plus the lease's duration.
/// `None` when the object records no time at all, i.e. the claim is already void.
fn expiry(spec: &K8sLeaseSpec, fallback: Duration) -> Option<SystemTime> {
    let renewed = spec.renew_time.as_ref().or(spec.acquire_time.as_ref())?;
    let duration = spec
        .lease_duration_seconds
        .and_then(|secs| u64::try_from(secs).ok())
        .map(Duration::from_secs)
        .unwrap_or(fallback);
    Some(SystemTime::from(renewed.0) + duration)
}

fn micro_time(millis: u64) -> Result<MicroTime, LeaseError> {
    i64::try_from(millis)
        .ok()
        .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
        .map(MicroTime)
        .ok_or(LeaseError::TimeOutOfRange { millis })
}

/// `409`: a stale `resourceVersion` (Conflict) or a concurrent create (AlreadyExists).
fn is_conflict(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(status) if status.code == 409)
}

fn is_not_found(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(status) if status.code == 404)
}
