//! Per-resource status and error backoff of the reconcile loop: pure data, no I/O.
//!
//! A resource that failed is held back from the next applies for an exponentially growing
//! delay; one that failed for a reason retrying cannot fix (access denied, an invalid
//! request, a same-named resource Ballast does not own) is held until the blueprint or the
//! credentials change, so a broken resource never becomes a retry storm.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use ballast_aws::AwsErrorKind;
use ballast_blueprint::ResourceId;

use crate::autoscale::Timestamp;
use crate::provision::{Action, Plan};

/// What the controller last saw of one resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResourceStatus {
    Synced,
    /// Differs from the blueprint (missing, changed fields, or to be removed).
    Drifted {
        fields: Vec<String>,
    },
    Error {
        reason: String,
        terminal: bool,
    },
}

impl ResourceStatus {
    pub fn label(&self) -> &'static str {
        match self {
            ResourceStatus::Synced => "synced",
            ResourceStatus::Drifted { .. } => "drifted",
            ResourceStatus::Error { .. } => "error",
        }
    }
}

/// How a failure should be retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureClass {
    /// Retry after a growing delay.
    Retry,
    /// Retry after a growing delay, and slow the whole loop down.
    Throttled,
    /// Do not retry until the blueprint or the credentials change.
    Terminal,
}

impl FailureClass {
    pub fn of_aws(kind: AwsErrorKind) -> Self {
        match kind {
            AwsErrorKind::Throttled => FailureClass::Throttled,
            AwsErrorKind::AccessDenied | AwsErrorKind::Validation => FailureClass::Terminal,
            _ => FailureClass::Retry,
        }
    }
}

pub use ballast_runtime::Backoff;

#[derive(Debug, Clone)]
struct Entry {
    status: ResourceStatus,
    failures: u32,
    retry_at: Option<Timestamp>,
    /// The inputs fingerprint under which a terminal failure happened.
    terminal_under: Option<u64>,
}

/// Status of every resource of one blueprint, plus the loop's throttling slowdown.
#[derive(Debug, Clone)]
pub struct Tracker {
    backoff: Backoff,
    entries: BTreeMap<ResourceId, Entry>,
    throttled_rounds: u32,
}

impl Tracker {
    pub fn new(backoff: Backoff) -> Self {
        Tracker {
            backoff,
            entries: BTreeMap::new(),
            throttled_rounds: 0,
        }
    }

