//! Token verification keys from a JSON Web Key Set (`--jwks-url`, `--jwks-file`).
//!
//! The set is loaded at start (a failure stops `serve`: running without keys would refuse every
//! caller), then re-read
//! - in the background every refresh interval ([`JwksKeys::run_refresh`], stopped by the
//!   shutdown token), so that a key the identity provider *revoked* (removed from the set) stops
//!   verifying within one interval even when no token ever names an unknown `kid`;
//! - when it is older than the refresh interval (on the next token checked; a fallback should
//!   the background task be late), and
//! - when a token names a `kid` the set does not hold, which is how a signing-key rotation at the
//!   identity provider shows up; at most once per minimum gap, so an attacker spraying random
//!   `kid`s cannot turn the API into a load generator against the JWKS endpoint.
//!
//! A failed re-read keeps the last good keys (and is retried after the gap); it is logged and
//! counted ([`JwksKeys::refresh_failures`], `ballast_api_jwks_refresh_failures_total`). A key
//! removed from the set stops verifying as soon as the set is re-read. Symmetric (`oct`) keys
//! are refused: a shared secret has no business in a key set fetched over the network.
//!
//! Request-driven re-reads take the monotonic time of the API's injectable [`Clock`], so tests
//! move it instead of sleeping; the background task runs on tokio's timer (paused time in tests).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey};
use prometheus_client::metrics::counter::Counter;
use tokio_util::sync::CancellationToken;

use ballast_runtime::Clock;

/// Default age after which the key set is re-read.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(300);
/// Default minimum time between two reads caused by unknown `kid`s (or failed reads).
pub const DEFAULT_MIN_REFETCH: Duration = Duration::from_secs(30);
/// Largest key set accepted, in bytes.
pub const MAX_JWKS_BYTES: usize = 1024 * 1024;
/// Time allowed for one fetch of the key set (connect, TLS, response).
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the key set comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksSource {
    /// An `https://` URL (plain `http://` only for a loopback host).
    Url(http::Uri),
    /// A local file (re-read the same way, e.g. after a secrets-manager sync).
    File(PathBuf),
}

impl JwksSource {
    /// Parses and checks a `--jwks-url`.
    pub fn url(text: &str) -> Result<Self, JwksError> {
        let uri: http::Uri = text.parse().map_err(|_| JwksError::BadUrl {
            url: text.to_owned(),
            why: "not a URL",
        })?;
        let host = uri.host().unwrap_or("");
        // An IP literal must really be loopback (`127.evil.example` is a host name, not one).
        let loopback = host == "localhost"
            || host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        match uri.scheme_str() {
            Some("https") => Ok(JwksSource::Url(uri)),
            Some("http") if loopback => Ok(JwksSource::Url(uri)),
            Some("http") => Err(JwksError::BadUrl {
                url: text.to_owned(),
                why: "plain http would let anyone on the path substitute the signing keys; use https",
            }),
            _ => Err(JwksError::BadUrl {
                url: text.to_owned(),
                why: "the scheme must be https",
            }),
        }
    }
}

impl std::fmt::Display for JwksSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JwksSource::Url(u) => write!(f, "{u}"),
            JwksSource::File(p) => write!(f, "{}", p.display()),
        }
    }
}

