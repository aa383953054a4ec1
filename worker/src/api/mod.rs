//! The ingest and accounts HTTP API (`ballast-worker serve`).
//!
//! - `POST /v1/transactions`, `GET /v1/transactions/{id}`: see [`ingest`].
//! - `POST /v1/accounts`, `GET|DELETE /v1/accounts/{id}`, `GET /v1/accounts/{id}/transactions`.
//! - `GET /v1/audit`: audit records of money requests (operators), see [`audit`].
//! - `POST|GET /v1/payees`, `DELETE /v1/payees/{id}`, `POST|GET /v1/payees/{id}/schedules`,
//!   `GET|DELETE /v1/schedules/{id}`: bill payments, see [`bills`] and [`crate::bills`].
//! - `/v1/reviews`: transactions held by the risk rules, approved or rejected by operators,
//!   see [`reviews`].
//! - The sweeper ([`sweep`]) sends ingest records whose SendMessage never happened.
//! - `/healthz`, `/readyz`, `/metrics`, `/openapi.json` need no token.
//!
//! Every `/v1` request carries a JWT bearer token (see [`auth`], [`jwks`]); the caller's `sub`
//! is rate-limited with a token bucket (see [`rate`]) and may only touch its own accounts (see
//! [`authorize`]). HTTPS is served with rustls (see [`tls`]). Errors are RFC 9457 problem details
//! (see [`problem`]). Request bodies are read by the extractors of [`body`] within
//! `--body-limit` (axum's `DefaultBodyLimit`). Handlers never call DynamoDB: the store
//! ([`crate::store`], [`crate::ledger`]) does.

pub mod accounts;
pub mod audit;
pub mod auth;
pub mod authorize;
pub mod bills;
pub mod body;
pub mod extract;
pub mod ingest;
pub mod jwks;
pub mod models;
pub mod openapi;
pub mod paging;
pub mod problem;
pub mod rate;
pub mod reviews;
pub mod sweep;
pub mod tls;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use ballast_aws::SdkResultExt;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use auth::{AuthError, Authenticator, JwtAlgorithm, Principal, mint_hs256};
pub use ballast_runtime::{Clock, ManualClock, SystemClock};
pub use problem::{ApiError, Problem};
pub use rate::{RateLimit, RateLimiter};

use crate::ledger::Ledger;
use models::Readiness;

/// Default request body limit (64 KiB).
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;
/// How long a `/readyz` verdict is reused.
pub const READINESS_TTL: Duration = Duration::from_secs(5);

/// Tunables of the API.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Largest accepted request body in bytes.
    pub body_limit: usize,
    /// Per-client rate limit.
    pub rate_limit: RateLimit,
    /// Peers whose `X-Forwarded-For` is believed for the audit's client address.
    pub trusted_proxies: Vec<IpAddr>,
    /// How long after its record an ingest record without a ledger result is sent again by
    /// the sweeper (the API stamps `pending_due` with it).
    pub sweep_after: Duration,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            body_limit: DEFAULT_BODY_LIMIT,
            rate_limit: RateLimit::default(),
            trusted_proxies: Vec::new(),
            sweep_after: sweep::DEFAULT_SWEEP_AFTER,
        }
    }
}

/// Labels of HTTP requests.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    /// The route template, e.g. `/v1/accounts/{id}`.
    pub route: String,
    /// The method.
    pub method: String,
    /// The status code.
    pub status: u16,
}

/// Labels of request latency.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// The route template.
    pub route: String,
}

/// The API's Prometheus metrics.
#[derive(Debug)]
pub struct ApiMetrics {
    registry: Registry,
    /// Requests by route, method and status.
    pub requests: Family<HttpLabels, Counter>,
    /// Request latency by route.
    pub latency: Family<RouteLabels, Histogram>,
    /// Transactions accepted (202 answers, idempotent replays included).
    pub accepted: Counter,
    /// Bill occurrences handled by the runner inside `serve`, by outcome (see
    /// [`crate::bills::runner::BillRunner::with_metrics`]).
    pub bill_payments: Family<crate::observability::OutcomeLabels, Counter>,
}

