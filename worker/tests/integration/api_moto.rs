//! The ingest and accounts API through the real router (`tower::ServiceExt::oneshot`) against
//! moto: SQS for the queue, DynamoDB for the ledger and the ingest records.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a failed test (clippy.toml covers only #[test] fns, not helpers)"
)]

use crate::common;
use crate::common::api::{Answer, SECRET, admin, call, token};

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::types::QueueAttributeName;
use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use ballast_worker::api::auth::ALL_SCOPES;
use ballast_worker::api::{ApiConfig, ManualClock, RateLimit, mint_hs256, openapi};
use ballast_worker::ledger::{Ledger, Outcome};
use ballast_worker::transaction::{AccountNumber, Currency, Subject, parse_transaction};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use tower::ServiceExt;

struct Env {
    app: Router,
    ledger: Ledger,
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    clock: Arc<ManualClock>,
}

async fn env_with(config: ApiConfig) -> Env {
    let parts = common::api::parts().await;
    let clock = Arc::new(ManualClock::default());
    let app = parts.router(config, clock.clone());
    let common::api::Parts {
        ledger,
        sqs,
        queue_url,
    } = parts;
    Env {
        app,
        ledger,
        sqs,
        queue_url,
        clock,
    }
}

async fn env() -> Env {
    env_with(ApiConfig::default()).await
}

async fn open_account(env: &Env) -> String {
    let a = call(
        &env.app,
        Method::POST,
        "/v1/accounts",
        Some(&admin()),
        &[],
        Some(json!({"currency": "USD", "type": "checking"}).to_string()),
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED, "{:?}", a.body);
    a.body["account_id"].as_str().unwrap().to_owned()
}

async fn submit(env: &Env, idem: &str, body: Value) -> Answer {
    call(
        &env.app,
        Method::POST,
        "/v1/transactions",
        Some(&admin()),
        &[("Idempotency-Key", idem)],
        Some(body.to_string()),
    )
    .await
}

