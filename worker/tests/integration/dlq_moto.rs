//! What reaches the dead-letter queue (docs/dead-letters.md), against moto through the test
//! bed's fault proxy: poison messages are moved there once by SQS's redrive with their reason
//! recorded; a settled or processable message on its last receive never is.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a failed test (clippy.toml covers only #[test] fns, not helpers)"
)]

use crate::common;
use crate::common::init_logs;

use std::collections::HashSet;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sqs::types::MessageSystemAttributeName;
use aws_smithy_types::retry::RetryConfig;
use ballast_testbed::proxy::{ErrorKind, Fault, FaultProxy, Rule};
use ballast_worker::consumer::{Consumer, ConsumerConfig};
use ballast_worker::generate::send_messages;
use ballast_worker::ledger::{Ledger, Outcome};
use ballast_worker::store::keys::poison_pk;
use ballast_worker::transaction::{
    AccountNumber, Currency, IdempotencyKey, Transaction, TransactionType,
};
use common::{Queues, eventually, queue_depth, queues};
use rust_decimal::Decimal;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Clients through a fresh proxy: SQS with the SDK's retries, DynamoDB without (so one
/// injected fault is one failed ledger call).
async fn through_proxy(ledger: &Ledger) -> (FaultProxy, aws_sdk_sqs::Client, Ledger) {
    let moto = ballast_testbed::moto().await;
    let proxy = FaultProxy::start(&moto.endpoint(), 3).await.unwrap();
    let config = proxy.sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    let dynamodb = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&config)
            .retry_config(RetryConfig::disabled())
            .build(),
    );
    let tables = ledger.tables();
    let ledger = Ledger::new(dynamodb, tables.accounts, tables.transactions);
    (proxy, sqs, ledger)
}

/// The consumer settings of a queue with a redrive policy (maxReceiveCount 3).
fn redrive_config(q: &Queues, visibility_secs: u64) -> ConsumerConfig {
    ConsumerConfig {
        max_receive_count: Some(3),
        ..common::config(q, visibility_secs)
    }
}

fn deposit(account: &AccountNumber) -> Transaction {
    let id = Uuid::new_v4();
    Transaction {
        target_currency: None,
        transaction_id: id,
        kind: TransactionType::Deposit,
        source_account: None,
        target_account: Some(account.clone()),
        amount: Some(Decimal::new(1234, 2)),
        currency: Currency::from_code("USD").unwrap(),
        timestamp: OffsetDateTime::now_utc().replace_nanosecond(0).unwrap(),
        idempotency_key: IdempotencyKey::parse(&format!("k-{id}")).unwrap(),
        principal: None,
    }
}

async fn account(ledger: &Ledger) -> AccountNumber {
    let number =
        AccountNumber::parse(&format!("7{:011}", rand::random_range(0..10u64.pow(11)))).unwrap();
    ledger
        .create_account(
            &number,
            Currency::from_code("USD").unwrap(),
            "CHECKING",
            Decimal::new(10_000, 2),
            &ballast_worker::transaction::Subject::parse("ballast-seed").unwrap(),
        )
        .await
        .unwrap();
    number
}

/// Receives the message `times` times without deleting it (each receive counts towards
/// maxReceiveCount), making it visible again after each.
async fn burn_receives(q: &Queues, times: u32) {
    for _ in 0..times {
        let out = q
            .sqs
            .receive_message()
            .queue_url(&q.url)
            .wait_time_seconds(2)
            .send()
            .await
            .unwrap();
        let message = out.messages().first().expect("the message").clone();
        q.sqs
            .change_message_visibility()
            .queue_url(&q.url)
            .receipt_handle(message.receipt_handle().unwrap())
            .visibility_timeout(0)
            .send()
            .await
            .unwrap();
    }
}

