//! An interrupted apply is harmless: every resource carries its logical id from its create call
//! on, a half-created resource is completed instead of created twice, owned resources that no
//! declaration claims are reported (and deleted only on request), and one re-apply converges.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a failed test (clippy.toml covers only #[test] fns, not helpers)"
)]

use std::collections::BTreeMap;
use std::process::Command;

use aws_sdk_ec2::types::{ResourceType, Tag as Ec2Tag, TagSpecification};
use aws_sdk_kms::types::Tag as KmsTag;
use aws_sdk_resourcegroupstagging::types::TagFilter;
use ballast_aws::CallRecorder;
use ballast_blueprint::{
    Blueprint, OWNERSHIP_BLUEPRINT_TAG, OWNERSHIP_RESOURCE_TAG, ResourceId, ResourceKind,
};
use ballast_controller::provision::engine::LogProgress;
use ballast_controller::provision::kinds::Readiness;
use ballast_controller::provision::orphan::OrphanReason;
use ballast_controller::provision::{self, Action, Clients, ReadOnlyClients};
use ballast_testbed::{moto, unique_name};

fn stack_text(name: &str) -> String {
    format!(
        r#"apiVersion: ballast.dev/v1
kind: Blueprint
metadata: {{ name: {name}, region: us-east-1 }}
spec:
  kmsKeys:
    - name: data
      deletionWindow: 7d
      deletionPolicy: delete
  queues:
    - name: work
      encryption: {{ type: kms, kmsKey: data }}
      deletionPolicy: delete
  tables:
    - name: items
      hashKey: {{ name: pk, type: S }}
      deletionPolicy: delete
"#
    )
}

fn network_text(name: &str) -> String {
    format!(
        r#"apiVersion: ballast.dev/v1
kind: Blueprint
metadata: {{ name: {name}, region: us-east-1 }}
spec:
  network:
    vpc:
      name: main
      cidr: 10.30.0.0/16
      subnets:
        - {{ name: private-a, cidr: 10.30.1.0/24, availabilityZone: us-east-1a }}
    endpoints:
      - name: dynamodb
        service: dynamodb
        type: gateway
"#
    )
}

