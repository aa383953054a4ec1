//! A scaling policy's dead-man's switch against moto: the step-scaling policy on the group and
//! the metric-math alarm that invokes it exist and are wired, a second plan is empty, hand edits
//! are restored, and removing the switch or destroying the blueprint deletes both.
//!
//! moto stores and returns both (`DescribePolicies`, `DescribeAlarms` with `Metrics`), but it
//! evaluates no alarm (a metric-math alarm stays in its initial state, its metric math returns
//! no data) and cannot execute a step policy, so the firing itself is tested in the simulator
//! (`simulate::failover`), not here.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a failed test (clippy.toml covers only #[test] fns, not helpers)"
)]

use std::time::Duration;

use aws_sdk_autoscaling::types::{ScalingPolicy, StepAdjustment};
use aws_sdk_cloudwatch::types::MetricAlarm;
use aws_types::SdkConfig;
use ballast_aws::CallRecorder;
use ballast_blueprint::{Blueprint, ResourceId, ResourceKind};
use ballast_controller::provision::engine::LogProgress;
use ballast_controller::provision::kinds::Readiness;
use ballast_controller::provision::{Action, Clients, Plan, apply, destroy, observe, plan};

fn readiness() -> Readiness {
    Readiness {
        timeout: Duration::from_secs(60),
        poll: Duration::from_millis(100),
        ..Readiness::default()
    }
}

fn blueprint(name: &str, switch: bool) -> Blueprint {
    let switch = if switch {
        "      deadMansSwitch: { backlogThreshold: 500, heartbeatTimeout: 3m, addInstances: 2 }"
    } else {
        ""
    };
    let text = format!(
        r#"
apiVersion: ballast.dev/v1
kind: Blueprint
metadata: {{ name: {name}, region: us-east-1 }}
spec:
  network:
    vpc:
      name: main
      cidr: 10.30.0.0/16
      subnets:
        - {{ name: private-a, cidr: 10.30.1.0/24, availabilityZone: us-east-1a }}
  queues:
    - name: work
  launchTemplates:
    - name: worker
      imageId: ami-0abcdef1234567890
      instanceTypes: [t3.micro]
      encryptedVolumes: false
  autoScalingGroups:
    - name: workers
      launchTemplate: worker
      subnets: [private-a]
      minSize: 1
      maxSize: 6
  scalingPolicies:
    - name: work
      queue: work
      fleet: workers
      targetBacklogPerInstance: 100
{switch}
"#
    );
    ballast_blueprint::parse("t.yaml", &text)
        .unwrap_or_else(|d| panic!("blueprint invalid: {d}"))
        .blueprint
}

struct Env {
    sdk: SdkConfig,
    bp: Blueprint,
}

impl Env {
    async fn new() -> Env {
        let sdk = ballast_testbed::moto().await.sdk_config().await;
        let name = ballast_testbed::unique_name("dms").to_lowercase();
        Env {
            sdk,
            bp: blueprint(&name, true),
        }
    }

    fn with(&self, bp: Blueprint) -> Env {
        Env {
            sdk: self.sdk.clone(),
            bp,
        }
    }

    async fn plan(&self) -> Plan {
        let clients = Clients::read_write(&self.sdk, &CallRecorder::default());
        let observation = observe(&clients.observer(), &self.bp).await.unwrap();
        plan(&self.bp, &observation)
    }

    async fn apply(&self) -> CallRecorder {
        let recorder = CallRecorder::default();
        let clients = Clients::read_write(&self.sdk, &recorder);
        let observation = observe(&clients.observer(), &self.bp).await.unwrap();
        apply(&clients, &self.bp, observation, readiness(), &LogProgress)
            .await
            .unwrap_or_else(|e| panic!("apply failed: {e}"));
        recorder
    }

    fn name(&self) -> String {
        format!("{}-work-dead-mans-switch", self.bp.metadata.name)
    }

    fn group(&self) -> String {
        format!("{}-workers", self.bp.metadata.name)
    }

    fn autoscaling(&self) -> aws_sdk_autoscaling::Client {
        aws_sdk_autoscaling::Client::new(&self.sdk)
    }

    fn cloudwatch(&self) -> aws_sdk_cloudwatch::Client {
        aws_sdk_cloudwatch::Client::new(&self.sdk)
    }

    async fn policy(&self) -> Option<ScalingPolicy> {
        self.autoscaling()
            .describe_policies()
            .auto_scaling_group_name(self.group())
            .policy_names(self.name())
            .send()
            .await
            .unwrap()
            .scaling_policies
            .unwrap_or_default()
            .into_iter()
            .find(|p| p.policy_name() == Some(self.name().as_str()))
    }

