//! Worker benchmark at saturation against moto: a pre-filled queue drained by one in-process
//! consumer at the default concurrency.
//!
//! Reports AWS requests per processed transaction (counted by the SDK interceptor), worker CPU
//! time per 1,000 transactions (this process's user+system time during the drain; moto is a
//! separate process), peak RSS and throughput.
//!
//! `cargo bench --workspace --bench consume` (env BENCH_MESSAGES, default 3000;
//! BENCH_RECENT_KEYS=0 turns off the consumer's memory of settled idempotency keys).
//!
//! `BENCH_WORKER_BIN=target/release/ballast-worker` measures the shipped binary instead: the
//! same pre-filled queue is drained by a `ballast-worker consume` process, and its CPU time and
//! peak RSS are that process's own (`/proc/<pid>`), from its start (configuration, SDK set-up)
//! to the moment the queue is empty, with its default logging.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "benchmark harness: a panic aborts the measurement run, never production"
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::QueueAttributeName;
use ballast_worker::commands::consume::Clients;
use ballast_worker::consumer::{Consumer, ConsumerConfig};
use ballast_worker::generate::{Mix, generate_messages, seed_accounts, send_messages};
use ballast_worker::ledger::Ledger;
use ballast_worker::observability::Metrics;
use ballast_worker::transaction::Currency;
use rust_decimal::Decimal;
use tokio_util::sync::CancellationToken;

mod support;
use support::{cpu_seconds, proc_cpu_seconds};

fn peak_rss_mib() -> f64 {
    proc_peak_rss_mib("/proc/self/status")
}

/// Current `RssAnon` and `RssFile` of `/proc/<pid>/status`, in MiB: the heap and stacks versus
/// the mapped binary and libraries.
fn proc_rss_split_mib(path: &str) -> (f64, f64) {
    let status = std::fs::read_to_string(path).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("RssAnon:"), field("RssFile:"))
}

fn proc_peak_rss_mib(path: &str) -> f64 {
    let status = std::fs::read_to_string(path).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// The pre-filled queue a worker process drains.
struct Drain<'a> {
    sqs: &'a aws_sdk_sqs::Client,
    queue_url: &'a str,
    messages: usize,
}

