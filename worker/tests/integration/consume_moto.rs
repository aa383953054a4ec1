//! The consumer against moto: exactly-once under concurrency and duplicates, crash/restart,
//! poison messages.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a failed test (clippy.toml covers only #[test] fns, not helpers)"
)]

use crate::common;
use crate::common::{dec, init_logs, usd};

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::types::MessageAttributeValue;
use ballast_worker::commands::consume::Clients;
use ballast_worker::consumer::{
    Consumer, ConsumerConfig, PARSE_ERROR_ATTRIBUTE, SOURCE_MESSAGE_ID_ATTRIBUTE,
};
use ballast_worker::generate::send_messages;
use ballast_worker::ledger::{Direction, Ledger, ResultStatus};
use ballast_worker::observability::Metrics;
use ballast_worker::transaction::{AccountNumber, IdempotencyKey, Transaction, TransactionType};
use common::{config, eventually, queue_depth, queues};
use rand::Rng;
use rand::seq::SliceRandom;
use rust_decimal::Decimal;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

async fn hot_accounts(ledger: &Ledger, n: usize, balance: &str) -> Vec<AccountNumber> {
    let mut out = Vec::new();
    for i in 0..n {
        let number = AccountNumber::parse(&format!("55500000{i:02}")).unwrap();
        ledger
            .create_account(&number, usd(), "CHECKING", dec(balance), &owner())
            .await
            .unwrap();
        out.push(number);
    }
    out
}

fn transfer(accounts: &[AccountNumber], rng: &mut impl Rng) -> Transaction {
    let a = rng.random_range(0..accounts.len());
    let b = (a + rng.random_range(1..accounts.len())) % accounts.len();
    let id = Uuid::new_v4();
    Transaction {
        target_currency: None,
        transaction_id: id,
        kind: TransactionType::Transfer,
        source_account: Some(accounts[a].clone()),
        target_account: Some(accounts[b].clone()),
        amount: Some(Decimal::new(rng.random_range(1..=2500), 2)),
        currency: usd(),
        timestamp: OffsetDateTime::now_utc().replace_nanosecond(0).unwrap(),
        idempotency_key: IdempotencyKey::parse(&format!("k-{id}")).unwrap(),
        principal: None,
    }
}

async fn total_balance(ledger: &Ledger, accounts: &[AccountNumber]) -> Decimal {
    let mut total = Decimal::ZERO;
    for a in accounts {
        let account = ledger.get_account(a).await.unwrap().unwrap();
        assert!(account.balance >= Decimal::ZERO, "{a} overdrawn");
        total += account.balance;
    }
    total
}

/// Every ledger entry of the accounts, by transaction id: (debits, credits), and checks that
/// entries sum to each balance.
async fn entries(ledger: &Ledger, accounts: &[AccountNumber]) -> HashMap<Uuid, (u32, u32)> {
    let mut by_tx: HashMap<Uuid, (u32, u32)> = HashMap::new();
    for a in accounts {
        let mut cursor = None;
        let mut sum = Decimal::ZERO;
        loop {
            let page = ledger
                .history(
                    a,
                    OffsetDateTime::UNIX_EPOCH,
                    OffsetDateTime::now_utc() + time::Duration::hours(1),
                    1000,
                    cursor.as_deref(),
                )
                .await
                .unwrap();
            for e in &page.entries {
                let slot = by_tx.entry(e.transaction_id).or_default();
                match e.direction {
                    Direction::Debit => {
                        slot.0 += 1;
                        sum -= e.amount;
                    }
                    Direction::Credit => {
                        slot.1 += 1;
                        sum += e.amount;
                    }
                }
            }
            cursor = page.next_cursor;
            if cursor.is_none() {
                break;
            }
        }
        let balance = ledger.get_account(a).await.unwrap().unwrap().balance;
        assert_eq!(sum, balance, "entries of {a} do not add up to its balance");
    }
    by_tx
}

