//! Queue policies against moto: every queue (DLQs too) is TLS-only unless the blueprint writes
//! `tlsOnly: false`; a policy edited or removed by hand is drift that apply restores, and one
//! AWS merely hands back in another shape is not.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a failed test (clippy.toml covers only #[test] fns, not helpers)"
)]

use aws_sdk_sqs::types::QueueAttributeName as Attr;
use ballast_aws::CallRecorder;
use ballast_blueprint::policy::{Effect, PolicyDocument, Principal};
use ballast_blueprint::{Blueprint, ResourceId, ResourceKind};
use ballast_controller::provision::engine::LogProgress;
use ballast_controller::provision::kinds::Readiness;
use ballast_controller::provision::kinds::queue::tls_only_policy;
use ballast_controller::provision::{self, Action, Clients, ReadOnlyClients};
use ballast_testbed::{moto, unique_name};

/// `work` (with `work-dlq` as its dead-letter queue); `work_extra` goes under `work`.
fn blueprint(name: &str, work_extra: &str) -> Blueprint {
    let text = format!(
        r#"apiVersion: ballast.dev/v1
kind: Blueprint
metadata: {{ name: {name}, region: us-east-1 }}
spec:
  queues:
    - name: work
      deadLetter: {{ queue: work-dlq, maxReceiveCount: 3 }}
{work_extra}      deletionPolicy: delete
    - name: work-dlq
      deletionPolicy: delete
"#
    );
    ballast_blueprint::parse("test.yaml", &text)
        .unwrap_or_else(|e| panic!("{e}"))
        .blueprint
}

async fn fresh_clients() -> (Clients, CallRecorder, aws_sdk_sqs::Client) {
    let config = moto().await.sdk_config().await;
    let recorder = CallRecorder::default();
    (
        Clients::read_write(&config, &recorder),
        recorder,
        aws_sdk_sqs::Client::new(&config),
    )
}

async fn plan_of(bp: &Blueprint) -> provision::Plan {
    let config = moto().await.sdk_config().await;
    let observation =
        provision::observe(&ReadOnlyClients::new(&config, &CallRecorder::default()), bp)
            .await
            .unwrap();
    provision::plan(bp, &observation)
}

async fn apply(bp: &Blueprint, clients: &Clients) {
    let observation = provision::observe(&clients.observer(), bp).await.unwrap();
    provision::apply(clients, bp, observation, Readiness::default(), &LogProgress)
        .await
        .unwrap();
}

