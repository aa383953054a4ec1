//! Validation of scaling policies.

use super::*;

impl Validator<'_> {
    pub(super) fn scaling_policy(&mut self, p: &ScalingPolicy, path: &str) {
        match (&p.fleet, &p.deployment) {
            (Some(_), Some(_)) => self.error(
                &format!("{path}.deployment"),
                "`fleet` and `deployment` are both set",
                "a policy drives one fleet",
            ),
            (None, None) => self.error(
                path,
                "no fleet: set `fleet` (an Auto Scaling group) or `deployment`",
                "e.g. `fleet: workers`",
            ),
            (Some(_), None) => {
                for (field, v) in [
                    ("minReplicas", p.min_replicas),
                    ("maxReplicas", p.max_replicas),
                ] {
                    if v.is_some() {
                        self.error(&format!("{path}.{field}"), format!("`{field}` applies to a `deployment`; an Auto Scaling group has its own bounds"), "set minSize/maxSize on the group");
                    }
                }
            }
            (None, Some(_)) => match (p.min_replicas, p.max_replicas) {
                (Some(min), Some(max)) if min > max => self.error(
                    &format!("{path}.minReplicas"),
                    format!("`minReplicas` {min} is greater than `maxReplicas` {max}"),
                    "minReplicas ≤ maxReplicas",
                ),
                (Some(_), Some(_)) => {}
                _ => self.error(
                    path,
                    "a `deployment` fleet needs `minReplicas` and `maxReplicas`",
                    "e.g. minReplicas: 2, maxReplicas: 10",
                ),
            },
        }
        if p.target_backlog_per_instance == 0 {
            self.error(
                &format!("{path}.targetBacklogPerInstance"),
                "`targetBacklogPerInstance` must be at least 1",
                "pick acceptable latency ÷ processing time per message (see `ballast simulate`)",
            );
        }
        self.int_range(
            &format!("{path}.tolerancePercent"),
            p.tolerance_percent.into(),
            0,
            99,
        );
        self.duration_range(
            &format!("{path}.evaluationInterval"),
            p.evaluation_interval,
            1,
            5 * MINUTE,
        );
        self.duration_range(
            &format!("{path}.scaleInCooldown"),
            p.scale_in_cooldown,
            0,
            HOUR,
        );
        self.duration_range(
            &format!("{path}.stabilizationWindow"),
            p.stabilization_window,
            0,
            HOUR,
        );
        self.duration_range(
            &format!("{path}.latencyObjective"),
            p.latency_objective,
            1,
            HOUR,
        );
        self.duration_range(&format!("{path}.bootTime"), p.boot_time, 0, HOUR);
        if p.service_rate_per_instance == 0 {
            self.error(
                &format!("{path}.serviceRatePerInstance"),
                "`serviceRatePerInstance` must be at least 1",
                "messages one instance processes per second; the queueing mode measures it once running",
            );
        }
        for (field, v) in [
            ("maxScaleOutStep", p.max_scale_out_step),
            ("maxScaleInStep", p.max_scale_in_step),
        ] {
            if v == Some(0) {
                self.error(
                    &format!("{path}.{field}"),
                    format!("`{field}` must be at least 1"),
                    "omit it for no limit",
                );
            }
        }
    }
}