    /// Resources not to touch now: backing off, or terminal under the same inputs.
    /// `fingerprint` identifies the blueprint text and the credentials in use.
    pub fn held(&self, now: Timestamp, fingerprint: u64) -> BTreeSet<ResourceId> {
        self.entries
            .iter()
            .filter(|(_, e)| match e.terminal_under {
                Some(under) => under == fingerprint,
                None => e.retry_at.is_some_and(|at| at > now),
            })
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Records what a plan says, keeping errors of resources that are held back.
    pub fn observed(&mut self, plan: &Plan, held: &BTreeSet<ResourceId>) {
        let planned: BTreeSet<&ResourceId> = plan.changes.iter().map(|c| &c.resource).collect();
        self.entries
            .retain(|id, _| planned.contains(id) || held.contains(id));
        for change in &plan.changes {
            if held.contains(&change.resource) {
                continue;
            }
            let status = match &change.action {
                // An observed resource reports what it would need under `manage`.
                Action::Observed { would } => status_of(would),
                other => status_of(other),
            };
            let entry = self
                .entries
                .entry(change.resource.clone())
                .or_insert(Entry {
                    status: ResourceStatus::Synced,
                    failures: 0,
                    retry_at: None,
                    terminal_under: None,
                });
            entry.status = status;
        }
    }

    /// A write to the resource succeeded: it is in sync and its backoff is over.
    pub fn succeeded(&mut self, id: &ResourceId) {
        if let Some(entry) = self.entries.get_mut(id) {
            *entry = Entry {
                status: ResourceStatus::Synced,
                failures: 0,
                retry_at: None,
                terminal_under: None,
            };
        }
    }

    /// A write to (or read of) the resource failed.
    pub fn failed(
        &mut self,
        id: &ResourceId,
        class: FailureClass,
        reason: String,
        now: Timestamp,
        fingerprint: u64,
    ) {
        let entry = self.entries.entry(id.clone()).or_insert(Entry {
            status: ResourceStatus::Synced,
            failures: 0,
            retry_at: None,
            terminal_under: None,
        });
        entry.failures = entry.failures.saturating_add(1);
        entry.retry_at = Some(now + self.backoff.delay(entry.failures));
        entry.terminal_under = (class == FailureClass::Terminal).then_some(fingerprint);
        entry.status = ResourceStatus::Error {
            reason,
            terminal: class == FailureClass::Terminal,
        };
    }

    /// Ends a round: a throttled round doubles the next resync delay (up to 8x), a clean one
    /// brings it back.
    pub fn end_round(&mut self, throttled: bool) {
        self.throttled_rounds = if throttled {
            (self.throttled_rounds + 1).min(3)
        } else {
            0
        };
    }

    /// The resync delay after this round.
    pub fn next_delay(&self, resync: Duration) -> Duration {
        resync.saturating_mul(1 << self.throttled_rounds)
    }

    pub fn statuses(&self) -> impl Iterator<Item = (&ResourceId, &ResourceStatus)> {
        self.entries.iter().map(|(id, e)| (id, &e.status))
    }

    pub fn status(&self, id: &ResourceId) -> Option<&ResourceStatus> {
        self.entries.get(id).map(|e| &e.status)
    }
}

/// What one planned action says of a resource's status.
fn status_of(action: &Action) -> ResourceStatus {
    match action {
        Action::NoChange | Action::Retain | Action::Observed { .. } => ResourceStatus::Synced,
        Action::Update { changes } | Action::Adopt { changes } | Action::Replace { changes } => {
            ResourceStatus::Drifted {
                fields: changes.iter().map(|c| c.field.clone()).collect(),
            }
        }
        Action::Create => ResourceStatus::Drifted {
            fields: vec!["(missing)".into()],
        },
        Action::Delete => ResourceStatus::Drifted {
            fields: vec!["(not in the blueprint)".into()],
        },
        Action::Conflict { reason } => ResourceStatus::Error {
            reason: reason.to_string(),
            terminal: true,
        },
    }
}

#[cfg(test)]
mod tests {
    use ballast_blueprint::ResourceKind;

    use super::*;
    use crate::provision::diff::{FieldChange, PlannedChange, Summary};
    use crate::provision::state::FieldClass;

    const BACKOFF: Backoff = Backoff {
        base: Duration::from_secs(10),
        max: Duration::from_secs(300),
    };

    fn queue(name: &str) -> ResourceId {
        ResourceId::new(ResourceKind::Queue, name)
    }

    fn plan(changes: Vec<(ResourceId, Action)>) -> Plan {
        Plan {
            format_version: 1,
            blueprint: "t".into(),
            changes: changes
                .into_iter()
                .map(|(resource, action)| PlannedChange {
                    physical_name: resource.name.clone(),
                    resource,
                    action,
                    attributes: Vec::new(),
                })
                .collect(),
            safety_overrides: vec![],
            summary: Summary::default(),
            orphans: Vec::new(),
            targets: Vec::new(),
        }
    }

    fn at(secs: u64) -> Timestamp {
        Timestamp::from_secs(secs)
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let delays: Vec<u64> = (1..=7).map(|n| BACKOFF.delay(n).as_secs()).collect();
        assert_eq!(delays, [10, 20, 40, 80, 160, 300, 300]);
        assert_eq!(BACKOFF.delay(u32::MAX), Duration::from_secs(300));
    }

    #[test]
    fn a_plan_sets_synced_and_drifted_with_the_changed_fields() {
        let mut tracker = Tracker::new(BACKOFF);
        let change = FieldChange {
            field: "visibilityTimeout".into(),
            live: "7s".into(),
            desired: "60s".into(),
            class: FieldClass::Enforced,
        };
        tracker.observed(
            &plan(vec![
                (queue("a"), Action::NoChange),
                (
                    queue("b"),
                    Action::Update {
                        changes: vec![change],
                    },
                ),
                (queue("c"), Action::Create),
            ]),
            &BTreeSet::new(),
        );
        assert_eq!(tracker.status(&queue("a")), Some(&ResourceStatus::Synced));
        assert_eq!(
            tracker.status(&queue("b")),
            Some(&ResourceStatus::Drifted {
                fields: vec!["visibilityTimeout".into()]
            })
        );
        assert_eq!(
            tracker.status(&queue("c")).map(|s| s.label()),
            Some("drifted")
        );
    }

