//! Risk rules and holds against moto: velocity bursts, holds approved and applied exactly once
//! through `/v1/reviews`, four eyes, approval-time balance checks, racing workers on one
//! account's velocity window, money conserved throughout.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a failed test (clippy.toml covers only #[test] fns, not helpers)"
)]

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use ballast_testbed::fixtures::{Gsi, ledger_tables_with_indexes};
use ballast_worker::api::{ApiConfig, SystemClock};
use ballast_worker::ledger::{DeclineReason, Ledger, Outcome, ResultStatus};
use ballast_worker::report::report;
use ballast_worker::risk::{self, REVIEWS_PENDING_INDEX, ReviewStatus};
use ballast_worker::store::audit::{AUDIT_PRINCIPAL_INDEX, AUDIT_TIME_INDEX};
use ballast_worker::store::reviews;
use ballast_worker::transaction::{AccountNumber, Subject, Transaction, parse_transaction};
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::common::api::{Parts, call, queue, token};
use crate::common::{dec, dynamodb, usd};

const RULES: &str = "\
apiVersion: ballast.dev/v1
kind: RiskRules
thresholds: { hold: 50, decline: 100 }
amount:
  - { name: large-usd, currency: USD, above: 1000, score: 60 }
velocity:
  - { name: burst, window: 10m, maxCount: 3, score: 50 }
