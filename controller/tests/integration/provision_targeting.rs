//! `--target kind/name` on `plan`, `apply` and `destroy` against moto: a targeted apply creates
//! the targets and their dependencies only, a targeted destroy removes the targets and their
//! dependents only, a saved targeted plan applies exactly its targets, and a bad target is
//! refused before any AWS call.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a failed test (clippy.toml covers only #[test] fns, not helpers)"
)]

use std::collections::BTreeMap;
use std::process::{Command, Output};

use ballast_aws::CallRecorder;
use ballast_blueprint::{Blueprint, ResourceId, ResourceKind};
use ballast_controller::provision::{self, Action, ReadOnlyClients};
use ballast_testbed::{moto, unique_name};

/// `work` is encrypted by key `main` and sends failures to `work-dlq` (also under `main`); an
/// alarm watches `work`; `audit` (under key `other`) and the table depend on none of them.
fn blueprint_text(name: &str) -> String {
    format!(
        r#"apiVersion: ballast.dev/v1
kind: Blueprint
metadata: {{ name: {name}, region: us-east-1 }}
spec:
  kmsKeys:
    - name: main
      deletionWindow: 7d
      deletionPolicy: delete
    - name: other
      deletionWindow: 7d
      deletionPolicy: delete
  queues:
    - name: work
      encryption: {{ type: kms, kmsKey: main }}
      deadLetter: {{ queue: work-dlq, maxReceiveCount: 3 }}
      deletionPolicy: delete
    - name: work-dlq
      encryption: {{ type: kms, kmsKey: main }}
      deletionPolicy: delete
    - name: audit
      encryption: {{ type: kms, kmsKey: other }}
      deletionPolicy: delete
  tables:
    - name: items
      hashKey: {{ name: pk, type: S }}
      deletionPolicy: delete
  alarms:
    - name: depth
      queue: work
      metric: ApproximateNumberOfMessagesVisible
      statistic: Maximum
      period: 60s
      threshold: 1000
      comparison: greaterThan
      evaluationPeriods: 1
"#
    )
}

/// A blueprint file in its own directory, and its parsed blueprint.
fn stack(prefix: &str) -> (String, String, Blueprint) {
    let name = unique_name(prefix);
    let dir = std::env::temp_dir().join(&name);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bp.yaml");
    let text = blueprint_text(&name);
    std::fs::write(&file, &text).unwrap();
    let bp = ballast_blueprint::parse("bp.yaml", &text)
        .unwrap_or_else(|e| panic!("{e}"))
        .blueprint;
    (name, file.to_str().unwrap().to_string(), bp)
}

fn ballast(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ballast"))
        .args(args)
        .envs(ballast_testbed::child_env())
        .env_remove("AWS_ENDPOINT_URL")
        .output()
        .expect("ballast runs")
}

/// `ballast ARGS --endpoint-url MOTO [--lease-table T]` (the lease table for apply and destroy).
async fn run(args: &[&str], lease_table: &str) -> Output {
    let endpoint = moto().await.endpoint();
    let mut all: Vec<&str> = args.to_vec();
    all.extend_from_slice(&["--endpoint-url", &endpoint]);
    if matches!(args[0], "apply" | "destroy") {
        all.extend_from_slice(&["--lease-table", lease_table]);
    }
    ballast(&all)
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[track_caller]
fn ok(out: &Output) {
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(out), stderr(out));
}

fn id(kind: ResourceKind, name: &str) -> ResourceId {
    ResourceId::new(kind, name)
}

/// What an untargeted plan says of each resource, observed in moto: `create` for what does not
/// exist, `no-change` for what does.
async fn actions(bp: &Blueprint) -> BTreeMap<ResourceId, &'static str> {
    let config = moto().await.sdk_config().await;
    let observation =
        provision::observe(&ReadOnlyClients::new(&config, &CallRecorder::default()), bp)
            .await
            .unwrap();
    provision::plan(bp, &observation)
        .changes
        .into_iter()
        .map(|c| {
            let action = match c.action {
                Action::Create => "create",
                Action::NoChange => "no-change",
                other => panic!("{}: unexpected {other:?}", c.resource),
            };
            (c.resource, action)
        })
        .collect()
}

