//! The DLQ rescue pass (docs/dead-letters.md, "The rescue pass") against moto: processable
//! messages that reached the DLQ are settled through the ledger exactly once and deleted,
//! poison stays (held invisible), transient failures are retried by a later pass, and two
//! rescuers at once apply each transaction once.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a failed test (clippy.toml covers only #[test] fns, not helpers)"
)]

use crate::common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::types::QueueAttributeName;
use aws_smithy_types::retry::RetryConfig;
use ballast_testbed::proxy::{ErrorKind, Fault, FaultProxy, Rule};
use ballast_worker::consumer::rescue::{RescueConfig, RescueReport, Rescuer, Verdict};
use ballast_worker::ledger::{Ledger, Outcome, ResultStatus};
use ballast_worker::observability::Metrics;
use ballast_worker::store::poison;
use ballast_worker::transaction::{
    AccountNumber, Currency, IdempotencyKey, MalformedError, Transaction, TransactionType,
};
use common::{Queues, eventually, queue_depth, queues};
use rust_decimal::Decimal;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("ballast_worker=warn")
        .try_init();
}

fn usd() -> Currency {
    Currency::from_code("USD").unwrap()
}

fn transaction(kind: TransactionType, account: &AccountNumber, cents: i64) -> Transaction {
    let id = Uuid::new_v4();
    let (source, target) = match kind {
        TransactionType::Deposit => (None, Some(account.clone())),
        _ => (Some(account.clone()), None),
    };
    Transaction {
        target_currency: None,
        transaction_id: id,
        kind,
        source_account: source,
        target_account: target,
        amount: Some(Decimal::new(cents, 2)),
        currency: usd(),
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
            usd(),
            "CHECKING",
            Decimal::new(10_000, 2),
            &ballast_worker::transaction::Subject::parse("ballast-seed").unwrap(),
        )
        .await
        .unwrap();
    number
}

async fn balance(ledger: &Ledger, account: &AccountNumber) -> Decimal {
    ledger.get_account(account).await.unwrap().unwrap().balance
}

/// Puts `body` straight into the DLQ (as SQS's redrive would) and returns its message id.
async fn into_dlq(q: &Queues, body: &str) -> String {
    q.sqs
        .send_message()
        .queue_url(&q.dlq_url)
        .message_body(body)
        .send()
        .await
        .unwrap()
        .message_id
        .unwrap()
}

fn rescuer(sqs: aws_sdk_sqs::Client, ledger: Ledger, q: &Queues, dry_run: bool) -> Rescuer {
    Rescuer::new(
        sqs,
        ledger,
        RescueConfig {
            // Long enough that a pass on a loaded machine finishes its batch within it (a
            // message seen again in the same pass is skipped, and its hold would be lost).
            visibility: Duration::from_secs(5),
            dry_run,
            ..RescueConfig::new(q.dlq_url.clone())
        },
        Arc::new(Metrics::new()),
    )
}

fn verdicts(report: &RescueReport) -> HashMap<String, Verdict> {
    report
        .messages
        .iter()
        .map(|m| (m.message_id.clone(), m.verdict))
        .collect()
}

