//! The shipped blueprints end to end against moto: `banking.yaml` applies on an empty account,
//! converges (plan in sync, `drift` exits 0, a second apply writes nothing), and
//! `minimal.yaml` applies and destroys cleanly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a failed test (clippy.toml covers only #[test] fns, not helpers)"
)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use aws_sdk_sqs::types::QueueAttributeName;
use ballast_aws::CallRecorder;
use ballast_blueprint::Blueprint;
use ballast_controller::provision::engine::{EngineError, LogProgress};
use ballast_controller::provision::kinds::Readiness;
use ballast_controller::provision::{self, Clients, ReadOnlyClients};
use ballast_testbed::moto;

fn readiness() -> Readiness {
    Readiness {
        timeout: Duration::from_secs(120),
        poll: Duration::from_millis(100),
        ..Readiness::default()
    }
}

fn shipped(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../blueprints")
        .join(file)
}

fn load(file: &str) -> Blueprint {
    let path = shipped(file);
    let text = std::fs::read_to_string(&path).unwrap();
    ballast_blueprint::parse(&path.display().to_string(), &text)
        .unwrap_or_else(|e| panic!("{e}"))
        .blueprint
}

fn ballast(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ballast"))
        .args(args)
        .envs(ballast_testbed::child_env())
        .env_remove("AWS_ENDPOINT_URL")
        .output()
        .expect("ballast runs")
}

async fn apply_with(bp: &Blueprint, recorder: &CallRecorder) {
    let config = moto().await.sdk_config().await;
    let clients = Clients::read_write(&config, recorder);
    let observation = provision::observe(&clients.observer(), bp).await.unwrap();
    provision::apply(&clients, bp, observation, readiness(), &LogProgress)
        .await
        .unwrap_or_else(|e| panic!("apply failed: {e}"));
}

