//! A fault-injecting HTTP proxy between AWS SDK clients and moto.
//!
//! Point a client's endpoint URL at [`FaultProxy::endpoint`] instead of moto's; every request
//! is forwarded unchanged unless a [`Rule`] matches it. A rule matches on the AWS service (the
//! credential scope of the SigV4 `Authorization` header, e.g. `sqs`, `dynamodb`, `monitoring`)
//! and the operation (the `X-Amz-Target` header of JSON-protocol services such as SQS and
//! DynamoDB, or the `Action` form field of Query-protocol ones), and fires
//!
//! - always, or
//! - with a probability drawn from a seeded RNG (reproducible runs), or
//! - for the next N matching requests, or
//! - during a time window.
//!
//! What a firing rule does is a [`Fault`]: answer with an AWS-shaped error (the JSON or XML
//! body and headers the real service sends, so the SDK classifies it as it would in AWS), add
//! latency, reset the connection without forwarding, forward the request and then drop the
//! answer (the effect happens, the client sees a broken connection), or hang (never answer
//! until the proxy stops).
//!
//! The proxy counts every request it saw per service and operation and what each rule
//! injected, so tests can assert both the faults and what the clients did under them (e.g.
//! that a consumer whose circuit breaker is open stops calling ReceiveMessage).
//!
//! ```no_run
//! # async fn example() {
//! use ballast_testbed::proxy::{ErrorKind, Fault, FaultProxy, Rule};
//! let moto = ballast_testbed::moto().await;
//! let proxy = FaultProxy::start(&moto.endpoint(), 7).await.unwrap();
//! let rule = proxy.add(Rule::new(Fault::Error(ErrorKind::InternalServerError))
//!     .service("dynamodb")
//!     .probability(0.05));
//! let config = proxy.sdk_config().await; // clients built from it go through the proxy
//! # let _ = (rule, config);
//! # }
//! ```

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use aws_types::SdkConfig;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The upstream endpoint is not `http://host:port`.
    #[error("upstream {upstream:?} is not an http://host:port URL")]
    Upstream {
        /// The URL given.
        upstream: String,
    },
    /// The listening socket could not be opened.
    #[error("cannot listen on 127.0.0.1: {0}")]
    Listen(#[source] std::io::Error),
}

/// An AWS error answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// HTTP 500 `InternalServerError` (DynamoDB) / `InternalError` (SQS) / `InternalFailure`.
    InternalServerError,
    /// HTTP 400 `ThrottlingException` (`Throttling` for Query services).
    Throttling,
    /// HTTP 400 `ProvisionedThroughputExceededException` (DynamoDB's throttling).
    ProvisionedThroughputExceeded,
    /// HTTP 503 `ServiceUnavailable`.
    ServiceUnavailable,
}

impl ErrorKind {
    /// The HTTP status.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorKind::InternalServerError => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorKind::Throttling | ErrorKind::ProvisionedThroughputExceeded => {
                StatusCode::BAD_REQUEST
            }
            ErrorKind::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The AWS error code the service sends for it.
    pub fn code(self, service: &str) -> &'static str {
        match (self, service) {
            (ErrorKind::InternalServerError, "dynamodb") => "InternalServerError",
            (ErrorKind::InternalServerError, "sqs") => "InternalError",
            (ErrorKind::InternalServerError, _) => "InternalFailure",
            (ErrorKind::Throttling, "dynamodb" | "sqs") => "ThrottlingException",
            (ErrorKind::Throttling, _) => "Throttling",
            (ErrorKind::ProvisionedThroughputExceeded, _) => {
                "ProvisionedThroughputExceededException"
            }
            (ErrorKind::ServiceUnavailable, _) => "ServiceUnavailable",
        }
    }

    fn fault_side(self) -> &'static str {
        match self {
            ErrorKind::Throttling | ErrorKind::ProvisionedThroughputExceeded => "Sender",
            _ => "Receiver",
        }
    }
}

/// What a firing rule does to the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this AWS error; the request is not forwarded.
    Error(ErrorKind),
    /// Wait this long, then go on (other rules may still fire; the request is forwarded).
    Latency(Duration),
    /// Close the connection without an answer; the request is not forwarded.
    Reset,
    /// Forward the request, wait for moto's answer (so the effect happened), then close the
    /// connection without passing the answer on.
    DropResponse,
    /// Never answer (until the proxy stops); the request is not forwarded.
    Hang,
}

/// When a matching rule fires.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Trigger {
    /// Every matching request.
    Always,
    /// Each matching request with this probability (seeded RNG).
    Probability(f64),
    /// The next N matching requests.
    Next(u64),
    /// Matching requests between the two instants.
    Window {
        /// From (inclusive).
        from: Instant,
        /// Until (exclusive).
        until: Instant,
    },
}

