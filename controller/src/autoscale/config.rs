//! Policy settings from a blueprint's `scalingPolicies` entry.

use std::fmt;

use ballast_blueprint::{Blueprint, Comparison, ScalingMode, ScalingPolicy};

use super::{Mode, PolicyConfig};

#[derive(Debug, thiserror::Error)]
pub enum PolicyLookupError {
    #[error("the blueprint has no scaling policy{}", .0.as_ref().map(|n| format!(" named `{n}`")).unwrap_or_default())]
    NotFound(Option<String>),
}

/// The policy named `name`, or the blueprint's first one.
pub fn find_policy<'a>(
    bp: &'a Blueprint,
    name: Option<&str>,
) -> Result<&'a ScalingPolicy, PolicyLookupError> {
    let mut policies = bp.spec.scaling_policies.iter();
    match name {
        Some(n) => policies.find(|p| p.name == n),
        None => policies.next(),
    }
    .ok_or_else(|| PolicyLookupError::NotFound(name.map(String::from)))
}

/// Bounds come from the fleet: the Auto Scaling group's min/max, or the deployment's replicas.
pub fn policy_config(bp: &Blueprint, policy: &ScalingPolicy) -> PolicyConfig {
    let (min, max) = match policy
        .fleet
        .as_deref()
        .and_then(|f| bp.auto_scaling_group(f))
    {
        Some(group) => (group.min_size, group.max_size),
        None => (
            policy.min_replicas.unwrap_or(1),
            policy.max_replicas.unwrap_or(1),
        ),
    };
    PolicyConfig {
        mode: match policy.mode {
            ScalingMode::Backlog => Mode::Backlog,
            ScalingMode::Queueing => Mode::Queueing,
        },
        latency_objective: policy.latency_objective_in_force().std(),
        service_rate_milli: u64::from(policy.service_rate_per_instance).saturating_mul(1000),
        boot_time: policy.boot_time.std(),
        min,
        max,
        target_backlog_per_instance: policy.target_backlog_in_force(),
        scale_in_cooldown: policy.scale_in_cooldown.std(),
        stabilization_window: policy.stabilization_window.map(|w| w.std()),
        tolerance_percent: policy.tolerance_percent,
        max_scale_out_step: policy.max_scale_out_step,
        max_scale_in_step: policy.max_scale_in_step,
        prediction_days: policy.prediction.as_ref().map(|p| p.days),
        backlog_alarm: backlog_alarm(bp, &policy.queue),
    }
}

/// The lowest count of visible messages at which one of the blueprint's alarms on `queue` fires
/// (`ApproximateNumberOfMessagesVisible` above, or at, its threshold); `None` without one.
fn backlog_alarm(bp: &Blueprint, queue: &str) -> Option<u64> {
    bp.spec
        .alarms
        .iter()
        .filter(|a| {
            a.metric.queue.as_deref() == Some(queue)
                && a.metric.metric == super::reading::MESSAGES_VISIBLE
        })
        .filter_map(|a| {
            // Fires above the threshold: the backlog may reach its floor. At or above: one less.
            let threshold = a.threshold.0;
            let floor = if threshold.is_sign_negative() {
                0
            } else {
                u64::try_from(threshold.floor()).unwrap_or(u64::MAX)
            };
            match a.comparison {
                Comparison::GreaterThan => Some(floor),
                Comparison::GreaterThanOrEqual => Some(if threshold.fract().is_zero() {
                    floor.saturating_sub(1)
                } else {
                    floor
                }),
                Comparison::LessThan | Comparison::LessThanOrEqual => None,
            }
        })
        .min()
}

/// Everything the autoscaler takes from a blueprint for one policy: the policy as written, the
/// physical names it acts on and the settings derived with the fleet's bounds. A running
/// controller restarts its scaling loops when any of it changes (`ballast run` re-reads the
/// blueprint every resync).
#[derive(Debug, Clone, PartialEq)]
pub struct ScalingInputs {
    pub policy: ScalingPolicy,
    /// The queue's physical name; `None` when the blueprint does not declare it.
    pub queue: Option<String>,
    /// The Auto Scaling group's physical name, for a policy with a `fleet`.
    pub group: Option<String>,
    pub config: PolicyConfig,
}