denyList:
  - { name: sanctioned, accounts: [\"9999999999\"], score: 100 }
";

const OPERATOR_SCOPES: &str =
    "accounts:read accounts:write transactions:read transactions:write accounts:admin";

fn acct(s: &str) -> AccountNumber {
    AccountNumber::parse(s).unwrap()
}

fn subject(s: &str) -> Subject {
    Subject::parse(s).unwrap()
}

/// A ledger over fresh tables (with the pending-reviews index) scoring with [`RULES`].
async fn risky_ledger() -> Ledger {
    let client = dynamodb().await;
    let (accounts, transactions) = ledger_tables_with_indexes(
        &client,
        "risk",
        &[
            Gsi {
                name: REVIEWS_PENDING_INDEX,
                hash: "review_queue",
                range: "review_sk",
            },
            Gsi {
                name: AUDIT_TIME_INDEX,
                hash: "audit_day",
                range: "audit_sk",
            },
            Gsi {
                name: AUDIT_PRINCIPAL_INDEX,
                hash: "audit_principal",
                range: "audit_sk",
            },
        ],
    )
    .await;
    let rules = risk::rules::parse("rules.yaml", RULES).unwrap();
    Ledger::new(client, accounts, transactions).with_risk(Arc::new(rules))
}

fn transfer(source: &str, target: &str, amount: &str, principal: Option<&str>) -> Transaction {
    let principal = principal
        .map(|p| format!(r#","principal":"{p}""#))
        .unwrap_or_default();
    let id = Uuid::now_v7();
    parse_transaction(
        format!(
            r#"{{"transaction_id":"{id}","type":"TRANSFER","source_account":"{source}",
            "target_account":"{target}","amount":"{amount}","currency":"USD",
            "timestamp":"2024-01-15T10:30:00Z","idempotency_key":"k-{id}"{principal}}}"#
        )
        .as_bytes(),
    )
    .unwrap()
}

async fn open(ledger: &Ledger, account: &str, balance: &str, owner: &str) {
    ledger
        .create_account(
            &acct(account),
            usd(),
            "CHECKING",
            dec(balance),
            &subject(owner),
        )
        .await
        .unwrap();
}

async fn balance(ledger: &Ledger, account: &str) -> Decimal {
    ledger
        .get_account(&acct(account))
        .await
        .unwrap()
        .unwrap()
        .balance
}

/// The report's conservation check, and the total held in the accounts.
async fn conserved(ledger: &Ledger, total: &str) {
    let tables = ledger.tables();
    let r = report(ledger.client(), tables.accounts, tables.transactions)
        .await
        .unwrap();
    assert!(r.money_conserved(), "{r:?}");
    assert_eq!(r.balances["USD"], dec(total), "{r:?}");
}

async fn item(ledger: &Ledger, pk: String) -> Option<ballast_worker::ledger::Item> {
    ledger
        .client()
        .get_item()
        .table_name(ledger.tables().transactions)
        .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(pk))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
}

fn n(item: &ballast_worker::ledger::Item, name: &str) -> String {
    item[name].as_n().unwrap().clone()
}

#[tokio::test]
async fn a_burst_from_one_account_trips_velocity_and_is_held() {
    let l = risky_ledger().await;
    open(&l, "1111111111", "100.00", "alice").await;
    open(&l, "2222222222", "0", "bob").await;
    let mut outcomes = Vec::new();
    let mut burst = Vec::new();
    for _ in 0..5 {
        let tx = transfer("1111111111", "2222222222", "1.00", None);
        outcomes.push(l.apply(&tx).await.unwrap());
        burst.push(tx);
    }
    assert_eq!(
        outcomes,
        [
            Outcome::Completed,
            Outcome::Completed,
            Outcome::Completed,
            Outcome::Held,
            Outcome::Held
        ]
    );
    // Held money does not move.
    assert_eq!(balance(&l, "1111111111").await, dec("97.00"));
    assert_eq!(balance(&l, "2222222222").await, dec("3.00"));
    let held = l
        .get_result(burst[3].transaction_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(held.status, ResultStatus::Held);
    assert_eq!(held.reason_code.as_deref(), Some("RISK_REVIEW"));
    // Every decision has its analysis; holds their alert and review.
    let analysis = item(&l, format!("ANALYSIS#{}", burst[3].transaction_id))
        .await
        .unwrap();
    assert_eq!(n(&analysis, "risk_score"), "50");
    assert_eq!(analysis["decision"].as_s().unwrap(), "hold");
    let fired = analysis["rules"].as_l().unwrap();
    assert_eq!(fired[0].as_m().unwrap()["name"].as_s().unwrap(), "burst");
    assert!(
        item(&l, format!("ANALYSIS#{}", burst[0].transaction_id))
            .await
            .is_some()
    );
    assert!(
        item(&l, format!("ALERT#{}", burst[0].transaction_id))
            .await
            .is_none()
    );
    let alert = item(&l, format!("ALERT#{}", burst[3].transaction_id))
        .await
        .unwrap();
    assert_eq!(alert["type_id"].as_s().unwrap(), "RISK_HOLD");
    assert_eq!(
        alert["user_id"].as_s().unwrap(),
        "alice",
        "the source account's owner"
    );
    // The velocity item counted all five (holds included) in five versions.
    let velocity = item(&l, "VELOCITY#1111111111".into()).await.unwrap();
    assert_eq!(
        (n(&velocity, "version"), n(&velocity, "lifetime_count")),
        ("5".into(), "5".into())
    );
    // A redelivery of a held message changes nothing.
    assert_eq!(l.apply(&burst[3]).await.unwrap(), Outcome::Duplicate);
    let pending = reviews::pending(&l, 10, None).await.unwrap();
    assert_eq!(pending.reviews.len(), 2);
    assert_eq!(pending.reviews[0].transaction, burst[3]);
    conserved(&l, "100.00").await;
}

#[tokio::test]
async fn a_denied_account_is_declined_with_its_analysis_and_alert() {
    let l = risky_ledger().await;
    open(&l, "1111111111", "100.00", "alice").await;
    open(&l, "9999999999", "0", "mallory").await;
    let tx = transfer("1111111111", "9999999999", "5.00", Some("alice"));
    assert_eq!(
        l.apply(&tx).await.unwrap(),
        Outcome::Declined(DeclineReason::RiskDeclined { score: 100 })
    );
    let result = l.get_result(tx.transaction_id).await.unwrap().unwrap();
    assert_eq!(
        (result.status, result.reason_code.as_deref()),
        (ResultStatus::Declined, Some("RISK_DECLINED"))
    );
    let alert = item(&l, format!("ALERT#{}", tx.transaction_id))
        .await
        .unwrap();
    assert_eq!(alert["type_id"].as_s().unwrap(), "RISK_DECLINE");
    assert_eq!(
        alert["user_id"].as_s().unwrap(),
        "alice",
        "the message's principal"
    );
    // A decline is not counted as velocity: nothing moved.
    assert!(item(&l, "VELOCITY#1111111111".into()).await.is_none());
    assert!(
        item(&l, format!("REVIEW#{}", tx.transaction_id))
            .await
            .is_none()
    );
    conserved(&l, "100.00").await;
}

#[tokio::test]
async fn insufficient_funds_under_rules_is_declined_with_the_analysis() {
    let l = risky_ledger().await;
    open(&l, "1111111111", "1.00", "alice").await;
    open(&l, "2222222222", "0", "bob").await;
    let tx = transfer("1111111111", "2222222222", "2.00", None);
    assert!(matches!(
        l.apply(&tx).await.unwrap(),
        Outcome::Declined(DeclineReason::InsufficientFunds { .. })
    ));
    let analysis = item(&l, format!("ANALYSIS#{}", tx.transaction_id))
        .await
        .unwrap();
    assert_eq!(analysis["decision"].as_s().unwrap(), "approve");
    assert!(item(&l, "VELOCITY#1111111111".into()).await.is_none());
    conserved(&l, "1.00").await;
}

/// A hold that its account could not pay now is declined up front, in the transaction that
/// would have held it (a failed ConditionCheck, no extra round trip): no review is queued.
#[tokio::test]
async fn a_hold_that_cannot_be_paid_is_declined_instead_of_queued() {
    let l = risky_ledger().await;
    open(&l, "1111111111", "1200.00", "alice").await;
    open(&l, "2222222222", "0", "bob").await;
    let tx = transfer("1111111111", "2222222222", "1500.00", Some("alice"));
    assert!(matches!(
        l.apply(&tx).await.unwrap(),
        Outcome::Declined(DeclineReason::InsufficientFunds { .. })
    ));
    let result = l.get_result(tx.transaction_id).await.unwrap().unwrap();
    assert_eq!(result.status, ResultStatus::Declined);
    assert_eq!(result.reason_code.as_deref(), Some("INSUFFICIENT_FUNDS"));
    let analysis = item(&l, format!("ANALYSIS#{}", tx.transaction_id))
        .await
        .unwrap();
    assert_eq!(analysis["decision"].as_s().unwrap(), "hold");
    assert!(
        item(&l, format!("REVIEW#{}", tx.transaction_id))
            .await
            .is_none()
    );
    assert!(item(&l, "VELOCITY#1111111111".into()).await.is_none());
    // A redelivery is a duplicate.
    assert_eq!(l.apply(&tx).await.unwrap(), Outcome::Duplicate);
    conserved(&l, "1200.00").await;
}

/// Eight workers apply eight debits of one account at once. The window allows three: exactly
/// three complete and five are held, whatever the interleaving, and the velocity item counts
/// all eight in eight versions (each decision extended exactly the count it was scored on).
#[tokio::test]
async fn racing_workers_on_one_velocity_window_stay_correct() {
    let l = risky_ledger().await;
    open(&l, "1111111111", "100.00", "alice").await;
    open(&l, "2222222222", "0", "bob").await;
    let txs: Vec<Transaction> = (0..8)
        .map(|_| transfer("1111111111", "2222222222", "1.00", None))
        .collect();
    let mut tasks = tokio::task::JoinSet::new();
    for tx in txs.clone() {
        // A ledger per "worker": separate handles on the same tables.
        let worker = l.clone();
        tasks.spawn(async move {
            // A worker whose attempts all went stale leaves the message for redelivery:
            // redeliver it, as SQS would.
            loop {
                match worker.apply(&tx).await {
                    Ok(outcome) => return outcome,
                    Err(e) if e.is_transient() => continue,
                    Err(e) => panic!("{e}"),
                }
            }
        });
    }
    let outcomes = tasks.join_all().await;
    let completed = outcomes
        .iter()
        .filter(|o| **o == Outcome::Completed)
        .count();
    let held = outcomes.iter().filter(|o| **o == Outcome::Held).count();
    assert_eq!((completed, held), (3, 5), "{outcomes:?}");
    let velocity = item(&l, "VELOCITY#1111111111".into()).await.unwrap();
    assert_eq!(n(&velocity, "version"), "8");
    assert_eq!(n(&velocity, "lifetime_count"), "8");
    assert_eq!(balance(&l, "1111111111").await, dec("97.00"));
    assert_eq!(balance(&l, "2222222222").await, dec("3.00"));
    conserved(&l, "100.00").await;
}

/// The API over a risky ledger.
async fn api() -> (Parts, axum::Router) {
    let moto = ballast_testbed::moto().await;
    let sqs = aws_sdk_sqs::Client::new(&moto.sdk_config().await);
    let parts = Parts {
        ledger: risky_ledger().await,
        queue_url: queue(&sqs).await,
        sqs,
    };
    let app = parts.router(ApiConfig::default(), Arc::new(SystemClock::new()));
    (parts, app)
}

/// Holds one large transfer from alice's account and answers its id.
async fn hold_one(l: &Ledger) -> Transaction {
    open(l, "1111111111", "5000.00", "alice").await;
    open(l, "2222222222", "0", "bob").await;
    let tx = transfer("1111111111", "2222222222", "1500.00", Some("alice"));
    assert_eq!(l.apply(&tx).await.unwrap(), Outcome::Held);
    tx
}

#[tokio::test]
async fn a_held_transfer_is_approved_by_an_operator_and_applied_once() {
    let (parts, app) = api().await;
    let l = &parts.ledger;
    let tx = hold_one(l).await;
    let id = tx.transaction_id;
    let operator = token("olga", OPERATOR_SCOPES);

    let list = call(&app, Method::GET, "/v1/reviews", Some(&operator), &[], None).await;
    assert_eq!(list.status, StatusCode::OK, "{:?}", list.body);
    assert_eq!(list.body["reviews"][0]["transaction_id"], id.to_string());
    assert_eq!(list.body["reviews"][0]["rules"][0], "large-usd");
    assert_eq!(list.body["reviews"][0]["amount"], "1500.00");

    // Not with a customer's token, not even the owner's.
    let customer = token(
        "alice",
        "accounts:read accounts:write transactions:read transactions:write",
    );
    let uri = format!("/v1/reviews/{id}/approve");
    let denied = call(&app, Method::POST, &uri, Some(&customer), &[], None).await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    assert!(denied.is_problem());

    // Two operators approve at once: one applies it, the other finds it decided.
    let oscar = token("oscar", OPERATOR_SCOPES);
    let (a, b) = tokio::join!(
        call(&app, Method::POST, &uri, Some(&operator), &[], None),
        call(&app, Method::POST, &uri, Some(&oscar), &[], None),
    );
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::OK, StatusCode::CONFLICT],
        "{:?} {:?}",
        a.body,
        b.body
    );
    let ok = if a.status == StatusCode::OK { &a } else { &b };
    assert_eq!(ok.body["result_status"], "COMPLETED");
    // A retried approval changes nothing either.
    let again = call(&app, Method::POST, &uri, Some(&operator), &[], None).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.code(), "conflict");

    assert_eq!(balance(l, "1111111111").await, dec("3500.00"));
    assert_eq!(balance(l, "2222222222").await, dec("1500.00"));
    let result = l.get_result(id).await.unwrap().unwrap();
    assert_eq!(
        (result.status, result.reason_code),
        (ResultStatus::Completed, None)
    );
    let review = l.get_review(id).await.unwrap().unwrap();
    assert_eq!(review.status, ReviewStatus::Approved);
    assert!(
        reviews::pending(l, 10, None)
            .await
            .unwrap()
            .reviews
            .is_empty()
    );
    // The approval is audited with the operator as principal.
    let audit = call(&app, Method::GET, "/v1/audit", Some(&operator), &[], None).await;
    let records = audit.body["records"].as_array().unwrap();
    let approved: Vec<_> = records
        .iter()
        .filter(|r| r["decision"] == "review_approved")
        .collect();
    assert_eq!(approved.len(), 1, "{records:?}");
    assert_eq!(approved[0]["transaction_id"], id.to_string());
    assert!(["olga", "oscar"].contains(&approved[0]["principal"].as_str().unwrap()));
    // Money conserved: 5000 in, 5000 across both accounts, one entry per side.
    conserved(l, "5000.00").await;
}