/// A fault rule: which requests, when, and what.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Service (credential-scope name: `sqs`, `dynamodb`, `monitoring`, …); `None` = any.
    pub service: Option<String>,
    /// Operation, e.g. `ReceiveMessage`, `TransactWriteItems`; `None` = any.
    pub operations: Vec<String>,
    /// What to do.
    pub fault: Fault,
    /// When.
    pub trigger: Trigger,
}

impl Rule {
    /// A rule injecting `fault` into every request (narrow it with the builder methods).
    pub fn new(fault: Fault) -> Self {
        Rule {
            service: None,
            operations: Vec::new(),
            fault,
            trigger: Trigger::Always,
        }
    }

    /// Only requests to `service`.
    pub fn service(mut self, service: &str) -> Self {
        self.service = Some(service.to_ascii_lowercase());
        self
    }

    /// Only `operation` (may be called several times: any of them).
    pub fn operation(mut self, operation: &str) -> Self {
        self.operations.push(operation.to_owned());
        self
    }

    /// Fire with probability `p` (clamped to 0..=1).
    pub fn probability(mut self, p: f64) -> Self {
        self.trigger = Trigger::Probability(p.clamp(0.0, 1.0));
        self
    }

    /// Fire for the next `n` matching requests only.
    pub fn next(mut self, n: u64) -> Self {
        self.trigger = Trigger::Next(n);
        self
    }

    /// Fire from now for `duration`.
    pub fn during(mut self, duration: Duration) -> Self {
        let from = Instant::now();
        self.trigger = Trigger::Window {
            from,
            until: from.checked_add(duration).unwrap_or(from),
        };
        self
    }

    fn matches(&self, service: &str, operation: &str) -> bool {
        self.service.as_deref().is_none_or(|s| s == service)
            && (self.operations.is_empty() || self.operations.iter().any(|o| o == operation))
    }
}

/// Identifies a rule added to a proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RuleId(u64);

#[derive(Debug)]
struct ActiveRule {
    id: RuleId,
    rule: Rule,
    injected: u64,
}

#[derive(Debug)]
struct Inner {
    rules: Vec<ActiveRule>,
    next_id: u64,
    rng: StdRng,
    /// Requests seen per (service, operation), faulted or not.
    requests: HashMap<(String, String), u64>,
    /// Injections per fault, over all rules (also those removed).
    injected: HashMap<String, u64>,
    removed_injected: HashMap<RuleId, u64>,
}

#[derive(Debug)]
struct State {
    upstream: SocketAddr,
    inner: Mutex<Inner>,
    stop: watch::Receiver<bool>,
}

impl State {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running proxy. Dropping it stops it (hung requests are then released by closing their
/// connections).
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    state: Arc<State>,
    stop: watch::Sender<bool>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// What the proxy decided for one request.
enum Plan {
    Forward,
    Answer(ErrorKind),
    Reset,
    Drop,
    Hang,
}

impl FaultProxy {
    /// Starts a proxy on a free loopback port in front of `upstream` (`http://host:port`),
    /// drawing probabilities from an RNG seeded with `seed`.
    pub async fn start(upstream: &str, seed: u64) -> Result<FaultProxy, ProxyError> {
        let bad = || ProxyError::Upstream {
            upstream: upstream.to_owned(),
        };
        let host = upstream
            .strip_prefix("http://")
            .ok_or_else(bad)?
            .trim_end_matches('/');
        let upstream_addr = tokio::net::lookup_host(host)
            .await
            .map_err(|_| bad())?
            .next()
            .ok_or_else(bad)?;
        let listener = TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0))
            .await
            .map_err(ProxyError::Listen)?;
        let addr = listener.local_addr().map_err(ProxyError::Listen)?;
        let (stop, stop_rx) = watch::channel(false);
        let state = Arc::new(State {
            upstream: upstream_addr,
            inner: Mutex::new(Inner {
                rules: Vec::new(),
                next_id: 0,
                rng: StdRng::seed_from_u64(seed),
                requests: HashMap::new(),
                injected: HashMap::new(),
                removed_injected: HashMap::new(),
            }),
            stop: stop_rx,
        });
        tokio::spawn(accept_loop(listener, state.clone()));
        Ok(FaultProxy { addr, state, stop })
    }

    /// The proxy's base URL, e.g. `http://127.0.0.1:40123`: use it as the endpoint URL.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The test bed's SDK config with the proxy as the endpoint.
    pub async fn sdk_config(&self) -> SdkConfig {
        crate::sdk_config_for(&self.endpoint()).await
    }