/// The scaling inputs of every policy of `bp`, in blueprint order.
pub fn scaling_inputs(bp: &Blueprint) -> Vec<ScalingInputs> {
    bp.spec
        .scaling_policies
        .iter()
        .map(|policy| ScalingInputs {
            policy: policy.clone(),
            queue: bp.queue(&policy.queue).map(|q| bp.queue_name(q)),
            group: policy
                .fleet
                .as_deref()
                .and_then(|fleet| bp.auto_scaling_group(fleet))
                .map(|group| bp.group_name(group)),
            config: policy_config(bp, policy),
        })
        .collect()
}

/// One difference between two versions of a blueprint's scaling inputs, for the log.
#[derive(Debug, Clone, PartialEq)]
pub enum ScalingChange {
    Added {
        policy: String,
    },
    Removed {
        policy: String,
    },
    /// `field` is the blueprint's name of the field (`targetBacklogPerInstance`), or `queue`,
    /// `group`, `minSize`/`maxSize` for what the policy reaches through its references.
    Changed {
        policy: String,
        field: String,
        from: String,
        to: String,
    },
}

impl fmt::Display for ScalingChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScalingChange::Added { policy } => write!(f, "scaling policy `{policy}` added"),
            ScalingChange::Removed { policy } => write!(f, "scaling policy `{policy}` removed"),
            ScalingChange::Changed {
                policy,
                field,
                from,
                to,
            } => write!(f, "scaling policy `{policy}`: {field} {from} → {to}"),
        }
    }
}