/// The stack's queues, as SQS lists them (by name prefix).
async fn queues(name: &str) -> Vec<String> {
    let config = moto().await.sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    let mut names: Vec<String> = sqs
        .list_queues()
        .queue_name_prefix(format!("{name}-"))
        .send()
        .await
        .unwrap()
        .queue_urls
        .unwrap_or_default()
        .iter()
        .filter_map(|url| url.rsplit('/').next().map(str::to_string))
        .collect();
    names.sort();
    names
}

async fn table_exists(table: &str) -> bool {
    let config = moto().await.sdk_config().await;
    aws_sdk_dynamodb::Client::new(&config)
        .describe_table()
        .table_name(table)
        .send()
        .await
        .is_ok()
}

/// Whether the alias names a key that is not pending deletion.
async fn key_alive(alias: &str) -> bool {
    let config = moto().await.sdk_config().await;
    let kms = aws_sdk_kms::Client::new(&config);
    match kms.describe_key().key_id(alias).send().await {
        Ok(key) => key
            .key_metadata
            .is_some_and(|m| m.key_state != Some(aws_sdk_kms::types::KeyState::PendingDeletion)),
        Err(_) => false,
    }
}

#[tokio::test]
async fn apply_with_a_target_creates_it_and_its_dependencies_and_nothing_else() {
    let (name, file, bp) = stack("tgt-apply");
    let leases = unique_name("leases");

    // The plan says it is partial, in every format, and lists the selection only.
    let out = run(&["plan", &file, "--target", "queue/work-dlq"], &leases).await;
    ok(&out);
    let text = stdout(&out);
    assert!(
        text.contains(
            "Warning: resource targeting is in effect (queue/work-dlq); the plan may be incomplete"
        ),
        "{text}"
    );
    assert!(
        text.contains("+ kms-key/main") && text.contains("+ queue/work-dlq"),
        "{text}"
    );
    assert!(
        !text.contains("queue/work ") && !text.contains("table/items"),
        "{text}"
    );
    assert!(text.contains("Plan: 2 to create"), "{text}");
    let out = run(
        &[
            "plan",
            &file,
            "--target",
            "queue/work-dlq",
            "--output",
            "json",
        ],
        &leases,
    )
    .await;
    ok(&out);
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        json["targets"],
        serde_json::json!([{ "kind": "queue", "name": "work-dlq" }])
    );
    assert_eq!(json["summary"]["create"], 2);
    assert_eq!(json["orphans"], serde_json::json!([]));
    let out = run(
        &[
            "plan",
            &file,
            "--target",
            "queue/work-dlq",
            "--output",
            "markdown",
        ],
        &leases,
    )
    .await;
    ok(&out);
    assert!(
        stdout(&out).contains("> [!WARNING]\n> Warning: resource targeting is in effect"),
        "{}",
        stdout(&out)
    );
    // An untargeted plan has no `targets` field: its JSON reads as before.
    let out = run(&["plan", &file, "--output", "json"], &leases).await;
    ok(&out);
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(json.get("targets").is_none(), "{json}");

    let out = run(
        &[
            "apply",
            &file,
            "--target",
            "queue/work-dlq",
            "--auto-approve",
        ],
        &leases,
    )
    .await;
    ok(&out);
    assert!(
        stdout(&out).contains("resource targeting is in effect"),
        "{}",
        stdout(&out)
    );

    // In AWS: the queue and its key, nothing else.
    assert_eq!(queues(&name).await, [format!("{name}-work-dlq")]);
    assert!(key_alive(&format!("alias/{name}-main")).await);
    assert!(!key_alive(&format!("alias/{name}-other")).await);
    assert!(!table_exists(&format!("{name}-items")).await);
    let now = actions(&bp).await;
    let created: Vec<&ResourceId> = now
        .iter()
        .filter(|(_, a)| **a == "no-change")
        .map(|(id, _)| id)
        .collect();
    assert_eq!(
        created,
        [
            &id(ResourceKind::KmsKey, "main"),
            &id(ResourceKind::Queue, "work-dlq"),
        ],
        "{now:?}"
    );

    // Drift within the targets is in sync; the whole stack is not.
    let out = run(&["drift", &file, "--target", "queue/work-dlq"], &leases).await;
    ok(&out);
    assert!(
        stdout(&out).contains("No changes: the targeted resources of blueprint"),
        "{}",
        stdout(&out)
    );
    let out = run(&["drift", &file], &leases).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));

    // Two targets: the union of their dependencies (the alarm pulls in `work`).
    let out = run(
        &[
            "apply",
            &file,
            "--target",
            "alarm/depth",
            "--target",
            "table/items",
            "--auto-approve",
        ],
        &leases,
    )
    .await;
    ok(&out);
    assert_eq!(
        queues(&name).await,
        [format!("{name}-work"), format!("{name}-work-dlq")]
    );
    assert!(table_exists(&format!("{name}-items")).await);
    let still_missing: Vec<ResourceId> = actions(&bp)
        .await
        .into_iter()
        .filter(|(_, a)| *a == "create")
        .map(|(id, _)| id)
        .collect();
    assert_eq!(
        still_missing,
        [
            id(ResourceKind::KmsKey, "other"),
            id(ResourceKind::Queue, "audit")
        ]
    );
}

