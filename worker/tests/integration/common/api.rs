//! Shared helpers of the API tests: tokens, one request through the real router, its answer,
//! and the parts an `ApiState` is built from.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use ballast_worker::api::auth::ALL_SCOPES;
use ballast_worker::api::{ApiConfig, ApiState, Authenticator, Clock, mint_hs256, router};
use ballast_worker::ledger::Ledger;
use serde_json::Value;
use tower::ServiceExt;

/// The HS256 secret of the test authenticators.
pub const SECRET: &[u8] = b"test-secret-test-secret-test-secret!";

/// A one-hour token of `sub` with `scope`, issuer `ballast`.
pub fn token(sub: &str, scope: &str) -> String {
    mint_hs256(
        SECRET,
        sub,
        scope,
        Duration::from_secs(3600),
        Some("ballast"),
    )
    .unwrap()
}

/// `alice` with every scope.
pub fn admin() -> String {
    token("alice", ALL_SCOPES)
}

/// An answer of the router.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// The JSON body, `Null` when empty, a string when not JSON.
    pub body: Value,
}

impl Answer {
    /// The problem `code`, or "".
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }

    /// A well-formed problem+json answer: media type, `type` ending in `code`, `status`.
    pub fn is_problem(&self) -> bool {
        self.headers[header::CONTENT_TYPE] == "application/problem+json"
            && self.body["type"]
                .as_str()
                .is_some_and(|t| t.ends_with(self.code()))
            && self.body["status"] == self.status.as_u16()
    }

    /// Whether it replays an earlier request (`Idempotent-Replayed: true`).
    pub fn replayed(&self) -> bool {
        self.headers
            .get("idempotent-replayed")
            .is_some_and(|v| v == "true")
    }

    /// The `transaction_id` of a 202.
    pub fn id(&self) -> String {
        self.body["transaction_id"].as_str().unwrap().to_owned()
    }
}

/// The peer address every test request comes from (what `serve` attaches to a connection).
pub const PEER: ([u8; 4], u16) = ([127, 0, 0, 1], 40000);

/// One request through `app`: a bearer `token`, `extra` headers, a JSON `body`.
pub async fn call(
    app: &Router,
    method: Method,
    uri: &str,
    token: Option<&str>,
    extra: &[(&str, &str)],
    body: Option<String>,
) -> Answer {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    if body.is_some() {
        req = req.header(header::CONTENT_TYPE, "application/json");
    }
    for (name, value) in extra {
        req = req.header(*name, *value);
    }
    let mut req = req.body(body.map_or_else(Body::empty, Body::from)).unwrap();
    req.extensions_mut()
        .insert(ConnectInfo(SocketAddr::from(PEER)));
    answer(app.clone().oneshot(req).await.unwrap()).await
}

/// Reads a response into an [`Answer`].
pub async fn answer(response: axum::response::Response) -> Answer {
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    Answer {
        status,
        headers,
        body,
    }
}

/// A fresh queue named `transactions-<unique>`.
pub async fn queue(sqs: &aws_sdk_sqs::Client) -> String {
    sqs.create_queue()
        .queue_name(ballast_testbed::unique_name("transactions"))
        .send()
        .await
        .expect("create queue")
        .queue_url
        .expect("queue url")
}

/// What an API under test runs on: a ledger over fresh tables, SQS and a fresh queue.
pub struct Parts {
    pub ledger: Ledger,
    pub sqs: aws_sdk_sqs::Client,
    pub queue_url: String,
}

impl Parts {
    /// The real router over these parts, accepting the tokens of [`token`].
    pub fn router(&self, config: ApiConfig, clock: Arc<dyn Clock>) -> Router {
        router(ApiState::new(
            self.ledger.clone(),
            self.sqs.clone(),
            self.queue_url.clone(),
            Authenticator::hs256(SECRET, Some("ballast")).unwrap(),
            config,
            clock,
        ))
    }
}

/// [`Parts`] with plain clients against moto.
pub async fn parts() -> Parts {
    let moto = ballast_testbed::moto().await;
    let sdk = moto.sdk_config().await;
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let (accounts, transactions) = super::tables(&ddb).await;
    let queue_url = queue(&sqs).await;
    Parts {
        ledger: Ledger::new(ddb, accounts, transactions),
        sqs,
        queue_url,
    }
}
