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
        self.target_backlog(p, path);
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
        if let Some(window) = p.stabilization_window {
            self.duration_range(&format!("{path}.stabilizationWindow"), window, 0, HOUR);
        }
        if let Some(objective) = p.latency_objective {
            self.duration_range(&format!("{path}.latencyObjective"), objective, 1, HOUR);
            if p.mode == ScalingMode::Queueing && objective < p.boot_time {
                self.warning(
                    &format!("{path}.latencyObjective"),
                    format!(
                        "`latencyObjective` {objective} is shorter than `bootTime` {}: a burst that \
                         needs new capacity waits at least one boot time",
                        p.boot_time
                    ),
                    "the policy will launch for bursts the queue would have absorbed; omit \
                     `latencyObjective` to use `bootTime` (docs/autoscaling.md, \"The queueing mode\")",
                );
            }
        }
        self.duration_range(&format!("{path}.bootTime"), p.boot_time, 0, HOUR);
        if p.service_rate_per_instance == 0 {
            self.error(
                &format!("{path}.serviceRatePerInstance"),
                "`serviceRatePerInstance` must be at least 1",
                "messages one instance processes per second; the queueing mode measures it once running",
            );
        }
        if let Some(prediction) = &p.prediction {
            let at = format!("{path}.prediction");
            if p.mode != ScalingMode::Queueing {
                self.error(
                    &at,
                    "`prediction` applies to `mode: queueing` only",
                    "set `mode: queueing`, or remove `prediction`",
                );
            }
            self.int_range(&format!("{at}.days"), prediction.days.into(), 1, 14);
        }
        if let Some(switch) = &p.dead_mans_switch {
            self.dead_mans_switch(p, switch, &format!("{path}.deadMansSwitch"));
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

    /// `targetBacklogPerInstance`, given or derived from `latencyObjective` (AWS's guidance).
    fn target_backlog(&mut self, p: &ScalingPolicy, path: &str) {
        let field = format!("{path}.targetBacklogPerInstance");
        match (p.target_backlog_per_instance, p.latency_objective) {
            (Some(0), _) => self.error(
                &field,
                "`targetBacklogPerInstance` must be at least 1",
                "pick acceptable latency × messages per second per instance, or omit it and set \
                 `latencyObjective` (see `ballast simulate`)",
            ),
            (None, None) if p.mode == ScalingMode::Backlog => self.error(
                path,
                "`mode: backlog` needs `targetBacklogPerInstance`, or a `latencyObjective` it \
                 follows from",
                "e.g. `targetBacklogPerInstance: 100`, or `latencyObjective: 20s`: at \
                 `serviceRatePerInstance` 5 msg/s that is 100 messages per instance (AWS's \
                 guidance: acceptable latency ÷ time per message)",
            ),
            (Some(target), Some(objective)) if p.mode == ScalingMode::Backlog => {
                // Both given: the target decides. Say so when the objective asks for another one,
                // so that a reader of the blueprint is not misled about the wait it buys.
                let derived = p.target_backlog_for(objective);
                if derived != target {
                    self.warning(
                        &field,
                        format!(
                            "`targetBacklogPerInstance` {target} is not what `latencyObjective` \
                             {objective} asks for at `serviceRatePerInstance` {} msg/s ({derived}); \
                             in `mode: backlog` the target decides",
                            p.service_rate_per_instance
                        ),
                        format!(
                            "omit `targetBacklogPerInstance` to scale for {objective}, or omit \
                             `latencyObjective` (a target of {target} holds about {}s of work per \
                             instance)",
                            u64::from(target)
                                .checked_div(u64::from(p.service_rate_per_instance))
                                .unwrap_or(0)
                        ),
                    );
                }
            }
            _ => {}
        }
    }

    fn dead_mans_switch(&mut self, p: &ScalingPolicy, s: &DeadMansSwitch, path: &str) {
        if p.fleet.is_none() {
            self.error(
                path,
                "a dead-man's switch needs an Auto Scaling group as the fleet",
                "a step-scaling policy exists only on a group: set `fleet`, or remove `deadMansSwitch` for a `deployment`",
            );
        }
        if s.backlog_threshold == Some(0) {
            self.error(
                &format!("{path}.backlogThreshold"),
                "`backlogThreshold` must be at least 1",
                "the visible backlog above which a fleet without Ballast needs more instances",
            );
        }
        let timeout = format!("{path}.heartbeatTimeout");
        if !s.heartbeat_timeout.as_secs().is_multiple_of(MINUTE)
            || s.heartbeat_timeout.std().subsec_nanos() != 0
        {
            self.error(
                &timeout,
                format!(
                    "`heartbeatTimeout` must be whole minutes, not {}",
                    s.heartbeat_timeout
                ),
                "the alarm counts one-minute periods without a heartbeat, e.g. `3m`",
            );
        } else {
            self.duration_range(&timeout, s.heartbeat_timeout, 2 * MINUTE, HOUR);
        }
        self.int_range(
            &format!("{path}.addInstances"),
            s.add_instances.into(),
            1,
            100,
        );
        if let Some(warmup) = s.warmup {
            self.duration_range(&format!("{path}.warmup"), warmup, 0, HOUR);
        }
        // A minute without an evaluation is a minute without a heartbeat: the switch would fire
        // while Ballast is up and both would drive the group.
        if p.evaluation_interval.as_secs() > MINUTE {
            self.error(
                &format!("{}.evaluationInterval", path.trim_end_matches(".deadMansSwitch")),
                format!(
                    "`evaluationInterval` is {} but a dead-man's switch needs a heartbeat every minute",
                    p.evaluation_interval
                ),
                "use an evaluation interval of at most 1m",
            );
        }
    }
}