#[tokio::test]
async fn destroy_with_a_target_removes_it_and_its_dependents_only() {
    let (name, file, bp) = stack("tgt-destroy");
    let leases = unique_name("leases");
    ok(&run(&["apply", &file, "--auto-approve"], &leases).await);
    assert_eq!(queues(&name).await.len(), 3);

    // `work` sends to `work-dlq` and the alarm watches `work`: both go with the dead-letter
    // queue; its key, the other queue and the table stay.
    let out = run(
        &[
            "destroy",
            &file,
            "--target",
            "queue/work-dlq",
            "--auto-approve",
        ],
        &leases,
    )
    .await;
    ok(&out);
    let text = stdout(&out);
    assert!(
        text.contains("resource targeting is in effect (queue/work-dlq); destroying the targets and what depends on them only"),
        "{text}"
    );
    let confirmation: Vec<&str> = text.lines().filter(|l| l.starts_with("  - ")).collect();
    assert_eq!(
        confirmation,
        [
            format!("  - alarm/depth ({name}-depth) delete"),
            format!("  - queue/work ({name}-work) delete"),
            format!("  - queue/work-dlq ({name}-work-dlq) delete"),
        ],
        "{text}"
    );
    assert!(
        text.contains("3 to delete, 0 retained, 0 skipped."),
        "{text}"
    );
    assert!(
        text.contains("Destroy complete: 3 deleted, 0 retained."),
        "{text}"
    );

    assert_eq!(queues(&name).await, [format!("{name}-audit")]);
    assert!(key_alive(&format!("alias/{name}-main")).await);
    assert!(table_exists(&format!("{name}-items")).await);
    let missing: Vec<ResourceId> = actions(&bp)
        .await
        .into_iter()
        .filter(|(_, a)| *a == "create")
        .map(|(id, _)| id)
        .collect();
    assert_eq!(
        missing,
        [
            id(ResourceKind::Queue, "work"),
            id(ResourceKind::Queue, "work-dlq"),
            id(ResourceKind::Alarm, "depth"),
        ]
    );

    // Orphans are no target's: --include-orphans does not combine with --target.
    let out = run(
        &[
            "destroy",
            &file,
            "--target",
            "table/items",
            "--include-orphans",
            "--auto-approve",
        ],
        &leases,
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cannot be used with"),
        "{}",
        stderr(&out)
    );
    assert!(table_exists(&format!("{name}-items")).await);
}