/// Why a key set cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    /// The `--jwks-url` is unusable.
    #[error("--jwks-url {url:?}: {why}")]
    BadUrl {
        /// As given.
        url: String,
        /// Why.
        why: &'static str,
    },
    /// The file cannot be read.
    #[error("cannot read the JWKS file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// No trusted root certificates to verify the JWKS server with.
    #[error("cannot load the system's root certificates for the JWKS client: {0}")]
    Roots(#[source] std::io::Error),
    /// Building the request failed.
    #[error("cannot build the JWKS request: {0}")]
    Request(#[source] http::Error),
    /// Connecting or talking to the server failed.
    #[error("cannot fetch the JWKS from {url}: {source}")]
    Fetch {
        /// The URL.
        url: String,
        /// Why.
        #[source]
        source: hyper_util::client::legacy::Error,
    },
    /// Reading the body failed or it is too large.
    #[error("cannot read the JWKS from {url} (at most {MAX_JWKS_BYTES} bytes): {detail}")]
    Body {
        /// The URL.
        url: String,
        /// Why.
        detail: String,
    },
    /// The server answered something else than 200.
    #[error("the JWKS server {url} answered {status}")]
    Status {
        /// The URL.
        url: String,
        /// The status.
        status: http::StatusCode,
    },
    /// No answer in time.
    #[error("the JWKS server {url} did not answer within {FETCH_TIMEOUT:?}")]
    Timeout {
        /// The URL.
        url: String,
    },
    /// Not a JWK set.
    #[error("{source_name} is not a JSON Web Key Set: {source}")]
    Parse {
        /// Where it came from.
        source_name: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// A set without a single usable signing key.
    #[error(
        "{0} holds no usable signing key; hint: keys need a `kid` and an RSA, EC (P-256/P-384) \
         or Ed25519 public key; symmetric keys are refused"
    )]
    NoKeys(String),
}

/// One usable key.
#[derive(Clone)]
struct Key {
    key: DecodingKey,
    algorithm: Algorithm,
}

struct Loaded {
    keys: HashMap<String, Key>,
    /// When the current keys were read.
    fetched_at: Duration,
    /// When a read was last started (successful or not).
    attempted_at: Duration,
}

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Empty<Bytes>>;

/// Tunables of the key-set cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JwksTimers {
    /// Re-read the set when it is older than this.
    pub refresh: Duration,
    /// At most one read per this interval caused by unknown `kid`s or failures.
    pub min_refetch: Duration,
}

impl Default for JwksTimers {
    fn default() -> Self {
        JwksTimers {
            refresh: DEFAULT_REFRESH,
            min_refetch: DEFAULT_MIN_REFETCH,
        }
    }
}

/// A refreshing cache of verification keys (cheap to clone).
#[derive(Clone)]
pub struct JwksKeys(Arc<Inner>);

struct Inner {
    source: JwksSource,
    client: Option<HttpsClient>,
    clock: Arc<dyn Clock>,
    timers: JwksTimers,
    loaded: tokio::sync::RwLock<Loaded>,
    /// Single flight: one read at a time; the others wait and then use its result.
    reading: tokio::sync::Mutex<()>,
    reads: AtomicU64,
    /// Failed re-reads (the initial load is not counted: it stops `serve` instead).
    failures: Counter,
}

impl std::fmt::Debug for JwksKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksKeys")
            .field("source", &self.0.source)
            .field("timers", &self.0.timers)
            .finish_non_exhaustive()
    }
}

fn https_client() -> Result<HttpsClient, JwksError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(provider)
        .map_err(JwksError::Roots)?
        .https_or_http()
        .enable_http1()
        .build();
    Ok(Client::builder(TokioExecutor::new()).build(connector))
}

/// The algorithm a JWK is for: its `alg`, else the one its key type implies.
fn algorithm_of(jwk: &jsonwebtoken::jwk::Jwk) -> Option<Algorithm> {
    let implied = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => Algorithm::ES256,
            EllipticCurve::P384 => Algorithm::ES384,
            _ => return None,
        },
        AlgorithmParameters::OctetKeyPair(_) => Algorithm::EdDSA,
        // Symmetric secrets and unknown key types are never verification keys here.
        _ => return None,
    };
    match jwk.common.key_algorithm {
        None => Some(implied),
        Some(KeyAlgorithm::HS256 | KeyAlgorithm::HS384 | KeyAlgorithm::HS512) => None,
        Some(alg) => Algorithm::try_from(alg).ok(),
    }
}

/// The usable keys of a set, by `kid`.
fn usable_keys(set: &JwkSet) -> HashMap<String, Key> {
    let mut keys = HashMap::new();
    for jwk in &set.keys {
        let Some(kid) = jwk.common.key_id.clone() else {
            continue;
        };
        let Some(algorithm) = algorithm_of(jwk) else {
            tracing::warn!(%kid, "skipping a JWK that is not an asymmetric signing key");
            continue;
        };
        match DecodingKey::from_jwk(jwk) {
            Ok(key) => {
                keys.insert(kid, Key { key, algorithm });
            }
            Err(error) => tracing::warn!(%kid, %error, "skipping an unusable JWK"),
        }
    }
    keys
}

