//! No silent stall: an SQS endpoint whose connection accepts and then never answers.
//!
//! - The consumer's ReceiveMessage times out within its configured bound (not forever), and
//!   while it hangs the watchdog turns `/readyz` into a 503 that says why.
//! - The real `ballast-worker consume` binary, whose ReceiveMessage calls go to such a silent
//!   connection (every other call reaches moto through a small forwarding listener), fails
//!   `/readyz` and then exits with the watchdog's status 75.
//!
//! The silent endpoint is a real TCP listener on 127.0.0.1 that accepts and never writes.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a failed test (clippy.toml covers only #[test] fns, not helpers)"
)]

use crate::common;

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ballast_aws::AwsTimeouts;
use ballast_worker::commands::consume::Clients;
use ballast_worker::consumer::watchdog::{STALL_EXIT_CODE, WatchdogConfig};
use ballast_worker::consumer::{Consumer, ConsumerConfig};
use ballast_worker::ledger::Ledger;
use ballast_worker::observability::{self, Metrics};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// Accepts connections and never answers (holds them open).
async fn silent_listener() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    addr
}

/// Reads one HTTP/1.1 request (head + Content-Length body).
async fn read_request(socket: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let length = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())
                .flatten()
        })
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some((head, body))
}

/// A listener that forwards every request to `upstream` (one connection each, closed after
/// the response) except SQS ReceiveMessage, whose connection it holds silently.
async fn silent_receive_listener(upstream: SocketAddr) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Some((head, body)) = read_request(&mut socket).await else {
                    return;
                };
                if head.contains("AmazonSQS.ReceiveMessage") {
                    // Silent: keep the connection open, never answer.
                    std::future::pending::<()>().await;
                }
                let head: String = head
                    .trim_end()
                    .lines()
                    .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
                    .map(|l| format!("{l}\r\n"))
                    .collect();
                let Ok(mut up) = TcpStream::connect(upstream).await else {
                    return;
                };
                let request = [head.as_bytes(), b"Connection: close\r\n\r\n", &body].concat();
                if up.write_all(&request).await.is_err() {
                    return;
                }
                let mut response = Vec::new();
                let _ = up.read_to_end(&mut response).await;
                let _ = socket.write_all(&response).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    addr
}

/// `GET path` over plain HTTP/1.1: (status, body).
async fn get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut socket = TcpStream::connect(addr).await.ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    socket.write_all(request.as_bytes()).await.ok()?;
    let mut response = String::new();
    socket.read_to_string(&mut response).await.ok()?;
    let status = response.split(' ').nth(1)?.parse().ok()?;
    let body = response.split_once("\r\n\r\n")?.1.to_owned();
    Some((status, body))
}