async fn plan_of(bp: &Blueprint) -> provision::Plan {
    let config = moto().await.sdk_config().await;
    let observation =
        provision::observe(&ReadOnlyClients::new(&config, &CallRecorder::default()), bp)
            .await
            .unwrap();
    provision::plan(bp, &observation)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn banking_applies_on_an_empty_account_and_converges() {
    let bp = load("banking.yaml");
    // A scaling policy lives in Ballast; only its dead-man's switch (when declared) is in AWS.
    let resources = ballast_blueprint::graph::resources(&bp)
        .iter()
        .filter(|(id, _)| {
            id.kind != ballast_blueprint::ResourceKind::ScalingPolicy
                || bp
                    .spec
                    .scaling_policies
                    .iter()
                    .any(|p| p.name == id.name && p.dead_mans_switch.is_some())
        })
        .count();
    assert!(resources >= 19, "banking.yaml has {resources} resources");

    let first = CallRecorder::default();
    apply_with(&bp, &first).await;
    assert!(first.mutating() >= resources as u64);

    let plan = plan_of(&bp).await;
    assert!(
        !plan.has_changes(),
        "{}",
        provision::render::plan_text(&plan)
    );
    assert_eq!(plan.summary.unchanged, resources);

    let endpoint = moto().await.endpoint();
    let file = shipped("banking.yaml");
    let out = ballast(&["drift", file.to_str().unwrap(), "--endpoint-url", &endpoint]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let second = CallRecorder::default();
    apply_with(&bp, &second).await;
    assert_eq!(second.mutating(), 0, "{:?}", second.snapshot());

    // The queue really is what the seed describes.
    let config = moto().await.sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    let url = sqs
        .get_queue_url()
        .queue_name("banking-transactions")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap();
    assert_eq!(attributes[&QueueAttributeName::VisibilityTimeout], "60");
    assert_eq!(
        attributes[&QueueAttributeName::MessageRetentionPeriod],
        "1209600"
    );
    assert_eq!(
        attributes[&QueueAttributeName::ReceiveMessageWaitTimeSeconds],
        "20"
    );
    let redrive: serde_json::Value =
        serde_json::from_str(&attributes[&QueueAttributeName::RedrivePolicy]).unwrap();
    assert_eq!(
        redrive["maxReceiveCount"].to_string().trim_matches('"'),
        "3"
    );
    assert!(attributes.contains_key(&QueueAttributeName::KmsMasterKeyId));

    let group = aws_sdk_autoscaling::Client::new(&config)
        .describe_auto_scaling_groups()
        .auto_scaling_group_names("banking-workers")
        .send()
        .await
        .unwrap()
        .auto_scaling_groups
        .unwrap()
        .remove(0);
    assert_eq!((group.min_size, group.max_size), (Some(2), Some(10)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minimal_applies_and_destroys_cleanly() {
    let bp = load("minimal.yaml");
    apply_with(&bp, &CallRecorder::default()).await;
    assert!(!plan_of(&bp).await.has_changes());

    let config = moto().await.sdk_config().await;
    let clients = Clients::read_write(&config, &CallRecorder::default());
    let observation = provision::observe(&clients.observer(), &bp).await.unwrap();
    provision::destroy(&clients, &bp, observation, readiness(), &LogProgress)
        .await
        .unwrap_or_else(|e| panic!("destroy failed: {e}"));

    // Everything in minimal.yaml says delete: nothing of it is left but a key awaiting deletion.
    let plan = plan_of(&bp).await;
    assert_eq!(
        plan.summary.create,
        ballast_blueprint::graph::resources(&bp).len(),
        "{}",
        provision::render::plan_text(&plan)
    );
    let sqs = aws_sdk_sqs::Client::new(&config);
    for queue in ["minimal-work", "minimal-work-dlq"] {
        assert!(sqs.get_queue_url().queue_name(queue).send().await.is_err());
    }
    let ddb = aws_sdk_dynamodb::Client::new(&config);
    assert!(
        ddb.describe_table()
            .table_name("minimal-items")
            .send()
            .await
            .is_err()
    );
}

/// Shutdown (the one cancellation token behind `readiness`) stops apply and destroy before
/// their next step: an apply cancelled before it starts creates nothing and names every
/// resource it did not reach, a destroy likewise deletes nothing, and the next run converges.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_stops_apply_and_destroy_before_their_next_step() {
    let mut bp = load("minimal.yaml");
    bp.metadata.name = ballast_testbed::unique_name("halt");
    let provisioned = ballast_blueprint::graph::resources(&bp)
        .iter()
        .filter(|(id, _)| id.kind != ballast_blueprint::ResourceKind::ScalingPolicy)
        .count();
    let config = moto().await.sdk_config().await;
    let clients = Clients::read_write(&config, &CallRecorder::default());
    let shut_down = || {
        let readiness = readiness();
        readiness.cancel.cancel();
        readiness
    };

    let observation = provision::observe(&clients.observer(), &bp).await.unwrap();
    let err = provision::apply(&clients, &bp, observation, shut_down(), &LogProgress)
        .await
        .unwrap_err();
    let EngineError::Interrupted {
        not_reached,
        failed,
    } = &err
    else {
        panic!("expected an interruption, got {err}");
    };
    assert_eq!(not_reached.len(), provisioned, "{err}");
    assert!(failed.is_empty(), "{err}");
    assert_eq!(plan_of(&bp).await.summary.create, provisioned);

    apply_with(&bp, &CallRecorder::default()).await;
    let observation = provision::observe(&clients.observer(), &bp).await.unwrap();
    let err = provision::destroy(&clients, &bp, observation, shut_down(), &LogProgress)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, EngineError::Interrupted { not_reached, .. } if not_reached.len() == provisioned),
        "{err}"
    );
    assert!(
        !plan_of(&bp).await.has_changes(),
        "the interrupted destroy deleted something"
    );

    let observation = provision::observe(&clients.observer(), &bp).await.unwrap();
    provision::destroy(&clients, &bp, observation, readiness(), &LogProgress)
        .await
        .unwrap_or_else(|e| panic!("destroy failed: {e}"));
}