impl JwksKeys {
    /// Loads the set once (an error means no usable keys) and returns the cache.
    pub async fn load(
        source: JwksSource,
        timers: JwksTimers,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, JwksError> {
        let client = match &source {
            JwksSource::Url(_) => Some(https_client()?),
            JwksSource::File(_) => None,
        };
        let now = clock.elapsed();
        let inner = Inner {
            source,
            client,
            clock,
            timers,
            loaded: tokio::sync::RwLock::new(Loaded {
                keys: HashMap::new(),
                fetched_at: now,
                attempted_at: now,
            }),
            reading: tokio::sync::Mutex::new(()),
            reads: AtomicU64::new(0),
            failures: Counter::default(),
        };
        let keys = inner.read().await?;
        inner.loaded.write().await.keys = keys;
        Ok(JwksKeys(Arc::new(inner)))
    }

    /// How many times the set has been read (the initial load included).
    pub fn reads(&self) -> u64 {
        self.0.reads.load(Ordering::Relaxed)
    }

    /// How many re-reads failed (the last good keys were kept each time).
    pub fn refresh_failures(&self) -> u64 {
        self.0.failures.get()
    }

    /// The failure counter, for a metrics registry
    /// (`ballast_api_jwks_refresh_failures_total`).
    pub fn refresh_failures_counter(&self) -> Counter {
        self.0.failures.clone()
    }

    /// Re-reads the set every `timers.refresh` until `shutdown` fires (spawned by `serve`).
    ///
    /// Each tick reads the set whatever its age, so a revoked key stops verifying within one
    /// interval without any token triggering it. A failure is logged and counted and the last
    /// good keys stay; the next tick tries again. The read itself is bounded by
    /// [`FETCH_TIMEOUT`] and abandoned at shutdown.
    pub async fn run_refresh(self, shutdown: CancellationToken) {
        let every = self.0.timers.refresh.max(Duration::from_secs(1));
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick is immediate; the set was just loaded.
        ticks.tick().await;
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                () = shutdown.cancelled() => return,
            }
            tokio::select! {
                () = self.0.refresh_now() => {}
                () = shutdown.cancelled() => return,
            }
        }
    }

    /// The key named `kid` and its algorithm, re-reading the set when it is stale or does not
    /// know `kid` (rate-limited, see the module documentation).
    pub(crate) async fn key(&self, kid: &str) -> Option<(DecodingKey, Algorithm)> {
        let inner = &self.0;
        let now = inner.clock.elapsed();
        let (known, stale, may_refetch, attempted) = {
            let loaded = inner.loaded.read().await;
            (
                loaded.keys.get(kid).cloned(),
                now.saturating_sub(loaded.fetched_at) >= inner.timers.refresh,
                now.saturating_sub(loaded.attempted_at) >= inner.timers.min_refetch,
                loaded.attempted_at,
            )
        };
        let must_read = match (&known, stale) {
            (Some(_), false) => false,
            // Periodic refresh, but not more often than the gap when the source keeps failing.
            (Some(_), true) => may_refetch,
            (None, _) => may_refetch,
        };
        if must_read {
            inner.refresh(attempted).await;
            let loaded = inner.loaded.read().await;
            return loaded.keys.get(kid).map(|k| (k.key.clone(), k.algorithm));
        }
        known.map(|k| (k.key, k.algorithm))
    }
}

impl Inner {
    /// Re-reads the set unless another task started a read after `seen_attempt`.
    async fn refresh(&self, seen_attempt: Duration) {
        let _single = self.reading.lock().await;
        {
            let mut loaded = self.loaded.write().await;
            if loaded.attempted_at != seen_attempt {
                return; // someone else just read it
            }
            loaded.attempted_at = self.clock.elapsed();
        }
        self.read_and_store().await;
    }

    /// The background re-read: unconditional, but single-flight with the request-driven ones.
    async fn refresh_now(&self) {
        let _single = self.reading.lock().await;
        self.loaded.write().await.attempted_at = self.clock.elapsed();
        self.read_and_store().await;
    }

