//! Exactly once at the front door, the sweeper and the audit trail, through the real router
//! against moto (the SDK clients carry the project's call-counting interceptor, and a test-only
//! interceptor that makes SendMessage fail as if the process had died before sending).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a failed test (clippy.toml covers only #[test] fns, not helpers)"
)]

use crate::common;
use crate::common::api::{Answer, call, token};

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use aws_sdk_dynamodb::types::{
    BillingMode, GlobalSecondaryIndex, KeyType, Projection, ProjectionType,
};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use axum::Router;
use axum::http::{Method, StatusCode};
use ballast_aws::CallRecorder;
use ballast_testbed::fixtures::{key, string_attribute as attr};
use ballast_worker::api::audit::{AUDIT_PRINCIPAL_INDEX, AUDIT_TIME_INDEX};
use ballast_worker::api::auth::{ALL_SCOPES, SCOPE_ACCOUNTS_ADMIN};
use ballast_worker::api::sweep::{PENDING_INDEX, SweepReport, Sweeper};
use ballast_worker::api::{ApiConfig, ManualClock, RateLimit};
use ballast_worker::ledger::{Ledger, Outcome, ResultStatus};
use ballast_worker::transaction::{AccountNumber, Currency, Subject, parse_transaction};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

const SWEEP_AFTER: Duration = Duration::from_secs(30);

/// Fails every SendMessage while armed: the request dies between its record and its send.
#[derive(Debug, Clone, Default)]
struct FailSendMessage(Arc<AtomicBool>);

impl Intercept for FailSendMessage {
    fn name(&self) -> &'static str {
        "TestFailSendMessage"
    }

    fn read_before_execution(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let is_send = context
            .input()
            .downcast_ref::<aws_sdk_sqs::operation::send_message::SendMessageInput>()
            .is_some();
        if is_send && self.0.load(Ordering::SeqCst) {
            return Err("test fault: the process died before SendMessage".into());
        }
        Ok(())
    }

    fn read_after_execution(
        &self,
        _context: &aws_smithy_runtime_api::client::interceptors::context::FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        Ok(())
    }
}

struct Env {
    app: Router,
    ledger: Ledger,
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    calls: CallRecorder,
    fail_send: FailSendMessage,
}

/// A GSI as blueprints/banking.yaml declares it.
fn gsi(name: &str, hash: &str, range: &str) -> GlobalSecondaryIndex {
    GlobalSecondaryIndex::builder()
        .index_name(name)
        .key_schema(key(hash, KeyType::Hash))
        .key_schema(key(range, KeyType::Range))
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::All)
                .build(),
        )
        .build()
        .unwrap()
}

async fn env() -> Env {
    let moto = ballast_testbed::moto().await;
    let sdk = moto.sdk_config().await;
    let calls = CallRecorder::default();
    let fail_send = FailSendMessage::default();
    let ddb = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&sdk)
            .interceptor(calls.clone())
            .build(),
    );
    let sqs = aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::config::Builder::from(&sdk)
            .interceptor(calls.clone())
            .interceptor(fail_send.clone())
            .build(),
    );
    let accounts = ballast_testbed::unique_name("accounts");
    let transactions = ballast_testbed::unique_name("transactions");
    ddb.create_table()
        .table_name(&accounts)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr("pk"))
        .attribute_definitions(attr("sk"))
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .send()
        .await
        .expect("create accounts");
    let mut create = ddb
        .create_table()
        .table_name(&transactions)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key("pk", KeyType::Hash))
        .global_secondary_indexes(gsi(PENDING_INDEX, "pending_shard", "pending_due"))
        .global_secondary_indexes(gsi(AUDIT_TIME_INDEX, "audit_day", "audit_sk"))
        .global_secondary_indexes(gsi(AUDIT_PRINCIPAL_INDEX, "audit_principal", "audit_sk"));
    for name in [
        "pk",
        "pending_shard",
        "pending_due",
        "audit_day",
        "audit_principal",
        "audit_sk",
    ] {
        create = create.attribute_definitions(attr(name));
    }
    create.send().await.expect("create transactions");
    let queue_url = common::api::queue(&sqs).await;
    let ledger = Ledger::new(ddb, accounts, transactions);
    let config = ApiConfig {
        // 300 simultaneous requests of one client: not what this file tests.
        rate_limit: RateLimit {
            per_second: 0.0,
            burst: 1,
        },
        trusted_proxies: vec!["127.0.0.1".parse().unwrap()],
        sweep_after: SWEEP_AFTER,
        ..ApiConfig::default()
    };
    let parts = common::api::Parts {
        ledger: ledger.clone(),
        sqs: sqs.clone(),
        queue_url: queue_url.clone(),
    };
    Env {
        app: parts.router(config, Arc::new(ManualClock::default())),
        ledger,
        sqs,
        queue_url,
        calls,
        fail_send,
    }
}

