//! The provisioning engine against moto: apply, drift, restore, ownership, destroy.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a failed test (clippy.toml covers only #[test] fns, not helpers)"
)]

use std::process::Command;

use aws_sdk_sqs::types::QueueAttributeName;
use ballast_aws::CallRecorder;
use ballast_blueprint::{Blueprint, ResourceId, ResourceKind};
use ballast_controller::provision::engine::LogProgress;
use ballast_controller::provision::kinds::Readiness;
use ballast_controller::provision::{self, Action, Clients, ReadOnlyClients};
use ballast_testbed::{moto, unique_name};

fn blueprint_text(name: &str, extra_queue: &str) -> String {
    format!(
        r#"apiVersion: ballast.dev/v1
kind: Blueprint
metadata: {{ name: {name}, region: us-east-1 }}
spec:
  kmsKeys:
    - name: main
      deletionWindow: 7d
      deletionPolicy: delete
  queues:
    - name: work
      visibilityTimeout: 60s
      retention: 14d
      encryption: {{ type: kms, kmsKey: main }}
      deadLetter: {{ queue: work-dlq, maxReceiveCount: 3 }}
{extra_queue}    - name: work-dlq
      retention: 14d
      encryption: {{ type: kms, kmsKey: main }}
  tables:
    - name: items
      hashKey: {{ name: pk, type: S }}
      rangeKey: {{ name: sk, type: S }}
      ttlAttribute: expires_at
      deletionPolicy: delete
"#
    )
}

fn parse(text: &str) -> Blueprint {
    ballast_blueprint::parse("test.yaml", text)
        .unwrap_or_else(|e| panic!("{e}"))
        .blueprint
}