#[tokio::test]
async fn an_operator_may_not_decide_their_own_transaction() {
    let (parts, app) = api().await;
    let l = &parts.ledger;
    let tx = hold_one(l).await;
    // alice owns the source account; as an operator she still may not approve it.
    let alice_operator = token("alice", OPERATOR_SCOPES);
    let uri = format!("/v1/reviews/{}/approve", tx.transaction_id);
    let refused = call(&app, Method::POST, &uri, Some(&alice_operator), &[], None).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(refused.code(), "four_eyes");
    // Nor bob, who owns the credited account.
    let uri_reject = format!("/v1/reviews/{}/reject", tx.transaction_id);
    let bob = token("bob", OPERATOR_SCOPES);
    let refused = call(&app, Method::POST, &uri_reject, Some(&bob), &[], None).await;
    assert_eq!(refused.code(), "four_eyes");
    assert_eq!(balance(l, "1111111111").await, dec("5000.00"));
    assert_eq!(
        l.get_review(tx.transaction_id)
            .await
            .unwrap()
            .unwrap()
            .status,
        ReviewStatus::Pending
    );
    // A third operator rejects it: DECLINED, nothing moved, audited.
    let rejected = call(
        &app,
        Method::POST,
        &uri_reject,
        Some(&token("olga", OPERATOR_SCOPES)),
        &[],
        None,
    )
    .await;
    assert_eq!(rejected.status, StatusCode::OK, "{:?}", rejected.body);
    assert_eq!(rejected.body["reason_code"], "REVIEW_REJECTED");
    let result = l.get_result(tx.transaction_id).await.unwrap().unwrap();
    assert_eq!(
        (result.status, result.reason_code.as_deref()),
        (ResultStatus::Declined, Some("REVIEW_REJECTED"))
    );
    conserved(l, "5000.00").await;
}

