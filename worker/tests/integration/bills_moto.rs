//! Bill payments against moto, through the real router and the runner: payees and schedules
//! are private to their owner, a schedule's source account must be the caller's, each
//! occurrence is paid exactly once across passes, a crash between enqueue and advance, two
//! runners at once and missed periods; a cancel stops future payments; money is conserved.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a failed test (clippy.toml covers only #[test] fns, not helpers)"
)]

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use axum::Router;
use axum::http::{Method, StatusCode};
use ballast_worker::api::{ApiConfig, ManualClock};
use ballast_worker::bills::runner::{BillRunner, RunReport};
use ballast_worker::bills::{format_date, parse_date};
use ballast_worker::ledger::Outcome;
use ballast_worker::store::bills as bills_store;
use ballast_worker::transaction::{AccountNumber, Currency, Subject, parse_transaction};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use time::{Date, Month, OffsetDateTime, Time};
use uuid::Uuid;

use crate::common::api::{Answer, Parts, call, queue, token};
use crate::common::{dec, drain_queue};
use ballast_testbed::fixtures::{Gsi, ledger_tables_indexed};

const ALICE_ACCOUNT: &str = "100000000001";
const BOB_ACCOUNT: &str = "100000000002";
const BILLER_ACCOUNT: &str = "900000000001";
const SCOPES: &str = "transactions:read transactions:write";

struct Env {
    parts: Parts,
    app: Router,
    alice: String,
    bob: String,
}

fn runner(parts: &Parts) -> BillRunner {
    BillRunner::new(
        parts.ledger.clone(),
        parts.sqs.clone(),
        parts.queue_url.clone(),
        Duration::from_secs(30),
    )
}

async fn open(parts: &Parts, number: &str, owner: &str, balance: &str) {
    parts
        .ledger
        .create_account(
            &AccountNumber::parse(number).unwrap(),
            Currency::from_code("USD").unwrap(),
            "checking",
            dec(balance),
            &Subject::parse(owner).unwrap(),
        )
        .await
        .unwrap();
}

/// The API's parts over tables whose accounts table has the bill runner's due index.
async fn bill_parts() -> Parts {
    let moto = ballast_testbed::moto().await;
    let sdk = moto.sdk_config().await;
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let (accounts, transactions) = ledger_tables_indexed(
        &ddb,
        "bills",
        &[Gsi {
            name: bills_store::BILLS_DUE_INDEX,
            hash: bills_store::DUE_QUEUE,
            range: bills_store::DUE_SK,
        }],
        &[],
    )
    .await;
    Parts {
        ledger: ballast_worker::ledger::Ledger::new(ddb, accounts, transactions),
        queue_url: queue(&sqs).await,
        sqs,
    }
}

async fn env() -> Env {
    crate::common::init_logs();
    let parts = bill_parts().await;
    open(&parts, ALICE_ACCOUNT, "alice", "1000.00").await;
    open(&parts, BOB_ACCOUNT, "bob", "1000.00").await;
    open(&parts, BILLER_ACCOUNT, "utilityco", "0.00").await;
    let clock = Arc::new(ManualClock::new(
        ballast_runtime::Timestamp::from_system_time(std::time::SystemTime::now()),
    ));
    let app = parts.router(ApiConfig::default(), clock);
    Env {
        parts,
        app,
        alice: token("alice", SCOPES),
        bob: token("bob", SCOPES),
    }
}

async fn post(env: &Env, who: &str, uri: &str, body: Value) -> Answer {
    call(
        &env.app,
        Method::POST,
        uri,
        Some(who),
        &[],
        Some(body.to_string()),
    )
    .await
}

async fn get(env: &Env, who: &str, uri: &str) -> Answer {
    call(&env.app, Method::GET, uri, Some(who), &[], None).await
}

async fn delete(env: &Env, who: &str, uri: &str) -> Answer {
    call(&env.app, Method::DELETE, uri, Some(who), &[], None).await
}