async fn submit_as(env: &Env, token: &str, idem: &str, body: &Value) -> Answer {
    call(
        &env.app,
        Method::POST,
        "/v1/transactions",
        Some(token),
        &[("Idempotency-Key", idem)],
        Some(body.to_string()),
    )
    .await
}

async fn open_account(env: &Env) -> String {
    let account = AccountNumber::parse(&format!(
        "{}",
        100_000_000_000u64 + u64::from(rand_suffix())
    ))
    .unwrap();
    env.ledger
        .create_account(
            &account,
            Currency::from_code("USD").unwrap(),
            "checking",
            Decimal::ZERO,
            &Subject::parse("alice").unwrap(),
        )
        .await
        .unwrap();
    account.to_string()
}

fn rand_suffix() -> u32 {
    Uuid::new_v4().as_u128() as u32 % 900_000_000
}

fn deposit(account: &str, amount: &str) -> Value {
    json!({"type": "DEPOSIT", "target_account": account, "amount": amount, "currency": "USD"})
}

async fn balance(env: &Env, account: &str) -> Decimal {
    env.ledger
        .get_account(&AccountNumber::parse(account).unwrap())
        .await
        .unwrap()
        .unwrap()
        .balance
}

/// `GET /v1/audit?principal=<principal>` with the operator token `ops`; a 200.
async fn audit_of(env: &Env, principal: &str, ops: &str) -> Answer {
    let uri = format!("/v1/audit?principal={principal}");
    let answer = call(&env.app, Method::GET, &uri, Some(ops), &[], None).await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    answer
}