fn changed_fields(plan: &provision::Plan, name: &str) -> Vec<String> {
    let resource = ResourceId::new(ResourceKind::Queue, name);
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

/// The queue's URL and ARN.
async fn queue(sqs: &aws_sdk_sqs::Client, physical: &str) -> (String, String) {
    let url = sqs
        .get_queue_url()
        .queue_name(physical)
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(Attr::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()
        .remove(&Attr::QueueArn)
        .unwrap();
    (url, arn)
}

/// The queue's `Policy` attribute as AWS returns it, `None` when it has none.
async fn live_policy(sqs: &aws_sdk_sqs::Client, url: &str) -> Option<String> {
    sqs.get_queue_attributes()
        .queue_url(url)
        .attribute_names(Attr::Policy)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap_or_default()
        .remove(&Attr::Policy)
        .filter(|p| !p.is_empty())
}

async fn set_policy(sqs: &aws_sdk_sqs::Client, url: &str, policy: &str) {
    sqs.set_queue_attributes()
        .queue_url(url)
        .attributes(Attr::Policy, policy)
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn every_created_queue_and_its_dead_letter_queue_deny_requests_without_tls() {
    let name = unique_name("qpol");
    let bp = blueprint(&name, "");
    let (clients, recorder, sqs) = fresh_clients().await;
    apply(&bp, &clients).await;

    for physical in [format!("{name}-work"), format!("{name}-work-dlq")] {
        let (url, arn) = queue(&sqs, &physical).await;
        let text = live_policy(&sqs, &url).await.expect("a queue policy");
        let doc = PolicyDocument::parse(&text).unwrap();
        assert!(doc.same_as(&tls_only_policy(&arn)), "{physical}: {text}");
        let [statement] = doc.statements.as_slice() else {
            panic!("{physical}: one statement expected in {text}");
        };
        assert_eq!(statement.effect, Effect::Deny);
        assert_eq!(statement.principal, Some(Principal::Anyone));
        assert_eq!(statement.actions, ["sqs:*"]);
        assert_eq!(statement.resources, [arn.as_str()]);
        assert_eq!(
            statement.conditions["Bool"]["aws:SecureTransport"],
            ["false"]
        );
    }
    // The DLQ comes first and is the stack's first ARN: its policy is set after CreateQueue.
    // `work` is created knowing the account from the DLQ's ARN, so CreateQueue carries it.
    assert_eq!(calls_of(&recorder, "CreateQueue"), 2);
    assert_eq!(calls_of(&recorder, "SetQueueAttributes"), 1);

    let plan = plan_of(&bp).await;
    assert!(
        !plan.has_changes(),
        "{}",
        provision::render::plan_text(&plan)
    );
    assert!(plan.safety_overrides.is_empty());
}

#[tokio::test]
async fn a_policy_edited_or_removed_by_hand_is_drift_and_apply_restores_it() {
    let name = unique_name("qpold");
    let bp = blueprint(&name, "");
    let (clients, _, sqs) = fresh_clients().await;
    apply(&bp, &clients).await;
    let (work_url, work_arn) = queue(&sqs, &format!("{name}-work")).await;
    let (dlq_url, dlq_arn) = queue(&sqs, &format!("{name}-work-dlq")).await;

    // Narrowed to SendMessage: receiving over plain HTTP would be allowed again.
    let narrowed = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"DenyInsecureTransport","Effect":"Deny","Principal":"*","Action":"sqs:SendMessage","Resource":"{work_arn}","Condition":{{"Bool":{{"aws:SecureTransport":"false"}}}}}}]}}"#
    );
    set_policy(&sqs, &work_url, &narrowed).await;
    set_policy(&sqs, &dlq_url, "").await;
    assert_eq!(live_policy(&sqs, &dlq_url).await, None);

    let plan = plan_of(&bp).await;
    assert_eq!(changed_fields(&plan, "work"), ["policy"]);
    assert_eq!(changed_fields(&plan, "work-dlq"), ["policy"]);
    let text = provision::render::plan_text(&plan);
    let want = |arn: &str| {
        format!(
            "DenyInsecureTransport: Deny sqs:* to * on {arn} when Bool aws:SecureTransport = false"
        )
    };
    assert!(
        text.contains(&format!(
            "policy: DenyInsecureTransport: Deny sqs:SendMessage to * on {work_arn} when Bool aws:SecureTransport = false → {}",
            want(&work_arn)
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("policy: (unset) → {}", want(&dlq_arn))),
        "{text}"
    );

    let (clients, _, _) = fresh_clients().await;
    apply(&bp, &clients).await;
    for (url, arn) in [(&work_url, &work_arn), (&dlq_url, &dlq_arn)] {
        let restored = PolicyDocument::parse(&live_policy(&sqs, url).await.unwrap()).unwrap();
        assert!(restored.same_as(&tls_only_policy(arn)), "{url}");
    }
    let plan = plan_of(&bp).await;
    assert!(
        !plan.has_changes(),
        "{}",
        provision::render::plan_text(&plan)
    );
}

#[tokio::test]
async fn the_same_policy_in_another_shape_is_not_drift_and_is_not_rewritten() {
    let name = unique_name("qpols");
    let bp = blueprint(&name, "");
    let (clients, _, sqs) = fresh_clients().await;
    apply(&bp, &clients).await;
    let (url, arn) = queue(&sqs, &format!("{name}-work")).await;

    // Keys reordered, the statement an object instead of a list, one-element lists, the action
    // and the condition key in another case, the condition a boolean: what it allows and
    // denies is unchanged.
    let reshaped = format!(
        r#"{{
          "Statement": {{
            "Condition": {{ "Bool": {{ "aws:securetransport": [false] }} }},
            "Resource": ["{arn}"],
            "Action": ["SQS:*"],
            "Principal": "*",
            "Effect": "Deny",
            "Sid": "DenyInsecureTransport"
          }},
          "Version": "2012-10-17"
        }}"#
    );
    set_policy(&sqs, &url, &reshaped).await;
    let stored = live_policy(&sqs, &url).await.unwrap();
    assert!(
        !stored.contains(r#""sqs:*""#),
        "moto stores it as given: {stored}"
    );

    let plan = plan_of(&bp).await;
    assert!(
        !plan.has_changes(),
        "{}",
        provision::render::plan_text(&plan)
    );
    let (clients, recorder, _) = fresh_clients().await;
    apply(&bp, &clients).await;
    assert_eq!(recorder.mutating(), 0, "{:?}", recorder.snapshot());
    assert_eq!(live_policy(&sqs, &url).await.unwrap(), stored);
}

