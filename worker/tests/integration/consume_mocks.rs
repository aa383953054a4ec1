//! Failure injection with aws-smithy-mocks: DynamoDB throttling is retried through the queue,
//! and the termination lifecycle path drains and exits cleanly even when
//! CompleteLifecycleAction fails (moto does not implement it).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a failed test (clippy.toml covers only #[test] fns, not helpers)"
)]

use crate::common;

use std::time::Duration;

use aws_sdk_autoscaling::operation::complete_lifecycle_action::{
    CompleteLifecycleActionError, CompleteLifecycleActionOutput,
};
use aws_sdk_autoscaling::operation::describe_auto_scaling_instances::DescribeAutoScalingInstancesOutput;
use aws_sdk_autoscaling::operation::set_instance_protection::SetInstanceProtectionOutput;
use aws_sdk_autoscaling::types::AutoScalingInstanceDetails;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::operation::transact_write_items::{
    TransactWriteItemsError, TransactWriteItemsOutput,
};
use aws_sdk_dynamodb::types::error::ProvisionedThroughputExceededException;
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use ballast_worker::consumer::Consumer;
use ballast_worker::generate::send_messages;
use ballast_worker::ledger::Ledger;
use ballast_worker::lifecycle::{InstanceLifecycle, LifecycleCompletion, TERMINATING_WAIT};
use ballast_worker::transaction::{
    AccountNumber, Currency, IdempotencyKey, Transaction, TransactionType,
};
use common::{config, eventually, queue_depth, queues};
use rust_decimal::Decimal;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

fn transfer() -> Transaction {
    let id = Uuid::new_v4();
    Transaction {
        target_currency: None,
        transaction_id: id,
        kind: TransactionType::Transfer,
        source_account: Some(AccountNumber::parse("1111111111").unwrap()),
        target_account: Some(AccountNumber::parse("2222222222").unwrap()),
        amount: Some(Decimal::new(125, 2)),
        currency: Currency::from_code("USD").unwrap(),
        timestamp: OffsetDateTime::now_utc().replace_nanosecond(0).unwrap(),
        idempotency_key: IdempotencyKey::parse(&format!("k-{id}")).unwrap(),
        principal: None,
    }
}

