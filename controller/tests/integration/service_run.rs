//! `ballast run` as operators run it, against moto: the dry-run observer reports drift and
//! writes nothing; the live controller restores drift, leads through its DynamoDB lease,
//! hands over to a second replica when stopped, and exits 0 on SIGTERM with its lease released.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a failed test (clippy.toml covers only #[test] fns, not helpers)"
)]

use std::path::PathBuf;

use aws_sdk_sqs::types::QueueAttributeName;
use ballast_aws::CallRecorder;
use ballast_controller::provision::engine::LogProgress;
use ballast_controller::provision::kinds::Readiness;
use ballast_controller::provision::{self, Clients};
use ballast_testbed::{moto, unique_name};

use crate::running::{Controller, eventually};

fn blueprint_text(name: &str) -> String {
    format!(
        r#"apiVersion: ballast.dev/v1
kind: Blueprint
metadata: {{ name: {name}, region: us-east-1 }}
spec:
  kmsKeys:
    - name: main
      deletionWindow: 7d
  queues:
    - name: work
      visibilityTimeout: 60s
      encryption: {{ type: kms, kmsKey: main }}
      deadLetter: {{ queue: work-dlq, maxReceiveCount: 3 }}
    - name: work-dlq
      retention: 14d
"#
    )
}

struct Stack {
    name: String,
    file: PathBuf,
    queue_url: String,
    sqs: aws_sdk_sqs::Client,
}

async fn applied_stack(prefix: &str) -> Stack {
    let name = unique_name(prefix);
    let dir = std::env::temp_dir().join(&name);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("blueprint.yaml");
    let text = blueprint_text(&name);
    std::fs::write(&file, &text).unwrap();
    let bp = ballast_blueprint::parse("t.yaml", &text)
        .unwrap_or_else(|e| panic!("{e}"))
        .blueprint;
    let config = moto().await.sdk_config().await;
    let clients = Clients::read_write(&config, &CallRecorder::default());
    let observation = provision::observe(&clients.observer(), &bp).await.unwrap();
    provision::apply(
        &clients,
        &bp,
        observation,
        Readiness::default(),
        &LogProgress,
    )
    .await
    .unwrap();
    let sqs = aws_sdk_sqs::Client::new(&config);
    let queue_url = sqs
        .get_queue_url()
        .queue_name(format!("{name}-work"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    Stack {
        name,
        file,
        queue_url,
        sqs,
    }
}

impl Stack {
    async fn visibility(&self) -> String {
        self.sqs
            .get_queue_attributes()
            .queue_url(&self.queue_url)
            .attribute_names(QueueAttributeName::VisibilityTimeout)
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap()[&QueueAttributeName::VisibilityTimeout]
            .clone()
    }

    async fn set_visibility(&self, seconds: &str) {
        self.sqs
            .set_queue_attributes()
            .queue_url(&self.queue_url)
            .attributes(QueueAttributeName::VisibilityTimeout, seconds)
            .send()
            .await
            .unwrap();
    }
}

fn metric_line<'a>(metrics: &'a str, name: &str, labels: &[&str]) -> Option<&'a str> {
    metrics
        .lines()
        .find(|l| l.starts_with(name) && labels.iter().all(|label| l.contains(label)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_reports_drift_and_writes_nothing() {
    let stack = applied_stack("dry").await;
    let controller = Controller::start(&stack.file, &["--dry-run"]).await;
    eventually(60, "/readyz", || async { controller.ready() }).await;
    assert_eq!(controller.get("/healthz").map(|r| r.0), Some(200));

    stack.set_visibility("7").await;
    let drifted = "resource=\"work\"";
    eventually(60, "drift of the queue in /metrics", || async {
        metric_line(&controller.metrics(), "ballast_resource_drift", &[drifted])
            .is_some_and(|l| l.ends_with(" 1"))
    })
    .await;
    let metrics = controller.metrics();
    assert!(
        metric_line(
            &metrics,
            "ballast_resource_status",
            &[drifted, "status=\"drifted\""]
        )
        .is_some(),
        "{metrics}"
    );
    assert!(metrics.contains("ballast_reconcile_duration_seconds"));
    // Every AWS call it made was a read; none was even attempted and refused.
    for line in metrics
        .lines()
        .filter(|l| l.starts_with("ballast_aws_calls_total"))
    {
        let operation = line
            .split("operation=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap();
        assert!(
            ballast_aws::is_read_only_operation(operation),
            "dry run called {operation}"
        );
        assert!(!line.contains("outcome=\"refused\""), "{line}");
    }
    assert_eq!(stack.visibility().await, "7", "dry run must not restore");
    assert_eq!(controller.terminate(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_restores_drift_and_hands_over_when_stopped() {
    let stack = applied_stack("live").await;
    let table = unique_name("leases");
    let first =
        Controller::start(&stack.file, &["--lease-table", &table, "--holder", "first"]).await;
    eventually(60, "the first replica to lead", || async {
        metric_line(&first.metrics(), "ballast_leader", &[&stack.name])
            .is_some_and(|l| l.ends_with(" 1"))
    })
    .await;
    let second = Controller::start(
        &stack.file,
        &["--lease-table", &table, "--holder", "second"],
    )
    .await;
    eventually(60, "the second replica to be ready", || async {
        second.ready()
    })
    .await;
    assert!(
        metric_line(&second.metrics(), "ballast_leader", &[&stack.name])
            .is_some_and(|l| l.ends_with(" 0")),
        "two leaders"
    );

    stack.set_visibility("7").await;
    eventually(
        60,
        "the leader to restore the visibility timeout",
        || async { stack.visibility().await == "60" },
    )
    .await;

    assert_eq!(first.terminate(), Some(0));
    // The first released its lease on the way out: the second takes over at its next try,
    // well before the 3 s lease would have expired on its own.
    eventually(10, "the second replica to lead", || async {
        metric_line(&second.metrics(), "ballast_leader", &[&stack.name])
            .is_some_and(|l| l.ends_with(" 1"))
    })
    .await;
    stack.set_visibility("9").await;
    eventually(
        60,
        "the new leader to restore the visibility timeout",
        || async { stack.visibility().await == "60" },
    )
    .await;
    assert_eq!(second.terminate(), Some(0));

    let config = moto().await.sdk_config().await;
    let lease = aws_sdk_dynamodb::Client::new(&config)
        .get_item()
        .table_name(&table)
        .key(
            "lease",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("ballast-blueprint-{}", stack.name)),
        )
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    assert!(lease.item.is_none(), "lease left behind: {:?}", lease.item);
}
