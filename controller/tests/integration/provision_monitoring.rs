//! Alarms and dashboards against moto: apply converges, a second apply writes nothing, and
//! changes made behind Ballast's back show up in the plan and are repaired.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a failed test (clippy.toml covers only #[test] fns, not helpers)"
)]

use aws_sdk_cloudwatch::types::{Dimension, MetricAlarm};
use ballast_aws::CallRecorder;
use ballast_blueprint::{Blueprint, ResourceId, ResourceKind};
use ballast_controller::provision::engine::LogProgress;
use ballast_controller::provision::kinds::Readiness;
use ballast_controller::provision::{Action, Clients, Plan, apply, observe, plan};
use serde_json::Value;

fn blueprint(name: &str) -> Blueprint {
    let text = format!(
        r#"apiVersion: ballast.dev/v1
kind: Blueprint
metadata:
  name: {name}
  region: us-east-1
  tags: {{team: monitoring}}
spec:
  queues:
    - name: orders
      encryption: {{type: sqsManaged}}
  alarms:
    - name: depth
      description: Messages waiting to be processed
      queue: orders
      metric: ApproximateNumberOfMessagesVisible
      statistic: Maximum
      period: 60s
      threshold: 1000
      comparison: greaterThan
      evaluationPeriods: 2
      datapointsToAlarm: 1
      alarmActions: ["arn:aws:sns:us-east-1:123456789012:pager"]
    - name: errors
      namespace: Ballast/Test
      metric: ProcessingErrors
      dimensions: {{Service: worker, Stage: test}}
      statistic: Sum
      period: 5m
      threshold: 2.5
      comparison: greaterThanOrEqual
      treatMissingData: notBreaching
  dashboards:
    - name: ops
      widgets:
        - title: Queue depth
          metrics:
            - {{ queue: orders, metric: ApproximateNumberOfMessagesVisible, statistic: Maximum, label: waiting }}
        - title: Errors
          view: singleValue
          metrics:
            - {{ namespace: Ballast/Test, metric: ProcessingErrors, dimensions: {{Service: worker}}, statistic: Sum }}
"#
    );
    ballast_blueprint::parse("t.yaml", &text)
        .unwrap_or_else(|d| panic!("{d}"))
        .blueprint
}

struct Env {
    sdk: aws_types::SdkConfig,
    bp: Blueprint,
}

async fn env() -> Env {
    let moto = ballast_testbed::moto().await;
    let name = ballast_testbed::unique_name("t").to_lowercase();
    Env {
        sdk: moto.sdk_config().await,
        bp: blueprint(&name),
    }
}

impl Env {
    async fn plan(&self) -> Plan {
        let clients = Clients::read_write(&self.sdk, &CallRecorder::default());
        let observation = observe(&clients.observer(), &self.bp).await.unwrap();
        plan(&self.bp, &observation)
    }

    /// Applies with a fresh recorder and returns it.
    async fn apply(&self) -> CallRecorder {
        let recorder = CallRecorder::default();
        let clients = Clients::read_write(&self.sdk, &recorder);
        let observation = observe(&clients.observer(), &self.bp).await.unwrap();
        apply(
            &clients,
            &self.bp,
            observation,
            Readiness::default(),
            &LogProgress,
        )
        .await
        .unwrap();
        recorder
    }

    fn alarm_name(&self, name: &str) -> String {
        format!("{}-{name}", self.bp.metadata.name)
    }

    fn cloudwatch(&self) -> aws_sdk_cloudwatch::Client {
        aws_sdk_cloudwatch::Client::new(&self.sdk)
    }

    async fn describe(&self, name: &str) -> Option<MetricAlarm> {
        self.cloudwatch()
            .describe_alarms()
            .alarm_names(self.alarm_name(name))
            .send()
            .await
            .unwrap()
            .metric_alarms
            .unwrap_or_default()
            .into_iter()
            .next()
    }
}

fn action<'a>(plan: &'a Plan, kind: ResourceKind, name: &str) -> &'a Action {
    let id = ResourceId::new(kind, name);
    &plan
        .changes
        .iter()
        .find(|c| c.resource == id)
        .unwrap_or_else(|| panic!("{id} not in plan"))
        .action
}

fn assert_no_changes(plan: &Plan) {
    assert!(
        !plan.has_changes(),
        "unexpected changes: {}",
        serde_json::to_string_pretty(plan).unwrap()
    );
}