fn throttled() -> TransactWriteItemsError {
    TransactWriteItemsError::ProvisionedThroughputExceededException(
        ProvisionedThroughputExceededException::builder()
            .message("Rate of requests exceeds the allowed throughput")
            .meta(
                aws_sdk_dynamodb::error::ErrorMetadata::builder()
                    .code("ProvisionedThroughputExceededException")
                    .message("Rate of requests exceeds the allowed throughput")
                    .build(),
            )
            .build(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_throttling_is_retried_through_the_queue() {
    let q = queues(3).await;
    let writes = mock!(aws_sdk_dynamodb::Client::transact_write_items)
        .sequence()
        .error(throttled)
        .times(2)
        .output(|| TransactWriteItemsOutput::builder().build())
        .build();
    let ddb = mock_client!(aws_sdk_dynamodb, RuleMode::Sequential, [&writes], |c| c
        .retry_config(RetryConfig::disabled()));
    let ledger = Ledger::new(ddb, "accounts", "transactions");
    let tx = transfer();
    send_messages(&q.sqs, &q.url, &[tx.to_json().unwrap()], 1000.0)
        .await
        .unwrap();

    let consumer = Consumer::new(q.sqs.clone(), ledger, config(&q, 3));
    let shutdown = CancellationToken::new();
    let run = tokio::spawn({
        let consumer = consumer.clone();
        let shutdown = shutdown.clone();
        async move { consumer.run(shutdown).await }
    });
    let m = consumer.metrics().clone();
    eventually(
        "throttled twice, then applied",
        Duration::from_secs(30),
        || {
            let m = m.clone();
            async move { m.processed_count("completed") == 1 }
        },
    )
    .await;
    eventually("queue drained", Duration::from_secs(10), || {
        let sqs = q.sqs.clone();
        let url = q.url.clone();
        async move { queue_depth(&sqs, &url).await == 0 }
    })
    .await;
    shutdown.cancel();
    run.await.unwrap();
    assert_eq!(m.processed_count("retried"), 2);
    assert_eq!(writes.num_calls(), 3);
    assert_eq!(
        queue_depth(&q.sqs, &q.dlq_url).await,
        0,
        "not dead-lettered"
    );
}

fn asg_instance(state: &str) -> DescribeAutoScalingInstancesOutput {
    DescribeAutoScalingInstancesOutput::builder()
        .auto_scaling_instances(
            AutoScalingInstanceDetails::builder()
                .instance_id("i-0123456789abcdef0")
                .auto_scaling_group_name("banking-workers")
                .availability_zone("us-east-1a")
                .lifecycle_state(state)
                .health_status("HEALTHY")
                .protected_from_scale_in(false)
                .build(),
        )
        .build()
}

#[tokio::test]
async fn complete_lifecycle_action_continues() {
    let complete = mock!(aws_sdk_autoscaling::Client::complete_lifecycle_action)
        .match_requests(|r| {
            r.lifecycle_action_result() == Some("CONTINUE")
                && r.lifecycle_hook_name() == Some("drain")
                && r.auto_scaling_group_name() == Some("banking-workers")
                && r.instance_id() == Some("i-0123456789abcdef0")
        })
        .then_output(|| CompleteLifecycleActionOutput::builder().build());
    let asg = mock_client!(aws_sdk_autoscaling, RuleMode::Sequential, [&complete]);
    let fleet = InstanceLifecycle::new(
        asg,
        "i-0123456789abcdef0",
        "banking-workers",
        Some("drain".into()),
    );
    assert_eq!(fleet.finish().await, LifecycleCompletion::Completed);
    assert_eq!(complete.num_calls(), 1);

    let none = InstanceLifecycle::new(
        mock_client!(aws_sdk_autoscaling, RuleMode::Sequential, [&complete]),
        "i-1",
        "g",
        None,
    );
    assert_eq!(none.finish().await, LifecycleCompletion::NoHook);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn termination_notice_drains_and_exits_cleanly_when_completion_fails() {
    let q = queues(5).await;
    let ledger = common::ledger().await;
    let tx = transfer();
    for account in [
        tx.source_account.as_ref().unwrap(),
        tx.target_account.as_ref().unwrap(),
    ] {
        ledger
            .create_account(
                account,
                Currency::from_code("USD").unwrap(),
                "CHECKING",
                Decimal::new(1000, 2),
                &ballast_worker::transaction::Subject::parse("seed").unwrap(),
            )
            .await
            .unwrap();
    }
    send_messages(&q.sqs, &q.url, &[tx.to_json().unwrap()], 1000.0)
        .await
        .unwrap();

    let describe = mock!(aws_sdk_autoscaling::Client::describe_auto_scaling_instances)
        .sequence()
        .output(|| asg_instance("InService"))
        .output(|| asg_instance(TERMINATING_WAIT))
        .repeatedly()
        .build();
    let protect = mock!(aws_sdk_autoscaling::Client::set_instance_protection)
        .then_output(|| SetInstanceProtectionOutput::builder().build());
    let complete = mock!(aws_sdk_autoscaling::Client::complete_lifecycle_action).then_error(|| {
        CompleteLifecycleActionError::unhandled(
            aws_sdk_autoscaling::error::ErrorMetadata::builder()
                .code("ValidationError")
                .message("No active Lifecycle Action found with instance ID")
                .build(),
        )
    });
    let asg = mock_client!(
        aws_sdk_autoscaling,
        RuleMode::MatchAny,
        [&describe, &protect, &complete],
        |c| c.retry_config(aws_sdk_autoscaling::config::retry::RetryConfig::disabled())
    );
    let fleet = InstanceLifecycle::discover(asg, "i-0123456789abcdef0", Some("drain".into()))
        .await
        .unwrap()
        .expect("instance is in a group");
    assert_eq!(fleet.group(), "banking-workers");

    let consumer = Consumer::new(q.sqs.clone(), ledger.clone(), config(&q, 5));
    let shutdown = CancellationToken::new();
    let run = tokio::spawn({
        let consumer = consumer.clone();
        let shutdown = shutdown.clone();
        async move { consumer.run(shutdown).await }
    });
    let m = consumer.metrics().clone();
    eventually("message applied", Duration::from_secs(30), || {
        let m = m.clone();
        async move { m.processed_count("completed") == 1 }
    })
    .await;

    // The termination notice cancels the one shutdown token.
    fleet
        .watch_termination(Duration::from_millis(50), shutdown.clone())
        .await;
    assert!(fleet.is_terminating());
    assert!(shutdown.is_cancelled());
    tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("the consumer drains within the visibility timeout")
        .unwrap();
    assert_eq!(fleet.finish().await, LifecycleCompletion::Failed);
    assert_eq!(complete.num_calls(), 1);
    assert_eq!(queue_depth(&q.sqs, &q.url).await, 0, "deletes flushed");
}

#[tokio::test(start_paused = true)]
async fn scale_in_protection_follows_activity_with_debounce() {
    let protect_on = mock!(aws_sdk_autoscaling::Client::set_instance_protection)
        .match_requests(|r| r.protected_from_scale_in() == Some(true))
        .then_output(|| SetInstanceProtectionOutput::builder().build());
    let protect_off = mock!(aws_sdk_autoscaling::Client::set_instance_protection)
        .match_requests(|r| r.protected_from_scale_in() == Some(false))
        .then_output(|| SetInstanceProtectionOutput::builder().build());
    let asg = mock_client!(
        aws_sdk_autoscaling,
        RuleMode::MatchAny,
        [&protect_on, &protect_off]
    );
    let fleet = InstanceLifecycle::new(asg, "i-1", "g", None);
    let (activity, rx) = tokio::sync::watch::channel(0usize);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn({
        let fleet = fleet.clone();
        let shutdown = shutdown.clone();
        async move {
            fleet
                .protect_while_busy(rx, Duration::from_secs(30), shutdown)
                .await
        }
    });
    activity.send(3).unwrap();
    eventually("protected", Duration::from_secs(5), || {
        let n = protect_on.num_calls();
        async move { n == 1 }
    })
    .await;
    // Briefly idle, then busy again: no clearing.
    activity.send(0).unwrap();
    tokio::time::advance(Duration::from_secs(10)).await;
    activity.send(1).unwrap();
    tokio::time::advance(Duration::from_secs(40)).await;
    assert_eq!(protect_off.num_calls(), 0);
    // Idle past the debounce: cleared once.
    activity.send(0).unwrap();
    eventually("cleared", Duration::from_secs(120), || {
        let n = protect_off.num_calls();
        async move { n == 1 }
    })
    .await;
    assert_eq!(protect_on.num_calls(), 1);
    shutdown.cancel();
    task.await.unwrap();
}