    async fn delete_policy(&self) {
        self.autoscaling()
            .delete_policy()
            .auto_scaling_group_name(self.group())
            .policy_name(self.name())
            .send()
            .await
            .unwrap();
    }

    async fn alarm(&self) -> Option<MetricAlarm> {
        self.cloudwatch()
            .describe_alarms()
            .alarm_names(self.name())
            .send()
            .await
            .unwrap()
            .metric_alarms
            .unwrap_or_default()
            .into_iter()
            .next()
    }
}

fn action<'a>(plan: &'a Plan, name: &str) -> &'a Action {
    let id = ResourceId::new(ResourceKind::ScalingPolicy, name);
    &plan
        .changes
        .iter()
        .find(|c| c.resource == id)
        .unwrap_or_else(|| panic!("{id} not in plan: {plan:?}"))
        .action
}

fn assert_no_changes(plan: &Plan) {
    assert!(
        !plan.has_changes(),
        "unexpected changes: {}",
        serde_json::to_string_pretty(plan).unwrap()
    );
    assert!(plan.orphans.is_empty(), "{:?}", plan.orphans);
}

fn changed_fields(action: &Action) -> Vec<String> {
    match action {
        Action::Update { changes } => changes.iter().map(|c| c.field.clone()).collect(),
        other => panic!("update expected, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_mans_switch_policy_and_alarm_exist_are_wired_and_converge() {
    let env = Env::new().await;
    let first = env.plan().await;
    assert_eq!(action(&first, "work"), &Action::Create);
    env.apply().await;

    // The step policy: one step from the alarm threshold up, +2 instances, warm-up = boot time.
    let policy = env.policy().await.expect("step policy exists");
    assert_eq!(policy.policy_type(), Some("StepScaling"));
    assert_eq!(policy.adjustment_type(), Some("ChangeInCapacity"));
    assert_eq!(policy.estimated_instance_warmup(), Some(90));
    let steps = policy.step_adjustments();
    assert_eq!(steps.len(), 1);
    assert_eq!(steps[0].metric_interval_lower_bound(), Some(0.0));
    assert_eq!(steps[0].metric_interval_upper_bound(), None);
    assert_eq!(steps[0].scaling_adjustment(), Some(2));
    let policy_arn = policy.policy_arn().expect("policy ARN").to_string();

    // The alarm: its only action is that policy, its metric math as declared.
    let alarm = env.alarm().await.expect("alarm exists");
    assert_eq!(alarm.alarm_actions(), std::slice::from_ref(&policy_arn));
    assert_eq!(alarm.evaluation_periods(), Some(3));
    assert_eq!(alarm.datapoints_to_alarm(), Some(3));
    assert_eq!(alarm.treat_missing_data(), Some("notBreaching"));
    let metrics = alarm.metrics();
    assert_eq!(metrics.len(), 3);
    let heartbeat = metrics[0].metric_stat().unwrap();
    let m = heartbeat.metric().unwrap();
    assert_eq!(m.namespace(), Some("Ballast/Autoscaler"));
    assert_eq!(m.metric_name(), Some("Heartbeat"));
    assert_eq!(m.dimensions()[0].value(), Some(env.group().as_str()));
    assert_eq!(heartbeat.stat(), Some("SampleCount"));
    let backlog = metrics[1].metric_stat().unwrap().metric().unwrap();
    assert_eq!(
        backlog.dimensions()[0].value(),
        Some(format!("{}-work", env.bp.metadata.name).as_str())
    );
    assert_eq!(
        metrics[2].expression(),
        Some("IF(FILL(heartbeat, 0) == 0 AND backlog > 500, 1, 0)")
    );
    assert_eq!(metrics[2].return_data(), Some(true));
    let tags = env
        .cloudwatch()
        .list_tags_for_resource()
        .resource_arn(alarm.alarm_arn().unwrap())
        .send()
        .await
        .unwrap();
    assert!(tags.tags().iter().any(
        |t| t.key() == Some("ballast.dev/resource") && t.value() == Some("scaling-policy/work")
    ));

    // Re-plan: nothing to do, and the switch's alarm is neither an alarm to delete nor an orphan.
    assert_no_changes(&env.plan().await);
    let second = env.apply().await;
    assert_eq!(second.mutating(), 0, "{:?}", second.snapshot());

    // Hand edit of the alarm: another action, another threshold in the expression.
    let mut edited = metrics.to_vec();
    edited[2].expression = Some("IF(FILL(heartbeat, 0) == 0 AND backlog > 5000, 1, 0)".into());
    env.cloudwatch()
        .put_metric_alarm()
        .alarm_name(env.name())
        .set_metrics(Some(edited))
        .threshold(0.0)
        .comparison_operator(aws_sdk_cloudwatch::types::ComparisonOperator::GreaterThanThreshold)
        .evaluation_periods(3)
        .datapoints_to_alarm(3)
        .treat_missing_data("notBreaching")
        .alarm_actions("arn:aws:sns:us-east-1:123456789012:pager")
        .send()
        .await
        .unwrap();
    // And of the step policy: +5 instead of +2.
    env.autoscaling()
        .put_scaling_policy()
        .auto_scaling_group_name(env.group())
        .policy_name(env.name())
        .policy_type("StepScaling")
        .adjustment_type("ChangeInCapacity")
        .metric_aggregation_type("Maximum")
        .estimated_instance_warmup(90)
        .step_adjustments(
            StepAdjustment::builder()
                .metric_interval_lower_bound(0.0)
                .scaling_adjustment(5)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let drifted = env.plan().await;
    let mut fields = changed_fields(action(&drifted, "work"));
    fields.sort();
    assert_eq!(
        fields,
        ["alarmActions", "alarmMetrics", "stepAdjustments"],
        "{drifted:?}"
    );
    env.apply().await;
    assert_eq!(env.alarm().await.unwrap().alarm_actions(), [policy_arn]);
    assert_eq!(
        env.policy().await.unwrap().step_adjustments()[0].scaling_adjustment(),
        Some(2)
    );
    assert_no_changes(&env.plan().await);

    // The alarm deleted by hand: the next apply puts it back, wired to the policy.
    env.cloudwatch()
        .delete_alarms()
        .alarm_names(env.name())
        .send()
        .await
        .unwrap();
    assert!(matches!(
        action(&env.plan().await, "work"),
        Action::Update { .. }
    ));
    env.apply().await;
    assert!(env.alarm().await.is_some());
    assert_no_changes(&env.plan().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_mans_switch_removed_from_the_blueprint_or_destroyed_is_deleted() {
    let env = Env::new().await;
    env.apply().await;
    assert!(env.policy().await.is_some() && env.alarm().await.is_some());

    // The step policy deleted by hand (or an apply interrupted between the two): the alarm is
    // still found, and the next apply puts the policy back and points the alarm at it.
    env.delete_policy().await;
    let half = env.plan().await;
    let fields = changed_fields(action(&half, "work"));
    assert!(
        fields.contains(&"stepAdjustments".to_string()),
        "{fields:?}"
    );
    assert!(fields.contains(&"alarmActions".to_string()), "{fields:?}");
    env.apply().await;
    let arn = env
        .policy()
        .await
        .unwrap()
        .policy_arn()
        .unwrap()
        .to_string();
    assert_eq!(env.alarm().await.unwrap().alarm_actions(), [arn]);
    assert_no_changes(&env.plan().await);

    // The block removed: the switch is planned for deletion and deleted, the rest stays.
    let without = env.with(blueprint(&env.bp.metadata.name, false));
    assert_eq!(action(&without.plan().await, "work"), &Action::Delete);
    without.apply().await;
    assert!(env.policy().await.is_none());
    assert!(env.alarm().await.is_none());
    assert_no_changes(&without.plan().await);

    // Back; then the policy deleted by hand and the block removed: nothing names the alarm any
    // more but its ownership tag, so it is reported as an orphan (not silently kept).
    env.apply().await;
    env.delete_policy().await;
    let orphaned = without.plan().await;
    assert!(
        orphaned
            .changes
            .iter()
            .all(|c| c.resource.kind != ResourceKind::ScalingPolicy),
        "{orphaned:?}"
    );
    assert_eq!(orphaned.orphans.len(), 1, "{:?}", orphaned.orphans);
    assert_eq!(orphaned.orphans[0].kind, ResourceKind::Alarm);
    assert_eq!(orphaned.orphans[0].physical_id, env.name());

    // Declared again: completed; then destroy: both go with the group.
    env.apply().await;
    assert_no_changes(&env.plan().await);
    assert!(env.policy().await.is_some() && env.alarm().await.is_some());
    let clients = Clients::read_write(&env.sdk, &CallRecorder::default());
    let observation = observe(&clients.observer(), &env.bp).await.unwrap();
    destroy(&clients, &env.bp, observation, readiness(), &LogProgress)
        .await
        .unwrap_or_else(|e| panic!("destroy failed: {e}"));
    assert!(env.policy().await.is_none());
    assert!(env.alarm().await.is_none());
}
