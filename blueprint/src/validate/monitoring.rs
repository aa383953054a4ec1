//! Validation of alarms, dashboards and the metrics they read.

use super::*;

impl Validator<'_> {
    pub(super) fn metric_source(&mut self, m: &MetricRef, path: &str) {
        match (&m.queue, &m.fleet, &m.namespace) {
            (Some(_), Some(_), _) => self.error(
                &format!("{path}.fleet"),
                "`queue` and `fleet` are both set",
                "an alarm or a metric line reads one source",
            ),
            (None, None, None) => self.error(
                &format!("{path}.metric"),
                "no metric source: set `queue`, `fleet` or `namespace`",
                "e.g. `queue: transactions` with `metric: ApproximateNumberOfMessagesVisible`",
            ),
            (Some(_), None, Some(ns)) if ns != "AWS/SQS" => self.error(
                &format!("{path}.namespace"),
                format!("`queue` implies the AWS/SQS namespace, not `{ns}`"),
                "remove `namespace`, or use `dimensions` for a custom metric",
            ),
            _ => {}
        }
        if m.queue.is_some() && m.namespace.is_none() && !SQS_METRICS.contains(&m.metric.as_str()) {
            let hint = match closest(&m.metric, SQS_METRICS.iter().copied()) {
                Some(near) => format!("did you mean `{near}`?"),
                None => format!("SQS metrics: {}", SQS_METRICS.join(", ")),
            };
            self.error(
                &format!("{path}.metric"),
                format!("`{}` is not an SQS metric", m.metric),
                hint,
            );
        }
        if m.fleet.is_some() && m.namespace.is_none() && !ASG_METRICS.contains(&m.metric.as_str()) {
            let hint = match closest(&m.metric, ASG_METRICS.iter().copied()) {
                Some(near) => format!("did you mean `{near}`? For a custom metric set `namespace`"),
                None => format!(
                    "Auto Scaling metrics: {}; for a custom metric set `namespace`",
                    ASG_METRICS.join(", ")
                ),
            };
            self.error(
                &format!("{path}.metric"),
                format!("`{}` is not an Auto Scaling group metric", m.metric),
                hint,
            );
        }
    }

    pub(super) fn alarm(&mut self, bp: &Blueprint, a: &Alarm, path: &str) {
        if let Some(name) = &a.alarm_name {
            self.physical_name(
                &format!("{path}.alarmName"),
                name,
                255,
                |c| !c.is_control(),
                "alarm name",
            );
        }
        self.metric_source(&a.metric, path);
        if let Some(fleet) = &a.metric.fleet
            && a.metric.namespace.is_none()
            && let Some(group) = bp
                .spec
                .auto_scaling_groups
                .iter()
                .find(|g| &g.name == fleet)
            && !group.group_metrics
        {
            self.error(
                &format!("{path}.fleet"),
                format!("fleet `{fleet}` does not publish group metrics"),
                format!("set `groupMetrics: true` on `{fleet}`"),
            );
        }
        let period = a.period.as_secs();
        if a.period.std().subsec_nanos() != 0
            || !(period == 10 || period == 30 || (period >= 60 && period.is_multiple_of(60)))
        {
            self.error(
                &format!("{path}.period"),
                format!(
                    "`period` is {}; CloudWatch takes 10s, 30s or a multiple of 60s",
                    a.period
                ),
                "e.g. 60s or 5m",
            );
        }
        if a.evaluation_periods == 0 {
            self.error(
                &format!("{path}.evaluationPeriods"),
                "`evaluationPeriods` must be at least 1",
                "e.g. 1",
            );
        } else if period.saturating_mul(a.evaluation_periods.into()) > DAY {
            self.error(
                &format!("{path}.evaluationPeriods"),
                "period × evaluationPeriods exceeds one day",
                "CloudWatch evaluates at most 24 hours of data",
            );
        }
        if let Some(d) = a.datapoints_to_alarm {
            self.int_range(
                &format!("{path}.datapointsToAlarm"),
                d.into(),
                1,
                a.evaluation_periods.into(),
            );
        }
        // Topic names are checked with every other reference; ARNs here, and the list size.
        for (field, list) in a.action_lists() {
            if list.len() > MAX_ACTIONS_PER_STATE {
                self.error(
                    &format!("{path}.{field}"),
                    format!(
                        "{} actions, over CloudWatch's {MAX_ACTIONS_PER_STATE} per alarm state",
                        list.len()
                    ),
                    "notify one topic and subscribe the receivers to it",
                );
            }
            for (i, action) in list.iter().enumerate() {
                if is_action_arn(action) && action.split(':').count() < 6 {
                    self.error(
                        &format!("{path}.{field}[{i}]"),
                        format!("`{action}` is not an ARN"),
                        "write a blueprint topic name, or a full ARN such as arn:aws:sns:us-east-1:123456789012:pager",
                    );
                }
            }
        }
    }

    pub(super) fn dashboard(&mut self, d: &Dashboard, path: &str) {
        if d.widgets.is_empty() {
            self.error(
                &format!("{path}.widgets"),
                "a dashboard needs at least one widget",
                "add a widget with `title` and `metrics`",
            );
        }
        for (i, w) in d.widgets.iter().enumerate() {
            let p = format!("{path}.widgets[{i}]");
            self.int_range(&format!("{p}.width"), w.width.into(), 1, 24);
            self.int_range(&format!("{p}.height"), w.height.into(), 1, 1000);
            if w.metrics.is_empty() {
                self.error(
                    &format!("{p}.metrics"),
                    "a widget needs at least one metric",
                    "add a metric line",
                );
            }
            for (j, m) in w.metrics.iter().enumerate() {
                self.metric_source(&m.metric, &format!("{p}.metrics[{j}]"));
            }
        }
    }
}

/// CloudWatch's limit on the actions of one alarm state.
const MAX_ACTIONS_PER_STATE: usize = 5;

const SQS_METRICS: &[&str] = &[
    "ApproximateAgeOfOldestMessage",
    "ApproximateNumberOfMessagesDelayed",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesVisible",
    "NumberOfEmptyReceives",
    "NumberOfMessagesDeleted",
    "NumberOfMessagesReceived",
    "NumberOfMessagesSent",
    "SentMessageSize",
];

const ASG_METRICS: &[&str] = &[
    "GroupMinSize",
    "GroupMaxSize",
    "GroupDesiredCapacity",
    "GroupInServiceInstances",
    "GroupPendingInstances",
    "GroupStandbyInstances",
    "GroupTerminatingInstances",
    "GroupTotalInstances",
];