    #[test]
    fn an_observed_resource_reports_the_drift_it_would_fix() {
        let mut tracker = Tracker::new(BACKOFF);
        let change = FieldChange {
            field: "maxSize".into(),
            live: "8".into(),
            desired: "4".into(),
            class: FieldClass::Enforced,
        };
        tracker.observed(
            &plan(vec![
                (
                    queue("a"),
                    Action::Update {
                        changes: vec![change],
                    }
                    .observed(),
                ),
                (queue("b"), Action::NoChange.observed()),
            ]),
            &BTreeSet::new(),
        );
        assert_eq!(
            tracker.status(&queue("a")),
            Some(&ResourceStatus::Drifted {
                fields: vec!["maxSize".into()]
            })
        );
        assert_eq!(tracker.status(&queue("b")), Some(&ResourceStatus::Synced));
    }

    #[test]
    fn a_failed_resource_is_held_for_its_backoff_then_retried() {
        let mut tracker = Tracker::new(BACKOFF);
        tracker.failed(&queue("a"), FailureClass::Retry, "boom".into(), at(100), 1);
        assert!(tracker.held(at(105), 1).contains(&queue("a")));
        assert!(tracker.held(at(110), 1).is_empty());
        tracker.failed(&queue("a"), FailureClass::Retry, "boom".into(), at(110), 1);
        assert!(tracker.held(at(125), 1).contains(&queue("a")));
        assert!(tracker.held(at(130), 1).is_empty());
        tracker.succeeded(&queue("a"));
        tracker.failed(&queue("a"), FailureClass::Retry, "boom".into(), at(200), 1);
        assert!(
            tracker.held(at(210), 1).is_empty(),
            "success resets backoff"
        );
    }

    #[test]
    fn a_terminal_failure_holds_until_the_inputs_change() {
        let mut tracker = Tracker::new(BACKOFF);
        tracker.failed(
            &queue("a"),
            FailureClass::of_aws(AwsErrorKind::AccessDenied),
            "AccessDenied".into(),
            at(0),
            7,
        );
        assert!(tracker.held(at(1_000_000), 7).contains(&queue("a")));
        assert!(tracker.held(at(1), 8).is_empty());
        assert_eq!(
            tracker.status(&queue("a")),
            Some(&ResourceStatus::Error {
                reason: "AccessDenied".into(),
                terminal: true
            })
        );
    }

    #[test]
    fn held_resources_keep_their_error_through_a_plan() {
        let mut tracker = Tracker::new(BACKOFF);
        tracker.failed(&queue("a"), FailureClass::Retry, "boom".into(), at(0), 1);
        let held = tracker.held(at(1), 1);
        tracker.observed(&plan(vec![(queue("a"), Action::Create)]), &held);
        assert_eq!(
            tracker.status(&queue("a")).map(|s| s.label()),
            Some("error")
        );
    }

    #[test]
    fn resources_gone_from_the_plan_are_forgotten() {
        let mut tracker = Tracker::new(BACKOFF);
        tracker.observed(
            &plan(vec![(queue("a"), Action::NoChange)]),
            &BTreeSet::new(),
        );
        tracker.observed(&plan(vec![]), &BTreeSet::new());
        assert_eq!(tracker.statuses().count(), 0);
    }

    #[test]
    fn throttling_slows_the_loop_down_and_recovers() {
        let mut tracker = Tracker::new(BACKOFF);
        let resync = Duration::from_secs(60);
        for expected in [120, 240, 480, 480] {
            tracker.end_round(true);
            assert_eq!(tracker.next_delay(resync).as_secs(), expected);
        }
        tracker.end_round(false);
        assert_eq!(tracker.next_delay(resync), resync);
        assert_eq!(
            FailureClass::of_aws(AwsErrorKind::Throttled),
            FailureClass::Throttled
        );
        assert_eq!(
            FailureClass::of_aws(AwsErrorKind::Transient),
            FailureClass::Retry
        );
    }
}
