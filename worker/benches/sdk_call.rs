//! The AWS SDK's own CPU cost per call, the floor under the worker's CPU per transaction.
//!
//! Calls DynamoDB through a client built as the worker builds its own (the worker's call-counting
//! interceptor, stalled-stream protection off) against moto on the same host, and reports this
//! process's CPU time per call (user + system, `/proc/self/stat`; moto is a separate process):
//!
//! * `GetItem` of one small item, and
//! * `TransactWriteItems` of three conditional updates, the shape of a ledger transfer (debit,
//!   credit, idempotency record),
//!
//! each one call at a time and 32 calls in flight (the worker's default concurrency), on a
//! multi-threaded runtime (the worker's) and on a current-thread runtime.
//!
//! `cargo bench -p ballast-worker --bench sdk_call` (a release build; env BENCH_CALLS, default
//! 2000 per row).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "benchmark harness: a panic aborts the measurement run, never production"
)]

use std::sync::Arc;
use std::time::Instant;

use aws_sdk_dynamodb::config::StalledStreamProtectionConfig;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use ballast_worker::commands::consume::Clients;
use ballast_worker::observability::Metrics;

mod support;
use support::cpu_seconds;

#[derive(Clone, Copy)]
enum Op {
    GetItem,
    Transfer,
}

async fn call(ddb: &aws_sdk_dynamodb::Client, table: &str, op: Op, i: usize) {
    let key = |k: &str| AttributeValue::S(k.to_string());
    match op {
        Op::GetItem => {
            ddb.get_item()
                .table_name(table)
                .key("pk", key("account-1"))
                .send()
                .await
                .unwrap();
        }
        Op::Transfer => {
            let update = |account: &str, delta: &str| {
                TransactWriteItem::builder()
                    .update(
                        Update::builder()
                            .table_name(table)
                            .key("pk", key(account))
                            .update_expression(
                                "SET balance = balance + :d, version = version + :one",
                            )
                            .condition_expression("attribute_exists(pk) AND balance >= :zero")
                            .expression_attribute_values(":d", AttributeValue::N(delta.into()))
                            .expression_attribute_values(":one", AttributeValue::N("1".into()))
                            .expression_attribute_values(":zero", AttributeValue::N("0".into()))
                            .build()
                            .unwrap(),
                    )
                    .build()
            };
            let idempotency = TransactWriteItem::builder()
                .put(
                    Put::builder()
                        .table_name(table)
                        .item("pk", key(&format!("IDEM#{i:08}")))
                        .item("amount", AttributeValue::N("1.00".into()))
                        .item("currency", key("USD"))
                        .condition_expression("attribute_not_exists(pk)")
                        .build()
                        .unwrap(),
                )
                .build();
            ddb.transact_write_items()
                .transact_items(update("account-1", "-1.00"))
                .transact_items(update("account-2", "1.00"))
                .transact_items(idempotency)
                .send()
                .await
                .unwrap();
        }
    }
}

/// Runs `calls` calls of `op`, `in_flight` at a time; returns CPU microseconds per call and calls
/// per second.
async fn row(
    ddb: &aws_sdk_dynamodb::Client,
    table: &str,
    op: Op,
    calls: usize,
    in_flight: usize,
    offset: usize,
) -> (f64, f64) {
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..in_flight {
        let (ddb, table, next) = (ddb.clone(), table.to_string(), next.clone());
        tasks.spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= calls {
                    break;
                }
                call(&ddb, &table, op, offset + i).await;
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    let cpu = cpu_seconds() - cpu0;
    let wall = t0.elapsed().as_secs_f64();
    (cpu * 1e6 / calls as f64, calls as f64 / wall)
}

async fn run(runtime: &str, calls: usize) {
    let moto = ballast_testbed::moto().await;
    let sdk = moto.sdk_config().await;
    let metrics = Arc::new(Metrics::new());
    let worker_clients = Clients::new(&sdk, &metrics);
    // As `ballast_aws::load_sdk_config_with_default_region` configures every Ballast client.
    let ddb = aws_sdk_dynamodb::Client::from_conf(
        worker_clients
            .dynamodb
            .config()
            .to_builder()
            .stalled_stream_protection(StalledStreamProtectionConfig::disabled())
            .build(),
    );
    // The ledger's transactions table (key `pk`), as the worker expects it.
    let (_, table) = ballast_testbed::fixtures::ledger_tables(&ddb, "sdkcall").await;
    for account in ["account-1", "account-2"] {
        ddb.put_item()
            .table_name(&table)
            .item("pk", AttributeValue::S(account.into()))
            .item("balance", AttributeValue::N("100000000".into()))
            .item("version", AttributeValue::N("0".into()))
            .send()
            .await
            .unwrap();
    }
    // Warm the connection pool and the SDK's caches (endpoint, signing key).
    row(&ddb, &table, Op::GetItem, 200, 32, 0).await;
    let mut offset = 0;
    for (op, name) in [
        (Op::GetItem, "GetItem"),
        (Op::Transfer, "TransactWriteItems (3 items)"),
    ] {
        for in_flight in [1, 32] {
            let (cpu_us, rate) = row(&ddb, &table, op, calls, in_flight, offset).await;
            offset += calls;
            println!("| {runtime} | {name} | {in_flight} | {cpu_us:.0} µs | {rate:.0} calls/s |");
        }
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let calls: usize = std::env::var("BENCH_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    println!("| runtime | operation | in flight | CPU per call | throughput |");
    println!("|---|---|---:|---:|---:|");
    for runtime in ["multi-thread", "current-thread"] {
        let rt = match runtime {
            "multi-thread" => tokio::runtime::Builder::new_multi_thread(),
            _ => tokio::runtime::Builder::new_current_thread(),
        }
        .enable_all()
        .build()
        .unwrap();
        rt.block_on(run(runtime, calls));
    }
}
