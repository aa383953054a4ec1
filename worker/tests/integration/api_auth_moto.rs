//! Per-account authorization, JWKS key rotation, issuer checks and HTTPS, against moto.
//!
//! The API runs through its real router (`oneshot`) or a real listener (`serve`, `serve_tls`);
//! the worker side is played with `Ledger::apply` on the exact messages the API enqueued.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a failed test (clippy.toml covers only #[test] fns, not helpers)"
)]

use crate::common;
use crate::common::api::{Answer, SECRET, token};
use crate::common::dec;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::http::{Method, Request, StatusCode, header};
use ballast_worker::api::auth::{ALL_SCOPES, SCOPE_ACCOUNTS_ADMIN};
use ballast_worker::api::jwks::{JwksKeys, JwksSource, JwksTimers};
use ballast_worker::api::{
    ApiConfig, ApiState, Authenticator, Clock, ManualClock, router, serve, serve_tls,
};
use ballast_worker::ledger::{DeclineReason, Ledger, Outcome, ResultStatus};
use ballast_worker::transaction::{AccountNumber, Currency, Subject, parse_transaction};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

struct Env {
    ledger: Ledger,
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
}

impl Env {
    async fn new() -> Env {
        let common::api::Parts {
            ledger,
            sqs,
            queue_url,
        } = common::api::parts().await;
        Env {
            ledger,
            sqs,
            queue_url,
        }
    }

    fn state(&self, auth: Authenticator, clock: Arc<dyn Clock>) -> ApiState {
        ApiState::new(
            self.ledger.clone(),
            self.sqs.clone(),
            self.queue_url.clone(),
            auth,
            ApiConfig::default(),
            clock,
        )
    }

    fn hs256_app(&self) -> Router {
        router(self.state(
            Authenticator::hs256(SECRET, Some("ballast")).unwrap(),
            Arc::new(ManualClock::default()),
        ))
    }

    /// Receives (and deletes) every message in the queue, parsed by the worker's parser.
    async fn drain(&self) -> Vec<ballast_worker::transaction::Transaction> {
        let mut out = Vec::new();
        loop {
            let got = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(0)
                .send()
                .await
                .unwrap();
            if got.messages().is_empty() {
                return out;
            }
            for m in got.messages() {
                out.push(parse_transaction(m.body().unwrap().as_bytes()).unwrap());
                self.sqs
                    .delete_message()
                    .queue_url(&self.queue_url)
                    .receipt_handle(m.receipt_handle().unwrap())
                    .send()
                    .await
                    .unwrap();
            }
        }
    }
}

async fn call(app: &Router, method: Method, uri: &str, token: &str, body: Option<Value>) -> Answer {
    call_with_key(app, method, uri, token, None, body).await
}

async fn call_with_key(
    app: &Router,
    method: Method,
    uri: &str,
    token: &str,
    idempotency_key: Option<&str>,
    body: Option<Value>,
) -> Answer {
    let key = idempotency_key.map(|k| ("Idempotency-Key", k));
    common::api::call(
        app,
        method,
        uri,
        Some(token),
        key.as_slice(),
        body.map(|b| b.to_string()),
    )
    .await
}

async fn open(app: &Router, token: &str) -> String {
    let a = call(
        app,
        Method::POST,
        "/v1/accounts",
        token,
        Some(json!({"currency": "USD", "type": "checking"})),
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED, "{:?}", a.body);
    a.body["account_id"].as_str().unwrap().to_owned()
}

/// The 404 answer, minus the account number or id in `detail`, for comparisons with the answer
/// about something that really does not exist.
fn not_found_shape(a: &Answer, id: &str, other: &str) -> Value {
    assert_eq!(a.status, StatusCode::NOT_FOUND, "{:?}", a.body);
    let mut body = a.body.clone();
    let detail = body["detail"].as_str().unwrap().replace(id, other);
    body["detail"] = Value::String(detail);
    body
}