/// Receives (and deletes) every message currently in the queue.
async fn drain(env: &Env) -> Vec<String> {
    common::drain_queue(&env.sqs, &env.queue_url).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_replays_of_a_key_enqueue_it_once_and_answer_alike() {
    const KEYS: usize = 100;
    let env = env().await;
    let account = open_account(&env).await;
    let alice = token("alice", ALL_SCOPES);
    let body = deposit(&account, "1.00");
    // Every key three times, all 300 requests at once.
    let requests = (0..KEYS).flat_map(|k| (0..3).map(move |_| format!("burst-{k}")));
    let answers = futures::future::join_all(requests.map(|idem| {
        let (env, alice, body) = (&env, &alice, &body);
        async move { (idem.clone(), submit_as(env, alice, &idem, body).await) }
    }))
    .await;
    let mut by_key: BTreeMap<String, Vec<Answer>> = BTreeMap::new();
    for (idem, answer) in answers {
        assert_eq!(
            answer.status,
            StatusCode::ACCEPTED,
            "{idem}: {:?}",
            answer.body
        );
        by_key.entry(idem).or_default().push(answer);
    }
    assert_eq!(by_key.len(), KEYS);
    let mut ids = HashSet::new();
    for (idem, answers) in &by_key {
        let first = answers[0].id();
        assert!(
            answers.iter().all(|a| a.id() == first),
            "{idem}: different ids"
        );
        let fresh = answers.iter().filter(|a| !a.replayed()).count();
        assert_eq!(fresh, 1, "{idem}: exactly one winner, the others replay");
        ids.insert(first);
    }
    let messages = drain(&env).await;
    assert_eq!(messages.len(), KEYS, "one message per key");
    let mut sent_keys = HashSet::new();
    for m in &messages {
        let tx = parse_transaction(m.as_bytes()).unwrap();
        assert!(ids.contains(&tx.transaction_id.to_string()));
        assert!(sent_keys.insert(tx.idempotency_key.as_str().to_owned()));
        assert_eq!(env.ledger.apply(&tx).await.unwrap(), Outcome::Completed);
    }
    assert_eq!(balance(&env, &account).await, Decimal::new(10_000, 2));
}

#[tokio::test]
async fn an_accepted_transaction_costs_two_aws_calls() {
    const N: u64 = 20;
    let env = env().await;
    let account = open_account(&env).await;
    let alice = token("alice", ALL_SCOPES);
    env.calls.reset();
    for i in 0..N {
        let a = submit_as(
            &env,
            &alice,
            &format!("cost-{i}"),
            &deposit(&account, "2.00"),
        )
        .await;
        assert_eq!(a.status, StatusCode::ACCEPTED, "{:?}", a.body);
    }
    let calls = env.calls.snapshot();
    let per_op: BTreeMap<String, u64> = calls
        .iter()
        .map(|(k, n)| (format!("{}:{}:{}", k.service, k.operation, k.outcome), *n))
        .collect();
    println!("AWS calls for {N} accepted transactions: {per_op:?}");
    assert_eq!(
        env.calls.total(),
        2 * N,
        "two AWS calls per accepted transaction (record + audit in one, send): {per_op:?}"
    );
    assert_eq!(
        per_op.get("dynamodb:TransactWriteItems:ok"),
        Some(&N),
        "{per_op:?}"
    );
    assert_eq!(per_op.get("sqs:SendMessage:ok"), Some(&N), "{per_op:?}");
}

#[tokio::test]
async fn a_send_lost_after_the_record_is_sent_by_the_sweeper_exactly_once() {
    let env = env().await;
    let account = open_account(&env).await;
    let alice = token("alice", ALL_SCOPES);
    env.fail_send.0.store(true, Ordering::SeqCst);
    let accepted = submit_as(&env, &alice, "lost-send", &deposit(&account, "100.00")).await;
    // The record is durable, so the request is accepted; nothing reached the queue.
    assert_eq!(accepted.status, StatusCode::ACCEPTED, "{:?}", accepted.body);
    env.fail_send.0.store(false, Ordering::SeqCst);
    assert!(drain(&env).await.is_empty());
    // A client retrying with the same key gets the same id and sends nothing either.
    let again = submit_as(&env, &alice, "lost-send", &deposit(&account, "100.00")).await;
    assert!(again.replayed() && again.id() == accepted.id());
    assert!(drain(&env).await.is_empty());

    let sweeper = Sweeper::new(
        env.ledger.clone(),
        env.sqs.clone(),
        env.queue_url.clone(),
        SWEEP_AFTER,
    );
    // The clock is injected: "now", then past the grace period.
    let now = OffsetDateTime::now_utc();
    assert_eq!(
        sweeper.sweep_once(now).await.unwrap(),
        SweepReport::default()
    );
    let later = now + Duration::from_secs(31);
    let first = sweeper.sweep_once(later).await.unwrap();
    assert_eq!(first.resent, 1, "{first:?}");
    // A second sweeper (or the next pass) at the same time: the record is claimed.
    assert_eq!(sweeper.sweep_once(later).await.unwrap().resent, 0);

    let messages = drain(&env).await;
    assert_eq!(messages.len(), 1);
    let tx = parse_transaction(messages[0].as_bytes()).unwrap();
    assert_eq!(tx.transaction_id.to_string(), accepted.id());
    assert_eq!(env.ledger.apply(&tx).await.unwrap(), Outcome::Completed);
    assert_eq!(env.ledger.apply(&tx).await.unwrap(), Outcome::Duplicate);
    assert_eq!(balance(&env, &account).await, Decimal::new(10_000, 2));

    // Settled: the marker goes, and no later sweep sends it again.
    let much_later = now + Duration::from_secs(7200);
    let settle = sweeper.sweep_once(much_later).await.unwrap();
    assert_eq!((settle.settled, settle.resent), (1, 0), "{settle:?}");
    assert_eq!(
        sweeper.sweep_once(much_later).await.unwrap(),
        SweepReport::default()
    );
    assert!(drain(&env).await.is_empty());
    let status = call(
        &env.app,
        Method::GET,
        &format!("/v1/transactions/{}", accepted.id()),
        Some(&alice),
        &[],
        None,
    )
    .await;
    assert_eq!(status.body["status"], "COMPLETED", "{:?}", status.body);
}

#[tokio::test]
async fn a_sent_transaction_is_only_cleaned_up_by_the_sweeper() {
    let env = env().await;
    let account = open_account(&env).await;
    let alice = token("alice", ALL_SCOPES);
    let a = submit_as(&env, &alice, "normal", &deposit(&account, "5.00")).await;
    assert_eq!(a.status, StatusCode::ACCEPTED);
    let messages = drain(&env).await;
    assert_eq!(messages.len(), 1);
    let tx = parse_transaction(messages[0].as_bytes()).unwrap();
    assert_eq!(env.ledger.apply(&tx).await.unwrap(), Outcome::Completed);
    let sweeper = Sweeper::new(
        env.ledger.clone(),
        env.sqs.clone(),
        env.queue_url.clone(),
        SWEEP_AFTER,
    );
    let report = sweeper
        .sweep_once(OffsetDateTime::now_utc() + Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!((report.settled, report.resent), (1, 0), "{report:?}");
    assert!(drain(&env).await.is_empty());
}

#[tokio::test]
async fn a_key_settled_by_another_transaction_id_is_rejected_for_the_newcomer() {
    let env = env().await;
    let account = open_account(&env).await;
    let message = |id: Uuid, amount: &str| {
        json!({"transaction_id": id.to_string(), "type": "DEPOSIT", "target_account": account,
               "amount": amount, "currency": "USD", "timestamp": "2026-01-02T03:04:05Z",
               "idempotency_key": "shared-key"})
        .to_string()
    };
    let (first, second) = (Uuid::now_v7(), Uuid::now_v7());
    let first_tx = parse_transaction(message(first, "10.00").as_bytes()).unwrap();
    let second_tx = parse_transaction(message(second, "20.00").as_bytes()).unwrap();
    assert_eq!(
        env.ledger.apply(&first_tx).await.unwrap(),
        Outcome::Completed
    );
    let outcome = env.ledger.apply(&second_tx).await.unwrap();
    assert!(
        matches!(outcome, Outcome::Rejected(_)),
        "the newcomer gets a terminal result: {outcome:?}"
    );
    let result = env.ledger.get_result(second).await.unwrap().unwrap();
    assert_eq!(result.status, ResultStatus::Rejected);
    assert_eq!(
        result.reason_code.as_deref(),
        Some("idempotency_key_reused")
    );
    // Redelivery of either message changes nothing.
    assert_eq!(
        env.ledger.apply(&second_tx).await.unwrap(),
        Outcome::Duplicate
    );
    assert_eq!(
        env.ledger.apply(&first_tx).await.unwrap(),
        Outcome::Duplicate
    );
    let kept = env.ledger.get_result(first).await.unwrap().unwrap();
    assert_eq!(kept.status, ResultStatus::Completed);
    assert_eq!(balance(&env, &account).await, Decimal::new(1_000, 2));
    // The producer polling the second id through the API sees the terminal result.
    let status = call(
        &env.app,
        Method::GET,
        &format!("/v1/transactions/{second}"),
        Some(&token("alice", ALL_SCOPES)),
        &[],
        None,
    )
    .await;
    assert_eq!(status.body["status"], "REJECTED", "{:?}", status.body);
}

#[tokio::test]
async fn another_client_reusing_a_key_is_told_it_is_not_theirs() {
    let env = env().await;
    let account = open_account(&env).await;
    let alice = token("alice", ALL_SCOPES);
    let bob = token("bob", ALL_SCOPES);
    let body = deposit(&account, "7.00");
    let first = submit_as(&env, &alice, "alice-key", &body).await;
    assert_eq!(first.status, StatusCode::ACCEPTED);
    for other in [body.clone(), deposit(&account, "8.00")] {
        let stolen = submit_as(&env, &bob, "alice-key", &other).await;
        assert_eq!(stolen.status, StatusCode::CONFLICT, "{:?}", stolen.body);
        assert_eq!(stolen.code(), "idempotency_key_foreign");
        assert_eq!(
            stolen.body["type"],
            "https://ballast.dev/problems/idempotency_key_foreign"
        );
        assert!(stolen.body.get("transaction_id").is_none());
    }
    let changed = submit_as(&env, &alice, "alice-key", &deposit(&account, "8.00")).await;
    assert_eq!(changed.status, StatusCode::CONFLICT);
    assert_eq!(changed.code(), "idempotency_key_reused");
    assert_eq!(drain(&env).await.len(), 1);
}

#[tokio::test]
async fn every_money_request_is_audited_and_only_operators_read_the_trail() {
    let env = env().await;
    let account = open_account(&env).await;
    let since = OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let alice = token("alice", ALL_SCOPES);
    let reader = token("carol", "transactions:read");
    let ops = token("ops", SCOPE_ACCOUNTS_ADMIN);
    let body = deposit(&account, "3.00");

    let accepted = call(
        &env.app,
        Method::POST,
        "/v1/transactions",
        Some(&alice),
        &[
            ("Idempotency-Key", "audit-1"),
            ("X-Forwarded-For", "6.6.6.6, 203.0.113.9"),
        ],
        Some(body.to_string()),
    )
    .await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED);
    let replayed = submit_as(&env, &alice, "audit-1", &body).await;
    assert!(replayed.replayed());
    let invalid = submit_as(&env, &alice, "audit-2", &deposit(&account, "-1.00")).await;
    assert_eq!(invalid.status, StatusCode::BAD_REQUEST);
    let no_scope = submit_as(&env, &reader, "audit-3", &body).await;
    assert_eq!(no_scope.status, StatusCode::FORBIDDEN);
    // Unauthenticated refusals are not written (anyone could flood the table with them).
    let anonymous = call(
        &env.app,
        Method::POST,
        "/v1/transactions",
        None,
        &[("Idempotency-Key", "audit-4")],
        Some(body.to_string()),
    )
    .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);

    // Not an operator: 403, like every other missing scope.
    let denied = call(&env.app, Method::GET, "/v1/audit", Some(&alice), &[], None).await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    assert_eq!(denied.code(), "forbidden");

    let by_alice = audit_of(&env, "alice", &ops).await;
    let records = by_alice.body["records"].as_array().unwrap();
    let decisions: Vec<(&str, &str, Option<&str>)> = records
        .iter()
        .map(|r| {
            (
                r["decision"].as_str().unwrap(),
                r["idempotency_key"].as_str().unwrap(),
                r["reason_code"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        decisions,
        [
            ("accepted", "audit-1", None),
            ("replayed", "audit-1", None),
            ("refused", "audit-2", Some("amount_not_positive")),
        ]
    );
    // The trusted proxy's client, not the spoofable left-most entry; then the peer.
    assert_eq!(records[0]["client_address"], "203.0.113.9");
    assert_eq!(records[1]["client_address"], "127.0.0.1");
    assert_eq!(records[0]["transaction_id"], json!(accepted.id()));
    assert_eq!(records[1]["transaction_id"], json!(accepted.id()));
    assert_eq!(records[0]["body_sha256"], records[1]["body_sha256"]);
    assert_eq!(records[0]["http_status"], 202);
    assert_eq!(records[2]["http_status"], 400);

    // By time, one record per page: every authenticated request, oldest first.
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let mut uri = format!("/v1/audit?since={since}&limit=1");
        if let Some(c) = &cursor {
            uri.push_str(&format!("&cursor={c}"));
        }
        let page = call(&env.app, Method::GET, &uri, Some(&ops), &[], None).await;
        assert_eq!(page.status, StatusCode::OK, "{:?}", page.body);
        all.extend(page.body["records"].as_array().unwrap().iter().cloned());
        cursor = page.body["next_cursor"].as_str().map(str::to_owned);
        if cursor.is_none() {
            break;
        }
    }
    let seen: Vec<(&str, &str)> = all
        .iter()
        .map(|r| {
            (
                r["principal"].as_str().unwrap(),
                r["decision"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("alice", "accepted"),
            ("alice", "replayed"),
            ("alice", "refused"),
            ("carol", "refused"),
        ]
    );
    assert_eq!(all[3]["reason_code"], "forbidden");

    let bad = call(
        &env.app,
        Method::GET,
        "/v1/audit?since=yesterday",
        Some(&ops),
        &[],
        None,
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.body["field"], "since");
    // An empty principal (found by schemathesis: DynamoDB refuses an empty index key, once a
    // 500) is the caller's mistake, named.
    let empty = call(
        &env.app,
        Method::GET,
        "/v1/audit?principal=",
        Some(&ops),
        &[],
        None,
    )
    .await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST);
    assert_eq!(empty.body["field"], "principal");
}

/// The body extractor's refusals (413 over the limit, 415 not JSON) are problems, audited as
/// refused, and nothing is recorded or sent.
#[tokio::test]
async fn refused_bodies_are_audited_problems_and_change_nothing() {
    let env = env().await;
    let account = open_account(&env).await;
    let alice = token("alice", ALL_SCOPES);
    let ops = token("ops", SCOPE_ACCOUNTS_ADMIN);
    let big = json!({
        "type": "DEPOSIT", "target_account": account, "currency": "USD",
        "amount": format!("1{}", "0".repeat(70 * 1024)),
    });
    let too_large = submit_as(&env, &alice, "big-1", &big).await;
    assert_eq!(too_large.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(too_large.is_problem(), "{:?}", too_large.body);
    assert_eq!(too_large.code(), "payload_too_large");

    let request = axum::http::Request::builder()
        .method(Method::POST)
        .uri("/v1/transactions")
        .header("authorization", format!("Bearer {alice}"))
        .header("content-type", "text/plain")
        .header("Idempotency-Key", "text-1")
        .body(axum::body::Body::from(
            deposit(&account, "1.00").to_string(),
        ))
        .unwrap();
    let not_json = common::api::answer(
        tower::ServiceExt::oneshot(env.app.clone(), request)
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(not_json.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(not_json.is_problem(), "{:?}", not_json.body);

    let trail = audit_of(&env, "alice", &ops).await;
    let refused: Vec<(&str, &str, u64)> = trail.body["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(r["decision"], "refused");
            (
                r["idempotency_key"].as_str().unwrap(),
                r["reason_code"].as_str().unwrap(),
                r["http_status"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        refused,
        [
            ("big-1", "payload_too_large", 413),
            ("text-1", "unsupported_media_type", 415),
        ]
    );
    assert!(drain(&env).await.is_empty());
    assert_eq!(balance(&env, &account).await, Decimal::ZERO);
}