fn parse(text: &str) -> Blueprint {
    ballast_blueprint::parse("test.yaml", text)
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

async fn apply(bp: &Blueprint) -> Result<(), provision::EngineError> {
    let clients = Clients::read_write(&config().await, &CallRecorder::default());
    let observation = provision::observe(&clients.observer(), bp).await?;
    provision::apply(
        &clients,
        bp,
        observation,
        Readiness::default(),
        &LogProgress,
    )
    .await
    .map(|_| ())
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

/// Every resource the tagging API lists with the blueprint's ownership tag, by ARN, with its
/// logical-id tag.
async fn tagged_resources(blueprint: &str) -> BTreeMap<String, Option<String>> {
    aws_sdk_resourcegroupstagging::Client::new(&config().await)
        .get_resources()
        .tag_filters(
            TagFilter::builder()
                .key(OWNERSHIP_BLUEPRINT_TAG)
                .values(blueprint)
                .build(),
        )
        .send()
        .await
        .unwrap()
        .resource_tag_mapping_list
        .unwrap_or_default()
        .into_iter()
        .map(|m| {
            let id = m
                .tags()
                .iter()
                .find(|t| t.key() == OWNERSHIP_RESOURCE_TAG)
                .map(|t| t.value().to_string());
            (m.resource_arn.unwrap(), id)
        })
        .collect()
}

/// What `KmsKeys::create` sends first: CreateKey with the resource's tags (an apply killed
/// before its CreateAlias leaves exactly this).
async fn create_tagged_key(bp: &Blueprint, id: &ResourceId) -> aws_sdk_kms::types::KeyMetadata {
    let mut request = aws_sdk_kms::Client::new(&config().await).create_key();
    for (k, v) in bp.ownership_tags_for(id) {
        request = request.tags(KmsTag::builder().tag_key(k).tag_value(v).build().unwrap());
    }
    request.send().await.unwrap().key_metadata.unwrap()
}

async fn key_state(key_id: &str) -> String {
    aws_sdk_kms::Client::new(&config().await)
        .describe_key()
        .key_id(key_id)
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap()
        .key_state
        .unwrap()
        .as_str()
        .to_string()
}

#[tokio::test]
async fn every_created_resource_carries_its_logical_id_and_old_ones_get_it_as_a_tag_update() {
    let name = unique_name("lid");
    let bp = parse(&stack_text(&name));
    apply(&bp).await.unwrap();
    let tagged = tagged_resources(&name).await;
    let mut ids: Vec<String> = tagged.values().map(|id| id.clone().unwrap()).collect();
    ids.sort();
    assert_eq!(ids, ["kms-key/data", "queue/work", "table/items"]);

    // A resource created before Ballast set the tag: the plan shows it as a tag update.
    let config = config().await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    let url = sqs
        .get_queue_url()
        .queue_name(format!("{name}-work"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    sqs.untag_queue()
        .queue_url(&url)
        .tag_keys(OWNERSHIP_RESOURCE_TAG)
        .send()
        .await
        .unwrap();
    let queue = ResourceId::new(ResourceKind::Queue, "work");
    let plan = plan_of(&bp).await;
    assert_eq!(
        changed_fields(&plan, &queue),
        [format!("tags.{OWNERSHIP_RESOURCE_TAG}")]
    );
    assert!(plan.orphans.is_empty(), "{:?}", plan.orphans);
    apply(&bp).await.unwrap();
    let plan = plan_of(&bp).await;
    assert!(!plan.has_drift(), "{}", provision::render::plan_text(&plan));
}

#[tokio::test]
async fn a_key_created_without_its_alias_is_completed_not_created_twice() {
    let name = unique_name("halfkey");
    let bp = parse(&stack_text(&name));
    let key = ResourceId::new(ResourceKind::KmsKey, "data");
    let half = create_tagged_key(&bp, &key).await;

    let plan = plan_of(&bp).await;
    // Killed before CreateAlias, so before EnableKeyRotation too: the update completes both.
    assert_eq!(
        changed_fields(&plan, &key),
        ["rotation", "alias"],
        "{plan:?}"
    );
    assert!(plan.orphans.is_empty(), "{:?}", plan.orphans);
    apply(&bp).await.unwrap();

    let keys: Vec<String> = tagged_resources(&name)
        .await
        .into_iter()
        .filter(|(_, id)| id.as_deref() == Some("kms-key/data"))
        .map(|(arn, _)| arn)
        .collect();
    assert_eq!(keys, [half.arn.clone().unwrap()], "exactly one key");
    let aliased = aws_sdk_kms::Client::new(&config().await)
        .describe_key()
        .key_id(format!("alias/{name}-data"))
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap();
    assert_eq!(
        aliased.key_id, half.key_id,
        "the alias points at the first key"
    );
    let plan = plan_of(&bp).await;
    assert!(!plan.has_drift(), "{}", provision::render::plan_text(&plan));
}

#[tokio::test]
async fn drift_reports_orphans_and_destroy_deletes_them_only_when_asked() {
    let name = unique_name("orphan");
    let text = stack_text(&name);
    let bp = parse(&text);
    apply(&bp).await.unwrap();
    // A second key with the declared key's logical id (an interrupted apply that the previous
    // version re-created), and one whose logical id is declared nowhere.
    let duplicate = create_tagged_key(&bp, &ResourceId::new(ResourceKind::KmsKey, "data")).await;
    let retired = create_tagged_key(&bp, &ResourceId::new(ResourceKind::KmsKey, "retired")).await;

    let plan = plan_of(&bp).await;
    assert!(
        !plan.has_changes(),
        "{}",
        provision::render::plan_text(&plan)
    );
    let mut found: Vec<(String, String, bool)> = plan
        .orphans
        .iter()
        .map(|o| {
            (
                o.label(),
                o.physical_id.clone(),
                matches!(o.reason, OrphanReason::Duplicate { .. }),
            )
        })
        .collect();
    found.sort();
    assert_eq!(
        found,
        [
            ("kms-key/data".to_string(), duplicate.key_id.clone(), true),
            ("kms-key/retired".to_string(), retired.key_id.clone(), false),
        ]
    );

    let dir = std::env::temp_dir().join(&name);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bp.yaml");
    std::fs::write(&file, &text).unwrap();
    let file = file.to_str().unwrap();
    let endpoint = moto().await.endpoint();
    let drift = |format: &str| {
        let out = ballast(&[
            "drift",
            file,
            "--endpoint-url",
            &endpoint,
            "--output",
            format,
        ]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{format}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let text_out = drift("text");
    assert!(text_out.contains("Orphans"), "{text_out}");
    assert!(
        text_out.contains(&retired.arn.clone().unwrap()),
        "{text_out}"
    );
    let json: serde_json::Value = serde_json::from_str(&drift("json")).unwrap();
    assert_eq!(json["orphans"].as_array().unwrap().len(), 2, "{json}");
    assert!(drift("markdown").contains("| `kms-key/retired` |"));
    assert!(drift("github").contains("::error file="));

    // Without the flag, destroy keeps them; with it, they are scheduled for deletion.
    let out = ballast(&[
        "destroy",
        file,
        "--endpoint-url",
        &endpoint,
        "--auto-approve",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("pass --include-orphans"));
    assert_eq!(key_state(&duplicate.key_id).await, "Enabled");
    assert_eq!(key_state(&retired.key_id).await, "Enabled");
    let out = ballast(&[
        "destroy",
        file,
        "--endpoint-url",
        &endpoint,
        "--auto-approve",
        "--include-orphans",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(key_state(&duplicate.key_id).await, "PendingDeletion");
    assert_eq!(key_state(&retired.key_id).await, "PendingDeletion");
    let plan = plan_of(&bp).await;
    assert!(plan.orphans.is_empty(), "{:?}", plan.orphans);
}

#[tokio::test]
async fn a_vpc_created_without_its_route_table_converges_in_one_apply() {
    let name = unique_name("halfvpc");
    let bp = parse(&network_text(&name));
    // What `Vpcs::create` sends first: CreateVpc with its tags; killed before CreateRouteTable.
    let vpc = ResourceId::new(ResourceKind::Vpc, "main");
    let mut tags = bp.ownership_tags_for(&vpc);
    tags.insert("Name".into(), format!("{name}-main"));
    aws_sdk_ec2::Client::new(&config().await)
        .create_vpc()
        .cidr_block("10.30.0.0/16")
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Vpc)
                .set_tags(Some(
                    tags.iter()
                        .map(|(k, v)| Ec2Tag::builder().key(k).value(v).build())
                        .collect(),
                ))
                .build(),
        )
        .send()
        .await
        .unwrap();

    apply(&bp).await.expect("one apply converges");
    let plan = plan_of(&bp).await;
    assert!(!plan.has_drift(), "{}", provision::render::plan_text(&plan));
}

fn ballast(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ballast"))
        .args(args)
        .envs(ballast_testbed::child_env())
        .env_remove("AWS_ENDPOINT_URL")
        .output()
        .expect("ballast runs")
}