fn receive_errors(metrics: &Metrics) -> bool {
    metrics.receive_failures.get() > 0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_receive_times_out_within_its_bound_and_fails_readyz_meanwhile() {
    let moto = ballast_testbed::moto().await;
    let silent = silent_listener().await;
    let timeouts = AwsTimeouts {
        connect: Duration::from_secs(1),
        read: Duration::from_secs(1),
        attempt: Duration::from_secs(1),
        operation: Duration::from_secs(4),
        long_poll_margin: Duration::from_secs(1),
    };
    let wait = Duration::from_secs(1);
    let bound = timeouts.long_poll_bound(wait);
    assert_eq!(bound, Duration::from_secs(4));
    let sdk = moto
        .sdk_config()
        .await
        .into_builder()
        .endpoint_url(format!("http://{silent}"))
        .timeout_config(timeouts.timeout_config())
        .build();
    let metrics = Arc::new(Metrics::new());
    let clients = Clients::new(&sdk, &metrics);
    let config = ConsumerConfig {
        wait_time_seconds: 1,
        timeouts,
        watchdog: WatchdogConfig {
            not_ready_after: Duration::from_millis(1500),
            exit_after: Duration::from_secs(600),
        },
        ..ConsumerConfig::new(format!("http://{silent}/123456789012/silent"))
    };
    let consumer = Consumer::with_parts(
        clients.sqs.clone(),
        Ledger::new(clients.dynamodb.clone(), "a", "t"),
        config,
        metrics.clone(),
        Arc::new(ballast_worker::breaker::Breaker::new(Default::default())),
    );
    let background = CancellationToken::new();
    let shutdown = CancellationToken::new();
    let (addr, server) = observability::serve(
        "127.0.0.1:0".parse().unwrap(),
        metrics.clone(),
        Some(consumer.watchdog().clone()),
        background.clone(),
    )
    .await
    .unwrap();
    let watchdog = tokio::spawn(consumer.watchdog().clone().run(
        metrics.clone(),
        shutdown.clone(),
        background.clone(),
    ));
    assert_eq!(get(addr, "/readyz").await.unwrap().0, 200);
    let started = Instant::now();
    let run = tokio::spawn({
        let consumer = consumer.clone();
        let shutdown = shutdown.clone();
        async move { consumer.run(shutdown).await }
    });

    // While the first receive hangs, /readyz fails and says why; /healthz still answers.
    common::eventually("/readyz 503", Duration::from_secs(10), || async move {
        matches!(get(addr, "/readyz").await, Some((503, _)))
    })
    .await;
    let (_, body) = get(addr, "/readyz").await.unwrap();
    assert!(body.contains("receive loop stalled"), "{body}");
    assert!(body.contains("no ReceiveMessage has completed"), "{body}");
    assert_eq!(get(addr, "/healthz").await.unwrap().0, 200);
    // The gauge is published by the watchdog's own tick, which may lag /readyz by one tick.
    common::eventually("watchdog_state 2", Duration::from_secs(5), || async move {
        get(addr, "/metrics")
            .await
            .is_some_and(|(_, body)| body.contains("ballast_worker_watchdog_state 2"))
    })
    .await;
    assert!(!receive_errors(&metrics), "the receive has not failed yet");

    // The receive fails at its configured bound (4 s), not after minutes.
    common::eventually("the receive to time out", Duration::from_secs(20), || {
        let failed = receive_errors(&metrics);
        async move { failed }
    })
    .await;
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(1500) && elapsed < bound + Duration::from_secs(3),
        "the receive failed after {elapsed:?}, bound {bound:?}"
    );
    // A completed (failed) receive is progress: ready again.
    common::eventually("/readyz 200 again", Duration::from_secs(5), || async move {
        matches!(get(addr, "/readyz").await, Some((200, _)))
    })
    .await;

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("the consumer stops promptly even with a receive hanging")
        .unwrap();
    assert!(!consumer.watchdog().tripped());
    background.cancel();
    watchdog.await.unwrap();
    server.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_binary_exits_with_the_stall_status_when_receives_hang() {
    let moto = ballast_testbed::moto().await;
    let q = common::queues(30).await;
    let upstream: SocketAddr = format!("127.0.0.1:{}", moto.port()).parse().unwrap();
    let endpoint = silent_receive_listener(upstream).await;
    let metrics_addr: SocketAddr = format!("127.0.0.1:{}", common::free_port())
        .parse()
        .unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_ballast-worker"))
        .args(["consume", "--no-fleet", "--no-cloudwatch"])
        .args(["--endpoint-url", &format!("http://{endpoint}")])
        .args(["--queue-url", &q.url])
        .args(["--accounts-table-name", "unused-accounts"])
        .args(["--transactions-table-name", "unused-transactions"])
        .args(["--metrics-addr", &metrics_addr.to_string()])
        .args(["--wait-time-seconds", "1"])
        .args(["--aws-operation-timeout", "60s"])
        .args(["--aws-attempt-timeout", "60s"])
        .args(["--aws-read-timeout", "60s"])
        .args(["--watchdog-not-ready-after", "1s"])
        .args(["--watchdog-exit-after", "4s"])
        .envs(ballast_testbed::child_env())
        .env("RUST_LOG", "ballast_worker=info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let started = Instant::now();

    common::eventually(
        "/readyz 503 from the worker",
        Duration::from_secs(30),
        || async move { matches!(get(metrics_addr, "/readyz").await, Some((503, _))) },
    )
    .await;
    let (_, body) = get(metrics_addr, "/readyz").await.unwrap();
    assert!(body.contains("receive loop stalled"), "{body}");

    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("the stalled worker exits on its own")
        .unwrap();
    let elapsed = started.elapsed();
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = pipe.read_to_string(&mut stderr).await;
    }
    assert_eq!(
        status.code(),
        Some(i32::from(STALL_EXIT_CODE)),
        "exit status {status:?}; stderr:\n{stderr}"
    );
    assert!(
        elapsed < Duration::from_secs(20),
        "exited after {elapsed:?} (hung ReceiveMessage bound is 60 s)"
    );
    assert!(
        stderr.contains("receive loop stalled past the exit bound"),
        "{stderr}"
    );
}