/// Checks exactly-once: every transfer has one result; completed ones exactly one debit and
/// one credit entry, declined ones none.
async fn assert_exactly_once(ledger: &Ledger, accounts: &[AccountNumber], txs: &[Transaction]) {
    let by_tx = entries(ledger, accounts).await;
    let mut completed = 0;
    for tx in txs {
        let result = ledger
            .get_result(tx.transaction_id)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("no result for {}", tx.transaction_id));
        let posted = by_tx.get(&tx.transaction_id).copied().unwrap_or((0, 0));
        match result.status {
            ResultStatus::Completed => {
                completed += 1;
                assert_eq!(posted, (1, 1), "{} posted {posted:?}", tx.transaction_id);
            }
            ResultStatus::Declined => assert_eq!(posted, (0, 0)),
            other => panic!("unexpected status {other:?}"),
        }
    }
    // Opening balances are single credits; nothing else posted.
    let transfers: HashSet<Uuid> = txs.iter().map(|t| t.transaction_id).collect();
    let stray = by_tx
        .iter()
        .filter(|(id, posted)| !transfers.contains(id) && **posted != (0, 1))
        .count();
    assert_eq!(stray, 0);
    assert!(completed > 0);
}

/// Transfers among four hot accounts, all in the queue at once (plus a tenth resent as
/// duplicates, shuffled in). The testbed's moto handles one DynamoDB request at a time (its
/// DynamoDB is not thread-safe), so this is bounded by moto's speed, not the worker's.
const TRANSFERS: usize = 3000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_transfers_with_duplicates_conserve_money_exactly() {
    init_logs();
    let q = queues(5).await;
    let ledger = common::ledger().await;
    let accounts = hot_accounts(&ledger, 4, "500.00").await;
    let before = total_balance(&ledger, &accounts).await;

    let mut rng = rand::rng();
    let txs: Vec<Transaction> = (0..TRANSFERS)
        .map(|_| transfer(&accounts, &mut rng))
        .collect();
    let mut bodies: Vec<String> = txs.iter().map(|t| t.to_json().unwrap()).collect();
    let duplicates: Vec<String> = (0..TRANSFERS / 10)
        .map(|_| bodies[rng.random_range(0..bodies.len())].clone())
        .collect();
    bodies.extend(duplicates);
    bodies.shuffle(&mut rng);
    let sent = send_messages(&q.sqs, &q.url, &bodies, 1_000_000.0)
        .await
        .unwrap();
    assert_eq!(sent, bodies.len());

    // Without the worker's memory of settled keys: the ledger alone must refuse duplicates.
    let no_memory = ConsumerConfig {
        recent_keys: 0,
        ..config(&q, 5)
    };
    let consumer = Consumer::new(q.sqs.clone(), ledger.clone(), no_memory);
    let shutdown = CancellationToken::new();
    let run = tokio::spawn({
        let consumer = consumer.clone();
        let shutdown = shutdown.clone();
        async move { consumer.run(shutdown).await }
    });
    let metrics = consumer.metrics().clone();
    let total = bodies.len() as u64;
    eventually("all messages processed", Duration::from_secs(600), || {
        let m = metrics.clone();
        async move {
            ["completed", "declined", "duplicate"]
                .iter()
                .map(|o| m.processed_count(o))
                .sum::<u64>()
                >= total
        }
    })
    .await;
    eventually("queue drained", Duration::from_secs(90), || {
        let sqs = q.sqs.clone();
        let url = q.url.clone();
        async move { queue_depth(&sqs, &url).await == 0 }
    })
    .await;
    shutdown.cancel();
    run.await.unwrap();

    assert!(metrics.processed_count("duplicate") >= TRANSFERS as u64 / 10);
    assert_eq!(total_balance(&ledger, &accounts).await, before);
    assert_exactly_once(&ledger, &accounts, &txs).await;
}

