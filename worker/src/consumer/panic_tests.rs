//! A panic inside message processing, driven through the real consumer loop against moto: the
//! task boundary releases the slot and the in-flight count (so scale-in protection is cleared),
//! counts the panic, retries with backoff, and on the last delivery records a REJECTED
//! `internal_error` result before deleting the message. Nothing else is lost.

use std::time::Duration;

use aws_sdk_autoscaling::operation::set_instance_protection::SetInstanceProtectionOutput;
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use ballast_testbed::fixtures::{self, QueuePair, queue_depth as depth};
use rust_decimal::Decimal;

use super::*;
use crate::ledger::{INTERNAL_ERROR, ResultStatus};
use crate::lifecycle::InstanceLifecycle;
use crate::transaction::{AccountNumber, Currency};

async fn queue_with_redrive(sqs: &aws_sdk_sqs::Client, max_receive_count: u32) -> (String, String) {
    let QueuePair { url, dlq_url } =
        fixtures::queue_with_dlq(sqs, "panic-q", 2, max_receive_count).await;
    (url, dlq_url)
}

async fn ledger_tables(client: &aws_sdk_dynamodb::Client) -> (String, String) {
    fixtures::ledger_tables(client, "panic").await
}

/// Polls `check` every 50 ms for at most `deadline`.
async fn until<F, Fut>(what: &str, deadline: Duration, check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    fixtures::poll_until(what, deadline, Duration::from_millis(50), check).await;
}

fn deposit(id: Uuid, account: &str, key: &str) -> String {
    serde_json::json!({
        "transaction_id": id.to_string(),
        "type": "DEPOSIT",
        "target_account": account,
        "amount": "10.00",
        "currency": "USD",
        "timestamp": "2024-01-15T10:30:00Z",
        "idempotency_key": key,
    })
    .to_string()
}

