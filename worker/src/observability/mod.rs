//! Metrics: the Prometheus endpoint (`/metrics`, `/healthz`, `/readyz`), the AWS-call
//! interceptor and the per-minute CloudWatch publisher.
//!
//! `/healthz` says the process answers; `/readyz` also says the receive loop makes progress
//! (the [`Watchdog`]): 503 with the reason when it has stalled.

mod interceptor;
mod metrics;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use ballast_aws::{AwsError, SdkResultExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::consumer::watchdog::Watchdog;
pub use interceptor::AwsCallCounter;
pub use metrics::{AwsCallLabels, AwsRequestLabels, Metrics, OutcomeLabels};

pub use ballast_runtime::worker_metrics::{
    BILL_OVERDUE_OLDEST_AGE, FLEET_DIMENSION, HELD_OLDEST_AGE, NAMESPACE, PROCESSING_ERRORS,
    TRANSACTIONS_PROCESSED,
};

/// Failure to start the metrics endpoint.
#[derive(Debug, thiserror::Error)]
pub enum ObservabilityError {
    /// The listen address is unavailable.
    #[error("cannot listen on {addr} for metrics: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// What the endpoint serves.
#[derive(Debug, Clone)]
struct Endpoint {
    metrics: Arc<Metrics>,
    watchdog: Option<Arc<Watchdog>>,
}

/// The `/metrics` + `/healthz` + `/readyz` router. Without a watchdog `/readyz` always
/// answers 200.
pub fn router(metrics: Arc<Metrics>, watchdog: Option<Arc<Watchdog>>) -> Router {
    Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready_handler))
        .with_state(Endpoint { metrics, watchdog })
}

async fn metrics_handler(State(endpoint): State<Endpoint>) -> impl IntoResponse {
    (
        [(
            CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        endpoint.metrics.encode(),
    )
}

async fn ready_handler(State(endpoint): State<Endpoint>) -> (StatusCode, String) {
    match endpoint.watchdog.and_then(|w| w.not_ready_reason()) {
        None => (StatusCode::OK, "ready\n".to_owned()),
        Some(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {reason}\n"),
        ),
    }
}

/// Binds `addr` and serves the router until `shutdown` fires. Returns the bound address
/// (useful with port 0) and the server task.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    watchdog: Option<Arc<Watchdog>>,
    shutdown: CancellationToken,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), ObservabilityError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ObservabilityError::Bind { addr, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| ObservabilityError::Bind { addr, source })?;
    let app = router(metrics, watchdog);
    let task = tokio::spawn(async move {
        let result = axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
        if let Err(error) = result {
            tracing::error!(%error, "metrics server failed");
        }
    });
    tracing::info!(addr = %local, "serving /metrics, /healthz and /readyz");
    Ok((local, task))
}

/// Publishes TransactionsProcessed and ProcessingErrors to CloudWatch, once per interval
/// (one PutMetricData per minute in production).
#[derive(Debug, Clone)]
pub struct CloudWatchPublisher {
    client: aws_sdk_cloudwatch::Client,
    metrics: Arc<Metrics>,
    fleet: Option<String>,
    interval: Duration,
}

impl CloudWatchPublisher {
    /// A publisher with the production interval of one minute.
    pub fn new(
        client: aws_sdk_cloudwatch::Client,
        metrics: Arc<Metrics>,
        fleet: Option<String>,
    ) -> Self {
        CloudWatchPublisher {
            client,
            metrics,
            fleet,
            interval: ballast_runtime::worker_metrics::PUBLISH_INTERVAL,
        }
    }

    /// Overrides the publishing interval (tests).
    pub fn with_interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// The data points for the given counts.
    pub fn datums(&self, processed: u64, errors: u64) -> Vec<MetricDatum> {
        let dimension = self.fleet.as_ref().map(|fleet| {
            Dimension::builder()
                .name(FLEET_DIMENSION)
                .value(fleet)
                .build()
        });
        [
            (TRANSACTIONS_PROCESSED, processed),
            (PROCESSING_ERRORS, errors),
        ]
        .into_iter()
        .map(|(name, value)| {
            MetricDatum::builder()
                .metric_name(name)
                .set_dimensions(dimension.clone().map(|d| vec![d]))
                .unit(StandardUnit::Count)
                .value(value as f64)
                .build()
        })
        // The age gauges, once the worker has read them (the holds' only with risk rules).
        .chain(
            [
                (HELD_OLDEST_AGE, self.metrics.held_oldest_age()),
                (
                    BILL_OVERDUE_OLDEST_AGE,
                    self.metrics.bills_overdue_oldest_age(),
                ),
            ]
            .into_iter()
            .filter_map(|(name, age)| {
                age.map(|age| {
                    MetricDatum::builder()
                        .metric_name(name)
                        .set_dimensions(dimension.clone().map(|d| vec![d]))
                        .unit(StandardUnit::Seconds)
                        .value(age as f64)
                        .build()
                })
            }),
        )
        .collect()
    }