    /// Adds a rule (after the existing ones).
    pub fn add(&self, rule: Rule) -> RuleId {
        let mut inner = self.state.lock();
        let id = RuleId(inner.next_id);
        inner.next_id = inner.next_id.saturating_add(1);
        inner.rules.push(ActiveRule {
            id,
            rule,
            injected: 0,
        });
        id
    }

    /// Removes a rule; its count stays readable.
    pub fn remove(&self, id: RuleId) {
        let mut inner = self.state.lock();
        if let Some(pos) = inner.rules.iter().position(|r| r.id == id) {
            let rule = inner.rules.remove(pos);
            inner.removed_injected.insert(id, rule.injected);
        }
    }

    /// Removes every rule: from now on requests pass unchanged.
    pub fn clear(&self) {
        let mut inner = self.state.lock();
        let rules = std::mem::take(&mut inner.rules);
        for rule in rules {
            inner.removed_injected.insert(rule.id, rule.injected);
        }
    }

    /// How many times the rule fired.
    pub fn injected(&self, id: RuleId) -> u64 {
        let inner = self.state.lock();
        inner
            .rules
            .iter()
            .find(|r| r.id == id)
            .map(|r| r.injected)
            .or_else(|| inner.removed_injected.get(&id).copied())
            .unwrap_or(0)
    }

    /// Injections by fault name (`error:<code-kind>`, `latency`, `reset`, `drop`, `hang`) over
    /// all rules.
    pub fn injected_by_fault(&self) -> HashMap<String, u64> {
        self.state.lock().injected.clone()
    }

    /// Total injections over all rules (latency included).
    pub fn injected_total(&self) -> u64 {
        self.state.lock().injected.values().sum()
    }

    /// Requests seen for `service` and `operation` (faulted ones included).
    pub fn requests(&self, service: &str, operation: &str) -> u64 {
        self.state
            .lock()
            .requests
            .get(&(service.to_owned(), operation.to_owned()))
            .copied()
            .unwrap_or(0)
    }

    /// Requests seen, per (service, operation).
    pub fn request_counts(&self) -> HashMap<(String, String), u64> {
        self.state.lock().requests.clone()
    }
}

async fn accept_loop(listener: TcpListener, state: Arc<State>) {
    let mut stop = state.stop.clone();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.changed() => return,
        };
        let Ok((stream, _)) = accepted else {
            continue;
        };
        let state = state.clone();
        tokio::spawn(async move {
            let mut stop = state.stop.clone();
            let service = hyper::service::service_fn(move |request| {
                let state = state.clone();
                async move { handle(state, request).await }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                // An error here is the injected reset/drop (or the client going away).
                _ = connection => {}
                _ = stop.changed() => {}
            }
        });
    }
}

/// The service and operation of a request: the SigV4 credential scope names the service;
/// `X-Amz-Target: AmazonSQS.ReceiveMessage` or the `Action=` form field names the operation.
fn classify(request: &http::request::Parts, body: &[u8]) -> (String, String) {
    let service = request
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|auth| auth.split("Credential=").nth(1))
        .and_then(|cred| cred.split('/').nth(3))
        .unwrap_or("unknown")
        .to_ascii_lowercase();
    let operation = match request
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
    {
        Some(target) => target.rsplit('.').next().unwrap_or(target).to_owned(),
        None => std::str::from_utf8(body)
            .ok()
            .and_then(|form| {
                form.split('&')
                    .find_map(|pair| pair.strip_prefix("Action="))
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| "unknown".to_owned()),
    };
    (service, operation)
}

fn fault_name(fault: &Fault) -> String {
    match fault {
        Fault::Error(kind) => format!("error:{kind:?}"),
        Fault::Latency(_) => "latency".into(),
        Fault::Reset => "reset".into(),
        Fault::DropResponse => "drop".into(),
        Fault::Hang => "hang".into(),
    }
}

/// Decides the fate of one request and counts it: latency rules add up, the first other rule
/// that fires wins.
fn plan(state: &State, service: &str, operation: &str) -> (Duration, Plan) {
    let mut inner = state.lock();
    let Inner {
        rules,
        rng,
        requests,
        injected,
        ..
    } = &mut *inner;
    let count = requests
        .entry((service.to_owned(), operation.to_owned()))
        .or_insert(0);
    *count = count.saturating_add(1);
    let now = Instant::now();
    let mut delay = Duration::ZERO;
    for active in rules.iter_mut() {
        if !active.rule.matches(service, operation) {
            continue;
        }
        let fires = match &mut active.rule.trigger {
            Trigger::Always => true,
            // Not `random_bool`: it panics on a probability outside 0..=1, and `Trigger` can be
            // built without the clamping builder.
            Trigger::Probability(p) => rng.random::<f64>() < *p,
            Trigger::Next(n) => {
                let fires = *n > 0;
                *n = n.saturating_sub(1);
                fires
            }
            Trigger::Window { from, until } => *from <= now && now < *until,
        };
        if !fires {
            continue;
        }
        active.injected = active.injected.saturating_add(1);
        let tally = injected.entry(fault_name(&active.rule.fault)).or_insert(0);
        *tally = tally.saturating_add(1);
        match active.rule.fault {
            Fault::Latency(extra) => delay = delay.saturating_add(extra),
            Fault::Error(kind) => return (delay, Plan::Answer(kind)),
            Fault::Reset => return (delay, Plan::Reset),
            Fault::DropResponse => return (delay, Plan::Drop),
            Fault::Hang => return (delay, Plan::Hang),
        }
    }
    (delay, Plan::Forward)
}