/// An operator's own submission carries no principal (operators act as a trusted producer);
/// the ingest record still names them, and that is enough to refuse their approval.
#[tokio::test]
async fn an_operator_may_not_approve_what_they_submitted() {
    let (parts, app) = api().await;
    let l = &parts.ledger;
    open(l, "1111111111", "5000.00", "alice").await;
    open(l, "2222222222", "0", "bob").await;
    let olga = token("olga", OPERATOR_SCOPES);
    let body = r#"{"type":"TRANSFER","source_account":"1111111111","target_account":"2222222222","amount":"1500.00","currency":"USD"}"#;
    let accepted = call(
        &app,
        Method::POST,
        "/v1/transactions",
        Some(&olga),
        &[("idempotency-key", "olga-1")],
        Some(body.into()),
    )
    .await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED, "{:?}", accepted.body);
    // The worker's side: the enqueued message, scored and held.
    let received = parts
        .sqs
        .receive_message()
        .queue_url(&parts.queue_url)
        .wait_time_seconds(1)
        .send()
        .await
        .unwrap();
    let message = received.messages()[0].body().unwrap();
    let tx = parse_transaction(message.as_bytes()).unwrap();
    assert_eq!(tx.principal, None);
    assert_eq!(l.apply(&tx).await.unwrap(), Outcome::Held);
    let uri = format!("/v1/reviews/{}/approve", tx.transaction_id);
    let refused = call(&app, Method::POST, &uri, Some(&olga), &[], None).await;
    assert_eq!(refused.code(), "four_eyes");
    let approved = call(
        &app,
        Method::POST,
        &uri,
        Some(&token("oscar", OPERATOR_SCOPES)),
        &[],
        None,
    )
    .await;
    assert_eq!(approved.status, StatusCode::OK, "{:?}", approved.body);
    assert_eq!(balance(l, "2222222222").await, dec("1500.00"));
    conserved(l, "5000.00").await;
}