    /// Sends the counts accumulated since the last flush in one PutMetricData. On failure the
    /// counts are kept for the next flush.
    #[tracing::instrument(skip(self))]
    pub async fn flush(&self) -> Result<(u64, u64), AwsError> {
        let (processed, errors) = self.metrics.take_minute();
        let result = self
            .client
            .put_metric_data()
            .namespace(NAMESPACE)
            .set_metric_data(Some(self.datums(processed, errors)))
            .send()
            .await
            .classify("cloudwatch:PutMetricData");
        match result {
            Ok(_) => Ok((processed, errors)),
            Err(err) => {
                self.metrics.restore_minute(processed, errors);
                Err(err)
            }
        }
    }

    /// Flushes every interval until `shutdown`, then once more so nothing counted is lost.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut ticker =
            tokio::time::interval_at(tokio::time::Instant::now() + self.interval, self.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                () = shutdown.cancelled() => break,
            }
            if let Err(error) = self.flush().await {
                tracing::warn!(%error, "cannot publish worker metrics to CloudWatch");
            }
        }
        if let Err(error) = self.flush().await {
            tracing::warn!(%error, "cannot publish final worker metrics to CloudWatch");
        }
    }
}

/// With risk rules: reads the age of the oldest pending hold (one Query of the pending-reviews
/// index) every `interval` into [`Metrics::held_oldest_age_seconds`], which the CloudWatch
/// publisher sends as [`HELD_OLDEST_AGE`] and the blueprint's `held-transactions` alarm reads.
pub async fn watch_held_reviews(
    ledger: crate::ledger::Ledger,
    metrics: Arc<Metrics>,
    interval: Duration,
    shutdown: CancellationToken,
) {
    every(interval, shutdown, || async {
        let now = time::OffsetDateTime::now_utc();
        match crate::store::reviews::oldest_pending_age(&ledger, now).await {
            Ok(age) => metrics.set_held_oldest_age(age),
            Err(error) => tracing::warn!(%error, "cannot read the oldest pending review"),
        }
    })
    .await;
}

/// Reads the age of the oldest bill occurrence due but unpaid (one Query per shard of the
/// bills-due index, one item each) every `interval` into
/// [`Metrics::bills_overdue_oldest_age_seconds`], which the CloudWatch publisher sends as
/// [`BILL_OVERDUE_OLDEST_AGE`] and the blueprint's `bills-overdue` alarm reads.
pub async fn watch_overdue_bills(
    ledger: crate::ledger::Ledger,
    metrics: Arc<Metrics>,
    interval: Duration,
    shutdown: CancellationToken,
) {
    every(interval, shutdown, || async {
        let now = time::OffsetDateTime::now_utc();
        match crate::store::bills::oldest_due_age(&ledger, now).await {
            Ok(age) => metrics.set_bills_overdue_oldest_age(age),
            Err(error) => tracing::warn!(%error, "cannot read the oldest unpaid bill occurrence"),
        }
    })
    .await;
}

/// Runs `step` at once and then every `interval` (a late tick is delayed, not bunched) until
/// `shutdown` fires.
async fn every<F, Fut>(interval: Duration, shutdown: CancellationToken, mut step: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            () = shutdown.cancelled() => return,
        }
        step().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_age_gauges_are_published_once_read() {
        let metrics = Arc::new(Metrics::new());
        let client = aws_sdk_cloudwatch::Client::from_conf(
            aws_sdk_cloudwatch::Config::builder()
                .behavior_version(aws_sdk_cloudwatch::config::BehaviorVersion::latest())
                .build(),
        );
        let publisher = CloudWatchPublisher::new(client, metrics.clone(), Some("workers".into()));
        let names = |datums: Vec<MetricDatum>| -> Vec<String> {
            datums
                .iter()
                .filter_map(|d| d.metric_name().map(str::to_owned))
                .collect()
        };
        assert_eq!(
            names(publisher.datums(1, 0)),
            [TRANSACTIONS_PROCESSED, PROCESSING_ERRORS]
        );
        metrics.set_bills_overdue_oldest_age(Some(Duration::from_secs(9000)));
        let datums = publisher.datums(1, 0);
        let bills = datums
            .iter()
            .find(|d| d.metric_name() == Some(BILL_OVERDUE_OLDEST_AGE))
            .unwrap();
        assert_eq!(bills.value(), Some(9000.0));
        assert_eq!(bills.unit(), Some(&StandardUnit::Seconds));
        assert_eq!(bills.dimensions()[0].value(), Some("workers"));
    }
}