#[tokio::test]
async fn mallory_cannot_debit_or_see_alices_account_but_can_pay_into_it() {
    let env = Env::new().await;
    let app = env.hs256_app();
    let alice = token("alice", ALL_SCOPES);
    let mallory = token("mallory", ALL_SCOPES);
    let ops = token(
        "ops",
        &format!("{SCOPE_ACCOUNTS_ADMIN} accounts:read transactions:read"),
    );
    let a = open(&app, &alice).await;
    let m = open(&app, &mallory).await;
    let missing = "999999999999";

    // Alice funds her account.
    let dep = call_with_key(
        &app,
        Method::POST,
        "/v1/transactions",
        &alice,
        Some("alice-dep"),
        Some(
            json!({"type": "DEPOSIT", "target_account": a, "amount": "100.00", "currency": "USD"}),
        ),
    )
    .await;
    assert_eq!(dep.status, StatusCode::ACCEPTED, "{:?}", dep.body);
    let alice_dep = dep.body["transaction_id"].as_str().unwrap().to_owned();
    let msgs = env.drain().await;
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].principal.as_ref().unwrap().as_str(), "alice");
    assert_eq!(
        env.ledger.apply(&msgs[0]).await.unwrap(),
        Outcome::Completed
    );

    // Mallory cannot debit it: the same 404 as for an account that does not exist, nothing
    // recorded, nothing enqueued.
    let debits = [
        json!({"type": "TRANSFER", "source_account": a, "target_account": m, "amount": "60.00", "currency": "USD"}),
        json!({"type": "PAYMENT", "source_account": a, "target_account": m, "amount": "60.00", "currency": "USD"}),
        json!({"type": "WITHDRAWAL", "source_account": a, "amount": "60.00", "currency": "USD"}),
        json!({"type": "BALANCE_CHECK", "source_account": a, "currency": "USD"}),
    ];
    for (i, body) in debits.into_iter().enumerate() {
        let theft = call_with_key(
            &app,
            Method::POST,
            "/v1/transactions",
            &mallory,
            Some(&format!("theft-{i}")),
            Some(body.clone()),
        )
        .await;
        let mut probe = body.clone();
        probe["source_account"] = json!(missing);
        let absent = call_with_key(
            &app,
            Method::POST,
            "/v1/transactions",
            &mallory,
            Some(&format!("probe-{i}")),
            Some(probe),
        )
        .await;
        assert_eq!(
            not_found_shape(&theft, &a, missing),
            not_found_shape(&absent, missing, missing),
            "{body}"
        );
        assert_eq!(theft.body["code"], "not_found");
        // The refused key was never recorded: Alice's own use of it later is not a replay.
    }
    assert!(env.drain().await.is_empty(), "a refused debit was enqueued");

    // Mallory's reads, history, close and Alice's transaction status: 404 like missing ones.
    for (method, path, other) in [
        (
            Method::GET,
            format!("/v1/accounts/{a}"),
            format!("/v1/accounts/{missing}"),
        ),
        (
            Method::GET,
            format!("/v1/accounts/{a}/transactions"),
            format!("/v1/accounts/{missing}/transactions"),
        ),
        (
            Method::DELETE,
            format!("/v1/accounts/{a}"),
            format!("/v1/accounts/{missing}"),
        ),
    ] {
        let hidden = call(&app, method.clone(), &path, &mallory, None).await;
        let absent = call(&app, method, &other, &mallory, None).await;
        assert_eq!(
            not_found_shape(&hidden, &a, missing),
            not_found_shape(&absent, missing, missing),
            "{path}"
        );
    }
    let unknown = Uuid::now_v7().hyphenated().to_string();
    let hidden = call(
        &app,
        Method::GET,
        &format!("/v1/transactions/{alice_dep}"),
        &mallory,
        None,
    )
    .await;
    let absent = call(
        &app,
        Method::GET,
        &format!("/v1/transactions/{unknown}"),
        &mallory,
        None,
    )
    .await;
    assert_eq!(
        not_found_shape(&hidden, &alice_dep, &unknown),
        not_found_shape(&absent, &unknown, &unknown)
    );

    // Mallory may pay into Alice's account (DEPOSIT and a TRANSFER from her own account).
    let pay = call_with_key(
        &app,
        Method::POST,
        "/v1/transactions",
        &mallory,
        Some("gift"),
        Some(json!({"type": "DEPOSIT", "target_account": a, "amount": "5.00", "currency": "USD"})),
    )
    .await;
    assert_eq!(pay.status, StatusCode::ACCEPTED, "{:?}", pay.body);
    let gift = pay.body["transaction_id"].as_str().unwrap().to_owned();
    let fund = call_with_key(
        &app,
        Method::POST,
        "/v1/transactions",
        &mallory,
        Some("fund-m"),
        Some(json!({"type": "DEPOSIT", "target_account": m, "amount": "10.00", "currency": "USD"})),
    )
    .await;
    assert_eq!(fund.status, StatusCode::ACCEPTED);
    for tx in env.drain().await {
        assert_eq!(env.ledger.apply(&tx).await.unwrap(), Outcome::Completed);
    }
    let pay_from_own = call_with_key(
        &app,
        Method::POST,
        "/v1/transactions",
        &mallory,
        Some("pay-alice"),
        Some(json!({"type": "TRANSFER", "source_account": m, "target_account": a, "amount": "2.50", "currency": "USD"})),
    )
    .await;
    assert_eq!(
        pay_from_own.status,
        StatusCode::ACCEPTED,
        "{:?}",
        pay_from_own.body
    );
    for tx in env.drain().await {
        assert_eq!(tx.principal.as_ref().unwrap().as_str(), "mallory");
        assert_eq!(env.ledger.apply(&tx).await.unwrap(), Outcome::Completed);
    }
    let a_now = env
        .ledger
        .get_account(&AccountNumber::parse(&a).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a_now.balance, dec("107.50"));
    assert_eq!(a_now.owner.as_deref(), Some("alice"));

    // Mallory sees the status of what she submitted; Alice sees it too (her account is the
    // target of that DEPOSIT).
    for who in [&mallory, &alice] {
        let seen = call(
            &app,
            Method::GET,
            &format!("/v1/transactions/{gift}"),
            who,
            None,
        )
        .await;
        assert_eq!(seen.status, StatusCode::OK, "{:?}", seen.body);
        assert_eq!(seen.body["status"], "COMPLETED");
    }

    // The operator scope sees everything.
    for path in [
        format!("/v1/accounts/{a}"),
        format!("/v1/accounts/{a}/transactions"),
        format!("/v1/transactions/{alice_dep}"),
    ] {
        let seen = call(&app, Method::GET, &path, &ops, None).await;
        assert_eq!(seen.status, StatusCode::OK, "{path}: {:?}", seen.body);
    }
    // Alice still reads her own account, and her history has the three credits.
    let history = call(
        &app,
        Method::GET,
        &format!("/v1/accounts/{a}/transactions"),
        &alice,
        None,
    )
    .await;
    assert_eq!(history.status, StatusCode::OK);
    assert_eq!(history.body["entries"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn a_pending_transaction_is_visible_to_its_submitter_only() {
    let env = Env::new().await;
    let app = env.hs256_app();
    let alice = token("alice", ALL_SCOPES);
    let mallory = token("mallory", ALL_SCOPES);
    let ops = token("ops", &format!("{SCOPE_ACCOUNTS_ADMIN} transactions:read"));
    let a = open(&app, &alice).await;
    let dep = call_with_key(
        &app,
        Method::POST,
        "/v1/transactions",
        &alice,
        Some("k1"),
        Some(json!({"type": "DEPOSIT", "target_account": a, "amount": "1.00", "currency": "USD"})),
    )
    .await;
    let id = dep.body["transaction_id"].as_str().unwrap().to_owned();
    let path = format!("/v1/transactions/{id}");
    let own = call(&app, Method::GET, &path, &alice, None).await;
    assert_eq!(own.body["status"], "PENDING", "{:?}", own.body);
    assert_eq!(
        call(&app, Method::GET, &path, &ops, None).await.status,
        StatusCode::OK
    );
    let hidden = call(&app, Method::GET, &path, &mallory, None).await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND);
    assert_eq!(hidden.body["detail"], format!("no transaction {id}"));
}

/// The worker's own check: a message that reaches the queue without the API (or after a bug in
/// it) and names a principal that does not own the debited account moves no money.
#[tokio::test]
async fn the_ledger_declines_a_principal_that_does_not_own_the_debited_account() {
    let env = Env::new().await;
    let ledger = &env.ledger;
    let usd = Currency::from_code("USD").unwrap();
    let alice = Subject::parse("alice").unwrap();
    let mallory = Subject::parse("mallory").unwrap();
    let a = AccountNumber::parse("4100000001").unwrap();
    let m = AccountNumber::parse("4100000002").unwrap();
    ledger
        .create_account(&a, usd, "CHECKING", dec("100.00"), &alice)
        .await
        .unwrap();
    ledger
        .create_account(&m, usd, "CHECKING", dec("0"), &mallory)
        .await
        .unwrap();
    let message = |kind: &str, extra: &str, principal: &str, key: &str| {
        let raw = format!(
            r#"{{"transaction_id":"{}","type":"{kind}",{extra}"currency":"USD",
               "timestamp":"2026-01-15T10:30:00Z","idempotency_key":"{key}","principal":"{principal}"}}"#,
            Uuid::new_v4()
        );
        parse_transaction(raw.as_bytes()).unwrap()
    };
    let theft = message(
        "TRANSFER",
        r#""source_account":"4100000001","target_account":"4100000002","amount":"60.00","#,
        "mallory",
        "theft",
    );
    let outcome = ledger.apply(&theft).await.unwrap();
    assert_eq!(
        outcome,
        Outcome::Declined(DeclineReason::NotAccountOwner { account: a.clone() })
    );
    // Redelivery: the terminal result is recorded once.
    assert_eq!(ledger.apply(&theft).await.unwrap(), Outcome::Duplicate);
    let result = ledger
        .get_result(theft.transaction_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(result.status, ResultStatus::Declined);
    assert_eq!(result.reason_code.as_deref(), Some("NOT_ACCOUNT_OWNER"));
    assert_eq!(result.principal.as_deref(), Some("mallory"));

    let withdrawal = message(
        "WITHDRAWAL",
        r#""source_account":"4100000001","amount":"1.00","#,
        "mallory",
        "theft-2",
    );
    assert!(matches!(
        ledger.apply(&withdrawal).await.unwrap(),
        Outcome::Declined(DeclineReason::NotAccountOwner { .. })
    ));
    // A balance check does not reveal a stranger's balance.
    let peek = message(
        "BALANCE_CHECK",
        r#""source_account":"4100000001","#,
        "mallory",
        "peek",
    );
    assert!(matches!(
        ledger.apply(&peek).await.unwrap(),
        Outcome::Declined(DeclineReason::NotAccountOwner { .. })
    ));
    let peek = ledger
        .get_result(peek.transaction_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(peek.balance, None);

    // No money moved, no entry was written.
    let balance = |n: &AccountNumber| {
        let n = n.clone();
        async move { ledger.get_account(&n).await.unwrap().unwrap().balance }
    };
    assert_eq!(balance(&a).await, dec("100.00"));
    assert_eq!(balance(&m).await, dec("0.00"));
    let now = time::OffsetDateTime::now_utc();
    let history = ledger
        .history(&m, now - time::Duration::days(1), now, 100, None)
        .await
        .unwrap();
    assert!(history.entries.is_empty());

    // Crediting a foreign account is fine, and the owner's own debit works.
    let gift = message(
        "TRANSFER",
        r#""source_account":"4100000002","target_account":"4100000001","amount":"0.01","#,
        "mallory",
        "gift",
    );
    assert!(matches!(
        ledger.apply(&gift).await.unwrap(),
        Outcome::Declined(DeclineReason::InsufficientFunds { .. })
    ));
    let own = message(
        "TRANSFER",
        r#""source_account":"4100000001","target_account":"4100000002","amount":"60.00","#,
        "alice",
        "own",
    );
    assert_eq!(ledger.apply(&own).await.unwrap(), Outcome::Completed);
    assert_eq!(balance(&a).await, dec("40.00"));
    assert_eq!(balance(&m).await, dec("60.00"));
}

// ----- JWKS -----

/// A signing key and its public JWK.
struct SigningKey {
    kid: String,
    encoding: EncodingKey,
    jwk: Jwk,
}

fn signing_key(kid: &str) -> SigningKey {
    let pair = rcgen::KeyPair::generate().unwrap();
    let encoding = EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes()).unwrap();
    let mut jwk = Jwk::from_encoding_key(&encoding, Algorithm::ES256).unwrap();
    jwk.common.key_id = Some(kid.to_owned());
    SigningKey {
        kid: kid.to_owned(),
        encoding,
        jwk,
    }
}