#[tokio::test]
async fn an_approval_rechecks_the_balance_and_never_overdraws() {
    let (parts, app) = api().await;
    let l = &parts.ledger;
    let tx = hold_one(l).await;
    // Meanwhile the account is drained below the held amount.
    open(l, "3333333333", "0", "carol").await;
    let drain = transfer("1111111111", "3333333333", "4000.00", None);
    assert_eq!(
        l.apply(&drain).await.unwrap(),
        Outcome::Held,
        "4000 is large too"
    );
    l.decide_review(
        drain.transaction_id,
        ballast_worker::ledger::ReviewAction::Approve,
        &subject("olga"),
        &audit_template("olga"),
    )
    .await
    .unwrap();
    assert_eq!(balance(l, "1111111111").await, dec("1000.00"));
    let uri = format!("/v1/reviews/{}/approve", tx.transaction_id);
    let answer = call(
        &app,
        Method::POST,
        &uri,
        Some(&token("olga", OPERATOR_SCOPES)),
        &[],
        None,
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    assert_eq!(answer.body["review_status"], "DECLINED");
    assert_eq!(answer.body["reason_code"], "INSUFFICIENT_FUNDS");
    assert_eq!(balance(l, "1111111111").await, dec("1000.00"));
    assert_eq!(balance(l, "2222222222").await, dec("0.00"));
    let result = l.get_result(tx.transaction_id).await.unwrap().unwrap();
    assert_eq!(result.status, ResultStatus::Declined);
    conserved(l, "5000.00").await;
}

fn audit_template(principal: &str) -> ballast_worker::store::audit::AuditRecord {
    ballast_worker::store::audit::AuditRecord {
        audit_id: Uuid::now_v7().to_string(),
        at: "2026-01-01T00:00:00Z".into(),
        principal: principal.into(),
        client_address: "test".into(),
        idempotency_key: None,
        body_sha256: None,
        decision: ballast_worker::store::audit::Decision::Accepted,
        reason_code: None,
        http_status: 200,
        transaction_id: None,
    }
}

#[test]
fn a_bad_rules_file_is_refused_with_its_position() {
    let text = RULES.replace("maxCount: 3", "maxCount: 0");
    let err = risk::rules::parse("rules.yaml", &text)
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("rules.yaml:7:"), "{err}");
    assert!(err.contains("hint:"), "{err}");
}

