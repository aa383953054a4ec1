//! Prometheus metrics of `ballast run`, all prefixed `ballast_`.

use std::sync::atomic::AtomicU64;
use std::sync::{Mutex, PoisonError};

use ballast_aws::CallRecorder;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::status::Tracker;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BlueprintLabels {
    pub blueprint: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReconcileLabels {
    pub blueprint: String,
    /// `ok`, `error` or `invalid`.
    pub result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResourceLabels {
    pub blueprint: String,
    pub kind: &'static str,
    pub resource: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabels {
    pub blueprint: String,
    pub kind: &'static str,
    pub resource: String,
    /// `synced`, `drifted` or `error`.
    pub status: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PolicyLabels {
    pub blueprint: String,
    pub policy: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ScalingLabels {
    pub blueprint: String,
    pub policy: String,
    /// `out` or `in`.
    pub direction: &'static str,
}

/// Every metric the controller exports.
#[derive(Debug)]
pub struct ServiceMetrics {
    registry: Registry,
    pub reconcile_duration: Family<BlueprintLabels, Histogram>,
    pub reconciles: Family<ReconcileLabels, Counter>,
    pub drift: Family<ResourceLabels, Gauge>,
    pub status: Family<StatusLabels, Gauge>,
    pub leader: Family<BlueprintLabels, Gauge>,
    /// 1 while the blueprint is suspended (`ballast suspend`), as read at the last resync.
    pub suspended: Family<BlueprintLabels, Gauge>,
    /// Resources declared with `management: observe`, as of the last plan.
    pub observed: Family<BlueprintLabels, Gauge>,
    pub desired_capacity: Family<PolicyLabels, Gauge>,
    pub in_service: Family<PolicyLabels, Gauge>,
    pub backlog_per_instance: Family<PolicyLabels, Gauge<f64, AtomicU64>>,
    pub scaling_actions: Family<ScalingLabels, Counter>,
    /// Statuses last exported per blueprint, so resources that left are removed.
    exported: Mutex<Vec<StatusLabels>>,
}

impl ServiceMetrics {
    pub fn new(calls: CallRecorder) -> Self {
        let mut registry = Registry::with_prefix("ballast");
        let metrics = ServiceMetrics {
            registry: Registry::default(),
            reconcile_duration: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.01, 2.0, 14))
            }),
            reconciles: Family::default(),
            drift: Family::default(),
            status: Family::default(),
            leader: Family::default(),
            suspended: Family::default(),
            observed: Family::default(),
            desired_capacity: Family::default(),
            in_service: Family::default(),
            backlog_per_instance: Family::default(),
            scaling_actions: Family::default(),
            exported: Mutex::new(Vec::new()),
        };
        registry.register(
            "reconcile_duration_seconds",
            "Time of one reconcile of a blueprint (observe, plan, apply)",
            metrics.reconcile_duration.clone(),
        );
        registry.register(
            "reconciles",
            "Reconciles by blueprint and result",
            metrics.reconciles.clone(),
        );
        registry.register(
            "resource_drift",
            "1 when the resource differs from its blueprint",
            metrics.drift.clone(),
        );
        registry.register(
            "resource_status",
            "1 for the resource's current status (synced, drifted or error)",
            metrics.status.clone(),
        );
        registry.register(
            "leader",
            "1 while this replica holds the blueprint's lease",
            metrics.leader.clone(),
        );
        registry.register(
            "blueprint_suspended",
            "1 while the blueprint is suspended (ballast suspend): observed and reported, nothing written, no scaling",
            metrics.suspended.clone(),
        );
        registry.register(
            "observed_resources",
            "Resources declared with management: observe (drift reported, never corrected)",
            metrics.observed.clone(),
        );
        registry.register(
            "fleet_desired_capacity",
            "Desired capacity of the fleet after the last evaluation",
            metrics.desired_capacity.clone(),
        );
        registry.register(
            "fleet_in_service_instances",
            "In-service instances of the fleet at the last evaluation",
            metrics.in_service.clone(),
        );
        registry.register(
            "backlog_per_instance",
            "Visible messages per in-service instance at the last evaluation",
            metrics.backlog_per_instance.clone(),
        );
        registry.register(
            "scaling_actions",
            "Capacity changes made by the autoscaler",
            metrics.scaling_actions.clone(),
        );
        registry.register_collector(Box::new(AwsCalls(calls)));
        ServiceMetrics {
            registry,
            ..metrics
        }
    }

    /// Exports the tracker's statuses of one blueprint, clearing resources it no longer has.
    pub fn record_statuses(&self, blueprint: &str, tracker: &Tracker) {
        // A poisoned lock is taken over: the list only names exported series, and rebuilding
        // it below is the same whatever a panicking holder left behind.
        let mut exported = self.exported.lock().unwrap_or_else(PoisonError::into_inner);
        exported.retain(|labels| {
            if labels.blueprint == blueprint {
                self.status.remove(labels);
                self.drift.remove(&ResourceLabels {
                    blueprint: labels.blueprint.clone(),
                    kind: labels.kind,
                    resource: labels.resource.clone(),
                });
                false
            } else {
                true
            }
        });
        for (id, status) in tracker.statuses() {
            let labels = StatusLabels {
                blueprint: blueprint.to_string(),
                kind: id.kind.as_str(),
                resource: id.name.clone(),
                status: status.label(),
            };
            self.status.get_or_create(&labels).set(1);
            self.drift
                .get_or_create(&ResourceLabels {
                    blueprint: blueprint.to_string(),
                    kind: id.kind.as_str(),
                    resource: id.name.clone(),
                })
                .set(i64::from(status.label() == "drifted"));
            exported.push(labels);
        }
    }

    /// The text exposition format. Writing into a `String` does not fail; an error can only
    /// come from a metric's own encoder and is passed on rather than unwrapped.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

/// `ballast_aws_calls_total{operation,outcome}` read from the clients' call recorder; the
/// operation is the call's label, `service:Operation` (e.g. `sqs:GetQueueAttributes`).
#[derive(Debug)]
struct AwsCalls(CallRecorder);

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    operation: String,
    outcome: &'static str,
}

impl Collector for AwsCalls {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut family = encoder.encode_descriptor(
            "aws_calls",
            "AWS SDK operations by operation (service:Operation) and outcome",
            None,
            prometheus_client::metrics::MetricType::Counter,
        )?;
        for (key, count) in self.0.snapshot() {
            let labels = CallLabels {
                operation: key.label(),
                outcome: key.outcome,
            };
            ConstCounter::new(count).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}