#[tokio::test]
async fn tls_only_false_removes_the_policy_and_is_listed_as_a_safety_override() {
    let name = unique_name("qpolo");
    let (clients, _, sqs) = fresh_clients().await;
    apply(&blueprint(&name, ""), &clients).await;
    let (url, arn) = queue(&sqs, &format!("{name}-work")).await;
    assert!(live_policy(&sqs, &url).await.is_some());

    let plain = blueprint(&name, "      tlsOnly: false\n");
    let plan = plan_of(&plain).await;
    assert_eq!(changed_fields(&plan, "work"), ["policy"]);
    assert!(changed_fields(&plan, "work-dlq").is_empty());
    let overrides: Vec<(String, &str)> = plan
        .safety_overrides
        .iter()
        .map(|o| (o.resource.to_string(), o.field))
        .collect();
    assert_eq!(overrides, [("queue/work".to_string(), "tlsOnly")]);
    let text = provision::render::plan_text(&plan);
    assert!(
        text.contains(
            "! queue/work tlsOnly: queue accepts requests over plain HTTP (no TLS-only queue policy)"
        ),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "policy: DenyInsecureTransport: Deny sqs:* to * on {arn} when Bool aws:SecureTransport = false → (unset)"
        )),
        "{text}"
    );

    let (clients, _, _) = fresh_clients().await;
    apply(&plain, &clients).await;
    assert_eq!(live_policy(&sqs, &url).await, None);
    let plan = plan_of(&plain).await;
    assert!(
        !plan.has_changes(),
        "{}",
        provision::render::plan_text(&plan)
    );

    // Without the TLS-only policy the queue has none: one added by hand is drift too.
    set_policy(&sqs, &url, &tls_only_policy(&arn).to_json().to_string()).await;
    let plan = plan_of(&plain).await;
    assert_eq!(changed_fields(&plan, "work"), ["policy"]);
}

#[tokio::test]
async fn a_queue_created_with_tls_only_false_gets_no_policy() {
    let name = unique_name("qpoln");
    let bp = blueprint(&name, "      tlsOnly: false\n");
    let (clients, _, sqs) = fresh_clients().await;
    apply(&bp, &clients).await;
    let (work_url, _) = queue(&sqs, &format!("{name}-work")).await;
    let (dlq_url, _) = queue(&sqs, &format!("{name}-work-dlq")).await;
    assert_eq!(live_policy(&sqs, &work_url).await, None);
    assert!(live_policy(&sqs, &dlq_url).await.is_some());
    assert!(!plan_of(&bp).await.has_changes());
}

/// A queue's own `policyStatements` are written after the TLS-only statement, scoped to the
/// queue's ARN; changing one in the blueprint is a policy change that one apply converges.
#[tokio::test]
async fn own_policy_statements_are_written_scoped_to_the_queue_and_kept_in_sync() {
    let name = unique_name("qpol");
    let partner = |action: &str| {
        format!(
            "      policyStatements:\n        - {{Sid: PartnerSends, Effect: Allow, Principal: {{AWS: 'arn:aws:iam::210987654321:root'}}, Action: {action}, Resource: '*'}}\n"
        )
    };
    let bp = blueprint(&name, &partner("sqs:SendMessage"));
    let (clients, _recorder, sqs) = fresh_clients().await;
    apply(&bp, &clients).await;

    let (url, arn) = queue(&sqs, &format!("{name}-work")).await;
    let read = |text: Option<String>| PolicyDocument::parse(&text.expect("a policy")).unwrap();
    let doc = read(live_policy(&sqs, &url).await);
    let sids: Vec<_> = doc
        .statements
        .iter()
        .filter_map(|s| s.sid.as_deref())
        .collect();
    assert_eq!(sids.len(), 2, "{doc:?}");
    let own = doc
        .statements
        .iter()
        .find(|s| s.sid.as_deref() == Some("PartnerSends"))
        .expect("the own statement");
    assert_eq!(own.resources, [arn.as_str()], "`*` is written as the queue");
    assert_eq!(own.actions, ["sqs:SendMessage"]);
    assert!(changed_fields(&plan_of(&bp).await, "work").is_empty());

    // The partner may now also read its replies: a change of the policy, applied once.
    let wider = blueprint(&name, &partner("[sqs:SendMessage, sqs:GetQueueAttributes]"));
    assert_eq!(changed_fields(&plan_of(&wider).await, "work"), ["policy"]);
    apply(&wider, &clients).await;
    let doc = read(live_policy(&sqs, &url).await);
    let own = doc
        .statements
        .iter()
        .find(|s| s.sid.as_deref() == Some("PartnerSends"))
        .expect("the own statement");
    assert_eq!(own.actions.len(), 2, "{doc:?}");
    assert!(changed_fields(&plan_of(&wider).await, "work").is_empty());
}