fn transact_writes(metrics: &Metrics) -> u64 {
    metrics
        .aws_request_counts()
        .into_iter()
        .filter(|(op, _)| op.ends_with("TransactWriteItems"))
        .map(|(_, n)| n)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_of_settled_transactions_are_deleted_without_a_ledger_write() {
    init_logs();
    let q = queues(5).await;
    let sdk = ballast_testbed::moto().await.sdk_config().await;
    let metrics = Arc::new(Metrics::new());
    let clients = Clients::new(&sdk, &metrics);
    let (accounts_table, transactions_table) = common::tables(&clients.dynamodb).await;
    let ledger = Ledger::new(clients.dynamodb.clone(), accounts_table, transactions_table);
    let accounts = hot_accounts(&ledger, 2, "100.00").await;
    let before = total_balance(&ledger, &accounts).await;
    let mut rng = rand::rng();
    let txs: Vec<Transaction> = (0..10).map(|_| transfer(&accounts, &mut rng)).collect();
    let bodies: Vec<String> = txs.iter().map(|t| t.to_json().unwrap()).collect();

    let consumer = Consumer::with_parts(
        q.sqs.clone(),
        ledger.clone(),
        config(&q, 5),
        metrics.clone(),
        Arc::new(ballast_worker::breaker::Breaker::new(Default::default())),
    );
    let shutdown = CancellationToken::new();
    let run = tokio::spawn({
        let consumer = consumer.clone();
        let shutdown = shutdown.clone();
        async move { consumer.run(shutdown).await }
    });
    send_messages(&q.sqs, &q.url, &bodies, 1_000_000.0)
        .await
        .unwrap();
    eventually("first copies settled", Duration::from_secs(60), || {
        let m = metrics.clone();
        async move { m.processed_count("completed") + m.processed_count("declined") >= 10 }
    })
    .await;
    let writes = transact_writes(&metrics);

    send_messages(&q.sqs, &q.url, &bodies, 1_000_000.0)
        .await
        .unwrap();
    eventually("second copies deleted", Duration::from_secs(60), || {
        let m = metrics.clone();
        async move { m.processed_count("duplicate") >= 10 }
    })
    .await;
    eventually("queue drained", Duration::from_secs(30), || {
        let sqs = q.sqs.clone();
        let url = q.url.clone();
        async move { queue_depth(&sqs, &url).await == 0 }
    })
    .await;
    assert_eq!(
        transact_writes(&metrics),
        writes,
        "a duplicate reached the ledger"
    );
    // Another transaction reusing a settled key is no duplicate of it: it reaches the ledger
    // and gets a REJECTED result of its own instead of being deleted without one.
    let mut reuse = txs[0].clone();
    reuse.transaction_id = Uuid::new_v4();
    send_messages(&q.sqs, &q.url, &[reuse.to_json().unwrap()], 1_000_000.0)
        .await
        .unwrap();
    eventually("the key reuser's result", Duration::from_secs(60), || {
        let ledger = ledger.clone();
        async move {
            ledger
                .get_result(reuse.transaction_id)
                .await
                .unwrap()
                .is_some_and(|r| r.status == ResultStatus::Rejected)
        }
    })
    .await;
    shutdown.cancel();
    run.await.unwrap();

    assert_eq!(total_balance(&ledger, &accounts).await, before);
    assert_exactly_once(&ledger, &accounts, &txs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_worker_mid_batch_loses_nothing_and_applies_nothing_twice() {
    init_logs();
    let q = queues(2).await;
    let ledger = common::ledger().await;
    let accounts = hot_accounts(&ledger, 3, "300.00").await;
    let before = total_balance(&ledger, &accounts).await;
    let mut rng = rand::rng();
    let txs: Vec<Transaction> = (0..80).map(|_| transfer(&accounts, &mut rng)).collect();
    let bodies: Vec<String> = txs.iter().map(|t| t.to_json().unwrap()).collect();
    send_messages(&q.sqs, &q.url, &bodies, 1_000_000.0)
        .await
        .unwrap();

    // First worker: abort it abruptly while messages are in flight.
    let small = |q: &common::Queues| ballast_worker::consumer::ConsumerConfig {
        concurrency: 8,
        ..config(q, 2)
    };
    let first = Consumer::new(q.sqs.clone(), ledger.clone(), small(&q));
    let task = tokio::spawn({
        let first = first.clone();
        async move { first.run(CancellationToken::new()).await }
    });
    let m = first.metrics().clone();
    eventually("some progress", Duration::from_secs(60), || {
        let m = m.clone();
        async move { m.processed_count("completed") + m.processed_count("declined") >= 30 }
    })
    .await;
    let mut in_flight = first.activity();
    eventually("messages in flight", Duration::from_secs(10), || {
        let n = *in_flight.borrow_and_update();
        async move { n > 0 }
    })
    .await;
    task.abort();
    let _ = task.await;

    // Second worker picks up the rest, including redeliveries of the interrupted ones.
    let second = Consumer::new(q.sqs.clone(), ledger.clone(), small(&q));
    let shutdown = CancellationToken::new();
    let run = tokio::spawn({
        let second = second.clone();
        let shutdown = shutdown.clone();
        async move { second.run(shutdown).await }
    });
    eventually(
        "every transaction has a result",
        Duration::from_secs(240),
        || {
            let ledger = ledger.clone();
            let ids: Vec<Uuid> = txs.iter().map(|t| t.transaction_id).collect();
            async move {
                for id in ids.iter().rev() {
                    if ledger.get_result(*id).await.unwrap().is_none() {
                        return false;
                    }
                }
                true
            }
        },
    )
    .await;
    eventually("queue drained", Duration::from_secs(90), || {
        let sqs = q.sqs.clone();
        let url = q.url.clone();
        async move { queue_depth(&sqs, &url).await == 0 }
    })
    .await;
    shutdown.cancel();
    run.await.unwrap();
    assert_eq!(
        queue_depth(&q.sqs, &q.dlq_url).await,
        0,
        "nothing dead-lettered"
    );
    assert_eq!(total_balance(&ledger, &accounts).await, before);
    assert_exactly_once(&ledger, &accounts, &txs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_messages_land_in_the_dlq_with_the_parse_error() {
    let q = queues(5).await;
    let ledger = common::ledger().await;
    let accounts = hot_accounts(&ledger, 2, "10.00").await;
    let mut rng = rand::rng();
    let good = transfer(&accounts, &mut rng);
    let poison = ["not json at all", "{\"type\":\"TRANSFER\"}", "[1,2,3]"];
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

    let consumer = Consumer::new(q.sqs.clone(), ledger.clone(), config(&q, 5));
    let shutdown = CancellationToken::new();
    let run = tokio::spawn({
        let consumer = consumer.clone();
        let shutdown = shutdown.clone();
        async move { consumer.run(shutdown).await }
    });
    let m = consumer.metrics().clone();
    eventually("all four handled", Duration::from_secs(30), || {
        let m = m.clone();
        async move {
            m.processed_count("dead_lettered") == 3
                && m.processed_count("completed") + m.processed_count("declined") == 1
        }
    })
    .await;
    eventually("main queue empty", Duration::from_secs(30), || {
        let sqs = q.sqs.clone();
        let url = q.url.clone();
        async move { queue_depth(&sqs, &url).await == 0 }
    })
    .await;
    shutdown.cancel();
    run.await.unwrap();

    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while seen.len() < 3 && std::time::Instant::now() < deadline {
        let out = q
            .sqs
            .receive_message()
            .queue_url(&q.dlq_url)
            .max_number_of_messages(10)
            .message_attribute_names("All")
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        seen.extend(out.messages.unwrap_or_default());
    }
    assert_eq!(seen.len(), 3);
    let attr = |m: &aws_sdk_sqs::types::Message, name: &str| {
        m.message_attributes()
            .and_then(|a| a.get(name))
            .and_then(MessageAttributeValue::string_value)
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("attribute {name} missing"))
    };
    let mut bodies = HashSet::new();
    for m in &seen {
        bodies.insert(m.body().unwrap().to_owned());
        assert!(ids.contains(&attr(m, SOURCE_MESSAGE_ID_ATTRIBUTE)));
        let error = attr(m, PARSE_ERROR_ATTRIBUTE);
        assert!(
            ["malformed_json", "missing_transaction_id", "not_an_object"]
                .iter()
                .any(|code| error.starts_with(code)),
            "{error}"
        );
    }
    assert_eq!(bodies, poison.iter().map(|s| s.to_string()).collect());
    assert!(
        ledger
            .get_result(good.transaction_id)
            .await
            .unwrap()
            .is_some()
    );
}

fn owner() -> ballast_worker::transaction::Subject {
    ballast_worker::transaction::Subject::parse("seed").unwrap()
}