/// The error a handler returns to make hyper close the connection without an answer.
#[derive(Debug, thiserror::Error)]
#[error("fault injected: connection closed without an answer")]
struct Injected;

async fn handle(
    state: Arc<State>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Injected> {
    let (parts, body) = request.into_parts();
    let Ok(body) = body.collect().await.map(|b| b.to_bytes()) else {
        return Err(Injected);
    };
    let (service, operation) = classify(&parts, &body);
    let (delay, plan) = plan(&state, &service, &operation);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    match plan {
        Plan::Forward => Ok(forward(&state, parts, body).await),
        Plan::Answer(kind) => Ok(error_response(kind, &service, &parts)),
        Plan::Reset => Err(Injected),
        Plan::Drop => {
            let _ = forward(&state, parts, body).await;
            Err(Injected)
        }
        Plan::Hang => {
            let mut stop = state.stop.clone();
            let _ = stop.wait_for(|stopped| *stopped).await;
            Err(Injected)
        }
    }
}

/// Sends the request to moto on a fresh connection and returns its answer (a 502 when moto
/// cannot be reached, which the SDK treats as transient).
async fn forward(state: &State, parts: http::request::Parts, body: Bytes) -> Response<Full<Bytes>> {
    match try_forward(state, parts, body).await {
        Ok(response) => response,
        Err(detail) => {
            let mut response = Response::new(Full::new(Bytes::from(detail)));
            *response.status_mut() = StatusCode::BAD_GATEWAY;
            response
        }
    }
}

async fn try_forward(
    state: &State,
    parts: http::request::Parts,
    body: Bytes,
) -> Result<Response<Full<Bytes>>, String> {
    let stream = TcpStream::connect(state.upstream)
        .await
        .map_err(|e| format!("proxy cannot reach {}: {e}", state.upstream))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("proxy handshake with {} failed: {e}", state.upstream))?;
    tokio::spawn(connection);
    let mut request = Request::from_parts(parts, Full::new(body));
    // The signed Host header is kept as it is: moto does not check signatures.
    let path = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".to_owned());
    *request.uri_mut() = path
        .parse()
        .map_err(|e| format!("proxy cannot rebuild the URI {path}: {e}"))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("proxy request to {} failed: {e}", state.upstream))?;
    let (parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|e| format!("proxy cannot read moto's answer: {e}"))?
        .to_bytes();
    Ok(Response::from_parts(parts, Full::new(body)))
}

/// The error answer AWS sends: JSON (`__type`) for JSON-protocol requests, with SQS's
/// `x-amzn-query-error` header; the Query protocol's XML `ErrorResponse` otherwise.
fn error_response(
    kind: ErrorKind,
    service: &str,
    request: &http::request::Parts,
) -> Response<Full<Bytes>> {
    let code = kind.code(service);
    let message = format!("injected by the Ballast fault proxy ({code})");
    let request_id = uuid::Uuid::new_v4().to_string();
    let json = request.headers.contains_key("x-amz-target");
    let builder = Response::builder()
        .status(kind.status())
        .header("x-amzn-RequestId", request_id.as_str());
    let response = if json {
        let namespace = match service {
            "dynamodb" => "com.amazonaws.dynamodb.v20120810",
            "sqs" => "com.amazonaws.sqs",
            other => other,
        };
        let body = serde_json::json!({
            "__type": format!("{namespace}#{code}"),
            "message": message,
        });
        let mut builder = builder.header("content-type", "application/x-amz-json-1.0");
        if service == "sqs" {
            builder = builder.header(
                "x-amzn-query-error",
                format!("{code};{}", kind.fault_side()),
            );
        }
        builder.body(Full::new(Bytes::from(body.to_string())))
    } else {
        let body = format!(
            "<ErrorResponse><Error><Type>{}</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>",
            kind.fault_side()
        );
        builder
            .header("content-type", "text/xml")
            .body(Full::new(Bytes::from(body)))
    };
    response.unwrap_or_else(|_| {
        let mut response = Response::new(Full::new(Bytes::new()));
        *response.status_mut() = kind.status();
        response
    })
}