async fn queue_depth(env: &Env) -> u64 {
    let out = env
        .sqs
        .get_queue_attributes()
        .queue_url(&env.queue_url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .unwrap();
    out.attributes().unwrap()[&QueueAttributeName::ApproximateNumberOfMessages]
        .parse()
        .unwrap()
}

/// Receives every message currently in the queue.
async fn drain(env: &Env) -> Vec<String> {
    common::drain_queue(&env.sqs, &env.queue_url).await
}

#[tokio::test]
async fn accounts_deposit_and_transfer_are_enqueued_in_the_seed_format() {
    let env = env().await;
    let a = open_account(&env).await;
    let b = open_account(&env).await;
    assert_ne!(a, b);
    assert!((10..=12).contains(&a.len()) && a.bytes().all(|c| c.is_ascii_digit()));

    let got = call(
        &env.app,
        Method::GET,
        &format!("/v1/accounts/{a}"),
        Some(&admin()),
        &[],
        None,
    )
    .await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(
        (
            &got.body["balance"],
            &got.body["currency"],
            &got.body["type"],
            &got.body["status"]
        ),
        (
            &json!("0.00"),
            &json!("USD"),
            &json!("checking"),
            &json!("OPEN")
        )
    );

    let deposit = submit(
        &env,
        "dep-1",
        json!({"type": "DEPOSIT", "target_account": a, "amount": "100.00", "currency": "USD"}),
    )
    .await;
    assert_eq!(deposit.status, StatusCode::ACCEPTED, "{:?}", deposit.body);
    let deposit_id = deposit.body["transaction_id"].as_str().unwrap().to_owned();
    assert_eq!(
        deposit.body["status_url"],
        format!("/v1/transactions/{deposit_id}")
    );
    assert_eq!(
        deposit.headers[header::LOCATION],
        format!("/v1/transactions/{deposit_id}")
    );

    // A JSON number amount is read exactly.
    let transfer = submit(
        &env,
        "xfer-1",
        json!({"type": "TRANSFER", "source_account": a, "target_account": b,
               "amount": 40.5, "currency": "USD"}),
    )
    .await;
    assert_eq!(transfer.status, StatusCode::ACCEPTED, "{:?}", transfer.body);
    let transfer_id = transfer.body["transaction_id"].as_str().unwrap().to_owned();
    assert_eq!(queue_depth(&env).await, 2);

    // Before the worker runs: PENDING.
    let pending = call(
        &env.app,
        Method::GET,
        &format!("/v1/transactions/{deposit_id}"),
        Some(&admin()),
        &[],
        None,
    )
    .await;
    assert_eq!(pending.status, StatusCode::OK);
    assert_eq!(pending.body["status"], "PENDING");

    // The messages are the seed format, parsed by the worker's own parser.
    let mut bodies = drain(&env).await;
    bodies.sort_by_key(|b| !b.contains("DEPOSIT"));
    let raw: Value = serde_json::from_str(&bodies[0]).unwrap();
    let keys: Vec<&str> = raw
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "transaction_id",
            "type",
            "target_account",
            "amount",
            "currency",
            "timestamp",
            "idempotency_key",
            "principal"
        ]
    );
    let dep = parse_transaction(bodies[0].as_bytes()).unwrap();
    assert_eq!(dep.transaction_id.to_string(), deposit_id);
    assert_eq!(dep.idempotency_key.as_str(), "dep-1");
    assert_eq!(dep.amount, Some(Decimal::new(10000, 2)));
    assert!(bodies[0].contains(r#""amount":100.00"#), "{}", bodies[0]);
    let xfer = parse_transaction(bodies[1].as_bytes()).unwrap();
    assert_eq!(xfer.transaction_id.to_string(), transfer_id);
    assert_eq!(xfer.amount, Some(Decimal::new(4050, 2)));

    // Play the worker, then the status is the ledger's result.
    assert_eq!(env.ledger.apply(&dep).await.unwrap(), Outcome::Completed);
    assert_eq!(env.ledger.apply(&xfer).await.unwrap(), Outcome::Completed);
    let done = call(
        &env.app,
        Method::GET,
        &format!("/v1/transactions/{transfer_id}"),
        Some(&admin()),
        &[],
        None,
    )
    .await;
    assert_eq!(done.body["status"], "COMPLETED", "{:?}", done.body);
    assert_eq!(done.body["amount"], "40.50");
    let b_now = call(
        &env.app,
        Method::GET,
        &format!("/v1/accounts/{b}"),
        Some(&admin()),
        &[],
        None,
    )
    .await;
    assert_eq!(b_now.body["balance"], "40.50");

    let unknown = call(
        &env.app,
        Method::GET,
        "/v1/transactions/0190a5d0-ac96-774b-bcce-b302099a8057",
        Some(&admin()),
        &[],
        None,
    )
    .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert!(unknown.is_problem() && unknown.code() == "not_found");
}

#[tokio::test]
async fn idempotent_replay_answers_the_same_id_and_enqueues_once() {
    let env = env().await;
    let a = open_account(&env).await;
    let body =
        json!({"type": "DEPOSIT", "target_account": a, "amount": "25.00", "currency": "USD"});
    let first = submit(&env, "same-key", body.clone()).await;
    assert_eq!(first.status, StatusCode::ACCEPTED);
    // The same body written differently (field order, number instead of string).
    let same = json!({"currency": "USD", "amount": 25, "target_account": a, "type": "DEPOSIT"});
    for replay_body in [body.clone(), same] {
        let replay = submit(&env, "same-key", replay_body).await;
        assert_eq!(replay.status, StatusCode::ACCEPTED);
        assert_eq!(replay.body["transaction_id"], first.body["transaction_id"]);
        assert_eq!(replay.headers["idempotent-replayed"], "true");
    }
    assert_eq!(queue_depth(&env).await, 1);

    let other = submit(
        &env,
        "same-key",
        json!({"type": "DEPOSIT", "target_account": a, "amount": "26.00", "currency": "USD"}),
    )
    .await;
    assert_eq!(other.status, StatusCode::CONFLICT);
    assert!(other.is_problem());
    assert_eq!(other.code(), "idempotency_key_reused");
    assert_eq!(queue_depth(&env).await, 1);

    let missing = call(
        &env.app,
        Method::POST,
        "/v1/transactions",
        Some(&admin()),
        &[],
        Some(body.to_string()),
    )
    .await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert!(missing.is_problem());
    assert_eq!(missing.code(), "idempotency_key_missing");
    assert_eq!(queue_depth(&env).await, 1);
}

#[tokio::test]
async fn validation_problems_name_the_field() {
    let env = env().await;
    let a = open_account(&env).await;
    let cases = [
        (
            json!({"type": "DEPOSIT", "target_account": a, "amount": "1.00", "currency": "USD", "memo": "x"}),
            "memo",
            "unknown_field",
        ),
        (
            json!({"type": "DEPOSIT", "target_account": a, "amount": "1.00", "currency": "USD",
                   "transaction_id": "0190a5d0-ac96-774b-bcce-b302099a8057"}),
            "transaction_id",
            "unknown_field",
        ),
        (
            json!({"type": "DEPOSIT", "target_account": a, "amount": "10.001", "currency": "USD"}),
            "amount",
            "too_many_decimal_places",
        ),
        (
            json!({"type": "DEPOSIT", "target_account": a, "amount": "-5", "currency": "USD"}),
            "amount",
            "amount_not_positive",
        ),
        (
            json!({"type": "TRANSFER", "source_account": a, "target_account": a, "amount": "1", "currency": "USD"}),
            "target_account",
            "same_account",
        ),
        (
            json!({"type": "DEPOSIT", "target_account": "12", "amount": "1", "currency": "USD"}),
            "target_account",
            "invalid_account_number",
        ),
        (
            json!({"type": "REFUND", "target_account": a, "amount": "1", "currency": "USD"}),
            "type",
            "unknown_transaction_type",
        ),
        (
            json!({"type": "DEPOSIT", "target_account": a, "amount": "1", "currency": "XXY"}),
            "currency",
            "unknown_currency",
        ),
    ];
    for (i, (body, field, reason)) in cases.into_iter().enumerate() {
        let answer = submit(&env, &format!("v-{i}"), body).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{field}");
        assert!(answer.is_problem(), "{:?}", answer.body);
        assert_eq!(answer.code(), "validation_failed");
        assert_eq!(answer.body["field"], field, "{:?}", answer.body);
        assert_eq!(answer.body["reason"], reason, "{:?}", answer.body);
    }
    let bad_account = call(
        &env.app,
        Method::POST,
        "/v1/accounts",
        Some(&admin()),
        &[],
        Some(json!({"currency": "USD", "type": "checking", "owner": "bob"}).to_string()),
    )
    .await;
    assert_eq!(bad_account.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad_account.body["field"], "owner");
    assert_eq!(bad_account.body["reason"], "unknown_field");
    let malformed = submit(&env, "m-1", json!(["not", "an", "object"])).await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    assert_eq!(malformed.code(), "malformed_json");
    assert_eq!(queue_depth(&env).await, 0);
}

#[tokio::test]
async fn tokens_scopes_and_open_endpoints() {
    let env = env().await;
    let uri = "/v1/accounts/123456789012";
    let none = call(&env.app, Method::GET, uri, None, &[], None).await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
    assert!(none.is_problem() && none.code() == "unauthorized");
    assert!(
        none.headers[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );

    let forged = mint_hs256(
        b"another-secret-another-secret-another",
        "alice",
        ALL_SCOPES,
        Duration::from_secs(60),
        Some("ballast"),
    )
    .unwrap();
    let wrong_aud = mint_hs256(
        SECRET,
        "alice",
        ALL_SCOPES,
        Duration::from_secs(60),
        Some("other"),
    )
    .unwrap();
    let expired = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({"sub": "alice", "scope": ALL_SCOPES, "aud": "ballast", "exp": 1_000_000_000u64}),
        &jsonwebtoken::EncodingKey::from_secret(SECRET),
    )
    .unwrap();
    for bad in [forged, wrong_aud, expired, "garbage".to_owned()] {
        let answer = call(&env.app, Method::GET, uri, Some(&bad), &[], None).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{:?}", answer.body);
        assert!(answer.headers.contains_key(header::WWW_AUTHENTICATE));
    }

    let reader = token("carol", "accounts:read");
    let forbidden = call(
        &env.app,
        Method::POST,
        "/v1/accounts",
        Some(&reader),
        &[],
        Some(json!({"currency": "USD", "type": "checking"}).to_string()),
    )
    .await;
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
    assert!(forbidden.is_problem() && forbidden.code() == "forbidden");
    let not_found = call(&env.app, Method::GET, uri, Some(&reader), &[], None).await;
    assert_eq!(not_found.status, StatusCode::NOT_FOUND);
    let no_tx_scope = call(
        &env.app,
        Method::POST,
        "/v1/transactions",
        Some(&reader),
        &[("Idempotency-Key", "k")],
        Some("{}".into()),
    )
    .await;
    assert_eq!(no_tx_scope.status, StatusCode::FORBIDDEN);

    for open in ["/healthz", "/readyz", "/metrics", "/openapi.json"] {
        let answer = call(&env.app, Method::GET, open, None, &[], None).await;
        assert_eq!(answer.status, StatusCode::OK, "{open}: {:?}", answer.body);
    }
    let metrics = call(&env.app, Method::GET, "/metrics", None, &[], None).await;
    let text = metrics.body.as_str().unwrap();
    assert!(text.contains("ballast_api_http_requests_total"), "{text}");
    let doc = call(&env.app, Method::GET, "/openapi.json", None, &[], None).await;
    assert_eq!(
        doc.body,
        serde_json::from_str::<Value>(&openapi::document()).unwrap()
    );
}

#[tokio::test]
async fn rate_limit_per_client_with_retry_after() {
    let env = env_with(ApiConfig {
        rate_limit: RateLimit {
            per_second: 1.0,
            burst: 2,
        },
        ..ApiConfig::default()
    })
    .await;
    let uri = "/v1/accounts/123456789012";
    let alice = token("alice", ALL_SCOPES);
    for _ in 0..2 {
        let ok = call(&env.app, Method::GET, uri, Some(&alice), &[], None).await;
        assert_eq!(ok.status, StatusCode::NOT_FOUND);
    }
    let limited = call(&env.app, Method::GET, uri, Some(&alice), &[], None).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.is_problem() && limited.code() == "rate_limited");
    assert_eq!(limited.headers[header::RETRY_AFTER], "1");
    // Another client has its own bucket.
    let bob = call(
        &env.app,
        Method::GET,
        uri,
        Some(&token("bob", ALL_SCOPES)),
        &[],
        None,
    )
    .await;
    assert_eq!(bob.status, StatusCode::NOT_FOUND);
    env.clock.advance(Duration::from_secs(1));
    let again = call(&env.app, Method::GET, uri, Some(&alice), &[], None).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let env = env().await;
    let big = format!(
        r#"{{"type":"DEPOSIT","target_account":"123456789012","currency":"USD","amount":"1{}"}}"#,
        "0".repeat(70 * 1024)
    );
    let answer = call(
        &env.app,
        Method::POST,
        "/v1/transactions",
        Some(&admin()),
        &[("Idempotency-Key", "big")],
        Some(big),
    )
    .await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(answer.is_problem() && answer.code() == "payload_too_large");
    // Without Content-Length (streamed body) the limit holds too.
    let chunks: Vec<Result<String, std::io::Error>> =
        (0..80).map(|_| Ok("x".repeat(1024))).collect();
    let req = Request::builder()
        .method(Method::POST)
        .uri("/v1/accounts")
        .header(header::AUTHORIZATION, format!("Bearer {}", admin()))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(futures::stream::iter(chunks)))
        .unwrap();
    let response = env.app.clone().oneshot(req).await.unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(queue_depth(&env).await, 0);
}

