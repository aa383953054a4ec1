//! `/healthz`, `/readyz` and `/metrics` of `ballast run`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio_util::sync::CancellationToken;

use super::metrics::ServiceMetrics;

#[derive(Clone)]
struct Shared {
    metrics: Arc<ServiceMetrics>,
    /// One flag per blueprint: set after its first reconcile round.
    ready: Arc<Vec<Arc<AtomicBool>>>,
}

pub fn router(metrics: Arc<ServiceMetrics>, ready: Vec<Arc<AtomicBool>>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(Shared {
            metrics,
            ready: Arc::new(ready),
        })
}

async fn readyz(State(shared): State<Shared>) -> impl IntoResponse {
    if shared.ready.iter().all(|r| r.load(Ordering::SeqCst)) {
        (StatusCode::OK, "ready\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "waiting for the first reconcile of every blueprint\n",
        )
    }
}

async fn metrics_text(State(shared): State<Shared>) -> axum::response::Response {
    match shared.metrics.encode() {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(err) => {
            tracing::error!(error = %err, "encoding the metrics failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "encoding the metrics failed\n",
            )
                .into_response()
        }
    }
}

/// Binds `addr` (fail fast) and serves until `cancel` fires.
pub async fn serve(
    addr: SocketAddr,
    router: Router,
    cancel: CancellationToken,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let task = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(cancel.cancelled_owned())
            .await
    });
    tracing::info!(addr = %local, "serving /healthz, /readyz and /metrics");
    Ok((local, task))
}