/// The SQS path: the consumer scores a generated burst and a few large transfers, deletes held
/// messages like settled ones, counts the decisions, and conserves money.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_consumer_holds_a_generated_burst_and_counts_its_decisions() {
    use ballast_worker::consumer::{Consumer, ConsumerConfig};
    use ballast_worker::generate::{BURST_LEN, Mix, generate_messages, send_messages};

    let q = crate::common::queues(5).await;
    let l = risky_ledger().await;
    let accounts = ["1111111111", "2222222222", "3333333333"];
    for a in accounts {
        open(&l, a, "100000.00", "alice").await;
    }
    let accounts: Vec<AccountNumber> = accounts.iter().map(|a| acct(a)).collect();
    // Two bursts of 6 from one account each: the 4th to 6th debits of each are held.
    let bodies = generate_messages(
        &mut rand::rng(),
        &accounts,
        BURST_LEN * 2,
        Mix {
            bursts: 1.0,
            ..Mix::default()
        },
        usd(),
    )
    .unwrap();
    send_messages(&q.sqs, &q.url, &bodies, 1_000_000.0)
        .await
        .unwrap();
    let consumer = Consumer::new(
        q.sqs.clone(),
        l.clone(),
        ConsumerConfig {
            concurrency: 4,
            ..crate::common::config(&q, 5)
        },
    );
    let shutdown = tokio_util::sync::CancellationToken::new();
    let run = tokio::spawn({
        let consumer = consumer.clone();
        let shutdown = shutdown.clone();
        async move { consumer.run(shutdown).await }
    });
    let metrics = consumer.metrics().clone();
    crate::common::eventually(
        "all messages settled",
        std::time::Duration::from_secs(120),
        || {
            let m = metrics.clone();
            async move { m.processed_count("completed") + m.processed_count("held") >= 12 }
        },
    )
    .await;
    crate::common::eventually("queue drained", std::time::Duration::from_secs(60), || {
        let (sqs, url) = (q.sqs.clone(), q.url.clone());
        async move { crate::common::queue_depth(&sqs, &url).await == 0 }
    })
    .await;
    shutdown.cancel();
    run.await.unwrap();
    // Bursts from the same account may follow each other: at least three held per burst
    // source, and every held one left its money where it was.
    let held = metrics.processed_count("held");
    assert!(held >= 3, "held {held}");
    assert_eq!(metrics.processed_count("completed") + held, 12);
    let text = metrics.encode();
    assert!(
        text.contains(&format!(
            "ballast_worker_risk_decisions_total{{outcome=\"hold\"}} {held}"
        )),
        "{text}"
    );
    conserved(&l, "300000.00").await;
}