#[tokio::test]
async fn close_requires_a_zero_balance() {
    let env = env().await;
    let funded = AccountNumber::parse("550000000001").unwrap();
    env.ledger
        .create_account(
            &funded,
            Currency::from_code("USD").unwrap(),
            "checking",
            Decimal::new(500, 2),
            &Subject::parse("alice").unwrap(),
        )
        .await
        .unwrap();
    let refused = call(
        &env.app,
        Method::DELETE,
        &format!("/v1/accounts/{funded}"),
        Some(&admin()),
        &[],
        None,
    )
    .await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert!(refused.is_problem() && refused.code() == "conflict");

    let empty = open_account(&env).await;
    let closed = call(
        &env.app,
        Method::DELETE,
        &format!("/v1/accounts/{empty}"),
        Some(&admin()),
        &[],
        None,
    )
    .await;
    assert_eq!(closed.status, StatusCode::OK, "{:?}", closed.body);
    assert_eq!(closed.body["status"], "CLOSED");
    let twice = call(
        &env.app,
        Method::DELETE,
        &format!("/v1/accounts/{empty}"),
        Some(&admin()),
        &[],
        None,
    )
    .await;
    assert_eq!(twice.status, StatusCode::CONFLICT);
    let missing = call(
        &env.app,
        Method::DELETE,
        "/v1/accounts/999999999999",
        Some(&admin()),
        &[],
        None,
    )
    .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn history_is_paginated() {
    let env = env().await;
    let a = open_account(&env).await;
    for i in 0..5 {
        let accepted = submit(
            &env,
            &format!("hist-{i}"),
            json!({"type": "DEPOSIT", "target_account": a, "amount": format!("{}.00", i + 1), "currency": "USD"}),
        )
        .await;
        assert_eq!(accepted.status, StatusCode::ACCEPTED);
    }
    for body in drain(&env).await {
        let tx = parse_transaction(body.as_bytes()).unwrap();
        assert_eq!(env.ledger.apply(&tx).await.unwrap(), Outcome::Completed);
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut uri = format!("/v1/accounts/{a}/transactions?limit=2");
        if let Some(c) = &cursor {
            uri.push_str(&format!("&cursor={c}"));
        }
        let page = call(&env.app, Method::GET, &uri, Some(&admin()), &[], None).await;
        assert_eq!(page.status, StatusCode::OK, "{:?}", page.body);
        let entries = page.body["entries"].as_array().unwrap();
        assert!(entries.len() <= 2);
        for e in entries {
            assert_eq!(e["direction"], "CREDIT");
            seen.push(e["amount"].as_str().unwrap().to_owned());
        }
        pages += 1;
        match page.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
        assert!(pages < 10);
    }
    seen.sort();
    assert_eq!(seen, ["1.00", "2.00", "3.00", "4.00", "5.00"]);
    assert!(pages >= 3);

    // A range that ends before the entries is empty; a bad range is a problem.
    let before = call(
        &env.app,
        Method::GET,
        &format!("/v1/accounts/{a}/transactions?from=2020-01-01T00:00:00Z&to=2020-01-02T00:00:00Z"),
        Some(&admin()),
        &[],
        None,
    )
    .await;
    assert_eq!(before.body["entries"], json!([]));
    let bad = call(
        &env.app,
        Method::GET,
        &format!("/v1/accounts/{a}/transactions?from=yesterday"),
        Some(&admin()),
        &[],
        None,
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.body["field"], "from");
}

/// Query bounds that parse as RFC 3339 but overflow when converted to UTC get a 400 problem
/// naming the field (they used to panic the handler and drop the connection).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_bounds_that_overflow_in_utc_are_problems() {
    let env = env().await;
    let a = open_account(&env).await;
    for (query, field, code) in [
        ("to=9999-12-31T23:59:59-23:59", "to", "invalid_timestamp"),
        (
            "from=0001-01-01T00:00:00%2B23:59",
            "from",
            "invalid_timestamp",
        ),
        (
            "from=2024-01-01T00:00:00Z&to=9999-12-31T23:59:59.5-00:01",
            "to",
            "invalid_timestamp",
        ),
        // Without `from`, the default range would start before year 0001.
        ("to=0001-01-05T00:00:00Z", "to", "invalid_range"),
    ] {
        let answer = call(
            &env.app,
            Method::GET,
            &format!("/v1/accounts/{a}/transactions?{query}"),
            Some(&admin()),
            &[],
            None,
        )
        .await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{query}: {:?}",
            answer.body
        );
        assert!(answer.is_problem(), "{query}: {:?}", answer.body);
        assert_eq!(answer.body["field"], field, "{query}");
        assert_eq!(answer.code(), "validation_failed", "{query}");
        assert_eq!(answer.body["reason"], code, "{query}: {:?}", answer.body);
    }
    // The edge of the range still answers.
    let edge = call(
        &env.app,
        Method::GET,
        &format!("/v1/accounts/{a}/transactions?to=9999-12-31T23:59:59Z"),
        Some(&admin()),
        &[],
        None,
    )
    .await;
    assert_eq!(edge.status, StatusCode::OK, "{:?}", edge.body);
}