async fn visible(q: &Queues) -> u64 {
    q.sqs
        .get_queue_attributes()
        .queue_url(&q.dlq_url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap_or_default()
        .get(&QueueAttributeName::ApproximateNumberOfMessages)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settled_and_valid_dlq_messages_are_settled_once_and_deleted_poison_stays() {
    init_logs();
    let q = queues(5).await;
    let ledger = common::ledger().await;
    let acct = account(&ledger).await;

    // Already applied by the consumer before SQS moved its copy (lost receive answers).
    let settled = transaction(TransactionType::Deposit, &acct, 1_000);
    assert_eq!(ledger.apply(&settled).await.unwrap(), Outcome::Completed);
    let settled_id = into_dlq(&q, &settled.to_json().unwrap()).await;
    // Never applied.
    let unsettled = transaction(TransactionType::Deposit, &acct, 234);
    let unsettled_id = into_dlq(&q, &unsettled.to_json().unwrap()).await;
    // More than the balance: DECLINED, no money moves.
    let too_much = transaction(TransactionType::Withdrawal, &acct, 1_000_000);
    let too_much_id = into_dlq(&q, &too_much.to_json().unwrap()).await;
    // Invalid but identified: the consumer would record REJECTED.
    let mut invalid = transaction(TransactionType::Deposit, &acct, 100);
    invalid.amount = Some(Decimal::new(-100, 2));
    let invalid_id = into_dlq(&q, &invalid.to_json().unwrap()).await;
    // Poison: malformed, and a body the consumer recorded as poison.
    let malformed_id = into_dlq(&q, "not json at all").await;
    let recorded = transaction(TransactionType::Deposit, &acct, 999);
    let recorded_id = into_dlq(&q, &recorded.to_json().unwrap()).await;
    poison::record(
        &ledger,
        &recorded_id,
        "whatever",
        &MalformedError::NotAnObject,
        3,
    )
    .await
    .unwrap();
    let opening = balance(&ledger, &acct).await;
    assert_eq!(opening, Decimal::new(11_000, 2));

    // Dry run: reports, changes nothing, releases every message.
    let dry = rescuer(q.sqs.clone(), ledger.clone(), &q, true)
        .pass(&CancellationToken::new())
        .await
        .unwrap();
    let seen = verdicts(&dry);
    assert_eq!(seen.len(), 6, "{dry:?}");
    assert_eq!(seen[&settled_id], Verdict::Settled);
    assert_eq!(seen[&unsettled_id], Verdict::WouldApply);
    assert_eq!(seen[&too_much_id], Verdict::WouldApply);
    assert_eq!(seen[&invalid_id], Verdict::WouldReject);
    assert_eq!(seen[&malformed_id], Verdict::Poison);
    assert_eq!(seen[&recorded_id], Verdict::Poison);
    assert_eq!(balance(&ledger, &acct).await, opening);
    assert!(
        ledger
            .get_result(unsettled.transaction_id)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(visible(&q).await, 6, "a dry run releases what it read");

    // The real pass.
    let rescuer = rescuer(q.sqs.clone(), ledger.clone(), &q, false);
    let report = rescuer.pass(&CancellationToken::new()).await.unwrap();
    let seen = verdicts(&report);
    assert_eq!(seen.len(), 6, "{report:?}");
    assert_eq!(seen[&settled_id], Verdict::Settled);
    assert_eq!(seen[&unsettled_id], Verdict::Completed);
    assert_eq!(seen[&too_much_id], Verdict::Declined);
    assert_eq!(seen[&invalid_id], Verdict::Rejected);
    assert_eq!(seen[&malformed_id], Verdict::Poison);
    assert_eq!(seen[&recorded_id], Verdict::Poison);
    assert_eq!(report.rescued(), 4);

    // The settled deposit did not move money again; the unsettled one moved it once.
    assert_eq!(
        balance(&ledger, &acct).await,
        opening + Decimal::new(234, 2)
    );
    let status = |id| {
        let ledger = ledger.clone();
        async move { ledger.get_result(id).await.unwrap().unwrap().status }
    };
    assert_eq!(
        status(unsettled.transaction_id).await,
        ResultStatus::Completed
    );
    assert_eq!(
        status(too_much.transaction_id).await,
        ResultStatus::Declined
    );
    assert_eq!(status(invalid.transaction_id).await, ResultStatus::Rejected);
    assert!(
        ledger
            .get_result(recorded.transaction_id)
            .await
            .unwrap()
            .is_none(),
        "a message recorded as poison is never applied"
    );

    // Only the poison stays, held invisible: the next pass does not read it again.
    assert_eq!(queue_depth(&q.sqs, &q.dlq_url).await, 2);
    assert_eq!(visible(&q).await, 0);
    let again = rescuer.pass(&CancellationToken::new()).await.unwrap();
    assert!(again.messages.is_empty(), "{again:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_rescuers_at_once_apply_each_transaction_once() {
    init_logs();
    let q = queues(5).await;
    let ledger = common::ledger().await;
    let acct = account(&ledger).await;
    let opening = balance(&ledger, &acct).await;
    let deposits: Vec<Transaction> = (0..30)
        .map(|_| transaction(TransactionType::Deposit, &acct, 101))
        .collect();
    for tx in &deposits {
        into_dlq(&q, &tx.to_json().unwrap()).await;
    }
    // A second copy of some of them: duplicates in the DLQ too.
    for tx in deposits.iter().take(5) {
        into_dlq(&q, &tx.to_json().unwrap()).await;
    }
    let metrics = Arc::new(Metrics::new());
    let make = || {
        Rescuer::new(
            q.sqs.clone(),
            ledger.clone(),
            // A 1 s visibility: the two rescuers' receives overlap on slow messages, so the
            // ledger's idempotency, not the visibility timeout, must keep money safe.
            RescueConfig {
                visibility: Duration::from_secs(1),
                ..RescueConfig::new(q.dlq_url.clone())
            },
            metrics.clone(),
        )
    };
    let (a, b) = (make(), make());
    let token = CancellationToken::new();
    let (ra, rb) = tokio::join!(a.pass(&token), b.pass(&token));
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    // Whatever is left (a lost race on a delete) goes in a later pass.
    eventually("the DLQ is empty", Duration::from_secs(30), || {
        let a = a.clone();
        let q = &q;
        async move {
            a.pass(&CancellationToken::new()).await.unwrap();
            queue_depth(&q.sqs, &q.dlq_url).await == 0
        }
    })
    .await;
    let completed = ra.count(Verdict::Completed) + rb.count(Verdict::Completed);
    assert!(completed <= 30, "{ra:?} {rb:?}");
    assert_eq!(
        balance(&ledger, &acct).await,
        opening + Decimal::new(101 * 30, 2),
        "each deposit applied exactly once"
    );
    for tx in &deposits {
        assert_eq!(
            ledger
                .get_result(tx.transaction_id)
                .await
                .unwrap()
                .unwrap()
                .status,
            ResultStatus::Completed
        );
    }
    assert!(metrics.dlq_rescued.get() >= 35, "{}", metrics.encode());
    assert_eq!(metrics.dlq_left_as_poison.get(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transient_failure_leaves_the_message_for_the_next_pass() {
    init_logs();
    let q = queues(5).await;
    let direct = common::ledger().await;
    let acct = account(&direct).await;
    let opening = balance(&direct, &acct).await;
    let tx = transaction(TransactionType::Deposit, &acct, 500);
    let message_id = into_dlq(&q, &tx.to_json().unwrap()).await;

    let moto = ballast_testbed::moto().await;
    let proxy = FaultProxy::start(&moto.endpoint(), 5).await.unwrap();
    let config = proxy.sdk_config().await;
    let dynamodb = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&config)
            .retry_config(RetryConfig::disabled())
            .build(),
    );
    let tables = direct.tables();
    let ledger = Ledger::new(dynamodb, tables.accounts, tables.transactions);
    let failed = proxy.add(
        Rule::new(Fault::Error(ErrorKind::InternalServerError))
            .service("dynamodb")
            .operation("TransactWriteItems")
            .next(1),
    );
    let rescuer = rescuer(aws_sdk_sqs::Client::new(&config), ledger, &q, false);
    let first = rescuer.pass(&CancellationToken::new()).await.unwrap();
    assert_eq!(proxy.injected(failed), 1);
    assert_eq!(verdicts(&first)[&message_id], Verdict::Transient);
    assert_eq!(balance(&direct, &acct).await, opening);
    assert_eq!(queue_depth(&q.sqs, &q.dlq_url).await, 1, "left in the DLQ");

    // Visible again after the pass's 5 s visibility; a later pass applies it.
    let later = Arc::new(std::sync::Mutex::new(Vec::new()));
    eventually("a later pass applies it", Duration::from_secs(20), || {
        let rescuer = rescuer.clone();
        let later = later.clone();
        async move {
            let report = rescuer.pass(&CancellationToken::new()).await.unwrap();
            let mut later = later.lock().unwrap();
            later.extend(report.messages);
            !later.is_empty()
        }
    })
    .await;
    let later = later.lock().unwrap().clone();
    assert_eq!(later[0].verdict, Verdict::Completed, "{later:?}");
    assert_eq!(
        balance(&direct, &acct).await,
        opening + Decimal::new(500, 2)
    );
    assert_eq!(queue_depth(&q.sqs, &q.dlq_url).await, 0);
}