async fn payee(env: &Env, who: &str) -> String {
    let answer = post(
        env,
        who,
        "/v1/payees",
        json!({"biller_id": "UTILITYCO", "account": BILLER_ACCOUNT, "name": "Electricity"}),
    )
    .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{:?}", answer.body);
    answer.body["payee_id"].as_str().unwrap().to_owned()
}

async fn schedule(env: &Env, who: &str, payee: &str, body: Value) -> Answer {
    post(env, who, &format!("/v1/payees/{payee}/schedules"), body).await
}

/// January 31 of next year: always in the future, and a month end to clamp.
fn next_jan_31() -> Date {
    let year = OffsetDateTime::now_utc().year() + 1;
    Date::from_calendar_date(year, Month::January, 31).unwrap()
}

/// 08:00 UTC on `date`.
fn at(date: Date) -> OffsetDateTime {
    date.with_time(Time::from_hms(8, 0, 0).unwrap())
        .assume_utc()
}

async fn balance(parts: &Parts, number: &str) -> Decimal {
    parts
        .ledger
        .get_account(&AccountNumber::parse(number).unwrap())
        .await
        .unwrap()
        .unwrap()
        .balance
}

/// Drains the queue and applies every message; returns their idempotency keys in order.
async fn deliver(parts: &Parts) -> Vec<String> {
    let mut keys = Vec::new();
    for body in drain_queue(&parts.sqs, &parts.queue_url).await {
        let tx = parse_transaction(body.as_bytes()).unwrap();
        keys.push(tx.idempotency_key.as_str().to_owned());
        assert_eq!(parts.ledger.apply(&tx).await.unwrap(), Outcome::Completed);
    }
    keys
}

async fn money_conserved(parts: &Parts) {
    let tables = parts.ledger.tables();
    let report =
        ballast_worker::report::report(parts.ledger.client(), tables.accounts, tables.transactions)
            .await
            .unwrap();
    assert!(report.money_conserved(), "{report:?}");
}