#[tokio::test]
async fn apply_converges_and_a_second_apply_writes_nothing() {
    let env = env().await;
    let first = env.apply().await;
    assert!(first.mutating() >= 4, "queue, two alarms and a dashboard");

    let plan = env.plan().await;
    assert_no_changes(&plan);
    assert_eq!(plan.summary.unchanged, 4);

    let second = env.apply().await;
    assert_eq!(second.mutating(), 0, "{:?}", second.snapshot());

    // What CloudWatch holds is what the blueprint says.
    let depth = env.describe("depth").await.expect("alarm exists");
    assert_eq!(depth.namespace(), Some("AWS/SQS"));
    assert_eq!(depth.threshold(), Some(1000.0));
    assert_eq!(
        depth.dimensions(),
        [Dimension::builder()
            .name("QueueName")
            .value(format!("{}-orders", env.bp.metadata.name))
            .build()]
    );
    let errors = env.describe("errors").await.expect("alarm exists");
    assert_eq!(errors.threshold(), Some(2.5));
    assert_eq!(errors.treat_missing_data(), Some("notBreaching"));
    let tags = env
        .cloudwatch()
        .list_tags_for_resource()
        .resource_arn(errors.alarm_arn().unwrap())
        .send()
        .await
        .unwrap();
    assert!(
        tags.tags()
            .iter()
            .any(|t| t.key() == Some("ballast.dev/blueprint")
                && t.value() == Some(env.bp.metadata.name.as_str()))
    );
    // The dashboard body is stored as given, ownership marker included.
    let dashboard = env
        .cloudwatch()
        .get_dashboard()
        .dashboard_name(env.alarm_name("ops"))
        .send()
        .await
        .unwrap();
    let body: Value = serde_json::from_str(dashboard.dashboard_body().unwrap()).unwrap();
    assert_eq!(body["widgets"][0]["type"], "text");
    assert!(
        body["widgets"][0]["properties"]["markdown"]
            .as_str()
            .unwrap()
            .contains(&env.bp.metadata.name)
    );
    assert_eq!(body["widgets"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn an_alarm_deleted_behind_our_back_is_recreated() {
    let env = env().await;
    env.apply().await;
    env.cloudwatch()
        .delete_alarms()
        .alarm_names(env.alarm_name("depth"))
        .send()
        .await
        .unwrap();

    let plan = env.plan().await;
    assert_eq!(action(&plan, ResourceKind::Alarm, "depth"), &Action::Create);
    assert_eq!(plan.summary.create, 1);
    assert_eq!(plan.summary.unchanged, 3);

    env.apply().await;
    assert!(env.describe("depth").await.is_some());
    assert_no_changes(&env.plan().await);
}

#[tokio::test]
async fn a_threshold_changed_behind_our_back_is_restored() {
    let env = env().await;
    env.apply().await;
    // Someone edits the alarm in the console: same alarm, another threshold.
    let live = env.describe("errors").await.unwrap();
    env.cloudwatch()
        .put_metric_alarm()
        .alarm_name(env.alarm_name("errors"))
        .set_namespace(live.namespace().map(str::to_string))
        .set_metric_name(live.metric_name().map(str::to_string))
        .set_dimensions(Some(live.dimensions().to_vec()))
        .set_statistic(live.statistic().cloned())
        .set_period(live.period())
        .threshold(7.0)
        .set_comparison_operator(live.comparison_operator().cloned())
        .set_evaluation_periods(live.evaluation_periods())
        .set_datapoints_to_alarm(live.datapoints_to_alarm())
        .set_treat_missing_data(live.treat_missing_data().map(str::to_string))
        .send()
        .await
        .unwrap();

    let plan = env.plan().await;
    let Action::Update { changes } = action(&plan, ResourceKind::Alarm, "errors") else {
        panic!("update expected: {plan:?}")
    };
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0].field, "threshold");
    assert_eq!(
        (changes[0].live.as_str(), changes[0].desired.as_str()),
        ("7", "2.5")
    );
    assert_eq!(plan.summary.update, 1);

    let repair = env.apply().await;
    assert_eq!(repair.mutating(), 1, "{:?}", repair.snapshot());
    assert_eq!(env.describe("errors").await.unwrap().threshold(), Some(2.5));
    assert_no_changes(&env.plan().await);
}

#[tokio::test]
async fn a_dashboard_edited_behind_our_back_is_restored_and_an_unmarked_one_conflicts() {
    let env = env().await;
    env.apply().await;
    let name = env.alarm_name("ops");
    let cw = env.cloudwatch();
    let body = cw
        .get_dashboard()
        .dashboard_name(&name)
        .send()
        .await
        .unwrap()
        .dashboard_body
        .unwrap();
    // Edited in the console (title), marker kept: drift on `widgets`, repaired by apply.
    cw.put_dashboard()
        .dashboard_name(&name)
        .dashboard_body(body.replace("Queue depth", "Backlog"))
        .send()
        .await
        .unwrap();
    let plan = env.plan().await;
    let Action::Update { changes } = action(&plan, ResourceKind::Dashboard, "ops") else {
        panic!("update expected: {plan:?}")
    };
    assert_eq!(changes[0].field, "widgets");
    env.apply().await;
    assert_no_changes(&env.plan().await);

    // Marker removed: no longer provably Ballast's, so it is not touched.
    cw.put_dashboard()
        .dashboard_name(&name)
        .dashboard_body(r#"{"widgets": []}"#)
        .send()
        .await
        .unwrap();
    let plan = env.plan().await;
    assert!(
        matches!(
            action(&plan, ResourceKind::Dashboard, "ops"),
            Action::Conflict { .. }
        ),
        "{plan:?}"
    );
}

#[tokio::test]
async fn alarms_and_dashboards_removed_from_the_blueprint_are_deleted() {
    let env = env().await;
    env.apply().await;
    let mut smaller = env.bp.clone();
    smaller.spec.alarms.retain(|a| a.name != "errors");
    smaller.spec.dashboards.clear();
    let shrunk = Env {
        sdk: env.sdk.clone(),
        bp: smaller,
    };
    let plan = shrunk.plan().await;
    assert_eq!(
        action(&plan, ResourceKind::Alarm, "errors"),
        &Action::Delete
    );
    assert_eq!(
        action(&plan, ResourceKind::Dashboard, "ops"),
        &Action::Delete
    );
    shrunk.apply().await;
    assert!(env.describe("errors").await.is_none());
    assert!(env.describe("depth").await.is_some());
    assert_no_changes(&shrunk.plan().await);
}