impl Drain<'_> {
    /// Messages still in the queue, visible or in flight (moto's counts are exact).
    async fn remaining(&self) -> u64 {
        let attributes = self
            .sqs
            .get_queue_attributes()
            .queue_url(self.queue_url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .unwrap();
        let count = |name: QueueAttributeName| -> u64 {
            attributes
                .attributes()
                .and_then(|a| a.get(&name))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        count(QueueAttributeName::ApproximateNumberOfMessages)
            + count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
    }

    /// Runs `command` (a `ballast-worker consume`) until the queue is empty and reports the
    /// process's own CPU time and peak RSS, read from `/proc/<pid>` before it is stopped.
    async fn process(&self, bin: &str, mut command: std::process::Command) {
        let t0 = Instant::now();
        let mut child = command.spawn().unwrap();
        let pid = child.id();
        let mut last_report = Instant::now();
        loop {
            let remaining = self.remaining().await;
            if remaining == 0 {
                break;
            }
            assert!(t0.elapsed() < Duration::from_secs(600), "bench stalled");
            assert!(
                child.try_wait().unwrap().is_none(),
                "the worker exited before the queue was drained"
            );
            if last_report.elapsed() > Duration::from_secs(5) {
                last_report = Instant::now();
                eprintln!("progress: {remaining} left after {:.0?}", t0.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let elapsed = t0.elapsed();
        let cpu = proc_cpu_seconds(&format!("/proc/{pid}/stat"));
        let rss = proc_peak_rss_mib(&format!("/proc/{pid}/status"));
        let (anonymous, file_backed) = proc_rss_split_mib(&format!("/proc/{pid}/status"));
        child.kill().unwrap();
        child.wait().unwrap();
        let messages = self.messages as f64;
        println!("## Worker process\n");
        println!(
            "`BENCH_WORKER_BIN={bin} cargo bench --workspace --bench consume`: {} messages \
             (10% duplicates, 2% invalid) among 50 accounts, pre-filled queue, drained by one \
             `ballast-worker consume` process at its defaults, moto 5.2.5 on the same host.\n",
            self.messages
        );
        println!("| metric | value |\n|---|---|");
        println!(
            "| throughput | {:.0} transactions/s |",
            messages / elapsed.as_secs_f64()
        );
        println!(
            "| worker CPU per 1,000 transactions | {:.3} s |",
            cpu * 1000.0 / messages
        );
        println!("| worker CPU, whole run | {cpu:.2} s |");
        println!("| peak RSS (worker process) | {rss:.1} MiB |");
        println!(
            "| RSS at the end: anonymous / file-backed (the binary's pages) | {anonymous:.1} / {file_backed:.1} MiB |"
        );
        println!(
            "| wall time, start to empty queue | {:.2} s |",
            elapsed.as_secs_f64()
        );
    }
}

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let messages: usize = std::env::var("BENCH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    let moto = ballast_testbed::moto().await;
    let sdk = moto.sdk_config().await;
    let setup_sqs = aws_sdk_sqs::Client::new(&sdk);
    let setup_ddb = aws_sdk_dynamodb::Client::new(&sdk);

    let queue_url = setup_sqs
        .create_queue()
        .queue_name(ballast_testbed::unique_name("bench"))
        .attributes(QueueAttributeName::VisibilityTimeout, "60")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let (accounts_table, transactions_table) =
        ballast_testbed::fixtures::ledger_tables(&setup_ddb, "bench").await;
    let usd = Currency::from_code("USD").unwrap();
    let setup_ledger = Ledger::new(setup_ddb, &accounts_table, &transactions_table);
    let owner = ballast_worker::transaction::Subject::parse("bench").unwrap();
    let accounts = seed_accounts(&setup_ledger, 50, Decimal::new(1_000_000, 2), usd, &owner)
        .await
        .unwrap();
    let mix = Mix {
        duplicates: 0.1,
        invalid: 0.02,
        ..Mix::default()
    };
    let bodies = generate_messages(&mut rand::rng(), &accounts, messages, mix, usd).unwrap();
    send_messages(&setup_sqs, &queue_url, &bodies, 1e9)
        .await
        .unwrap();

    if let Ok(bin) = std::env::var("BENCH_WORKER_BIN") {
        let drain = Drain {
            sqs: &setup_sqs,
            queue_url: &queue_url,
            messages,
        };
        let endpoint = moto.endpoint();
        let accounts_table = accounts_table.as_str();
        let transactions_table = transactions_table.as_str();
        let mut command = std::process::Command::new(&bin);
        command
            .envs(ballast_testbed::child_env())
            .env("AWS_ENDPOINT_URL", &endpoint)
            .args(["consume", "--no-fleet", "--no-cloudwatch"])
            .args(["--queue-url", &queue_url])
            .args(["--accounts-table-name", accounts_table])
            .args(["--transactions-table-name", transactions_table])
            .args(["--metrics-addr", "127.0.0.1:0"])
            .args(["--wait-time-seconds", "1"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        drain.process(&bin, command).await;
        return;
    }

    let metrics = Arc::new(Metrics::new());
    let clients = Clients::new(&sdk, &metrics);
    let ledger = Ledger::new(
        clients.dynamodb.clone(),
        &accounts_table,
        &transactions_table,
    );
    let defaults = ConsumerConfig::new(queue_url);
    let recent_keys = std::env::var("BENCH_RECENT_KEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(defaults.recent_keys);
    let config = ConsumerConfig {
        wait_time_seconds: 1,
        visibility_timeout: Duration::from_secs(60),
        recent_keys,
        ..defaults
    };
    let consumer = Consumer::with_parts(
        clients.sqs.clone(),
        ledger,
        config,
        metrics.clone(),
        Arc::new(ballast_worker::breaker::Breaker::new(Default::default())),
    );
    let shutdown = CancellationToken::new();
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    let run = tokio::spawn({
        let consumer = consumer.clone();
        let shutdown = shutdown.clone();
        async move { consumer.run(shutdown).await }
    });
    let done = |m: &Metrics| {
        ["completed", "declined", "rejected", "duplicate"]
            .iter()
            .map(|o| m.processed_count(o))
            .sum::<u64>()
    };
    let mut last_report = Instant::now();
    while done(&metrics) < messages as u64 {
        assert!(t0.elapsed() < Duration::from_secs(600), "bench stalled");
        tokio::time::sleep(Duration::from_millis(20)).await;
        if last_report.elapsed() > Duration::from_secs(5) {
            last_report = Instant::now();
            eprintln!(
                "progress: {} of {messages} after {:.0?}; retried {} failed {} dead {}; requests {:?}",
                done(&metrics),
                t0.elapsed(),
                metrics.processed_count("retried"),
                metrics.processed_count("failed"),
                metrics.processed_count("dead_lettered"),
                metrics.aws_request_counts()
            );
        }
    }
    let elapsed = t0.elapsed();
    shutdown.cancel();
    run.await.unwrap();
    let cpu = cpu_seconds() - cpu0;
    let requests = metrics.aws_request_counts();
    let total_requests: u64 = requests.iter().map(|(_, n)| n).sum();
    let processed = done(&metrics) as f64;

    println!("## Worker\n");
    println!(
        "`cargo bench -p ballast-worker --bench consume` — {messages} messages (10% duplicates, 2% invalid) \
         among 50 accounts, pre-filled queue, one in-process worker at the default concurrency (32), \
         memory of settled keys {recent_keys}, moto 5.2.5 on the same 2-core host.\n"
    );
    println!("| metric | value |\n|---|---|");
    println!(
        "| throughput | {:.0} transactions/s |",
        processed / elapsed.as_secs_f64()
    );
    println!(
        "| AWS requests per transaction | {:.3} |",
        total_requests as f64 / processed
    );
    println!(
        "| worker CPU per 1,000 transactions | {:.3} s |",
        cpu * 1000.0 / processed
    );
    println!(
        "| peak RSS (whole bench process) | {:.1} MiB |",
        peak_rss_mib()
    );
    println!("| wall time | {:.2} s |\n", elapsed.as_secs_f64());
    println!("Requests by operation:\n");
    for (op, n) in requests {
        println!("- {op}: {n}");
    }
}
