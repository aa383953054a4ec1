//! Shared helpers of the integration tests against moto: the consumer's queues and tables
//! here, the API's requests in [`api`].
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a failed test (clippy.toml covers only #[test] fns, not helpers)"
)]

pub mod api;

use std::time::Duration;

use ballast_worker::transaction::Currency;
use rust_decimal::Decimal;

use ballast_testbed::fixtures::{self, QueuePair};
use ballast_worker::consumer::ConsumerConfig;
use ballast_worker::ledger::Ledger;

/// A queue with a dead-letter queue (maxReceiveCount 3).
pub struct Queues {
    pub sqs: aws_sdk_sqs::Client,
    pub url: String,
    pub dlq_url: String,
}

pub async fn queues(visibility_secs: u32) -> Queues {
    let moto = ballast_testbed::moto().await;
    let sqs = aws_sdk_sqs::Client::new(&moto.sdk_config().await);
    let QueuePair { url, dlq_url } =
        fixtures::queue_with_dlq(&sqs, "txq", visibility_secs, 3).await;
    Queues { sqs, url, dlq_url }
}

pub async fn dynamodb() -> aws_sdk_dynamodb::Client {
    let moto = ballast_testbed::moto().await;
    aws_sdk_dynamodb::Client::new(&moto.sdk_config().await)
}

/// Creates a fresh pair of tables and returns their names.
pub async fn tables(client: &aws_sdk_dynamodb::Client) -> (String, String) {
    fixtures::ledger_tables(client, "ledger").await
}

pub async fn ledger() -> Ledger {
    let client = dynamodb().await;
    let (a, t) = tables(&client).await;
    Ledger::new(client, a, t)
}

/// Test consumer settings: 1 s long polling, short linger.
pub fn config(q: &Queues, visibility_secs: u64) -> ConsumerConfig {
    ConsumerConfig {
        dlq_url: Some(q.dlq_url.clone()),
        wait_time_seconds: 1,
        visibility_timeout: Duration::from_secs(visibility_secs),
        delete_linger: Duration::from_millis(20),
        ..ConsumerConfig::new(q.url.clone())
    }
}

pub use fixtures::{drain_queue, queue_depth};

/// Polls `check` every 100 ms until it holds or `deadline` passes.
pub async fn eventually<F, Fut>(what: &str, deadline: Duration, check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    fixtures::poll_until(what, deadline, Duration::from_millis(100), check).await;
}

/// Warnings and errors of the worker go to the test output (shown on failure).
pub fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("ballast_worker=warn")
        .try_init();
}

/// US dollars.
pub fn usd() -> Currency {
    Currency::from_code("USD").unwrap()
}

/// An exact decimal.
pub fn dec(s: &str) -> Decimal {
    Decimal::from_str_exact(s).unwrap()
}

/// A loopback port that was free a moment ago (for a server a test starts).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}
