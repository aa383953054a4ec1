//! SNS topics, their subscriptions and the alarm actions that name them, against moto: apply
//! converges, subscriptions compare as a set, and changes made behind Ballast's back (a
//! subscription removed or added, encryption switched off, an alarm's actions replaced) show
//! up in the plan and are repaired.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a failed test (clippy.toml covers only #[test] fns, not helpers)"
)]

use std::collections::BTreeSet;

use ballast_aws::CallRecorder;
use ballast_blueprint::{Blueprint, ResourceId, ResourceKind};
use ballast_controller::provision::engine::LogProgress;
use ballast_controller::provision::kinds::Readiness;
use ballast_controller::provision::{Action, Clients, Plan, apply, observe, plan};

fn blueprint(name: &str, extra_topic: &str) -> Blueprint {
    let text = format!(
        r#"apiVersion: ballast.dev/v1
kind: Blueprint
metadata:
  name: {name}
  region: us-east-1
spec:
  kmsKeys:
    - name: data
      deletionPolicy: delete
  queues:
    - name: alerts
      deletionPolicy: delete
  topics:
    - name: oncall
      kmsKey: data
      subscriptions:
        - {{ protocol: sqs, endpoint: alerts }}
        - {{ protocol: email, endpoint: ops@example.com }}
        - {{ protocol: https, endpoint: "https://hooks.example.com/alarms" }}
{extra_topic}
  alarms:
    - name: depth
      queue: alerts
      metric: ApproximateNumberOfMessagesVisible
      statistic: Maximum
      period: 60s
      threshold: 10
      comparison: greaterThan
      alarmActions: [oncall]
      okActions: [oncall, "arn:aws:sns:us-east-1:123456789012:audit"]
      insufficientDataActions: [oncall]
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

async fn env_with(extra_topic: &str) -> Env {
    let moto = ballast_testbed::moto().await;
    let name = ballast_testbed::unique_name("t").to_lowercase();
    Env {
        sdk: moto.sdk_config().await,
        bp: blueprint(&name, extra_topic),
    }
}

async fn env() -> Env {
    env_with("").await
}

impl Env {
    async fn plan(&self) -> Plan {
        let clients = Clients::read_write(&self.sdk, &CallRecorder::default());
        let observation = observe(&clients.observer(), &self.bp).await.unwrap();
        plan(&self.bp, &observation)
    }

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
        .unwrap_or_else(|e| panic!("apply failed: {e}"));
        recorder
    }

    fn name(&self, name: &str) -> String {
        format!("{}-{name}", self.bp.metadata.name)
    }

    fn sns(&self) -> aws_sdk_sns::Client {
        aws_sdk_sns::Client::new(&self.sdk)
    }

    async fn topic_arn(&self, name: &str) -> Option<String> {
        let wanted = self.name(name);
        self.sns()
            .list_topics()
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .unwrap()
            .into_iter()
            .filter_map(|t| t.topic_arn)
            .find(|arn| arn.rsplit(':').next() == Some(wanted.as_str()))
    }

    /// (protocol, endpoint, subscription ARN) of every subscription of the topic.
    async fn subscriptions(&self, topic_arn: &str) -> Vec<(String, String, String)> {
        self.sns()
            .list_subscriptions_by_topic()
            .topic_arn(topic_arn)
            .send()
            .await
            .unwrap()
            .subscriptions()
            .iter()
            .map(|s| {
                (
                    s.protocol().unwrap().to_string(),
                    s.endpoint().unwrap().to_string(),
                    s.subscription_arn().unwrap().to_string(),
                )
            })
            .collect()
    }

    async fn queue_arn(&self, name: &str) -> String {
        let sqs = aws_sdk_sqs::Client::new(&self.sdk);
        let url = sqs
            .get_queue_url()
            .queue_name(self.name(name))
            .send()
            .await
            .unwrap()
            .queue_url
            .unwrap();
        sqs.get_queue_attributes()
            .queue_url(url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
            .clone()
    }

    async fn alarm(&self, name: &str) -> aws_sdk_cloudwatch::types::MetricAlarm {
        aws_sdk_cloudwatch::Client::new(&self.sdk)
            .describe_alarms()
            .alarm_names(self.name(name))
            .send()
            .await
            .unwrap()
            .metric_alarms
            .unwrap_or_default()
            .into_iter()
            .next()
            .expect("alarm exists")
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

/// The single changed field of `name`'s update.
fn changed_fields(plan: &Plan, kind: ResourceKind, name: &str) -> Vec<String> {
    match action(plan, kind, name) {
        Action::Update { changes } => changes.iter().map(|c| c.field.clone()).collect(),
        other => panic!("update of {kind}/{name} expected, got {other:?}"),
    }
}

#[tokio::test]
async fn a_topic_with_subscriptions_and_the_alarm_naming_it_converge() {
    let env = env().await;
    env.apply().await;

    let topic = env.topic_arn("oncall").await.expect("topic exists");
    let queue = env.queue_arn("alerts").await;
    let subscriptions: BTreeSet<(String, String)> = env
        .subscriptions(&topic)
        .await
        .into_iter()
        .map(|(p, e, _)| (p, e))
        .collect();
    assert_eq!(
        subscriptions,
        BTreeSet::from([
            ("email".to_string(), "ops@example.com".to_string()),
            (
                "https".to_string(),
                "https://hooks.example.com/alarms".to_string()
            ),
            ("sqs".to_string(), queue),
        ])
    );
    // The queue's policy lets exactly this topic send, besides the TLS-only statement. (No
    // publish here: moto would deliver to the https endpoint too, which is not reachable.)
    let sqs = aws_sdk_sqs::Client::new(&env.sdk);
    let url = sqs
        .get_queue_url()
        .queue_name(env.name("alerts"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let policy = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::Policy)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::Policy]
        .clone();
    let policy = ballast_blueprint::policy::PolicyDocument::parse(&policy).unwrap();
    let sends = policy
        .statements
        .iter()
        .find(|s| s.sid.as_deref() == Some("AllowTopiconcall"))
        .unwrap_or_else(|| panic!("no statement for the topic: {policy:?}"));
    assert_eq!(sends.actions, ["sqs:SendMessage"]);
    assert_eq!(
        sends.conditions["ArnEquals"]["aws:SourceArn"],
        [topic.as_str()]
    );

    // Encrypted with the blueprint's key, tagged as this blueprint's.
    let attributes = env
        .sns()
        .get_topic_attributes()
        .topic_arn(&topic)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap();
    assert!(
        attributes
            .get("KmsMasterKeyId")
            .is_some_and(|k| k.contains(":kms:")),
        "{attributes:?}"
    );
    let tags = env
        .sns()
        .list_tags_for_resource()
        .resource_arn(&topic)
        .send()
        .await
        .unwrap();
    assert!(
        tags.tags()
            .iter()
            .any(|t| t.key() == "ballast.dev/blueprint"
                && t.value() == env.bp.metadata.name.as_str())
    );

    // The alarm notifies the topic by its ARN.
    let alarm = env.alarm("depth").await;
    assert_eq!(alarm.alarm_actions(), std::slice::from_ref(&topic));
    assert_eq!(
        alarm.insufficient_data_actions(),
        std::slice::from_ref(&topic)
    );
    let ok: BTreeSet<&str> = alarm.ok_actions().iter().map(String::as_str).collect();
    assert_eq!(
        ok,
        BTreeSet::from([topic.as_str(), "arn:aws:sns:us-east-1:123456789012:audit"])
    );

    assert_no_changes(&env.plan().await);
    let second = env.apply().await;
    assert_eq!(second.mutating(), 0, "{:?}", second.snapshot());
}

#[tokio::test]
async fn subscriptions_changed_behind_our_back_are_repaired() {
    let env = env().await;
    env.apply().await;
    let topic = env.topic_arn("oncall").await.unwrap();
    let email = env
        .subscriptions(&topic)
        .await
        .into_iter()
        .find(|(p, _, _)| p == "email")
        .unwrap();
    env.sns()
        .unsubscribe()
        .subscription_arn(&email.2)
        .send()
        .await
        .unwrap();
    env.sns()
        .subscribe()
        .topic_arn(&topic)
        .protocol("email")
        .endpoint("intruder@example.com")
        .send()
        .await
        .unwrap();

    let plan = env.plan().await;
    assert_eq!(
        changed_fields(&plan, ResourceKind::Topic, "oncall"),
        ["subscriptions"]
    );
    assert_eq!(plan.summary.update, 1, "only the topic changes");

    env.apply().await;
    let endpoints: BTreeSet<String> = env
        .subscriptions(&topic)
        .await
        .into_iter()
        .map(|(_, e, _)| e)
        .collect();
    assert!(endpoints.contains("ops@example.com"), "{endpoints:?}");
    assert!(!endpoints.contains("intruder@example.com"), "{endpoints:?}");
    assert_eq!(endpoints.len(), 3, "{endpoints:?}");
    assert_no_changes(&env.plan().await);
}

#[tokio::test]
async fn encryption_and_alarm_actions_changed_behind_our_back_are_restored() {
    let env = env().await;
    env.apply().await;
    let topic = env.topic_arn("oncall").await.unwrap();
    env.sns()
        .set_topic_attributes()
        .topic_arn(&topic)
        .attribute_name("KmsMasterKeyId")
        .attribute_value("")
        .send()
        .await
        .unwrap();
    // Someone points the alarm at another topic.
    let live = env.alarm("depth").await;
    aws_sdk_cloudwatch::Client::new(&env.sdk)
        .put_metric_alarm()
        .alarm_name(env.name("depth"))
        .set_namespace(live.namespace().map(str::to_string))
        .set_metric_name(live.metric_name().map(str::to_string))
        .set_dimensions(Some(live.dimensions().to_vec()))
        .set_statistic(live.statistic().cloned())
        .set_period(live.period())
        .set_threshold(live.threshold())
        .set_comparison_operator(live.comparison_operator().cloned())
        .set_evaluation_periods(live.evaluation_periods())
        .set_datapoints_to_alarm(live.datapoints_to_alarm())
        .set_treat_missing_data(live.treat_missing_data().map(str::to_string))
        .alarm_actions("arn:aws:sns:us-east-1:123456789012:elsewhere")
        .set_ok_actions(Some(live.ok_actions().to_vec()))
        .set_insufficient_data_actions(Some(live.insufficient_data_actions().to_vec()))
        .send()
        .await
        .unwrap();

    let plan = env.plan().await;
    assert_eq!(
        changed_fields(&plan, ResourceKind::Topic, "oncall"),
        ["kmsKey"]
    );
    assert_eq!(
        changed_fields(&plan, ResourceKind::Alarm, "depth"),
        ["alarmActions"]
    );

    env.apply().await;
    assert_eq!(env.alarm("depth").await.alarm_actions(), [topic]);
    assert_no_changes(&env.plan().await);
}

#[tokio::test]
async fn a_topic_removed_from_the_blueprint_is_deleted_and_an_unowned_one_is_left_alone() {
    let env = env_with("    - name: spare").await;
    env.apply().await;
    let spare = env.topic_arn("spare").await.expect("spare topic exists");

    // Someone else's topic under the stack prefix: not ours, never touched.
    let foreign = env
        .sns()
        .create_topic()
        .name(env.name("foreign"))
        .send()
        .await
        .unwrap()
        .topic_arn
        .unwrap();

    let without = Env {
        sdk: env.sdk.clone(),
        bp: blueprint(&env.bp.metadata.name, ""),
    };
    let plan = without.plan().await;
    assert_eq!(
        action(&plan, ResourceKind::Topic, "spare"),
        &Action::Delete,
        "{plan:?}"
    );
    assert!(
        !plan
            .changes
            .iter()
            .any(|c| c.resource == ResourceId::new(ResourceKind::Topic, "foreign")),
        "{plan:?}"
    );
    without.apply().await;
    assert_eq!(env.topic_arn("spare").await, None, "{spare} deleted");
    assert_eq!(env.topic_arn("foreign").await, Some(foreign));
    assert_no_changes(&without.plan().await);
}

#[tokio::test]
async fn an_existing_topic_is_a_conflict_unless_adopted() {
    let env = env().await;
    let existing = env
        .sns()
        .create_topic()
        .name(env.name("oncall"))
        .send()
        .await
        .unwrap()
        .topic_arn
        .unwrap();
    let plan = env.plan().await;
    assert!(
        matches!(
            action(&plan, ResourceKind::Topic, "oncall"),
            Action::Conflict { .. }
        ),
        "{plan:?}"
    );

    let mut adopting = Env {
        sdk: env.sdk.clone(),
        bp: env.bp.clone(),
    };
    adopting.bp.spec.topics[0].adopt = true;
    assert!(matches!(
        action(&adopting.plan().await, ResourceKind::Topic, "oncall"),
        Action::Adopt { .. }
    ));
    adopting.apply().await;
    assert_eq!(env.topic_arn("oncall").await, Some(existing.clone()));
    assert_eq!(env.subscriptions(&existing).await.len(), 3);
    assert_no_changes(&adopting.plan().await);
}
