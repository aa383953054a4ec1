//! Key policies against moto: every key's policy is the account's administration statement,
//! what the blueprint needs (CloudWatch may use a key encrypting a topic an alarm notifies)
//! and the blueprint's own `policyStatements`; a grant added by hand is drift that apply
//! removes; a key whose create was interrupted before its policy gets it on the next apply.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a failed test (clippy.toml covers only #[test] fns, not helpers)"
)]

use aws_sdk_kms::types::Tag as KmsTag;
use ballast_aws::CallRecorder;
use ballast_blueprint::key_policy::{
    ACCOUNT_ADMINISTRATION_SID, CLOUDWATCH_NOTIFY_SID, KeyScope, aws_default_policy, key_policy,
};
use ballast_blueprint::policy::PolicyDocument;
use ballast_blueprint::{Blueprint, ResourceId, ResourceKind};
use ballast_controller::provision::engine::LogProgress;
use ballast_controller::provision::kinds::Readiness;
use ballast_controller::provision::{self, Action, Clients, ReadOnlyClients};
use ballast_testbed::{moto, unique_name};

/// `data` encrypts the `oncall` topic that the `depth` alarm notifies, and grants an auditor
/// role `kms:DescribeKey`; `plain` is needed by nothing.
fn blueprint(name: &str) -> Blueprint {
    let text = format!(
        r#"apiVersion: ballast.dev/v1
kind: Blueprint
metadata: {{ name: {name}, region: us-east-1 }}
spec:
  kmsKeys:
    - name: data
      deletionWindow: 7d
      deletionPolicy: delete
      policyStatements:
        - Sid: AuditorsDescribe
          Effect: Allow
          Principal: {{ AWS: "arn:aws:iam::123456789012:role/auditor" }}
          Action: kms:DescribeKey
          Resource: "*"
    - name: plain
      deletionWindow: 7d
      deletionPolicy: delete
  topics:
    - {{ name: oncall, kmsKey: data, deletionPolicy: delete }}
  queues:
    - {{ name: work, deletionPolicy: delete }}
  alarms:
    - name: depth
      queue: work
      metric: ApproximateNumberOfMessagesVisible
      statistic: Maximum
      period: 60s
      threshold: 1000
      comparison: greaterThan
      alarmActions: [oncall]
      deletionPolicy: delete
"#
    );
    ballast_blueprint::parse("test.yaml", &text)
        .unwrap_or_else(|e| panic!("{e}"))
        .blueprint
}

async fn config() -> aws_types::SdkConfig {
    moto().await.sdk_config().await
}

async fn plan_of(bp: &Blueprint) -> provision::Plan {
    let config = config().await;
    let observation =
        provision::observe(&ReadOnlyClients::new(&config, &CallRecorder::default()), bp)
            .await
            .unwrap();
    provision::plan(bp, &observation)
}

async fn apply(bp: &Blueprint, recorder: &CallRecorder) {
    let clients = Clients::read_write(&config().await, recorder);
    let observation = provision::observe(&clients.observer(), bp).await.unwrap();
    provision::apply(
        &clients,
        bp,
        observation,
        Readiness::default(),
        &LogProgress,
    )
    .await
    .unwrap();
}

fn changed_fields(plan: &provision::Plan, key: &str) -> Vec<String> {
    let resource = ResourceId::new(ResourceKind::KmsKey, key);
    plan.changes
        .iter()
        .filter(|c| c.resource == resource)
        .flat_map(|c| match &c.action {
            Action::Update { changes } => changes.iter().map(|f| f.field.clone()).collect(),
            Action::NoChange => Vec::new(),
            other => vec![format!("{other:?}")],
        })
        .collect()
}

fn calls_of(recorder: &CallRecorder, operation: &str) -> u64 {
    recorder
        .snapshot()
        .iter()
        .filter(|(k, _)| k.operation == operation)
        .map(|(_, n)| n)
        .sum()
}

/// The key behind `alias/<stack>-<key>`: its ARN and its policy as KMS returns it.
async fn live_key(stack: &str, key: &str) -> (String, PolicyDocument) {
    let kms = aws_sdk_kms::Client::new(&config().await);
    let meta = kms
        .describe_key()
        .key_id(format!("alias/{stack}-{key}"))
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap();
    let policy = kms
        .get_key_policy()
        .key_id(&meta.key_id)
        .policy_name("default")
        .send()
        .await
        .unwrap()
        .policy
        .unwrap();
    (meta.arn.unwrap(), PolicyDocument::parse(&policy).unwrap())
}

