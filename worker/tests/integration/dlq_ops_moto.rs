//! `ballast-worker dlq list|show|redrive|purge` against moto (docs/dead-letters.md, "Operating
//! the DLQ"): listing shows the reason the worker recorded and releases every message, a
//! redriven transaction is applied exactly once by a consumer (a redriven duplicate moves
//! nothing), poison is refused unless asked for, and purge never runs unconfirmed.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a failed test (clippy.toml covers only #[test] fns, not helpers)"
)]

use crate::common::{self, Queues, eventually, init_logs, queue_depth, queues, usd};

use std::collections::HashMap;
use std::process::Stdio;
use std::time::Duration;

use aws_sdk_sqs::types::MessageAttributeValue;
use ballast_worker::consumer::{Consumer, PARSE_ERROR_ATTRIBUTE};
use ballast_worker::dlq::{DeadLetterQueue, Reason, RedriveOutcome, Selection};
use ballast_worker::ledger::{Ledger, Outcome, ResultStatus};
use ballast_worker::store::poison;
use ballast_worker::transaction::{
    AccountNumber, IdempotencyKey, MalformedError, Subject, Transaction, TransactionType,
};
use rust_decimal::Decimal;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

fn transfer(from: &AccountNumber, to: &AccountNumber, cents: i64) -> Transaction {
    let id = Uuid::new_v4();
    Transaction {
        target_currency: None,
        transaction_id: id,
        kind: TransactionType::Transfer,
        source_account: Some(from.clone()),
        target_account: Some(to.clone()),
        amount: Some(Decimal::new(cents, 2)),
        currency: usd(),
        timestamp: OffsetDateTime::now_utc().replace_nanosecond(0).unwrap(),
        idempotency_key: IdempotencyKey::parse(&format!("k-{id}")).unwrap(),
        principal: None,
    }
}

