//! Provisioning benchmark on moto: AWS calls made by a plan of an in-sync `banking.yaml`
//! stack (reads per resource), mutating calls made by a second apply, and plan wall time.
//!
//! `cargo bench -p ballast-controller --bench plan_calls` (starts its own moto).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "benchmark harness: a panic aborts the measurement run, never production"
)]

use std::time::{Duration, Instant};

use ballast_aws::CallRecorder;
use ballast_controller::provision::engine::LogProgress;
use ballast_controller::provision::kinds::Readiness;
use ballast_controller::provision::{self, Clients, ReadOnlyClients};

const PLAN_RUNS: usize = 20;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../blueprints/banking.yaml");
    let bp = ballast_blueprint::load(&path)
        .unwrap_or_else(|e| panic!("{e}"))
        .blueprint;
    let resources = ballast_blueprint::graph::resources(&bp).len();
    let config = ballast_testbed::moto().await.sdk_config().await;
    let readiness = Readiness {
        timeout: Duration::from_secs(120),
        poll: Duration::from_millis(100),
        ..Readiness::default()
    };

    let first = CallRecorder::default();
    let clients = Clients::read_write(&config, &first);
    let started = Instant::now();
    let observation = provision::observe(&clients.observer(), &bp).await.unwrap();
    provision::apply(&clients, &bp, observation, readiness.clone(), &LogProgress)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let first_apply = started.elapsed();

    let second = CallRecorder::default();
    let clients = Clients::read_write(&config, &second);
    let observation = provision::observe(&clients.observer(), &bp).await.unwrap();
    provision::apply(&clients, &bp, observation, readiness, &LogProgress)
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    let mut times = Vec::with_capacity(PLAN_RUNS);
    let mut calls = None;
    for _ in 0..PLAN_RUNS {
        let recorder = CallRecorder::default();
        let started = Instant::now();
        let observation = provision::observe(&ReadOnlyClients::new(&config, &recorder), &bp)
            .await
            .unwrap();
        let plan = provision::plan(&bp, &observation);
        times.push(started.elapsed());
        assert!(!plan.has_changes(), "stack is not in sync");
        calls = Some(recorder);
    }
    times.sort();
    let calls = calls.expect("at least one run");

    println!("banking.yaml on moto: {resources} resources");
    println!(
        "first apply (empty account): {first_apply:.2?}, {} mutating calls",
        first.mutating()
    );
    println!(
        "second apply: {} mutating calls, {} calls in all",
        second.mutating(),
        second.total()
    );
    println!(
        "in-sync plan: {} AWS calls = {:.2} per resource",
        calls.total(),
        calls.total() as f64 / resources as f64
    );
    for (key, count) in calls.snapshot() {
        println!("  {} {}: {count}", key.label(), key.outcome);
    }
    println!(
        "plan wall time over {PLAN_RUNS} runs: min {:.1?}, median {:.1?}, max {:.1?}",
        times[0],
        times[PLAN_RUNS / 2],
        times[PLAN_RUNS - 1]
    );
}