#[tokio::test]
async fn payees_and_schedules_are_private_to_their_owner() {
    let env = env().await;
    let alices = payee(&env, &env.alice).await;
    let listed = get(&env, &env.alice, "/v1/payees").await;
    assert_eq!(listed.body["payees"].as_array().unwrap().len(), 1);
    assert!(
        listed.body.get("next_cursor").is_none(),
        "{:?}",
        listed.body
    );
    let created = schedule(
        &env,
        &env.alice,
        &alices,
        json!({"source_account": ALICE_ACCOUNT, "amount": "10.00", "currency": "USD",
               "first_due": format_date(next_jan_31()), "recurrence": "WEEKLY"}),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let sid = created.body["schedule_id"].as_str().unwrap().to_owned();

    // Bob sees none of it, and every attempt on Alice's ids is the unknown-id 404.
    assert_eq!(
        get(&env, &env.bob, "/v1/payees").await.body,
        json!({"payees": []})
    );
    for answer in [
        get(&env, &env.bob, &format!("/v1/payees/{alices}/schedules")).await,
        delete(&env, &env.bob, &format!("/v1/payees/{alices}")).await,
        schedule(
            &env,
            &env.bob,
            &alices,
            json!({"source_account": BOB_ACCOUNT, "amount": "10.00", "currency": "USD",
                   "first_due": format_date(next_jan_31()), "recurrence": "ONCE"}),
        )
        .await,
        get(&env, &env.bob, &format!("/v1/schedules/{sid}")).await,
        delete(&env, &env.bob, &format!("/v1/schedules/{sid}")).await,
    ] {
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{:?}", answer.body);
        assert!(answer.is_problem());
    }
    // Alice's schedule is untouched by Bob's cancel.
    let mine = get(&env, &env.alice, &format!("/v1/schedules/{sid}")).await;
    assert_eq!(mine.body["status"], "ACTIVE");
    // A payee with an active schedule cannot be deleted; once cancelled it can, and is gone.
    let busy = delete(&env, &env.alice, &format!("/v1/payees/{alices}")).await;
    assert_eq!(busy.status, StatusCode::CONFLICT);
    let cancelled = delete(&env, &env.alice, &format!("/v1/schedules/{sid}")).await;
    assert_eq!(cancelled.status, StatusCode::OK, "{:?}", cancelled.body);
    let gone = delete(&env, &env.alice, &format!("/v1/payees/{alices}")).await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    assert_eq!(
        get(&env, &env.alice, "/v1/payees").await.body,
        json!({"payees": []})
    );
    let again = delete(&env, &env.alice, &format!("/v1/payees/{alices}")).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
}

/// Listings come a page at a time: `limit`, and `next_cursor` passed back as `cursor`.
#[tokio::test]
async fn listings_page_with_a_cursor() {
    let env = env().await;
    for _ in 0..3 {
        payee(&env, &env.alice).await;
    }
    let first = get(&env, &env.alice, "/v1/payees?limit=2").await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    assert_eq!(first.body["payees"].as_array().unwrap().len(), 2);
    let cursor = first.body["next_cursor"].as_str().unwrap().to_owned();
    let second = get(
        &env,
        &env.alice,
        &format!("/v1/payees?limit=2&cursor={cursor}"),
    )
    .await;
    let mut ids: Vec<&str> = [&first.body, &second.body]
        .iter()
        .flat_map(|b| b["payees"].as_array().unwrap())
        .map(|p| p["payee_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 3, "{:?}", second.body);
    assert!(
        second.body.get("next_cursor").is_none(),
        "{:?}",
        second.body
    );
    ids.dedup();
    assert_eq!(ids.len(), 3, "no payee twice");
    // Alice's cursor read by Bob pages through Bob's own (empty) payees only.
    let bobs = get(&env, &env.bob, &format!("/v1/payees?cursor={cursor}")).await;
    assert_eq!(bobs.body, json!({"payees": []}));
    for bad in ["zz", "00", &hex::encode("SCHEDULE#x")] {
        let answer = get(&env, &env.alice, &format!("/v1/payees?cursor={bad}")).await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{bad}: {:?}",
            answer.body
        );
        assert_eq!(answer.body["field"], "cursor");
    }
    let too_many = get(&env, &env.alice, "/v1/payees?limit=501").await;
    assert_eq!(too_many.body["field"], "limit");
}

#[tokio::test]
async fn invalid_payees_and_schedules_name_the_field_and_store_nothing() {
    let env = env().await;
    let bad_account = post(
        &env,
        &env.alice,
        "/v1/payees",
        json!({"biller_id": "UTILITYCO", "account": "12ab", "name": "x"}),
    )
    .await;
    assert_eq!(bad_account.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        bad_account.body["field"], "account",
        "{:?}",
        bad_account.body
    );
    let unknown = post(
        &env,
        &env.alice,
        "/v1/payees",
        json!({"biller_id": "U", "account": BILLER_ACCOUNT, "name": "x", "iban": "x"}),
    )
    .await;
    assert_eq!(unknown.body["field"], "iban");
    assert_eq!(
        get(&env, &env.alice, "/v1/payees").await.body,
        json!({"payees": []})
    );

    let p = payee(&env, &env.alice).await;
    let base = json!({"source_account": ALICE_ACCOUNT, "amount": "10.00", "currency": "USD",
                      "first_due": format_date(next_jan_31()), "recurrence": "MONTHLY"});
    let cases = [
        ("amount", json!("10.001")),
        ("amount", json!("-5")),
        ("currency", json!("EUR")),
        ("first_due", json!("2020-01-01")),
        ("first_due", json!("2027-02-30")),
        ("recurrence", json!("DAILY")),
        ("count", json!(0)),
        ("until", json!("2020-01-01")),
        ("source_account", json!("abc")),
    ];
    for (field, value) in cases {
        let mut body = base.clone();
        body[field] = value.clone();
        let answer = schedule(&env, &env.alice, &p, body).await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{field}={value}: {:?}",
            answer.body
        );
        let named = answer.body["field"].as_str().unwrap_or("");
        assert_eq!(named, field, "{field}={value}: {:?}", answer.body);
    }
    let none = get(&env, &env.alice, &format!("/v1/payees/{p}/schedules")).await;
    assert_eq!(none.body, json!({"schedules": []}));
}

#[tokio::test]
async fn a_schedule_debiting_an_account_the_principal_does_not_own_is_refused() {
    let env = env().await;
    let p = payee(&env, &env.alice).await;
    let answer = schedule(
        &env,
        &env.alice,
        &p,
        json!({"source_account": BOB_ACCOUNT, "amount": "10.00", "currency": "USD",
               "first_due": format_date(next_jan_31()), "recurrence": "WEEKLY"}),
    )
    .await;
    // The same answer as for a missing account: Bob's account is not probed.
    assert_eq!(answer.status, StatusCode::NOT_FOUND, "{:?}", answer.body);
    assert_eq!(
        get(&env, &env.alice, &format!("/v1/payees/{p}/schedules"))
            .await
            .body,
        json!({"schedules": []})
    );
    // Nothing is due, ever.
    let report = runner(&env.parts)
        .run_due(at(next_jan_31()
            .replace_year(next_jan_31().year() + 1)
            .unwrap()))
        .await
        .unwrap();
    assert_eq!(report, RunReport::default());
}

#[tokio::test]
async fn the_bill_prefix_is_reserved_on_the_ingest_api() {
    let env = env().await;
    let key = format!("bill:{}:{}", Uuid::now_v7(), format_date(next_jan_31()));
    let answer = call(
        &env.app,
        Method::POST,
        "/v1/transactions",
        Some(&env.alice),
        &[("Idempotency-Key", &key)],
        Some(
            json!({"type": "PAYMENT", "source_account": ALICE_ACCOUNT,
                   "target_account": BILLER_ACCOUNT, "amount": "1.00", "currency": "USD"})
            .to_string(),
        ),
    )
    .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.body["field"], "Idempotency-Key");
    assert!(
        drain_queue(&env.parts.sqs, &env.parts.queue_url)
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn a_monthly_schedule_pays_each_occurrence_once_across_passes_and_a_crash() {
    let env = env().await;
    let p = payee(&env, &env.alice).await;
    let jan = next_jan_31();
    let created = schedule(
        &env,
        &env.alice,
        &p,
        json!({"source_account": ALICE_ACCOUNT, "amount": "42.50", "currency": "USD",
               "first_due": format_date(jan), "recurrence": "MONTHLY", "count": 3}),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    assert_eq!(created.body["next_due"], format_date(jan));
    let sid = created.body["schedule_id"].as_str().unwrap().to_owned();
    let schedule_id = Uuid::parse_str(&sid).unwrap();
    let run = runner(&env.parts);

    // Before the due date nothing happens.
    let early = run.run_due(at(jan.previous_day().unwrap())).await.unwrap();
    assert_eq!(early, RunReport::default());

    // Jan 31: paid; a second pass the same day finds nothing due.
    let first = run.run_due(at(jan)).await.unwrap();
    assert_eq!(first.enqueued, 1, "{first:?}");
    // The used due entry left the runner's index and expires (TTL) a week from now.
    let used = env
        .parts
        .ledger
        .client()
        .get_item()
        .table_name(env.parts.ledger.tables().accounts)
        .key(
            "pk",
            AttributeValue::S(format!("BILLDUE#{}", bills_store::due_shard(schedule_id))),
        )
        .key(
            "sk",
            AttributeValue::S(ballast_worker::store::keys::bill_due_sk(jan, schedule_id)),
        )
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    assert!(!used.contains_key(bills_store::DUE_QUEUE), "{used:?}");
    let expires: i64 = used[bills_store::EXPIRES_AT]
        .as_n()
        .unwrap()
        .parse()
        .unwrap();
    let week = OffsetDateTime::now_utc().unix_timestamp() + 7 * 86_400;
    assert!((week - 60..=week + 60).contains(&expires), "{used:?}");
    // The next occurrence's entry is in the index.
    let today = OffsetDateTime::now_utc().date();
    assert_eq!(
        bills_store::oldest_due(&env.parts.ledger, jan.replace_year(jan.year() + 1).unwrap())
            .await
            .unwrap()
            .map(|d| d.month()),
        Some(Month::February)
    );
    assert_eq!(
        bills_store::oldest_due(&env.parts.ledger, today)
            .await
            .unwrap(),
        None
    );
    assert_eq!(run.run_due(at(jan)).await.unwrap(), RunReport::default());
    let view = get(&env, &env.alice, &format!("/v1/schedules/{sid}")).await;
    let feb = parse_date(view.body["next_due"].as_str().unwrap()).unwrap();
    assert_eq!(feb.month(), Month::February, "clamped to the month's end");
    assert!(feb.day() == 28 || feb.day() == 29);

    // Feb 28/29: the runner enqueues, then dies before it advances the schedule.
    let alice = Subject::parse("alice").unwrap();
    let stored = bills_store::schedule(&env.parts.ledger, &alice, schedule_id)
        .await
        .unwrap()
        .unwrap();
    let crashed = run.enqueue_occurrence(&alice, &stored, feb).await.unwrap();
    assert!(!crashed.replayed);
    // The restarted runner enqueues the same occurrence again: the ingest record absorbs it.
    let second = run.run_due(at(feb)).await.unwrap();
    assert_eq!((second.enqueued, second.replayed), (0, 1), "{second:?}");
    let view = get(&env, &env.alice, &format!("/v1/schedules/{sid}")).await;
    assert_eq!(
        view.body["past"][1]["transaction_id"].as_str(),
        crashed
            .occurrence
            .transaction_id
            .map(|t| t.to_string())
            .as_deref(),
        "the occurrence keeps the transaction of the first enqueue"
    );

    // Mar 31 (the anchor day again), the last of three; later passes pay nothing.
    let mar = Date::from_calendar_date(jan.year(), Month::March, 31).unwrap();
    let third = run.run_due(at(mar)).await.unwrap();
    assert_eq!(third.enqueued, 1, "{third:?}");
    let later = run
        .run_due(at(
            Date::from_calendar_date(jan.year(), Month::July, 1).unwrap()
        ))
        .await
        .unwrap();
    assert_eq!(later, RunReport::default());

    let view = get(&env, &env.alice, &format!("/v1/schedules/{sid}")).await;
    assert_eq!(view.body["status"], "COMPLETED", "{:?}", view.body);
    assert_eq!(view.body["next_due"], Value::Null);
    let dates: Vec<&str> = view.body["past"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["date"].as_str().unwrap())
        .collect();
    assert_eq!(
        dates,
        [format_date(jan), format_date(feb), format_date(mar)]
    );

    // Exactly one message per occurrence, each with its derived key.
    let keys = deliver(&env.parts).await;
    let expected: HashSet<String> = [jan, feb, mar]
        .iter()
        .map(|d| format!("bill:{sid}:{}", format_date(*d)))
        .collect();
    assert_eq!(keys.len(), 3, "{keys:?}");
    assert_eq!(keys.into_iter().collect::<HashSet<_>>(), expected);
    assert_eq!(balance(&env.parts, ALICE_ACCOUNT).await, dec("872.50"));
    assert_eq!(balance(&env.parts, BILLER_ACCOUNT).await, dec("127.50"));
    money_conserved(&env.parts).await;
}

#[tokio::test]
async fn missed_periods_are_paid_once_each_oldest_first() {
    let env = env().await;
    let p = payee(&env, &env.alice).await;
    let first = next_jan_31();
    let created = schedule(
        &env,
        &env.alice,
        &p,
        json!({"source_account": ALICE_ACCOUNT, "amount": "5.00", "currency": "USD",
               "first_due": format_date(first), "recurrence": "WEEKLY"}),
    )
    .await;
    let sid = created.body["schedule_id"].as_str().unwrap().to_owned();
    // The runner was down for three weeks and a day: four occurrences are due.
    let now = at(first + time::Duration::days(22));
    let payments = prometheus_client::metrics::family::Family::<
        ballast_worker::observability::OutcomeLabels,
        prometheus_client::metrics::counter::Counter,
    >::default();
    let report = runner(&env.parts)
        .with_metrics(payments.clone())
        .run_due(now)
        .await
        .unwrap();
    assert_eq!(report.enqueued, 4, "{report:?}");
    let counted = |outcome| {
        payments
            .get_or_create(&ballast_worker::observability::OutcomeLabels { outcome })
            .get()
    };
    assert_eq!((counted("enqueued"), counted("failed")), (4, 0));
    let keys = deliver(&env.parts).await;
    let expected: Vec<String> = (0..4)
        .map(|w| {
            format!(
                "bill:{sid}:{}",
                format_date(first + time::Duration::weeks(w))
            )
        })
        .collect();
    assert_eq!(keys, expected, "oldest first, once each");
    let view = get(&env, &env.alice, &format!("/v1/schedules/{sid}")).await;
    assert_eq!(
        view.body["next_due"],
        format_date(first + time::Duration::weeks(4))
    );
    assert_eq!(balance(&env.parts, ALICE_ACCOUNT).await, dec("980.00"));
    money_conserved(&env.parts).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_runners_at_once_pay_each_occurrence_once() {
    // Six schedules in four shards: at least one shard holds two, so pages of two continue.
    const SCHEDULES: usize = 6;
    const WEEKS: i64 = 3;
    let env = env().await;
    let p = payee(&env, &env.alice).await;
    let first = next_jan_31();
    let mut ids = Vec::new();
    for _ in 0..SCHEDULES {
        let created = schedule(
            &env,
            &env.alice,
            &p,
            json!({"source_account": ALICE_ACCOUNT, "amount": "1.00", "currency": "USD",
                   "first_due": format_date(first), "recurrence": "WEEKLY"}),
        )
        .await;
        ids.push(created.body["schedule_id"].as_str().unwrap().to_owned());
    }
    let now = at(first + time::Duration::weeks(WEEKS - 1));
    // Pages of two due entries: each pass pages through its shards while both settle entries.
    let (a, b) = (
        runner(&env.parts).with_due_page(2),
        runner(&env.parts).with_due_page(2),
    );
    let (ra, rb) = tokio::join!(a.run_due(now), b.run_due(now));
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    let occurrences = u64::try_from(SCHEDULES).unwrap() * u64::try_from(WEEKS).unwrap();
    assert_eq!(ra.failed + rb.failed, 0, "{ra:?} {rb:?}");
    // Every occurrence is advanced exactly once, by one of them.
    assert_eq!(
        ra.enqueued + ra.replayed + rb.enqueued + rb.replayed,
        occurrences,
        "{ra:?} {rb:?}"
    );
    let keys = deliver(&env.parts).await;
    let mut per_key: BTreeMap<&str, usize> = BTreeMap::new();
    for k in &keys {
        *per_key.entry(k.as_str()).or_default() += 1;
    }
    assert!(
        per_key.values().all(|n| *n == 1),
        "a key sent twice: {per_key:?}"
    );
    assert_eq!(keys.len(), SCHEDULES * usize::try_from(WEEKS).unwrap());
    for sid in &ids {
        let view = get(&env, &env.alice, &format!("/v1/schedules/{sid}")).await;
        assert_eq!(
            view.body["past"].as_array().unwrap().len(),
            3,
            "{:?}",
            view.body
        );
    }
    assert_eq!(balance(&env.parts, BILLER_ACCOUNT).await, dec("18.00"));
    money_conserved(&env.parts).await;
}

/// Shutdown during a pass stops it between two schedules; the next pass pays what was left,
/// once.
#[tokio::test]
async fn a_pass_stopped_for_shutdown_leaves_the_rest_to_the_next_pass() {
    let env = env().await;
    let p = payee(&env, &env.alice).await;
    let first = next_jan_31();
    for _ in 0..2 {
        schedule(
            &env,
            &env.alice,
            &p,
            json!({"source_account": ALICE_ACCOUNT, "amount": "1.00", "currency": "USD",
                   "first_due": format_date(first), "recurrence": "WEEKLY"}),
        )
        .await;
    }
    let runner = runner(&env.parts);
    let stop = tokio_util::sync::CancellationToken::new();
    stop.cancel();
    let stopped = runner.run_due_until(at(first), &stop).await.unwrap();
    assert!(stopped.interrupted, "{stopped:?}");
    assert_eq!(stopped.enqueued + stopped.replayed, 0, "{stopped:?}");
    assert!(deliver(&env.parts).await.is_empty());

    let next = runner.run_due(at(first)).await.unwrap();
    assert!(!next.interrupted, "{next:?}");
    assert_eq!((next.enqueued, next.failed), (2, 0), "{next:?}");
    assert_eq!(deliver(&env.parts).await.len(), 2);
    money_conserved(&env.parts).await;
}

#[tokio::test]
async fn a_cancelled_schedule_pays_nothing_more() {
    let env = env().await;
    let p = payee(&env, &env.alice).await;
    let first = next_jan_31();
    let created = schedule(
        &env,
        &env.alice,
        &p,
        json!({"source_account": ALICE_ACCOUNT, "amount": "7.00", "currency": "USD",
               "first_due": format_date(first), "recurrence": "WEEKLY"}),
    )
    .await;
    let sid = created.body["schedule_id"].as_str().unwrap().to_owned();
    let run = runner(&env.parts);
    assert_eq!(run.run_due(at(first)).await.unwrap().enqueued, 1);
    let cancelled = delete(&env, &env.alice, &format!("/v1/schedules/{sid}")).await;
    assert_eq!(cancelled.status, StatusCode::OK, "{:?}", cancelled.body);
    assert_eq!(cancelled.body["status"], "CANCELLED");
    let twice = delete(&env, &env.alice, &format!("/v1/schedules/{sid}")).await;
    assert_eq!(twice.status, StatusCode::CONFLICT);
    let later = run
        .run_due(at(first + time::Duration::weeks(5)))
        .await
        .unwrap();
    assert_eq!(later.enqueued + later.replayed, 0, "{later:?}");
    // The occurrence enqueued before the cancel stands; nothing after it.
    let keys = deliver(&env.parts).await;
    assert_eq!(keys, [format!("bill:{sid}:{}", format_date(first))]);
    let view = get(&env, &env.alice, &format!("/v1/schedules/{sid}")).await;
    assert_eq!(view.body["past"].as_array().unwrap().len(), 1);
    assert_eq!(balance(&env.parts, ALICE_ACCOUNT).await, dec("993.00"));
    money_conserved(&env.parts).await;
}

#[tokio::test]
async fn the_runner_inside_serve_pays_on_the_injected_clock() {
    let env = env().await;
    let p = payee(&env, &env.alice).await;
    let first = next_jan_31();
    let created = schedule(
        &env,
        &env.alice,
        &p,
        json!({"source_account": ALICE_ACCOUNT, "amount": "3.00", "currency": "USD",
               "first_due": format_date(first), "recurrence": "ONCE"}),
    )
    .await;
    let sid = created.body["schedule_id"].as_str().unwrap().to_owned();
    // The loop `serve` runs, on a manual clock standing at the due date: no sleeping until then.
    let clock = Arc::new(ManualClock::new(
        ballast_runtime::Timestamp::from_system_time(at(first).into()),
    ));
    let shutdown = tokio_util::sync::CancellationToken::new();
    let task = {
        let run = runner(&env.parts);
        let shutdown = shutdown.clone();
        tokio::spawn(async move { run.run(clock, Duration::from_secs(3600), shutdown).await })
    };
    let uri = format!("/v1/schedules/{sid}");
    let (app, alice, uri) = (&env.app, &env.alice, uri.as_str());
    crate::common::eventually(
        "the runner completes the schedule",
        Duration::from_secs(20),
        || async move {
            let view = call(app, Method::GET, uri, Some(alice), &[], None).await;
            view.body["status"] == "COMPLETED"
        },
    )
    .await;
    shutdown.cancel();
    task.await.unwrap();
    let keys = deliver(&env.parts).await;
    assert_eq!(keys, [format!("bill:{sid}:{}", format_date(first))]);
}