/// What changed from `old` to `new`, policy by policy (matched by name) and field by field.
pub fn scaling_changes(old: &[ScalingInputs], new: &[ScalingInputs]) -> Vec<ScalingChange> {
    let mut changes = Vec::new();
    for before in old {
        if !new.iter().any(|n| n.policy.name == before.policy.name) {
            changes.push(ScalingChange::Removed {
                policy: before.policy.name.clone(),
            });
        }
    }
    for after in new {
        let Some(before) = old.iter().find(|o| o.policy.name == after.policy.name) else {
            changes.push(ScalingChange::Added {
                policy: after.policy.name.clone(),
            });
            continue;
        };
        let name = &after.policy.name;
        let mut changed = |field: &str, from: String, to: String| {
            if from != to {
                changes.push(ScalingChange::Changed {
                    policy: name.clone(),
                    field: field.to_string(),
                    from,
                    to,
                });
            }
        };
        // The policy's own fields, by their blueprint names.
        let fields = |p: &ScalingPolicy| match serde_json::to_value(p) {
            Ok(serde_json::Value::Object(map)) => map,
            _ => serde_json::Map::new(),
        };
        let (was, now) = (fields(&before.policy), fields(&after.policy));
        let mut keys: Vec<&String> = was.keys().chain(now.keys()).collect();
        keys.sort();
        keys.dedup();
        for key in keys {
            let show = |v: Option<&serde_json::Value>| match v {
                None | Some(serde_json::Value::Null) => "(unset)".to_string(),
                Some(v) => v.to_string(),
            };
            changed(key, show(was.get(key)), show(now.get(key)));
        }
        // A target derived from the latency objective changes with it: say what is in force.
        if before.policy.target_backlog_per_instance.is_none()
            || after.policy.target_backlog_per_instance.is_none()
        {
            changed(
                "targetBacklogPerInstance in force",
                before.config.target_backlog_per_instance.to_string(),
                after.config.target_backlog_per_instance.to_string(),
            );
        }
        let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "(none)".to_string());
        changed("queue", show(&before.queue), show(&after.queue));
        changed("group", show(&before.group), show(&after.group));
        changed(
            "minSize",
            before.config.min.to_string(),
            after.config.min.to_string(),
        );
        changed(
            "maxSize",
            before.config.max.to_string(),
            after.config.max.to_string(),
        );
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blueprint(target: u32, max: u32) -> Blueprint {
        blueprint_with(target, max, "")
    }

    /// A queue `work` (and its DLQ `work-dlq`) scaled by `workers`; `extra` is appended to
    /// the spec (e.g. an `alarms:` block).
    fn blueprint_with(target: u32, max: u32, extra: &str) -> Blueprint {
        let text = format!(
            r#"apiVersion: ballast.dev/v1
kind: Blueprint
metadata: {{ name: edits, region: us-east-1 }}
spec:
  queues:
    - name: work
    - name: work-dlq
  launchTemplates:
    - {{ name: worker, imageId: ami-0abcdef1234567890, instanceTypes: [t3.micro] }}
  autoScalingGroups:
    - name: workers
      launchTemplate: worker
      subnets: [subnet-0123456789abcdef0]
      minSize: 2
      maxSize: {max}
  scalingPolicies:
    - {{ name: backlog, queue: work, fleet: workers, targetBacklogPerInstance: {target} }}
{extra}"#
        );
        match ballast_blueprint::parse("edits.yaml", &text) {
            Ok(loaded) => loaded.blueprint,
            Err(diagnostics) => panic!("{diagnostics}"),
        }
    }

    /// The config of the test blueprint's policy in `mode: queueing`, after `edit`.
    fn queueing_config(edit: impl FnOnce(&mut ScalingPolicy)) -> PolicyConfig {
        let mut bp = blueprint(100, 10);
        let policy = &mut bp.spec.scaling_policies[0];
        policy.mode = ScalingMode::Queueing;
        edit(policy);
        policy_config(&bp, &bp.spec.scaling_policies[0])
    }

    #[test]
    fn the_latency_objective_defaults_to_the_boot_time() {
        use ballast_blueprint::Duration;
        let objective = |boot: Option<u64>, objective: Option<u64>| {
            queueing_config(|p| {
                if let Some(boot) = boot {
                    p.boot_time = Duration::from_secs(boot);
                }
                p.latency_objective = objective.map(Duration::from_secs);
            })
        };
        // Unset in the YAML: the default boot time, 90 s.
        assert_eq!(
            blueprint(100, 10).spec.scaling_policies[0].latency_objective,
            None
        );
        assert_eq!(objective(None, None).latency_objective.as_secs(), 90);
        assert_eq!(objective(Some(120), None).latency_objective.as_secs(), 120);
        assert_eq!(
            objective(Some(120), Some(30)).latency_objective.as_secs(),
            30
        );
        // A fleet that boots at once still gets an objective the policy accepts.
        let instant = objective(Some(0), None);
        assert_eq!(instant.latency_objective.as_secs(), 1);
        assert!(instant.validate().is_ok());
    }

    /// `mode: backlog` scales on the target that follows from the objective (AWS's guidance),
    /// and a running controller reports a switch from one to the other as a change of both.
    #[test]
    fn a_backlog_target_follows_from_the_latency_objective() {
        let mut bp = blueprint(100, 10);
        let policy = &mut bp.spec.scaling_policies[0];
        policy.target_backlog_per_instance = None;
        policy.latency_objective = Some(ballast_blueprint::Duration::from_secs(30));
        let config = policy_config(&bp, &bp.spec.scaling_policies[0]);
        assert_eq!(config.mode, Mode::Backlog);
        assert_eq!(config.target_backlog_per_instance, 150);
        assert!(config.validate().is_ok());
        let changes: Vec<String> =
            scaling_changes(&scaling_inputs(&blueprint(100, 10)), &scaling_inputs(&bp))
                .iter()
                .map(ToString::to_string)
                .collect();
        assert_eq!(
            changes,
            [
                "scaling policy `backlog`: latencyObjective (unset) → \"30s\"",
                "scaling policy `backlog`: targetBacklogPerInstance 100 → (unset)",
                "scaling policy `backlog`: targetBacklogPerInstance in force 100 → 150",
            ]
        );
    }

    #[test]
    fn the_same_blueprint_has_the_same_inputs_and_no_changes() {
        let a = scaling_inputs(&blueprint(100, 10));
        let b = scaling_inputs(&blueprint(100, 10));
        assert_eq!(a, b);
        assert_eq!(scaling_changes(&a, &b), vec![]);
    }

    #[test]
    fn a_changed_target_is_named_with_both_values() {
        let old = scaling_inputs(&blueprint(100, 10));
        let new = scaling_inputs(&blueprint(250, 10));
        assert_ne!(old, new);
        let changes = scaling_changes(&old, &new);
        assert_eq!(
            changes,
            vec![ScalingChange::Changed {
                policy: "backlog".into(),
                field: "targetBacklogPerInstance".into(),
                from: "100".into(),
                to: "250".into(),
            }]
        );
        assert_eq!(
            changes[0].to_string(),
            "scaling policy `backlog`: targetBacklogPerInstance 100 → 250"
        );
    }

    /// The group's bounds are the policy's: editing the group's maxSize changes the inputs.
    #[test]
    fn a_changed_group_bound_reaches_the_policy() {
        let old = scaling_inputs(&blueprint(100, 10));
        let new = scaling_inputs(&blueprint(100, 20));
        assert_eq!(
            scaling_changes(&old, &new),
            vec![ScalingChange::Changed {
                policy: "backlog".into(),
                field: "maxSize".into(),
                from: "10".into(),
                to: "20".into(),
            }]
        );
    }

    #[test]
    fn the_prediction_reaches_the_policy_config() {
        let plain = blueprint(100, 10);
        assert_eq!(scaling_inputs(&plain)[0].config.prediction_days, None);
        let mut with = plain.clone();
        with.spec.scaling_policies[0].prediction = Some(ballast_blueprint::Prediction { days: 3 });
        assert_eq!(scaling_inputs(&with)[0].config.prediction_days, Some(3));
        // A changed prediction is a changed input, named like any field.
        let changes = scaling_changes(&scaling_inputs(&plain), &scaling_inputs(&with));
        assert!(
            changes.iter().any(|c| c.to_string().contains("prediction")),
            "{changes:?}"
        );
    }

    #[test]
    fn added_and_removed_policies_are_named() {
        let none: Vec<ScalingInputs> = Vec::new();
        let one = scaling_inputs(&blueprint(100, 10));
        assert_eq!(
            scaling_changes(&none, &one),
            vec![ScalingChange::Added {
                policy: "backlog".into()
            }]
        );
        assert_eq!(
            scaling_changes(&one, &none),
            vec![ScalingChange::Removed {
                policy: "backlog".into()
            }]
        );
    }

    /// A blueprint with the `alarms` block `alarms` (YAML list items, indented by four).
    fn with_alarms(alarms: &str) -> Blueprint {
        blueprint_with(100, 10, &format!("  alarms:\n{alarms}"))
    }

    fn alarm(name: &str, queue: &str, metric: &str, threshold: &str, comparison: &str) -> String {
        format!(
            "    - {{ name: {name}, queue: {queue}, metric: {metric}, statistic: Maximum, \
             period: 60s, threshold: {threshold}, comparison: {comparison} }}\n"
        )
    }

    fn backlog_alarm_of(bp: &Blueprint) -> Option<u64> {
        policy_config(bp, &bp.spec.scaling_policies[0]).backlog_alarm
    }

    #[test]
    fn the_backlog_alarm_is_the_lowest_depth_alarm_on_the_policys_queue() {
        let visible = "ApproximateNumberOfMessagesVisible";
        // The seed's QueueDepth alarm, and one on the DLQ, which is another queue.
        let bp = with_alarms(
            &[
                alarm("depth", "work", visible, "1000", "greaterThan"),
                alarm("dlq", "work-dlq", visible, "10", "greaterThan"),
                alarm(
                    "age",
                    "work",
                    "ApproximateAgeOfOldestMessage",
                    "300",
                    "greaterThan",
                ),
            ]
            .concat(),
        );
        assert_eq!(backlog_alarm_of(&bp), Some(1000));
        // The lowest of two; "at or above" fires one message sooner; "below" never fires on a
        // growing backlog.
        let bp = with_alarms(
            &[
                alarm("depth", "work", visible, "1000", "greaterThan"),
                alarm("tight", "work", visible, "800", "greaterThanOrEqual"),
                alarm("empty", "work", visible, "1", "lessThan"),
            ]
            .concat(),
        );
        assert_eq!(backlog_alarm_of(&bp), Some(799));
        // A fractional threshold: 799.5 or more fires at 800.
        let bp = with_alarms(&alarm(
            "frac",
            "work",
            visible,
            "799.5",
            "greaterThanOrEqual",
        ));
        assert_eq!(backlog_alarm_of(&bp), Some(799));
        // A hostile negative threshold fires on any backlog: the ceiling is 0, never spent.
        let bp = with_alarms(&alarm("neg", "work", visible, "-5", "greaterThan"));
        assert_eq!(backlog_alarm_of(&bp), Some(0));
        // No alarm on the queue's depth: no ceiling.
        let bp = with_alarms(&alarm("dlq", "work-dlq", visible, "10", "greaterThan"));
        assert_eq!(backlog_alarm_of(&bp), None);
    }
}