async fn dlq_messages(q: &Queues, expected: usize) -> Vec<aws_sdk_sqs::types::Message> {
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let out = q
            .sqs
            .receive_message()
            .queue_url(&q.dlq_url)
            .max_number_of_messages(10)
            .visibility_timeout(300)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        let batch = out.messages.unwrap_or_default();
        if batch.is_empty() && (seen.len() >= expected || std::time::Instant::now() > deadline) {
            return seen;
        }
        seen.extend(batch);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_is_moved_once_by_the_redrive_with_its_reason_recorded() {
    init_logs();
    let q = queues(5).await;
    let direct = common::ledger().await;
    let (proxy, sqs, ledger) = through_proxy(&direct).await;
    let to = account(&direct).await;
    let good = deposit(&to);
    let poison = ["not json at all", "{\"type\":\"DEPOSIT\"}", "[1,2,3]"];
    let mut ids = HashSet::new();
    for body in poison {
        let out = q
            .sqs
            .send_message()
            .queue_url(&q.url)
            .message_body(body)
            .send()
            .await
            .unwrap();
        ids.insert(out.message_id.unwrap());
    }
    send_messages(&q.sqs, &q.url, &[good.to_json().unwrap()], 1000.0)
        .await
        .unwrap();
    // Faults where the old design duplicated DLQ copies: lost answers and failed writes.
    let dropped = proxy.add(
        Rule::new(Fault::DropResponse)
            .service("sqs")
            .operation("ChangeMessageVisibility")
            .next(2),
    );
    let failed = proxy.add(
        Rule::new(Fault::Error(ErrorKind::InternalServerError))
            .service("dynamodb")
            .operation("UpdateItem")
            .next(1),
    );

    let consumer = Consumer::new(sqs, ledger, redrive_config(&q, 5));
    let shutdown = CancellationToken::new();
    let run = tokio::spawn({
        let consumer = consumer.clone();
        let shutdown = shutdown.clone();
        async move { consumer.run(shutdown).await }
    });
    eventually("the poison is moved", Duration::from_secs(60), || {
        let sqs = q.sqs.clone();
        let (url, dlq) = (q.url.clone(), q.dlq_url.clone());
        async move { queue_depth(&sqs, &url).await == 0 && queue_depth(&sqs, &dlq).await == 3 }
    })
    .await;
    shutdown.cancel();
    run.await.unwrap();
    assert_eq!(proxy.injected(dropped), 2);
    assert_eq!(proxy.injected(failed), 1);
    assert_eq!(
        proxy.requests("sqs", "SendMessage"),
        0,
        "the consumer copied a message to the DLQ"
    );

    let dlq = dlq_messages(&q, 3).await;
    assert_eq!(dlq.len(), 3, "one DLQ entry per poison message");
    let moved: HashSet<String> = dlq
        .iter()
        .map(|m| m.message_id().unwrap().to_owned())
        .collect();
    assert_eq!(moved, ids, "the redrive keeps the message ids");
    for id in &ids {
        let item = direct
            .client()
            .get_item()
            .table_name(direct.tables().transactions)
            .key("pk", AttributeValue::S(poison_pk(id)))
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .item
            .unwrap_or_else(|| panic!("no poison record for {id}"));
        let code = item.get("reason_code").unwrap().as_s().unwrap();
        assert!(
            ["malformed_json", "missing_transaction_id", "not_an_object"].contains(&code.as_str()),
            "{code}"
        );
        assert_eq!(item.get("body_sha256").unwrap().as_s().unwrap().len(), 64);
    }
    assert!(
        direct
            .get_result(good.transaction_id)
            .await
            .unwrap()
            .is_some()
    );
    assert!(consumer.metrics().processed_count("poison") >= 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settled_message_on_its_last_receive_is_deleted_despite_failing_deletes() {
    init_logs();
    let q = queues(4).await;
    let direct = common::ledger().await;
    let (proxy, sqs, ledger) = through_proxy(&direct).await;
    let to = account(&direct).await;
    let tx = deposit(&to);
    // Applied before, its delete lost twice: this receive is the last before the redrive.
    assert_eq!(direct.apply(&tx).await.unwrap(), Outcome::Completed);
    send_messages(&q.sqs, &q.url, &[tx.to_json().unwrap()], 1000.0)
        .await
        .unwrap();
    burn_receives(&q, 2).await;
    // Every delete fails a few times (with the SDK's own retries spent).
    let failing = proxy.add(
        Rule::new(Fault::Error(ErrorKind::ServiceUnavailable))
            .service("sqs")
            .operation("DeleteMessage")
            .operation("DeleteMessageBatch")
            .next(6),
    );

    let consumer = Consumer::new(sqs, ledger, redrive_config(&q, 4));
    let shutdown = CancellationToken::new();
    let run = tokio::spawn({
        let consumer = consumer.clone();
        let shutdown = shutdown.clone();
        async move { consumer.run(shutdown).await }
    });
    eventually("the message is deleted", Duration::from_secs(60), || {
        let sqs = q.sqs.clone();
        let url = q.url.clone();
        async move { queue_depth(&sqs, &url).await == 0 }
    })
    .await;
    shutdown.cancel();
    run.await.unwrap();
    assert_eq!(proxy.injected(failing), 6);
    assert_eq!(consumer.metrics().processed_count("duplicate"), 1);
    assert_eq!(queue_depth(&q.sqs, &q.dlq_url).await, 0, "redriven");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transient_failure_on_the_last_receive_is_retried_in_process() {
    init_logs();
    let q = queues(3).await;
    let direct = common::ledger().await;
    let (proxy, sqs, ledger) = through_proxy(&direct).await;
    let to = account(&direct).await;
    let tx = deposit(&to);
    send_messages(&q.sqs, &q.url, &[tx.to_json().unwrap()], 1000.0)
        .await
        .unwrap();
    burn_receives(&q, 2).await;
    let outage = proxy.add(
        Rule::new(Fault::Error(ErrorKind::ProvisionedThroughputExceeded))
            .service("dynamodb")
            .next(2),
    );

    let consumer = Consumer::new(sqs, ledger, redrive_config(&q, 3));
    let shutdown = CancellationToken::new();
    let run = tokio::spawn({
        let consumer = consumer.clone();
        let shutdown = shutdown.clone();
        async move { consumer.run(shutdown).await }
    });
    eventually("the deposit is applied", Duration::from_secs(60), || {
        let ledger = direct.clone();
        let sqs = q.sqs.clone();
        let url = q.url.clone();
        async move {
            ledger
                .get_result(tx.transaction_id)
                .await
                .unwrap()
                .is_some()
                && queue_depth(&sqs, &url).await == 0
        }
    })
    .await;
    shutdown.cancel();
    run.await.unwrap();
    assert_eq!(proxy.injected(outage), 2);
    assert!(consumer.metrics().processed_count("retried") >= 2);
    assert_eq!(consumer.metrics().processed_count("completed"), 1);
    assert_eq!(queue_depth(&q.sqs, &q.dlq_url).await, 0, "redriven");
    let balance = direct.get_account(&to).await.unwrap().unwrap().balance;
    assert_eq!(balance, Decimal::new(11_234, 2));
}