fn sign(key: &SigningKey, kid: &str, claims: Value) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, &claims, &key.encoding).unwrap()
}

fn claims(sub: &str, iss: &str) -> Value {
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    json!({"sub": sub, "scope": ALL_SCOPES, "exp": exp, "aud": "ballast", "iss": iss})
}

/// A JWKS endpoint on 127.0.0.1 whose key set the test replaces, counting the requests.
struct JwksServer {
    url: String,
    set: Arc<Mutex<JwkSet>>,
    hits: Arc<Mutex<u64>>,
    stop: CancellationToken,
}

impl JwksServer {
    async fn start(keys: &[&SigningKey]) -> JwksServer {
        let set = Arc::new(Mutex::new(JwkSet { keys: Vec::new() }));
        let hits = Arc::new(Mutex::new(0u64));
        let (s, h) = (set.clone(), hits.clone());
        let app = Router::new().route(
            "/jwks.json",
            axum::routing::get(move || {
                let (s, h) = (s.clone(), h.clone());
                async move {
                    *h.lock().unwrap() += 1;
                    axum::Json(s.lock().unwrap().clone())
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
        let stop = CancellationToken::new();
        let s = stop.clone();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move { s.cancelled().await })
                .await
                .unwrap();
        });
        let server = JwksServer {
            url,
            set,
            hits,
            stop,
        };
        server.publish(keys);
        server
    }

    fn publish(&self, keys: &[&SigningKey]) {
        self.set.lock().unwrap().keys = keys.iter().map(|k| k.jwk.clone()).collect();
    }

    fn hits(&self) -> u64 {
        *self.hits.lock().unwrap()
    }
}

/// `GET path` over plain HTTP to a running `serve`.
async fn http_get(addr: SocketAddr, path: &str, token: &str) -> StatusCode {
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let req = Request::get(format!("http://{addr}{path}"))
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Empty::new())
        .unwrap();
    let response = client.request(req).await.unwrap();
    let status = response.status();
    let _ = response.into_body().collect().await.unwrap();
    status
}