fn wanted(bp: &Blueprint, key: &str, arn: &str) -> PolicyDocument {
    key_policy(
        bp,
        bp.kms_key(key).unwrap(),
        &KeyScope::from_key_arn(arn).unwrap(),
    )
}

#[tokio::test]
async fn a_key_policy_has_the_accounts_statement_what_alarms_need_and_its_own() {
    let name = unique_name("kpol");
    let bp = blueprint(&name);
    let recorder = CallRecorder::default();
    apply(&bp, &recorder).await;

    let (arn, live) = live_key(&name, "data").await;
    assert!(live.same_as(&wanted(&bp, "data", &arn)), "{live:?}");
    let mut sids: Vec<_> = live
        .statements
        .iter()
        .filter_map(|s| s.sid.clone())
        .collect();
    sids.sort();
    assert_eq!(
        sids,
        [
            CLOUDWATCH_NOTIFY_SID,
            "AuditorsDescribe",
            ACCOUNT_ADMINISTRATION_SID
        ]
    );
    // A key nothing needs more of keeps the policy CreateKey gave it: no PutKeyPolicy.
    let (plain_arn, plain) = live_key(&name, "plain").await;
    assert!(plain.same_as(&aws_default_policy(
        &KeyScope::from_key_arn(&plain_arn).unwrap()
    )));
    assert_eq!(calls_of(&recorder, "PutKeyPolicy"), 1);

    let plan = plan_of(&bp).await;
    assert!(
        !plan.has_changes(),
        "{}",
        provision::render::plan_text(&plan)
    );
}

#[tokio::test]
async fn a_grant_added_by_hand_is_drift_and_apply_removes_it() {
    let name = unique_name("kpold");
    let bp = blueprint(&name);
    apply(&bp, &CallRecorder::default()).await;
    let (arn, before) = live_key(&name, "data").await;

    // Another account may now decrypt: exactly what a review must see.
    let mut granted = before.to_json();
    granted["Statement"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "Sid": "AddedByHand", "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::999999999999:root"},
            "Action": "kms:Decrypt", "Resource": "*"
        }));
    let kms = aws_sdk_kms::Client::new(&config().await);
    kms.put_key_policy()
        .key_id(&arn)
        .policy_name("default")
        .policy(granted.to_string())
        .send()
        .await
        .unwrap();

    let plan = plan_of(&bp).await;
    assert_eq!(changed_fields(&plan, "data"), ["policy"]);
    assert!(changed_fields(&plan, "plain").is_empty());
    let text = provision::render::plan_text(&plan);
    assert!(
        text.contains("AddedByHand: Allow kms:Decrypt to AWS:arn:aws:iam::999999999999:root on *"),
        "{text}"
    );

    apply(&bp, &CallRecorder::default()).await;
    let (_, after) = live_key(&name, "data").await;
    assert!(after.same_as(&wanted(&bp, "data", &arn)), "{after:?}");
    let plan = plan_of(&bp).await;
    assert!(!plan.has_drift(), "{}", provision::render::plan_text(&plan));
}

/// What `KmsKeys::create` leaves when killed after CreateKey: the key with its tags and
/// AWS's default policy, no alias. One apply completes it, policy included.
#[tokio::test]
async fn a_key_created_before_its_policy_is_completed_by_one_apply() {
    let name = unique_name("kpolh");
    let bp = blueprint(&name);
    let key = ResourceId::new(ResourceKind::KmsKey, "data");
    let kms = aws_sdk_kms::Client::new(&config().await);
    let mut request = kms.create_key();
    for (k, v) in bp.ownership_tags_for(&key) {
        request = request.tags(KmsTag::builder().tag_key(k).tag_value(v).build().unwrap());
    }
    let half = request.send().await.unwrap().key_metadata.unwrap();

    let plan = plan_of(&bp).await;
    assert_eq!(
        changed_fields(&plan, "data"),
        ["rotation", "alias", "policy"]
    );
    apply(&bp, &CallRecorder::default()).await;
    let (arn, live) = live_key(&name, "data").await;
    assert_eq!(Some(&arn), half.arn.as_ref(), "the first key, not a second");
    assert!(live.same_as(&wanted(&bp, "data", &arn)), "{live:?}");
    let plan = plan_of(&bp).await;
    assert!(!plan.has_drift(), "{}", provision::render::plan_text(&plan));
}