impl Default for ApiMetrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("ballast_api");
        let requests = Family::<HttpLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(
            (|| Histogram::new(exponential_buckets(0.0005, 2.0, 16))) as fn() -> Histogram,
        );
        let accepted = Counter::default();
        registry.register(
            "http_requests",
            "HTTP requests by route, method and status",
            requests.clone(),
        );
        registry.register(
            "http_request_seconds",
            "HTTP request latency by route",
            latency.clone(),
        );
        registry.register(
            "transactions_accepted",
            "Transactions accepted (202), idempotent replays included",
            accepted.clone(),
        );
        let bill_payments = Family::<crate::observability::OutcomeLabels, Counter>::default();
        registry.register(
            "bill_payments",
            "Bill occurrences handled by the bill runner, by outcome \
             (enqueued, replayed, refused, lost, stale, failed)",
            bill_payments.clone(),
        );
        ApiMetrics {
            registry,
            requests,
            latency,
            accepted,
            bill_payments,
        }
    }
}

impl ApiMetrics {
    /// Registers the key set's refresh-failure counter (`jwks_refresh_failures`).
    fn register_jwks(&mut self, failures: Counter) {
        self.registry.register(
            "jwks_refresh_failures",
            "JWKS re-reads that failed (the last good keys were kept)",
            failures,
        );
    }

    /// Text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

struct Inner {
    ledger: Ledger,
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    auth: Authenticator,
    limiter: RateLimiter,
    config: ApiConfig,
    metrics: ApiMetrics,
    readiness: tokio::sync::Mutex<Option<(Instant, Result<(), String>)>>,
}

/// Shared state of the API (cheap to clone).
#[derive(Clone)]
pub struct ApiState(Arc<Inner>);

impl std::fmt::Debug for ApiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiState")
            .field("queue_url", &self.0.queue_url)
            .field("config", &self.0.config)
            .finish_non_exhaustive()
    }
}

impl ApiState {
    /// The API over a ledger and a queue.
    pub fn new(
        ledger: Ledger,
        sqs: aws_sdk_sqs::Client,
        queue_url: impl Into<String>,
        auth: Authenticator,
        config: ApiConfig,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let mut metrics = ApiMetrics::default();
        if let Some(keys) = auth.jwks_keys() {
            metrics.register_jwks(keys.refresh_failures_counter());
        }
        ApiState(Arc::new(Inner {
            ledger,
            sqs,
            queue_url: queue_url.into(),
            auth,
            limiter: RateLimiter::new(config.rate_limit, clock),
            config,
            metrics,
            readiness: tokio::sync::Mutex::new(None),
        }))
    }

    /// The ledger.
    pub fn ledger(&self) -> &Ledger {
        &self.0.ledger
    }

    /// The SQS client.
    pub fn sqs(&self) -> &aws_sdk_sqs::Client {
        &self.0.sqs
    }

    /// The transactions queue URL.
    pub fn queue_url(&self) -> &str {
        &self.0.queue_url
    }

    /// The tunables.
    pub fn config(&self) -> &ApiConfig {
        &self.0.config
    }

    /// The metrics.
    pub fn metrics(&self) -> &ApiMetrics {
        &self.0.metrics
    }

    async fn check_ready(&self) -> Result<(), String> {
        let mut cached = self.0.readiness.lock().await;
        if let Some((at, verdict)) = cached.as_ref()
            && at.elapsed() < READINESS_TTL
        {
            return verdict.clone();
        }
        let verdict = self.probe().await;
        *cached = Some((Instant::now(), verdict.clone()));
        verdict
    }

    /// One GetQueueAttributes and one DescribeTable.
    async fn probe(&self) -> Result<(), String> {
        self.sqs()
            .get_queue_attributes()
            .queue_url(self.queue_url())
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .classify("sqs:GetQueueAttributes")
            .map_err(|e| e.to_string())?;
        crate::store::health::probe(self.ledger())
            .await
            .map_err(|e| e.to_string())?;
        Ok(())
    }
}