use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_message_is_rejected_on_its_last_delivery_and_leaks_nothing() {
    let moto = ballast_testbed::moto().await;
    let sdk = moto.sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    let (url, dlq_url) = queue_with_redrive(&sqs, 2).await;
    let (accounts, transactions) = ledger_tables(&dynamodb).await;
    let ledger = Ledger::new(dynamodb, accounts, transactions);
    let account = AccountNumber::parse("7770000001").unwrap();
    ledger
        .create_account(
            &account,
            Currency::from_code("USD").unwrap(),
            "CHECKING",
            Decimal::new(10000, 2),
            &crate::transaction::Subject::parse("ballast-seed").unwrap(),
        )
        .await
        .unwrap();

    let poisoned = Uuid::new_v4();
    let healthy = Uuid::new_v4();
    for body in [
        deposit(poisoned, account.as_str(), &format!("k-{poisoned}")),
        deposit(healthy, account.as_str(), &format!("k-{healthy}")),
    ] {
        sqs.send_message()
            .queue_url(&url)
            .message_body(body)
            .send()
            .await
            .unwrap();
    }

    let info = discover_queue(&sqs, &url).await.unwrap();
    assert_eq!(info.max_receive_count, Some(2));
    let config = ConsumerConfig {
        dlq_url: info.dlq_url.clone(),
        max_receive_count: info.max_receive_count,
        wait_time_seconds: 1,
        visibility_timeout: info.visibility_timeout,
        delete_linger: Duration::from_millis(20),
        ..ConsumerConfig::new(url.clone())
    };
    let marker = poisoned.to_string();
    let consumer = Consumer::new(sqs.clone(), ledger.clone(), config).with_fault(Arc::new(
        move |body: &str| {
            if body.contains(&marker) {
                panic!("injected fault while processing {marker}");
            }
        },
    ));

    // Scale-in protection follows the consumer's in-flight count (mocked Auto Scaling).
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
    let fleet = InstanceLifecycle::new(asg, "i-panic", "g", None);
    let background = CancellationToken::new();
    let protector = tokio::spawn({
        let fleet = fleet.clone();
        let activity = consumer.activity();
        let background = background.clone();
        async move {
            fleet
                .protect_while_busy(activity, Duration::from_millis(100), background)
                .await
        }
    });

    let shutdown = CancellationToken::new();
    let run = tokio::spawn({
        let consumer = consumer.clone();
        let shutdown = shutdown.clone();
        async move { consumer.run(shutdown).await }
    });

    // The last (second) delivery records REJECTED internal_error.
    until("the internal_error result", Duration::from_secs(30), || {
        let ledger = ledger.clone();
        async move { matches!(ledger.get_result(poisoned).await, Ok(Some(_))) }
    })
    .await;
    let result = ledger.get_result(poisoned).await.unwrap().unwrap();
    assert_eq!(result.status, ResultStatus::Rejected);
    assert_eq!(result.reason_code.as_deref(), Some(INTERNAL_ERROR));
    assert_eq!(
        result.idempotency_key.as_deref(),
        Some(format!("k-{poisoned}").as_str())
    );
    // Nothing else lost: the healthy deposit completed, and only it moved money.
    let other = ledger.get_result(healthy).await.unwrap().unwrap();
    assert_eq!(other.status, ResultStatus::Completed);
    assert_eq!(
        ledger.get_account(&account).await.unwrap().unwrap().balance,
        Decimal::new(11000, 2)
    );
    // The message is deleted once its result is durable, not redriven to the DLQ.
    until("both queues empty", Duration::from_secs(20), || {
        let sqs = sqs.clone();
        let (url, dlq_url) = (url.clone(), dlq_url.clone());
        async move { depth(&sqs, &url).await == 0 && depth(&sqs, &dlq_url).await == 0 }
    })
    .await;

    let metrics = consumer.metrics();
    // One panic per delivery: the first retried with backoff, the second settled.
    assert_eq!(metrics.panics.get(), 2);
    assert_eq!(metrics.processed_count("retried"), 1);
    assert_eq!(metrics.processed_count("rejected"), 1);
    assert_eq!(metrics.processed_count("completed"), 1);
    // The bookkeeping is released: nothing in flight, protection cleared.
    until("in-flight back to 0", Duration::from_secs(10), || {
        let n = *consumer.activity().borrow();
        async move { n == 0 }
    })
    .await;
    assert_eq!(metrics.in_flight.get(), 0);
    until("protection cleared", Duration::from_secs(10), || {
        let (on, off) = (protect_on.num_calls(), protect_off.num_calls());
        async move { on >= 1 && off == on }
    })
    .await;
    assert!(metrics.encode().contains("ballast_worker_panics_total 2"));

    shutdown.cancel();
    run.await.unwrap();
    background.cancel();
    protector.await.unwrap();
}

#[test]
fn identify_reads_ids_leniently() {
    let id = Uuid::new_v4();
    let (tx, key) = identify(&deposit(id, "7770000001", "k-1")).unwrap();
    assert_eq!(tx, id);
    assert_eq!(key.unwrap().as_str(), "k-1");
    assert!(identify("not json").is_none());
    assert!(identify(r#"{"transaction_id":"nope"}"#).is_none());
    assert!(identify(r#"{"transaction_id":"00000000-0000-0000-0000-000000000000"}"#).is_none());
    let (_, key) = identify(&format!(
        r#"{{"transaction_id":"{id}","idempotency_key":""}}"#
    ))
    .unwrap();
    assert!(key.is_none());
}

#[test]
fn the_in_flight_guard_releases_on_unwind() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let sdk = aws_types::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        let client = aws_sdk_dynamodb::Client::new(&sdk);
        let consumer = Consumer::new(
            aws_sdk_sqs::Client::new(&sdk),
            Ledger::new(client, "a", "t"),
            ConsumerConfig::new("http://unused"),
        );
        let permits = Arc::new(Semaphore::new(1));
        let permit = permits.clone().try_acquire_owned().unwrap();
        let guard = InFlight::new(consumer.shared.clone(), permit);
        assert_eq!(*consumer.activity().borrow(), 1);
        assert_eq!(permits.available_permits(), 0);
        let task = tokio::spawn(async move {
            let _guard = guard;
            panic!("boom");
        });
        assert!(task.await.unwrap_err().is_panic());
        assert_eq!(*consumer.activity().borrow(), 0);
        assert_eq!(consumer.metrics().in_flight.get(), 0);
        assert_eq!(permits.available_permits(), 1);
    });
}