async fn account(ledger: &Ledger) -> AccountNumber {
    let number =
        AccountNumber::parse(&format!("6{:011}", rand::random_range(0..10u64.pow(11)))).unwrap();
    ledger
        .create_account(
            &number,
            usd(),
            "CHECKING",
            Decimal::new(10_000, 2),
            &Subject::parse("ballast-seed").unwrap(),
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

fn dlq(q: &Queues, ledger: &Ledger) -> DeadLetterQueue {
    DeadLetterQueue::new(q.sqs.clone(), ledger.clone(), &q.dlq_url, &q.url)
}

/// Visible messages only: a listing that failed to release would leave them in flight.
async fn visible(q: &Queues, url: &str) -> u64 {
    use aws_sdk_sqs::types::QueueAttributeName;
    q.sqs
        .get_queue_attributes()
        .queue_url(url)
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

fn worker_dlq(q: &Queues, ledger: &Ledger, args: &[&str]) -> tokio::process::Command {
    let tables = ledger.tables();
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_ballast-worker"));
    command
        .arg("dlq")
        .args(args)
        .args([
            "--endpoint-url",
            &ballast_testbed::MotoServer::shared().endpoint(),
        ])
        .args(["--queue-url", &q.url, "--dlq-url", &q.dlq_url])
        .args(["--accounts-table-name", tables.accounts])
        .args(["--transactions-table-name", tables.transactions])
        .envs(ballast_testbed::child_env())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_shows_each_message_with_the_reason_the_worker_recorded() {
    init_logs();
    let q = queues(5).await;
    let ledger = common::ledger().await;
    let (a, b) = (account(&ledger).await, account(&ledger).await);

    let valid = transfer(&a, &b, 100);
    let valid_id = into_dlq(&q, &valid.to_json().unwrap()).await;
    // The consumer recorded POISON# for this message id (the redrive path).
    let recorded_id = into_dlq(&q, "{\"transaction_id\": 7}").await;
    poison::record(
        &ledger,
        &recorded_id,
        "{\"transaction_id\": 7}",
        &MalformedError::InvalidTransactionId("7".to_owned()),
        3,
    )
    .await
    .unwrap();
    // The consumer copied this one itself (a queue without a redrive policy).
    let copied_id = q
        .sqs
        .send_message()
        .queue_url(&q.dlq_url)
        .message_body("[1, 2]")
        .message_attributes(
            PARSE_ERROR_ATTRIBUTE,
            MessageAttributeValue::builder()
                .data_type("String")
                .string_value("not_an_object: the message is JSON but not an object")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap()
        .message_id
        .unwrap();
    // Identified but invalid, nothing recorded: the reason is what parsing says now.
    let mut invalid = transfer(&a, &b, 100);
    invalid.amount = Some(Decimal::new(-100, 2));
    let invalid_id = into_dlq(&q, &invalid.to_json().unwrap()).await;

    let letters = dlq(&q, &ledger).list().await.unwrap();
    let by_id: HashMap<_, _> = letters.iter().map(|l| (l.message_id.clone(), l)).collect();
    assert_eq!(by_id.len(), 4, "{letters:#?}");

    let v = by_id[&valid_id];
    assert_eq!(v.transaction_id, Some(valid.transaction_id));
    assert_eq!(v.reason, None);
    assert!(!v.poison);
    assert!(v.receive_count >= 1);
    assert!(
        v.age_seconds.is_some_and(|s| (0..600).contains(&s)),
        "{v:?}"
    );

    let r = by_id[&recorded_id];
    assert!(r.poison);
    assert_eq!(r.transaction_id, None);
    match &r.reason {
        Some(Reason::PoisonRecord(record)) => {
            assert_eq!(record.reason_code, "invalid_transaction_id");
            assert_eq!(record.receive_count, Some(3));
            assert_eq!(
                record.body_sha256.as_deref(),
                Some(poison::body_sha256("{\"transaction_id\": 7}").as_str())
            );
        }
        other => panic!("expected the POISON# record, got {other:?}"),
    }

    let c = by_id[&copied_id];
    assert!(c.poison);
    assert_eq!(
        c.reason,
        Some(Reason::ParseErrorAttribute {
            text: "not_an_object: the message is JSON but not an object".to_owned()
        })
    );

    let i = by_id[&invalid_id];
    assert!(!i.poison, "an identified message is not poison");
    assert_eq!(i.transaction_id, Some(invalid.transaction_id));
    assert!(
        matches!(&i.reason, Some(Reason::Parsed { code, .. }) if code == "amount_not_positive"),
        "{:?}",
        i.reason
    );

    // Listing released everything it read.
    assert_eq!(visible(&q, &q.dlq_url).await, 4);

    // The binary: text names the reasons, JSON has one object per message, show prints one.
    let out = worker_dlq(&q, &ledger, &["list"]).output().await.unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("invalid_transaction_id (recorded)"), "{text}");
    assert!(
        text.contains("not_an_object: the message is JSON but not an object (attribute)"),
        "{text}"
    );
    assert!(text.contains(&valid.transaction_id.to_string()), "{text}");
    assert!(text.contains("4 messages"), "{text}");

    let out = worker_dlq(&q, &ledger, &["list", "--output", "json"])
        .output()
        .await
        .unwrap();
    assert!(out.status.success());
    let objects: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(objects.len(), 4);
    let recorded = objects
        .iter()
        .find(|o| o["message_id"] == recorded_id.as_str())
        .unwrap();
    assert_eq!(recorded["reason"]["source"], "poison_record");
    assert_eq!(recorded["reason"]["reason_code"], "invalid_transaction_id");
    assert_eq!(recorded["poison"], true);

    let out = worker_dlq(&q, &ledger, &["show", &valid_id])
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(&format!("message id:     {valid_id}")),
        "{text}"
    );
    // Pretty-printed body: one member per line.
    assert!(text.contains("\n  \"transaction_id\": "), "{text}");

    let out = worker_dlq(&q, &ledger, &["show", "no-such-message"])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is not in the dead-letter queue"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(visible(&q, &q.dlq_url).await, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redriven_transactions_are_applied_once_and_poison_stays_unless_asked_for() {
    init_logs();
    let q = queues(5).await;
    let ledger = common::ledger().await;
    let (a, b) = (account(&ledger).await, account(&ledger).await);

    // Never applied, and in the DLQ twice (a former redrive whose delete was lost).
    let pending = transfer(&a, &b, 1_000);
    let pending_body = pending.to_json().unwrap();
    into_dlq(&q, &pending_body).await;
    into_dlq(&q, &pending_body).await;
    // Already applied before SQS moved its copy: redriving it must move nothing.
    let settled = transfer(&a, &b, 500);
    assert_eq!(ledger.apply(&settled).await.unwrap(), Outcome::Completed);
    into_dlq(&q, &settled.to_json().unwrap()).await;
    let poison_id = into_dlq(&q, "not json at all").await;
    let total_before = balance(&ledger, &a).await + balance(&ledger, &b).await;
    assert_eq!(balance(&ledger, &a).await, Decimal::new(9_500, 2));

    let lines = dlq(&q, &ledger)
        .redrive(&Selection::All, false)
        .await
        .unwrap();
    let outcomes: Vec<(&str, Option<Uuid>)> = lines
        .iter()
        .map(|l| (l.outcome.label(), l.transaction_id))
        .collect();
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert_eq!(
        outcomes.iter().filter(|(o, _)| *o == "redriven").count(),
        3,
        "{lines:?}"
    );
    let refused = lines.iter().find(|l| l.message_id == poison_id).unwrap();
    assert!(matches!(refused.outcome, RedriveOutcome::RefusedPoison));
    assert_eq!(queue_depth(&q.sqs, &q.url).await, 3);
    assert_eq!(
        queue_depth(&q.sqs, &q.dlq_url).await,
        1,
        "only the poison stays"
    );
    assert_eq!(
        visible(&q, &q.dlq_url).await,
        1,
        "the refused poison is released"
    );

    // A consumer drains the main queue: the pending transfer is applied once (its second
    // copy is a duplicate), the settled one moves nothing.
    let consumer = Consumer::new(q.sqs.clone(), ledger.clone(), common::config(&q, 5));
    let shutdown = CancellationToken::new();
    let run = tokio::spawn({
        let shutdown = shutdown.clone();
        async move { consumer.run(shutdown).await }
    });
    eventually("the main queue drained", Duration::from_secs(60), || {
        let sqs = q.sqs.clone();
        let url = q.url.clone();
        async move { queue_depth(&sqs, &url).await == 0 }
    })
    .await;
    shutdown.cancel();
    run.await.unwrap();

    let result = ledger
        .get_result(pending.transaction_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(result.status, ResultStatus::Completed);
    assert_eq!(
        balance(&ledger, &a).await,
        Decimal::new(8_500, 2),
        "10.00 moved once"
    );
    assert_eq!(balance(&ledger, &b).await, Decimal::new(11_500, 2));
    assert_eq!(
        balance(&ledger, &a).await + balance(&ledger, &b).await,
        total_before,
        "money conserved"
    );

    // Poison by id: refused (failure) without --include-poison, moved with it.
    let lines = dlq(&q, &ledger)
        .redrive(
            &Selection::Ids(vec![poison_id.clone(), "gone".to_owned()]),
            false,
        )
        .await
        .unwrap();
    let labels: HashMap<_, _> = lines
        .iter()
        .map(|l| (l.message_id.clone(), l.outcome.label()))
        .collect();
    assert_eq!(labels[&poison_id], "refused_poison");
    assert_eq!(labels["gone"], "not_found");
    assert_eq!(queue_depth(&q.sqs, &q.url).await, 0);
    let lines = dlq(&q, &ledger)
        .redrive(&Selection::Ids(vec![poison_id.clone()]), true)
        .await
        .unwrap();
    assert!(
        matches!(lines[0].outcome, RedriveOutcome::Redriven),
        "{lines:?}"
    );
    assert_eq!(queue_depth(&q.sqs, &q.dlq_url).await, 0);
    let bodies = common::drain_queue(&q.sqs, &q.url).await;
    assert_eq!(
        bodies,
        vec!["not json at all".to_owned()],
        "the body is sent unchanged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_without_yes_and_without_a_terminal_changes_nothing() {
    init_logs();
    let q = queues(5).await;
    let ledger = common::ledger().await;
    for body in ["one", "two", "three"] {
        into_dlq(&q, body).await;
    }

    let out = worker_dlq(&q, &ledger, &["purge"]).output().await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("refusing to purge"), "{stderr}");
    assert!(stderr.contains("--yes"), "{stderr}");
    assert_eq!(queue_depth(&q.sqs, &q.dlq_url).await, 3, "nothing deleted");
    assert_eq!(visible(&q, &q.dlq_url).await, 3, "nothing even received");

    let out = worker_dlq(&q, &ledger, &["purge", "--yes", "--output", "json"])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(summary["deleted"], 3);
    assert_eq!(queue_depth(&q.sqs, &q.dlq_url).await, 0);
    // Twice within 60 s works too (PurgeQueue would be refused).
    into_dlq(&q, "four").await;
    let out = worker_dlq(&q, &ledger, &["purge", "--yes"])
        .output()
        .await
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("purged 1 messages"));
    assert_eq!(queue_depth(&q.sqs, &q.dlq_url).await, 0);
}