    /// Reads the source; on success replaces the keys, on failure keeps the last good ones.
    /// The caller holds `reading`.
    async fn read_and_store(&self) {
        match self.read().await {
            Ok(keys) => {
                let mut loaded = self.loaded.write().await;
                tracing::info!(source = %self.source, keys = keys.len(), "JWKS refreshed");
                loaded.keys = keys;
                loaded.fetched_at = self.clock.elapsed();
            }
            Err(error) => {
                self.failures.inc();
                tracing::warn!(source = %self.source, %error, "JWKS refresh failed; keeping the last good keys");
            }
        }
    }

    /// One read of the source.
    #[tracing::instrument(skip(self), fields(source = %self.source))]
    async fn read(&self) -> Result<HashMap<String, Key>, JwksError> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        let bytes = match (&self.source, &self.client) {
            (JwksSource::File(path), _) => {
                tokio::fs::read(path)
                    .await
                    .map_err(|source| JwksError::Read {
                        path: path.clone(),
                        source,
                    })?
            }
            (JwksSource::Url(uri), Some(client)) => fetch(client, uri).await?,
            (JwksSource::Url(uri), None) => {
                return Err(JwksError::BadUrl {
                    url: uri.to_string(),
                    why: "no HTTP client",
                });
            }
        };
        let set: JwkSet = serde_json::from_slice(&bytes).map_err(|source| JwksError::Parse {
            source_name: self.source.to_string(),
            source,
        })?;
        let keys = usable_keys(&set);
        if keys.is_empty() {
            return Err(JwksError::NoKeys(self.source.to_string()));
        }
        Ok(keys)
    }
}

async fn fetch(client: &HttpsClient, uri: &http::Uri) -> Result<Vec<u8>, JwksError> {
    let url = uri.to_string();
    let request = http::Request::get(uri.clone())
        .header(http::header::ACCEPT, "application/json")
        .body(Empty::<Bytes>::new())
        .map_err(JwksError::Request)?;
    let work = async {
        let response = client
            .request(request)
            .await
            .map_err(|source| JwksError::Fetch {
                url: url.clone(),
                source,
            })?;
        if response.status() != http::StatusCode::OK {
            return Err(JwksError::Status {
                url: url.clone(),
                status: response.status(),
            });
        }
        let body = Limited::new(response.into_body(), MAX_JWKS_BYTES)
            .collect()
            .await
            .map_err(|e| JwksError::Body {
                url: url.clone(),
                detail: e.to_string(),
            })?;
        Ok(body.to_bytes().to_vec())
    };
    tokio::time::timeout(FETCH_TIMEOUT, work)
        .await
        .map_err(|_| JwksError::Timeout { url: url.clone() })?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_or_loopback_http_urls() {
        assert!(JwksSource::url("https://idp.example/.well-known/jwks.json").is_ok());
        assert!(JwksSource::url("http://127.0.0.1:8080/jwks").is_ok());
        assert!(JwksSource::url("http://localhost/jwks").is_ok());
        let err = JwksSource::url("http://idp.example/jwks").unwrap_err();
        assert!(err.to_string().contains("use https"), "{err}");
        assert!(JwksSource::url("ftp://idp.example/jwks").is_err());
        assert!(JwksSource::url("http://[::1]:9/jwks").is_ok());
        assert!(JwksSource::url("http://127.0.0.1.evil.example/jwks").is_err());
        assert!(JwksSource::url("http://127.evil.example/jwks").is_err());
        assert!(JwksSource::url("not a url").is_err());
    }

    #[test]
    fn symmetric_and_kidless_keys_are_skipped() {
        let set: JwkSet = serde_json::from_value(serde_json::json!({"keys": [
            {"kty": "oct", "kid": "s", "k": "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"},
            {"kty": "EC", "crv": "P-256",
             "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
             "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kty": "EC", "crv": "P-256", "kid": "ec1",
             "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
             "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}
        ]}))
        .unwrap();
        let keys = usable_keys(&set);
        assert_eq!(keys.keys().collect::<Vec<_>>(), ["ec1"]);
        assert_eq!(keys["ec1"].algorithm, Algorithm::ES256);
    }
}