#[tokio::test]
async fn a_saved_targeted_plan_applies_exactly_its_targets() {
    let (name, file, _) = stack("tgt-saved");
    let leases = unique_name("leases");
    let plan_file = std::path::Path::new(&file)
        .with_file_name("plan.json")
        .to_str()
        .unwrap()
        .to_string();

    let out = run(
        &[
            "plan",
            &file,
            "--target",
            "queue/audit",
            "--out",
            &plan_file,
        ],
        &leases,
    )
    .await;
    ok(&out);
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&plan_file).unwrap()).unwrap();
    assert_eq!(saved["targets"], serde_json::json!(["queue/audit"]));
    assert_eq!(
        saved["plan"]["targets"],
        serde_json::json!([{ "kind": "queue", "name": "audit" }])
    );

    // A plan file fixed its targets: others now are refused, and nothing is written (not even
    // the lease table).
    let out = run(&["apply", &plan_file, "--target", "table/items"], &leases).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--target cannot be used with a saved plan: ")
            && stderr(&out).contains("was made with --target queue/audit"),
        "{}",
        stderr(&out)
    );
    assert!(!table_exists(&leases).await);

    // Outside the targets, the stack changes after the review (the table is created): the
    // saved plan is compared within its targets, so it still applies, and exactly them.
    ok(&run(
        &["apply", &file, "--target", "table/items", "--auto-approve"],
        &leases,
    )
    .await);
    let out = run(&["apply", &plan_file], &leases).await;
    ok(&out);
    assert!(
        stdout(&out).contains("resource targeting is in effect (queue/audit)"),
        "{}",
        stdout(&out)
    );
    assert_eq!(queues(&name).await, [format!("{name}-audit")]);
    assert!(key_alive(&format!("alias/{name}-other")).await);
    assert!(!key_alive(&format!("alias/{name}-main")).await);

    // Inside the targets, a change after the review is refused as for a whole plan.
    let out = run(
        &[
            "plan",
            &file,
            "--target",
            "queue/work-dlq",
            "--out",
            &plan_file,
        ],
        &leases,
    )
    .await;
    ok(&out);
    ok(&run(
        &["apply", &file, "--target", "kms-key/main", "--auto-approve"],
        &leases,
    )
    .await);
    let out = run(&["apply", &plan_file], &leases).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("changed since the plan was saved: kms-key/main: planned"),
        "{}",
        stderr(&out)
    );
    assert!(!queues(&name).await.contains(&format!("{name}-work-dlq")));
}

#[tokio::test]
async fn an_unknown_target_is_refused_before_any_aws_call() {
    let (name, file, _) = stack("tgt-unknown");
    // Nothing listens on the discard port: any AWS call would fail with a connection error
    // instead of the target's.
    let nowhere = "http://127.0.0.1:9";
    let cases: [(&[&str], &str); 5] = [
        (
            &["plan", &file, "--target", "queues/work"],
            "target `queues/work`: no resource kind `queues` (did you mean `queue`?); kinds are: kms-key, vpc,",
        ),
        (
            &[
                "plan",
                &file,
                "--target",
                "queue/work",
                "--target",
                "queue/wrok",
            ],
            &format!(
                "target `queue/wrok`: blueprint `{name}` declares no queue `wrok` (did you mean `queue/work`?); its queue resources are: work, work-dlq, audit"
            ),
        ),
        (
            &[
                "apply",
                &file,
                "--target",
                "auto-scaling-group/workers",
                "--auto-approve",
            ],
            "declares no auto-scaling-group `workers`; it declares no auto-scaling-group at all",
        ),
        (
            &["destroy", &file, "--target", "table", "--auto-approve"],
            "target `table` is not `kind/name` (for example `queue/transactions`)",
        ),
        (
            &["drift", &file, "--target", "queue/main"],
            "did you mean `kms-key/main`?",
        ),
    ];
    for (args, message) in cases {
        let mut all = args.to_vec();
        all.extend_from_slice(&["--endpoint-url", nowhere]);
        let out = ballast(&all);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(message), "{args:?}: {}", stderr(&out));
        assert!(stdout(&out).is_empty(), "{args:?}: {}", stdout(&out));
    }

    // Against moto: nothing was created, not even the lease table apply would take first.
    let leases = unique_name("leases");
    let out = run(
        &["apply", &file, "--target", "queue/nope", "--auto-approve"],
        &leases,
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(!table_exists(&leases).await);
    assert!(queues(&name).await.is_empty());
}