#[tokio::test]
async fn a_conversion_is_submitted_with_target_currency_and_its_status_shows_both_legs() {
    let env = env().await;
    let a = open_account(&env).await;
    let eur = call(
        &env.app,
        Method::POST,
        "/v1/accounts",
        Some(&admin()),
        &[],
        Some(json!({"currency": "EUR", "type": "checking"}).to_string()),
    )
    .await;
    let b = eur.body["account_id"].as_str().unwrap().to_owned();
    let now = time::OffsetDateTime::now_utc();
    let fmt = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let yaml = format!(
        "rates:\n  - {{base: USD, quote: EUR, rate: \"0.9215\", source: desk, valid_from: {}, \
         valid_until: {}}}\n",
        fmt(now - time::Duration::hours(1)),
        fmt(now + time::Duration::hours(1))
    );
    let rates = ballast_worker::fx::file::parse("rates.yaml", &yaml).unwrap();
    ballast_worker::fx::admin::load(&env.ledger, "rates.yaml", &rates, now)
        .await
        .unwrap();
    let deposit = submit(
        &env,
        "fx-dep",
        json!({"type": "DEPOSIT", "target_account": a, "amount": "100.00", "currency": "USD"}),
    )
    .await;
    assert_eq!(deposit.status, StatusCode::ACCEPTED);
    let body = json!({"type": "TRANSFER", "source_account": a, "target_account": b,
                      "amount": "100.00", "currency": "USD", "target_currency": "EUR"});
    let conversion = submit(&env, "fx-1", body.clone()).await;
    assert_eq!(
        conversion.status,
        StatusCode::ACCEPTED,
        "{:?}",
        conversion.body
    );
    let id = conversion.body["transaction_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // The same key with another target currency is another body: a conflict, not a replay.
    let mut other = body.clone();
    other["target_currency"] = json!("GBP");
    let conflict = submit(&env, "fx-1", other).await;
    assert_eq!(conflict.status, StatusCode::CONFLICT, "{:?}", conflict.body);
    assert_eq!(conflict.code(), "idempotency_key_reused");
    assert!(submit(&env, "fx-1", body).await.replayed());
    // A DEPOSIT cannot convert.
    let bad = submit(
        &env,
        "fx-bad",
        json!({"type": "DEPOSIT", "target_account": b, "amount": "1.00", "currency": "USD",
               "target_currency": "EUR"}),
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{:?}", bad.body);

    let mut bodies = drain(&env).await;
    bodies.sort_by_key(|b| !b.contains("DEPOSIT"));
    for raw in &bodies {
        let tx = parse_transaction(raw.as_bytes()).unwrap();
        assert_eq!(env.ledger.apply(&tx).await.unwrap(), Outcome::Completed);
    }
    assert!(
        bodies[1].contains(r#""target_currency":"EUR""#),
        "{}",
        bodies[1]
    );
    let done = call(
        &env.app,
        Method::GET,
        &format!("/v1/transactions/{id}"),
        Some(&admin()),
        &[],
        None,
    )
    .await;
    assert_eq!(done.body["status"], "COMPLETED", "{:?}", done.body);
    assert_eq!(
        (&done.body["amount"], &done.body["currency"]),
        (&json!("100.00"), &json!("USD"))
    );
    let fx = &done.body["conversion"];
    assert_eq!(
        (
            &fx["target_currency"],
            &fx["target_amount"],
            &fx["rate"],
            &fx["rounding"]
        ),
        (
            &json!("EUR"),
            &json!("92.15"),
            &json!("0.9215"),
            &json!("HALF_EVEN")
        )
    );
    let b_now = call(
        &env.app,
        Method::GET,
        &format!("/v1/accounts/{b}"),
        Some(&admin()),
        &[],
        None,
    )
    .await;
    assert_eq!(b_now.body["balance"], "92.15");
}