/// Authenticates the bearer token and applies the caller's rate limit.
async fn authenticate(
    State(state): State<ApiState>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or(""));
    let principal = state.0.auth.authenticate(authorization).await?;
    state
        .0
        .limiter
        .check(&principal.subject)
        .map_err(|retry_after| ApiError::RateLimited { retry_after })?;
    request.extensions_mut().insert(principal);
    Ok(next.run(request).await)
}

/// Counts requests and their latency.
async fn observe(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    let metrics = state.metrics();
    metrics
        .requests
        .get_or_create(&HttpLabels {
            route: route.clone(),
            method,
            status: response.status().as_u16(),
        })
        .inc();
    if response.status() == StatusCode::ACCEPTED {
        metrics.accepted.inc();
    }
    metrics
        .latency
        .get_or_create(&RouteLabels { route })
        .observe(started.elapsed().as_secs_f64());
    response
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "Alive", body = Readiness)))]
pub async fn healthz() -> axum::Json<Readiness> {
    axum::Json(Readiness {
        status: "ok".into(),
    })
}

/// Readiness: SQS and DynamoDB answer (checked at most every 5 s).
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "AWS unreachable", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn readyz(State(state): State<ApiState>) -> Result<axum::Json<Readiness>, ApiError> {
    state
        .check_ready()
        .await
        .map_err(|detail| ApiError::unavailable(format!("not ready: {detail}"), None))?;
    Ok(axum::Json(Readiness {
        status: "ready".into(),
    }))
}

/// Prometheus metrics (OpenMetrics text).
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "OpenMetrics text", body = String,
               content_type = "application/openmetrics-text")))]
pub async fn metrics(State(state): State<ApiState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics().encode(),
    )
        .into_response()
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json")))]
pub async fn openapi_json() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        openapi::document(),
    )
        .into_response()
}

async fn fallback() -> ApiError {
    ApiError::NotFound("no such route".into())
}

/// The full router.
pub fn router(state: ApiState) -> Router {
    let v1 = Router::new()
        .route("/v1/transactions", post(ingest::submit_transaction))
        .route("/v1/transactions/{id}", get(ingest::get_transaction))
        .route("/v1/accounts", post(accounts::create_account))
        .route(
            "/v1/accounts/{id}",
            get(accounts::get_account).delete(accounts::close_account),
        )
        .route(
            "/v1/accounts/{id}/transactions",
            get(accounts::account_history),
        )
        .route("/v1/audit", get(audit::list_audit))
        .route(
            "/v1/payees",
            post(bills::create_payee).get(bills::list_payees),
        )
        .route(
            "/v1/payees/{id}",
            axum::routing::delete(bills::delete_payee),
        )
        .route(
            "/v1/payees/{id}/schedules",
            post(bills::create_schedule).get(bills::list_schedules),
        )
        .route(
            "/v1/schedules/{id}",
            get(bills::get_schedule).delete(bills::cancel_schedule),
        )
        .route("/v1/reviews", get(reviews::list_reviews))
        .route("/v1/reviews/{id}", get(reviews::get_review))
        .route("/v1/reviews/{id}/approve", post(reviews::approve))
        .route("/v1/reviews/{id}/reject", post(reviews::reject))
        .route_layer(from_fn_with_state(state.clone(), authenticate));
    Router::new()
        .merge(v1)
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi_json))
        .fallback(fallback)
        // The limit `body::JsonBody` reads bodies with (413 problem+json beyond it).
        .layer(DefaultBodyLimit::max(state.config().body_limit))
        .layer(from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// Serves the API over HTTPS on `listener` until `shutdown` fires.
pub async fn serve_tls(
    state: ApiState,
    listener: TcpListener,
    config: Arc<rustls::ServerConfig>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let listener = tls::TlsListener::new(listener, config, shutdown.clone())?;
    if let Ok(addr) = axum::serve::Listener::local_addr(&listener) {
        tracing::info!(%addr, "serving the ingest and accounts API over HTTPS");
    }
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

/// Serves the API over plain HTTP on `listener` until `shutdown` fires.
pub async fn serve(
    state: ApiState,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "serving the ingest and accounts API");
    }
    // The peer address feeds the audit records' client address.
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move { shutdown.cancelled().await })
    .await
}