async fn fresh_clients() -> (Clients, CallRecorder, aws_types::SdkConfig) {
    let config = moto().await.sdk_config().await;
    let recorder = CallRecorder::default();
    (Clients::read_write(&config, &recorder), recorder, config)
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

fn changed_fields(plan: &provision::Plan, resource: &ResourceId) -> Vec<String> {
    plan.changes
        .iter()
        .filter(|c| &c.resource == resource)
        .flat_map(|c| match &c.action {
            Action::Update { changes } => changes.iter().map(|f| f.field.clone()).collect(),
            other => vec![format!("{other:?}")],
        })
        .collect()
}

fn ballast(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ballast"))
        .args(args)
        .envs(ballast_testbed::child_env())
        .env_remove("AWS_ENDPOINT_URL")
        .output()
        .expect("ballast runs")
}

#[tokio::test]
async fn apply_converges_and_a_second_apply_makes_no_mutating_call() {
    let bp = parse(&blueprint_text(&unique_name("conv"), ""));
    let (clients, recorder, _) = fresh_clients().await;
    apply(&bp, &clients).await;
    assert!(recorder.mutating() > 0);
    let plan = plan_of(&bp).await;
    assert!(
        !plan.has_changes(),
        "{}",
        provision::render::plan_text(&plan)
    );
    assert_eq!(plan.summary.unchanged, 4);

    let (clients, recorder, _) = fresh_clients().await;
    apply(&bp, &clients).await;
    assert_eq!(recorder.mutating(), 0, "{:?}", recorder.snapshot());
}

#[tokio::test]
async fn drift_behind_ballasts_back_is_reported_and_apply_restores_it() {
    let name = unique_name("drift");
    let bp = parse(&blueprint_text(&name, ""));
    let (clients, _, config) = fresh_clients().await;
    apply(&bp, &clients).await;

    let sqs = aws_sdk_sqs::Client::new(&config);
    let kms = aws_sdk_kms::Client::new(&config);
    let ddb = aws_sdk_dynamodb::Client::new(&config);
    let work_url = sqs
        .get_queue_url()
        .queue_name(format!("{name}-work"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let dlq_arn = format!("arn:aws:sqs:us-east-1:123456789012:{name}-work-dlq");
    // moto clears a queue's policy on a SetQueueAttributes that does not name it (AWS keeps
    // it): the edit restates it so that moto keeps it as AWS would.
    let policy = sqs
        .get_queue_attributes()
        .queue_url(&work_url)
        .attribute_names(QueueAttributeName::Policy)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()
        .remove(&QueueAttributeName::Policy)
        .unwrap();
    sqs.set_queue_attributes()
        .queue_url(&work_url)
        .attributes(QueueAttributeName::Policy, policy)
        .attributes(QueueAttributeName::VisibilityTimeout, "5")
        .attributes(
            QueueAttributeName::RedrivePolicy,
            format!(r#"{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":9}}"#),
        )
        .send()
        .await
        .unwrap();
    let key_id = kms
        .describe_key()
        .key_id(format!("alias/{name}-main"))
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap()
        .key_id;
    kms.disable_key_rotation()
        .key_id(&key_id)
        .send()
        .await
        .unwrap();
    ddb.update_continuous_backups()
        .table_name(format!("{name}-items"))
        .point_in_time_recovery_specification(
            aws_sdk_dynamodb::types::PointInTimeRecoverySpecification::builder()
                .point_in_time_recovery_enabled(false)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();

    let plan = plan_of(&bp).await;
    assert_eq!(
        changed_fields(&plan, &ResourceId::new(ResourceKind::Queue, "work")),
        ["visibilityTimeout", "deadLetter"]
    );
    assert_eq!(
        changed_fields(&plan, &ResourceId::new(ResourceKind::KmsKey, "main")),
        ["rotation"]
    );
    assert_eq!(
        changed_fields(&plan, &ResourceId::new(ResourceKind::Table, "items")),
        ["pointInTimeRecovery"]
    );
    let text = provision::render::plan_text(&plan);
    assert!(text.contains("visibilityTimeout: 5 → 60"), "{text}");
    assert!(
        text.contains(r#""maxReceiveCount":9"#) && text.contains(r#""maxReceiveCount":3"#),
        "{text}"
    );

    let (clients, _, _) = fresh_clients().await;
    apply(&bp, &clients).await;
    let plan = plan_of(&bp).await;
    assert!(
        !plan.has_changes(),
        "{}",
        provision::render::plan_text(&plan)
    );
}

#[tokio::test]
async fn the_drift_command_exits_by_state_and_never_writes() {
    let name = unique_name("cli");
    let dir = std::env::temp_dir().join(&name);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bp.yaml");
    std::fs::write(&file, blueprint_text(&name, "")).unwrap();
    let file = file.to_str().unwrap();
    let endpoint = moto().await.endpoint();

    // Nothing deployed yet: "everything missing" is an error, not drift.
    let out = ballast(&["drift", file, "--endpoint-url", &endpoint]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("wrong credentials, account or region"));

    let out = ballast(&["apply", file, "--endpoint-url", &endpoint, "--auto-approve"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = ballast(&["drift", file, "--endpoint-url", &endpoint]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    let config = moto().await.sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    let url = sqs
        .get_queue_url()
        .queue_name(format!("{name}-work"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    sqs.set_queue_attributes()
        .queue_url(&url)
        .attributes(QueueAttributeName::VisibilityTimeout, "7")
        .send()
        .await
        .unwrap();
    // Drifted: exit 2 in every output format.
    let drifted = |format: &str| {
        let out = ballast(&[
            "drift",
            file,
            "--endpoint-url",
            &endpoint,
            "--output",
            format,
        ]);
        assert_eq!(out.status.code(), Some(2), "{format}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let plan: serde_json::Value = serde_json::from_str(&drifted("json")).unwrap();
    assert_eq!(plan["format_version"], 1);
    assert_eq!(plan["summary"]["update"], 1);

    // For CI: the drifted field is annotated on the blueprint line that declares it.
    let line = blueprint_text(&name, "")
        .lines()
        .position(|l| l.contains("visibilityTimeout: 60s"))
        .unwrap()
        + 1;
    let annotations = drifted("github");
    assert!(
        annotations.contains(&format!(
            "::error file={file},line={line},col=26,title=ballast drift::queue/work ({name}-work): `visibilityTimeout` differs (AWS: 7, blueprint: 60)"
        )),
        "{annotations}"
    );
    let markdown = drifted("markdown");
    assert!(
        markdown.contains(&format!("| `7` | `60` | differs | `{file}:{line}` |")),
        "{markdown}"
    );

    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::VisibilityTimeout)
        .send()
        .await
        .unwrap();
    assert_eq!(
        attrs.attributes.unwrap()[&QueueAttributeName::VisibilityTimeout],
        "7",
        "drift must not write"
    );
}

#[tokio::test]
async fn read_only_clients_refuse_every_mutating_call_before_sending_it() {
    let config = moto().await.sdk_config().await;
    let recorder = CallRecorder::default();
    let clients = ReadOnlyClients::new(&config, &recorder);
    let name = unique_name("ro");
    let err = clients
        .sqs()
        .create_queue()
        .queue_name(&name)
        .send()
        .await
        .unwrap_err();
    assert!(format!("{err:?}").contains("MutationRefused"), "{err:?}");
    let err = clients.kms().create_key().send().await.unwrap_err();
    assert!(format!("{err:?}").contains("MutationRefused"));
    let err = clients
        .tagging()
        .tag_resources()
        .resource_arn_list(format!("arn:aws:sqs:us-east-1:123456789012:{name}"))
        .tags("k", "v")
        .send()
        .await
        .unwrap_err();
    assert!(format!("{err:?}").contains("MutationRefused"), "{err:?}");
    assert!(clients.sqs().list_queues().send().await.is_ok());
    assert!(clients.tagging().get_resources().send().await.is_ok());
    let sqs = aws_sdk_sqs::Client::new(&config);
    let existing = sqs
        .list_queues()
        .queue_name_prefix(&name)
        .send()
        .await
        .unwrap();
    assert!(
        existing.queue_urls.unwrap_or_default().is_empty(),
        "the refused call never reached AWS"
    );
    assert_eq!(recorder.mutating(), 0);
}

#[tokio::test]
async fn an_unowned_queue_of_the_same_name_is_never_modified_unless_adopted() {
    let name = unique_name("own");
    let config = moto().await.sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    let url = sqs
        .create_queue()
        .queue_name(format!("{name}-work-dlq"))
        .attributes(QueueAttributeName::VisibilityTimeout, "11")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let bp = parse(&blueprint_text(&name, ""));
    let plan = plan_of(&bp).await;
    assert_eq!(plan.summary.conflicts, 1);
    let (clients, recorder, _) = fresh_clients().await;
    let observation = provision::observe(&clients.observer(), &bp).await.unwrap();
    let err = provision::apply(
        &clients,
        &bp,
        observation,
        Readiness::default(),
        &LogProgress,
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("not created by Ballast"), "{err}");
    assert_eq!(
        recorder.mutating(),
        0,
        "nothing is changed when a conflict is found"
    );
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::VisibilityTimeout)
        .send()
        .await
        .unwrap();
    assert_eq!(
        attrs.attributes.unwrap()[&QueueAttributeName::VisibilityTimeout],
        "11"
    );

    let adopting = blueprint_text(&name, "").replace(
        "    - name: work-dlq\n",
        "    - name: work-dlq\n      adopt: true\n",
    );
    let bp = parse(&adopting);
    let plan = plan_of(&bp).await;
    assert_eq!(
        plan.summary.adopt,
        1,
        "{}",
        provision::render::plan_text(&plan)
    );
    apply(&bp, &clients).await;
    let tags = sqs
        .list_queue_tags()
        .queue_url(&url)
        .send()
        .await
        .unwrap()
        .tags
        .unwrap();
    assert_eq!(tags["ballast.dev/managed"], "true");
    assert!(!plan_of(&bp).await.has_changes());
}

#[tokio::test]
async fn destroy_honours_deletion_policies_and_schedules_keys() {
    let name = unique_name("destroy");
    let bp = parse(&blueprint_text(&name, ""));
    let (clients, _, config) = fresh_clients().await;
    apply(&bp, &clients).await;
    let key_id = aws_sdk_kms::Client::new(&config)
        .describe_key()
        .key_id(format!("alias/{name}-main"))
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap()
        .key_id;
    let observation = provision::observe(&clients.observer(), &bp).await.unwrap();
    provision::destroy(
        &clients,
        &bp,
        observation,
        Readiness::default(),
        &LogProgress,
    )
    .await
    .unwrap();

    let sqs = aws_sdk_sqs::Client::new(&config);
    let ddb = aws_sdk_dynamodb::Client::new(&config);
    let kms = aws_sdk_kms::Client::new(&config);
    // Queues default to retain; the table and the key say delete.
    for queue in ["work", "work-dlq"] {
        assert!(
            sqs.get_queue_url()
                .queue_name(format!("{name}-{queue}"))
                .send()
                .await
                .is_ok()
        );
    }
    assert!(
        ddb.describe_table()
            .table_name(format!("{name}-items"))
            .send()
            .await
            .is_err()
    );
    let key = kms
        .describe_key()
        .key_id(&key_id)
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap();
    assert_eq!(
        key.key_state.as_ref().map(|s| s.as_str()),
        Some("PendingDeletion"),
        "the key is scheduled for deletion, not deleted"
    );
    assert!(key.deletion_date.is_some());
    let aliases = kms.list_aliases().send().await.unwrap().aliases.unwrap();
    assert!(
        !aliases
            .iter()
            .any(|a| a.alias_name.as_deref() == Some(&format!("alias/{name}-main")))
    );
}

#[tokio::test]
async fn a_queue_removed_from_the_blueprint_is_planned_under_its_policy() {
    let name = unique_name("removed");
    let with_extra = blueprint_text(&name, "    - name: extra\n      deletionPolicy: delete\n");
    let (clients, _, _) = fresh_clients().await;
    apply(&parse(&with_extra), &clients).await;
    let plan = plan_of(&parse(&blueprint_text(&name, ""))).await;
    let extra = plan
        .changes
        .iter()
        .find(|c| c.resource == ResourceId::new(ResourceKind::Queue, "extra"))
        .expect("found by its tags");
    // Removed from the blueprint, its declared policy is gone with it: stateful kinds are retained.
    assert_eq!(extra.action, Action::Retain);
    assert_eq!(plan.summary.retain, 1);
}

/// `blueprint_text` plus a topic and an alarm on the work queue: every kind the tagging
/// snapshot covers.
fn tagged_kinds_text(name: &str) -> String {
    format!(
        "{}  topics:
    - name: oncall
  alarms:
    - name: depth
      queue: work
      metric: ApproximateNumberOfMessagesVisible
      statistic: Maximum
      period: 60s
      threshold: 10
      comparison: greaterThan
      evaluationPeriods: 1
",
        blueprint_text(name, "")
    )
}

const TAG_READS: &[&str] = &[
    "ListQueueTags",
    "ListResourceTags",
    "ListTagsOfResource",
    "ListTagsForResource",
];

fn calls_of(recorder: &CallRecorder, operation: &str) -> u64 {
    recorder
        .snapshot()
        .iter()
        .filter(|(k, _)| k.operation == operation)
        .map(|(_, n)| n)
        .sum()
}

#[tokio::test]
async fn resources_missing_from_the_tagging_snapshot_read_their_own_tags_and_stay_owned() {
    let bp = parse(&tagged_kinds_text(&unique_name("lag")));
    let (clients, _, config) = fresh_clients().await;
    apply(&bp, &clients).await;

    // In sync and indexed: one GetResources, no per-resource tag read.
    let recorder = CallRecorder::default();
    let read_only = ReadOnlyClients::new(&config, &recorder);
    let observation = provision::observe(&read_only, &bp).await.unwrap();
    let plan = provision::plan(&bp, &observation);
    assert!(
        !plan.has_changes(),
        "{}",
        provision::render::plan_text(&plan)
    );
    assert_eq!(calls_of(&recorder, "GetResources"), 1);
    for op in TAG_READS {
        assert_eq!(
            calls_of(&recorder, op),
            0,
            "{op}: {:?}",
            recorder.snapshot()
        );
    }

    // The tagging API has not caught up (eventual consistency on AWS): every resource falls back
    // to its own tag read, is still owned, and nothing is reported as a conflict or a change.
    let recorder = CallRecorder::default();
    let read_only = ReadOnlyClients::new(&config, &recorder);
    let observation =
        provision::observe_with(&read_only, &bp, provision::tagged::TagSnapshot::default())
            .await
            .unwrap();
    assert!(
        observation
            .live
            .iter()
            .all(|l| l.ownership == provision::state::Ownership::Owned),
        "{:?}",
        observation.live
    );
    let plan = provision::plan(&bp, &observation);
    assert!(
        !plan.has_changes(),
        "{}",
        provision::render::plan_text(&plan)
    );
    assert_eq!(plan.summary.conflicts, 0);
    assert_eq!(plan.summary.unchanged, 6);
    assert_eq!(calls_of(&recorder, "GetResources"), 0);
    assert_eq!(calls_of(&recorder, "ListQueueTags"), 2);
    assert_eq!(calls_of(&recorder, "ListResourceTags"), 1);
    assert_eq!(calls_of(&recorder, "ListTagsOfResource"), 1);
    // CloudWatch's and SNS's tag reads have the same name.
    assert_eq!(calls_of(&recorder, "ListTagsForResource"), 2);
}

#[tokio::test]
async fn a_key_and_a_table_removed_from_the_blueprint_are_found_through_their_tags() {
    let name = unique_name("rmkt");
    let base = blueprint_text(&name, "");
    let with_spares = format!(
        "{}    - name: extra\n      hashKey: {{ name: pk, type: S }}\n",
        base.replace(
            "  queues:\n",
            "    - name: spare\n      deletionWindow: 7d\n  queues:\n"
        )
    );
    let (clients, _, _) = fresh_clients().await;
    apply(&parse(&with_spares), &clients).await;
    let plan = plan_of(&parse(&base)).await;
    for id in [
        ResourceId::new(ResourceKind::KmsKey, "spare"),
        ResourceId::new(ResourceKind::Table, "extra"),
    ] {
        let change = plan
            .changes
            .iter()
            .find(|c| c.resource == id)
            .unwrap_or_else(|| panic!("{id} not found: {plan:?}"));
        // Stateful kinds gone from the blueprint are retained.
        assert_eq!(change.action, Action::Retain, "{id}");
    }
    assert_eq!(plan.summary.retain, 2);
    assert_eq!(plan.summary.unchanged, 4);
}

#[tokio::test]
async fn an_unowned_key_alias_and_table_of_the_same_name_conflict() {
    let name = unique_name("unkt");
    let config = moto().await.sdk_config().await;
    let kms = aws_sdk_kms::Client::new(&config);
    let key_id = kms
        .create_key()
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap()
        .key_id;
    kms.create_alias()
        .alias_name(format!("alias/{name}-main"))
        .target_key_id(&key_id)
        .send()
        .await
        .unwrap();
    let ddb = aws_sdk_dynamodb::Client::new(&config);
    ddb.create_table()
        .table_name(format!("{name}-items"))
        .billing_mode(aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
        .key_schema(
            aws_sdk_dynamodb::types::KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(aws_sdk_dynamodb::types::KeyType::Hash)
                .build()
                .unwrap(),
        )
        .attribute_definitions(
            aws_sdk_dynamodb::types::AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(aws_sdk_dynamodb::types::ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let plan = plan_of(&parse(&blueprint_text(&name, ""))).await;
    let conflicts: Vec<&ResourceId> = plan.conflicts().map(|c| &c.resource).collect();
    assert_eq!(
        conflicts,
        [
            &ResourceId::new(ResourceKind::KmsKey, "main"),
            &ResourceId::new(ResourceKind::Table, "items"),
        ],
        "{}",
        provision::render::plan_text(&plan)
    );
}

#[tokio::test]
async fn another_blueprints_queues_and_alarms_under_the_prefix_cost_no_reads() {
    let name = unique_name("pfx");
    let bp = parse(&tagged_kinds_text(&name));
    let (clients, _, config) = fresh_clients().await;
    apply(&bp, &clients).await;
    // Blueprint `<name>-eu` shares the `<name>-` prefix; its resources are not ours to read.
    let other = [
        ("ballast.dev/managed", "true"),
        ("ballast.dev/blueprint", &*format!("{name}-eu")),
    ];
    let sqs = aws_sdk_sqs::Client::new(&config);
    let mut queue = sqs.create_queue().queue_name(format!("{name}-eu-work"));
    for (k, v) in other {
        queue = queue.tags(k, v);
    }
    queue.send().await.unwrap();
    let cw = aws_sdk_cloudwatch::Client::new(&config);
    let mut alarm = cw
        .put_metric_alarm()
        .alarm_name(format!("{name}-eu-depth"))
        .namespace("AWS/SQS")
        .metric_name("ApproximateNumberOfMessagesVisible")
        .statistic(aws_sdk_cloudwatch::types::Statistic::Maximum)
        .period(60)
        .evaluation_periods(1)
        .threshold(10.0)
        .comparison_operator(aws_sdk_cloudwatch::types::ComparisonOperator::GreaterThanThreshold);
    for (k, v) in other {
        alarm = alarm.tags(
            aws_sdk_cloudwatch::types::Tag::builder()
                .key(k)
                .value(v)
                .build(),
        );
    }
    alarm.send().await.unwrap();

    let recorder = CallRecorder::default();
    let observation = provision::observe(&ReadOnlyClients::new(&config, &recorder), &bp)
        .await
        .unwrap();
    let plan = provision::plan(&bp, &observation);
    assert!(
        !plan.has_changes(),
        "{}",
        provision::render::plan_text(&plan)
    );
    assert!(observation.removed.is_empty(), "{:?}", observation.removed);
    assert_eq!(calls_of(&recorder, "GetQueueAttributes"), 2);
    for op in TAG_READS {
        assert_eq!(
            calls_of(&recorder, op),
            0,
            "{op}: {:?}",
            recorder.snapshot()
        );
    }
}

/// An index added to a table that already holds data is created in place, and one removed is
/// deleted in place: the table (and its items) is never replaced. A retained table could not
/// be replaced at all, so without this an existing deployment could never gain an index.
#[tokio::test]
async fn indexes_are_added_and_removed_in_place_without_replacing_the_table() {
    use aws_sdk_dynamodb::types::{AttributeValue, IndexStatus};

    let name = unique_name("gsi");
    let plain = blueprint_text(&name, "");
    let bp = parse(&plain);
    let (clients, _, config) = fresh_clients().await;
    apply(&bp, &clients).await;
    let ddb = aws_sdk_dynamodb::Client::new(&config);
    let table = format!("{name}-items");
    ddb.put_item()
        .table_name(&table)
        .item("pk", AttributeValue::S("a".into()))
        .item("sk", AttributeValue::S("b".into()))
        .item("status", AttributeValue::S("open".into()))
        .send()
        .await
        .unwrap();

    let indexed = parse(&plain.replace(
        "      ttlAttribute: expires_at\n",
        "      ttlAttribute: expires_at\n      globalSecondaryIndexes:\n        - name: by-status\n          hashKey: { name: status, type: S }\n          rangeKey: { name: sk, type: S }\n",
    ));
    let items = ResourceId::new(ResourceKind::Table, "items");
    let plan = plan_of(&indexed).await;
    assert_eq!(
        changed_fields(&plan, &items),
        vec!["globalSecondaryIndexes".to_string()],
        "{}",
        provision::render::plan_text(&plan)
    );
    let (clients, recorder, _) = fresh_clients().await;
    apply(&indexed, &clients).await;
    assert_eq!(calls_of(&recorder, "DeleteTable"), 0);
    assert_eq!(calls_of(&recorder, "UpdateTable"), 1);
    let described = ddb
        .describe_table()
        .table_name(&table)
        .send()
        .await
        .unwrap()
        .table
        .unwrap();
    let indexes = described.global_secondary_indexes();
    assert_eq!(indexes.len(), 1);
    assert_eq!(indexes[0].index_name(), Some("by-status"));
    assert_eq!(indexes[0].index_status(), Some(&IndexStatus::Active));
    let item = ddb
        .get_item()
        .table_name(&table)
        .key("pk", AttributeValue::S("a".into()))
        .key("sk", AttributeValue::S("b".into()))
        .send()
        .await
        .unwrap()
        .item;
    assert!(item.is_some(), "the table was replaced: its item is gone");
    let plan = plan_of(&indexed).await;
    assert!(
        !plan.has_changes(),
        "{}",
        provision::render::plan_text(&plan)
    );

    let (clients, _, _) = fresh_clients().await;
    apply(&bp, &clients).await;
    let described = ddb
        .describe_table()
        .table_name(&table)
        .send()
        .await
        .unwrap()
        .table
        .unwrap();
    assert!(described.global_secondary_indexes().is_empty());
    let count = ddb.scan().table_name(&table).send().await.unwrap().count();
    assert_eq!(count, 1, "the table was replaced: its item is gone");
    assert!(!plan_of(&bp).await.has_changes());
}

#[tokio::test]
async fn a_saved_plan_is_applied_exactly_or_refused_when_stale() {
    let name = unique_name("saved");
    let dir = std::env::temp_dir().join(&name);
    std::fs::create_dir_all(&dir).unwrap();
    let blueprint = dir.join("bp.yaml");
    std::fs::write(&blueprint, blueprint_text(&name, "")).unwrap();
    let blueprint = blueprint.to_str().unwrap().to_string();
    let plan_file = |n: u32| {
        dir.join(format!("plan-{n}.json"))
            .to_str()
            .unwrap()
            .to_string()
    };
    let endpoint = moto().await.endpoint();
    let lease_table = unique_name("leases");
    let run = |args: &[&str]| {
        let mut all: Vec<&str> = args.to_vec();
        all.extend_from_slice(&["--endpoint-url", &endpoint]);
        if args[0] == "apply" {
            all.extend_from_slice(&["--lease-table", &lease_table]);
        }
        ballast(&all)
    };
    let ok = |out: std::process::Output| {
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };

    // Reviewed, then applied without a question (stdin is not a terminal and no --auto-approve).
    ok(run(&["plan", &blueprint, "--out", &plan_file(1)]));
    ok(run(&["apply", &plan_file(1)]));
    ok(run(&["drift", &blueprint]));

    let config = moto().await.sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    let url = sqs
        .get_queue_url()
        .queue_name(format!("{name}-work"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let set_visibility = |seconds: &'static str| {
        let sqs = sqs.clone();
        let url = url.clone();
        async move {
            sqs.set_queue_attributes()
                .queue_url(&url)
                .attributes(QueueAttributeName::VisibilityTimeout, seconds)
                .send()
                .await
                .unwrap();
        }
    };
    let visibility = || {
        let sqs = sqs.clone();
        let url = url.clone();
        async move {
            sqs.get_queue_attributes()
                .queue_url(&url)
                .attribute_names(QueueAttributeName::VisibilityTimeout)
                .send()
                .await
                .unwrap()
                .attributes
                .unwrap()[&QueueAttributeName::VisibilityTimeout]
                .clone()
        }
    };

    // AWS changes after the review: the plan is refused and nothing is written.
    set_visibility("7").await;
    ok(run(&["plan", &blueprint, "--out", &plan_file(2)]));
    set_visibility("9").await;
    let out = run(&["apply", &plan_file(2)]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("changed since the plan was saved: queue/work: planned"),
        "{stderr}"
    );
    assert_eq!(visibility().await, "9");

    // The blueprint changes after the review: refused too.
    ok(run(&["plan", &blueprint, "--out", &plan_file(3)]));
    let mut text = std::fs::read_to_string(&blueprint).unwrap();
    text.push_str("# edited after the review\n");
    std::fs::write(&blueprint, &text).unwrap();
    let out = run(&["apply", &plan_file(3)]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "the blueprint {blueprint} changed since the plan was saved"
        )),
        "{stderr}"
    );
    assert_eq!(visibility().await, "9");

    // A fresh review applies.
    ok(run(&["plan", &blueprint, "--out", &plan_file(4)]));
    ok(run(&["apply", &plan_file(4)]));
    assert_eq!(visibility().await, "60");
}

/// One blueprint, another environment: `--values` renames the stack and changes a queue; the
/// plan saved with it records the values file, so `apply PLANFILE` needs no flag, and an edit
/// of the values file after the review is refused like an edit of the blueprint.
#[tokio::test]
async fn an_environment_from_a_values_file_is_planned_applied_and_checked() {
    let name = unique_name("env");
    let dir = std::env::temp_dir().join(&name);
    std::fs::create_dir_all(&dir).unwrap();
    let path = |file: &str| dir.join(file).to_str().unwrap().to_string();
    std::fs::write(path("bp.yaml"), blueprint_text(&name, "")).unwrap();
    let staging = format!(
        "metadata:\n  name: {name}-stg\nspec:\n  queues:\n    - name: work\n      visibilityTimeout: 90s\n"
    );
    std::fs::write(path("staging.yaml"), &staging).unwrap();
    std::fs::write(
        path("bad.yaml"),
        "spec:\n  queues:\n    - name: work\n      visibilityTimeout: 13h\n",
    )
    .unwrap();
    let endpoint = moto().await.endpoint();
    let lease_table = unique_name("leases");
    let run = |args: &[&str]| {
        let mut all: Vec<&str> = args.to_vec();
        if args[0] != "validate" {
            all.extend_from_slice(&["--endpoint-url", &endpoint]);
        }
        if args[0] == "apply" {
            all.extend_from_slice(&["--lease-table", &lease_table]);
        }
        ballast(&all)
    };
    let code = |out: &std::process::Output| {
        (
            out.status.code(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let (status, text) = code(&run(&[
        "validate",
        &path("bp.yaml"),
        "--values",
        &path("staging.yaml"),
    ]));
    assert_eq!(status, Some(0), "{text}");
    // A wrong value is reported in the values file, at the value.
    let (status, text) = code(&run(&[
        "validate",
        &path("bp.yaml"),
        "--values",
        &path("bad.yaml"),
    ]));
    assert_eq!(status, Some(1), "{text}");
    assert!(
        text.contains(&format!("{}:4:26: error:", path("bad.yaml"))),
        "{text}"
    );

    let (status, text) = code(&run(&[
        "plan",
        &path("bp.yaml"),
        "--values",
        &path("staging.yaml"),
        "--out",
        &path("plan.json"),
    ]));
    assert_eq!(status, Some(0), "{text}");
    assert!(text.contains(&format!("{name}-stg-work")), "{text}");
    let (status, text) = code(&run(&[
        "apply",
        &path("plan.json"),
        "--values",
        &path("staging.yaml"),
    ]));
    assert_eq!(status, Some(1), "{text}");
    assert!(
        text.contains("--values cannot be used with a saved plan"),
        "{text}"
    );
    let (status, text) = code(&run(&["apply", &path("plan.json")]));
    assert_eq!(status, Some(0), "{text}");

    // The staging stack exists under its own name, with its own value.
    let sqs = aws_sdk_sqs::Client::new(&moto().await.sdk_config().await);
    let url = sqs
        .get_queue_url()
        .queue_name(format!("{name}-stg-work"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let visibility = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::VisibilityTimeout)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()[&QueueAttributeName::VisibilityTimeout]
        .clone();
    assert_eq!(visibility, "90");
    let (status, text) = code(&run(&[
        "drift",
        &path("bp.yaml"),
        "--values",
        &path("staging.yaml"),
    ]));
    assert_eq!(status, Some(0), "{text}");

    // The values file edited after a review: that plan is refused, nothing changes.
    let (status, text) = code(&run(&[
        "plan",
        &path("bp.yaml"),
        "--values",
        &path("staging.yaml"),
        "--out",
        &path("plan2.json"),
    ]));
    assert_eq!(status, Some(0), "{text}");
    std::fs::write(path("staging.yaml"), staging.replace("90s", "120s")).unwrap();
    let (status, text) = code(&run(&["apply", &path("plan2.json")]));
    assert_eq!(status, Some(1), "{text}");
    assert!(
        text.contains(&format!(
            "the values file {} changed since the plan was saved",
            path("staging.yaml")
        )),
        "{text}"
    );
}