/// A conversion held for review and approved later is applied at the rate valid at approval,
/// with both legs and its rate on the result, and conserves money in each currency.
#[tokio::test]
async fn a_held_conversion_is_approved_at_the_rate_valid_then_with_both_legs() {
    use ballast_worker::fx::{admin, file};
    use ballast_worker::ledger::{ReviewAction, ReviewOutcome};
    use time::OffsetDateTime;

    let l = risky_ledger().await;
    let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
    let at = |hours: i64| {
        (now + time::Duration::hours(hours))
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let rates = format!(
        "rates:\n  - {{base: USD, quote: EUR, rate: \"0.9215\", source: test desk, valid_from: {}, valid_until: {}}}\n",
        at(-1),
        at(1)
    );
    let rates = file::parse("rates.yaml", &rates).unwrap();
    admin::load(&l, "rates.yaml", &rates, now).await.unwrap();
    open(&l, "1111111111", "5000.00", "alice").await;
    l.create_account(
        &acct("2222222222"),
        ballast_worker::transaction::Currency::from_code("EUR").unwrap(),
        "CHECKING",
        dec("0"),
        &subject("bob"),
    )
    .await
    .unwrap();
    let convert = |amount: &str| {
        let id = Uuid::now_v7();
        parse_transaction(
            format!(
                r#"{{"transaction_id":"{id}","type":"TRANSFER","source_account":"1111111111",
                "target_account":"2222222222","amount":"{amount}","currency":"USD",
                "target_currency":"EUR","timestamp":"2026-12-04T10:00:00Z",
                "idempotency_key":"k-{id}","principal":"alice"}}"#
            )
            .as_bytes(),
        )
        .unwrap()
    };

    // Over 1000 USD: held, nothing moves.
    let tx = convert("1500.00");
    assert_eq!(l.apply(&tx).await.unwrap(), Outcome::Held);
    assert_eq!(balance(&l, "1111111111").await, dec("5000.00"));
    let approved = l
        .decide_review(
            tx.transaction_id,
            ReviewAction::Approve,
            &subject("olga"),
            &audit_template("olga"),
        )
        .await
        .unwrap();
    assert_eq!(approved, ReviewOutcome::Approved);
    assert_eq!(balance(&l, "1111111111").await, dec("3500.00"));
    // 1500.00 × 0.9215 = 1382.25 exactly.
    assert_eq!(balance(&l, "2222222222").await, dec("1382.25"));
    let result = l.get_result(tx.transaction_id).await.unwrap().unwrap();
    assert_eq!(result.status, ResultStatus::Completed);
    let fx = result
        .conversion
        .expect("the approval records the conversion");
    assert_eq!(
        (fx.target_amount, fx.rate.as_str()),
        (dec("1382.25"), "0.9215")
    );
    let tables = l.tables();
    let r = report(l.client(), tables.accounts, tables.transactions)
        .await
        .unwrap();
    assert!(r.money_conserved(), "{r:?}");
}