#[tokio::test]
async fn jwks_key_rotation_needs_no_restart_and_unknown_kids_cannot_hammer_the_idp() {
    let env = Env::new().await;
    let issuer = "https://idp.ballast.test";
    let k1 = signing_key("k1");
    let k2 = signing_key("k2");
    let idp = JwksServer::start(&[&k1]).await;
    let clock = Arc::new(ManualClock::default());
    let timers = JwksTimers {
        refresh: Duration::from_secs(300),
        min_refetch: Duration::from_secs(30),
    };
    let keys = JwksKeys::load(JwksSource::url(&idp.url).unwrap(), timers, clock.clone())
        .await
        .unwrap();
    let auth = Authenticator::jwks(keys.clone(), Some("ballast")).with_issuer(Some(issuer));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(serve(
        env.state(auth, clock.clone()),
        listener,
        shutdown.clone(),
    ));

    // An authenticated caller reaches the handler: 404 for an account that does not exist;
    // a refused token is 401.
    let path = "/v1/accounts/123456789012";
    let old = sign(&k1, "k1", claims("alice", issuer));
    assert_eq!(http_get(addr, path, &old).await, StatusCode::NOT_FOUND);
    assert_eq!(idp.hits(), 1);
    // Issuer and audience are checked.
    let foreign = sign(&k1, "k1", claims("alice", "https://evil.test"));
    assert_eq!(
        http_get(addr, path, &foreign).await,
        StatusCode::UNAUTHORIZED
    );

    // The identity provider rotates: k2 replaces k1.
    idp.publish(&[&k2]);
    let new = sign(&k2, "k2", claims("alice", issuer));
    // The unknown kid triggers one re-read (the initial load was at the same instant, so the
    // minimum gap holds it back until the clock moves).
    assert_eq!(http_get(addr, path, &new).await, StatusCode::UNAUTHORIZED);
    assert_eq!(idp.hits(), 1);
    clock.advance(timers.min_refetch);
    assert_eq!(http_get(addr, path, &new).await, StatusCode::NOT_FOUND);
    assert_eq!(idp.hits(), 2);
    // The removed key no longer verifies.
    assert_eq!(http_get(addr, path, &old).await, StatusCode::UNAUTHORIZED);

    // A spray of random kids within the gap causes no request to the IdP; after the gap, one.
    for i in 0..25 {
        let spray = sign(&k2, &format!("random-{i}"), claims("alice", issuer));
        assert_eq!(http_get(addr, path, &spray).await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(idp.hits(), 2);
    clock.advance(timers.min_refetch);
    for i in 0..25 {
        let spray = sign(&k2, &format!("again-{i}"), claims("alice", issuer));
        assert_eq!(http_get(addr, path, &spray).await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(idp.hits(), 3);
    assert_eq!(keys.reads(), 3);

    // Periodic refresh: once the set is older than `refresh`, the next token re-reads it.
    clock.advance(timers.refresh);
    assert_eq!(http_get(addr, path, &new).await, StatusCode::NOT_FOUND);
    assert_eq!(idp.hits(), 4);

    // The IdP going down keeps the keys already loaded.
    idp.stop.cancel();
    clock.advance(timers.refresh);
    assert_eq!(http_get(addr, path, &new).await, StatusCode::NOT_FOUND);

    shutdown.cancel();
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_jwks_without_usable_keys_is_refused_at_start() {
    let dir = std::env::temp_dir().join(ballast_testbed::unique_name("jwks"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("jwks.json");
    std::fs::write(
        &file,
        r#"{"keys":[{"kty":"oct","kid":"s","k":"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"}]}"#,
    )
    .unwrap();
    let err = JwksKeys::load(
        JwksSource::File(file.clone()),
        JwksTimers::default(),
        Arc::new(ManualClock::default()),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("no usable signing key"), "{err}");
    // A file with a usable key loads and verifies.
    let k = signing_key("f1");
    std::fs::write(
        &file,
        serde_json::to_string(&JwkSet {
            keys: vec![k.jwk.clone()],
        })
        .unwrap(),
    )
    .unwrap();
    let keys = JwksKeys::load(
        JwksSource::File(file),
        JwksTimers::default(),
        Arc::new(ManualClock::default()),
    )
    .await
    .unwrap();
    let auth = Authenticator::jwks(keys, Some("ballast"));
    let principal = auth
        .authenticate(Some(&format!(
            "Bearer {}",
            sign(&k, &k.kid, claims("carol", "any"))
        )))
        .await
        .unwrap();
    assert_eq!(principal.subject, "carol");
}

// ----- TLS -----

#[tokio::test]
async fn serve_tls_answers_https_with_the_configured_certificate() {
    let env = Env::new().await;
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let dir = std::env::temp_dir().join(ballast_testbed::unique_name("tls"));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let config = ballast_worker::api::tls::server_config(&cert_path, &key_path).unwrap();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let shutdown = CancellationToken::new();
    let state = env.state(
        Authenticator::hs256(SECRET, Some("ballast")).unwrap(),
        Arc::new(ManualClock::default()),
    );
    let server = tokio::spawn(serve_tls(state, listener, config, shutdown.clone()));

    // A client that trusts exactly this certificate.
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.cert.der().clone()).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only()
        .enable_http1()
        .build();
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build(https);
    let get = |path: &str, token: Option<&str>| {
        let mut req = Request::get(format!("https://localhost:{port}{path}"));
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        client.request(req.body(Empty::new()).unwrap())
    };
    let health = get("/healthz", None).await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let body = health.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap()["status"],
        "ok"
    );
    // Authenticated requests work over TLS too.
    let alice = token("alice", ALL_SCOPES);
    let missing = get("/v1/accounts/123456789012", Some(&alice))
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);

    // Plain HTTP to the TLS port gets no HTTP answer.
    let plain: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let refused = plain
        .request(
            Request::get(format!("http://127.0.0.1:{port}/healthz"))
                .body(Empty::new())
                .unwrap(),
        )
        .await;
    assert!(refused.is_err(), "plain HTTP was answered: {refused:?}");

    // A client that does not trust the certificate cannot connect.
    let untrusted_tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(rustls::RootCertStore::empty())
    .with_no_client_auth();
    let untrusted: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build(
        hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(untrusted_tls)
            .https_only()
            .enable_http1()
            .build(),
    );
    let refused = untrusted
        .request(
            Request::get(format!("https://localhost:{port}/healthz"))
                .body(Empty::new())
                .unwrap(),
        )
        .await;
    assert!(refused.is_err());

    shutdown.cancel();
    server.await.unwrap().unwrap();
}

#[test]
fn account_owner_survives_the_item_round_trip() {
    // Guard against the owner attribute being dropped by the item decoder.
    let item: HashMap<String, aws_sdk_dynamodb::types::AttributeValue> = [
        ("pk", "ACCT#1234567890"),
        ("sk", "META"),
        ("currency", "USD"),
        ("status", "OPEN"),
        ("type", "CHECKING"),
        ("created_at", "2026-01-01T00:00:00Z"),
        ("owner", "alice"),
    ]
    .into_iter()
    .map(|(k, v)| {
        (
            k.to_owned(),
            aws_sdk_dynamodb::types::AttributeValue::S(v.into()),
        )
    })
    .chain([
        (
            "balance".to_owned(),
            aws_sdk_dynamodb::types::AttributeValue::N("1.00".into()),
        ),
        (
            "version".to_owned(),
            aws_sdk_dynamodb::types::AttributeValue::N("1".into()),
        ),
    ])
    .collect();
    let account = ballast_worker::ledger::Account::from_item(&item).unwrap();
    assert_eq!(account.owner.as_deref(), Some("alice"));
}
