//! Decision latency of the autoscaler (issue #4, item 7).
//!
//! 1. The cost of one pure policy evaluation (ns per `evaluate` call).
//! 2. Against moto: the time from a backlog jump (`SendMessageBatch` of 500
//!    messages right after an evaluation) to the Auto Scaling group's
//!    `DesiredCapacity` changing, with the control loop running at 1 s and at
//!    10 s. The jump lands just after an evaluation, so the worst case is one
//!    interval plus one evaluation.
//!
//! Run: `cargo bench -p ballast-controller --bench decision_latency`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "benchmark harness: a panic aborts the measurement run, never production"
)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_sdk_autoscaling::types::LaunchTemplateSpecification;
use aws_sdk_ec2::types::RequestLaunchTemplateData;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use ballast_controller::autoscale::actuator::SetOutcome;
use ballast_controller::autoscale::reading::describe_group;
use ballast_controller::autoscale::runner::{
    Actuation, Clients, Context, Mode, build_loops, run_loops,
};
use ballast_controller::autoscale::{
    Observation, PolicyConfig, PolicyState, Reading, Timestamp, evaluate,
};
use ballast_runtime::SystemClock;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

fn policy_cost() -> (u64, f64) {
    let config = PolicyConfig::default();
    let mut state = PolicyState::starting_at(Timestamp::ZERO);
    let n: u64 = 2_000_000;
    let start = Instant::now();
    for i in 0..n {
        let visible = (i * 7919) % 3000;
        let desired = 2 + (i % 9) as u32;
        let obs = Observation::Ok(Reading {
            visible,
            in_flight: 0,
            delayed: 0,
            in_service: desired,
            desired,
            oldest_message_age: None,
            measured_arrival_milli: None,
            measured_sustained_arrival_milli: None,
            measured_steady_arrival_milli: None,
            measured_service_milli: None,
            predicted_arrival_milli: None,
        });
        black_box(evaluate(
            &config,
            &mut state,
            black_box(&obs),
            Timestamp::from_secs(i * 10),
        ));
    }
    let elapsed = start.elapsed();
    (n, elapsed.as_nanos() as f64 / n as f64)
}

async fn fixture(sdk: &SdkConfig) -> (String, String, String) {
    let queue_name = ballast_testbed::unique_name("bench-q");
    let group_name = ballast_testbed::unique_name("bench-g");
    let template = ballast_testbed::unique_name("bench-lt");
    let queue_url = aws_sdk_sqs::Client::new(sdk)
        .create_queue()
        .queue_name(&queue_name)
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    aws_sdk_ec2::Client::new(sdk)
        .create_launch_template()
        .launch_template_name(&template)
        .launch_template_data(
            RequestLaunchTemplateData::builder()
                .image_id("ami-0abcdef1234567890")
                .build(),
        )
        .send()
        .await
        .unwrap();
    aws_sdk_autoscaling::Client::new(sdk)
        .create_auto_scaling_group()
        .auto_scaling_group_name(&group_name)
        .launch_template(
            LaunchTemplateSpecification::builder()
                .launch_template_name(&template)
                .version("$Latest")
                .build(),
        )
        .min_size(2)
        .max_size(10)
        .desired_capacity(2)
        .availability_zones("us-east-1a")
        .send()
        .await
        .unwrap();
    (queue_name, queue_url, group_name)
}

fn blueprint(queue: &str, group: &str) -> ballast_blueprint::Blueprint {
    let yaml = format!(
        r#"apiVersion: ballast.dev/v1
kind: Blueprint
metadata: {{ name: bench, region: us-east-1 }}
spec:
  queues: [{{ name: work, queueName: {queue} }}]
  launchTemplates: [{{ name: worker, imageId: ami-0abcdef1234567890, instanceTypes: [t3.micro] }}]
  autoScalingGroups:
    - {{ name: workers, groupName: {group}, launchTemplate: worker, subnets: [subnet-0123456789abcdef0], minSize: 2, maxSize: 10 }}
  scalingPolicies:
    - {{ name: backlog, queue: work, fleet: workers, targetBacklogPerInstance: 100 }}
"#
    );
    ballast_blueprint::parse("bench.yaml", &yaml)
        .unwrap_or_else(|d| panic!("{d}"))
        .blueprint
}

struct Trial {
    send: Duration,
    first_set: Duration,
    to_set: Duration,
    to_observed: Duration,
}

/// One backlog jump against a fresh queue and group, the loop at `interval`.
async fn trial(sdk: &SdkConfig, interval: Duration) -> Trial {
    let (queue, queue_url, group) = fixture(sdk).await;
    let ctx = Context {
        clients: Clients::from_sdk_config(sdk),
        clock: Arc::new(SystemClock::new()),
        cancel: CancellationToken::new(),
        mode: Mode::Live,
        oldest_message_age: false,
    };
    let loops = build_loops(&ctx, &blueprint(&queue, &group), None, Some(interval)).unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let running = {
        let ctx = ctx.clone();
        tokio::spawn(async move { run_loops(&ctx, loops, false, tx).await })
    };
    // The first evaluation (empty queue) has just finished: jump now.
    let first = rx.recv().await.unwrap();
    assert!(matches!(first.actuation, Actuation::NotNeeded));
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let jump = Instant::now();
    let ids: Vec<usize> = (0..500).collect();
    let sends = ids.chunks(10).map(|chunk| {
        sqs.send_message_batch()
            .queue_url(&queue_url)
            .set_entries(Some(
                chunk
                    .iter()
                    .map(|i| {
                        SendMessageBatchRequestEntry::builder()
                            .id(format!("m{i}"))
                            .message_body("x")
                            .build()
                            .unwrap()
                    })
                    .collect(),
            ))
            .send()
    });
    for r in futures::future::join_all(sends).await {
        r.unwrap();
    }
    let sent = jump.elapsed();
    // The loop may see part of the jump while it is still being sent and scale
    // out in two steps; the first reaction and the full scale-out are reported.
    let mut first_set = None;
    let to_set = loop {
        let e = rx.recv().await.unwrap();
        if let Actuation::Done(SetOutcome::Changed { to, .. }) = e.actuation {
            first_set.get_or_insert_with(|| jump.elapsed());
            if to == 5 {
                break jump.elapsed();
            }
        }
    };
    let asg = aws_sdk_autoscaling::Client::new(sdk);
    let to_observed = loop {
        if describe_group(&asg, &group).await.unwrap().desired == 5 {
            break jump.elapsed();
        }
    };
    ctx.cancel.cancel();
    running.await.unwrap();
    Trial {
        send: sent,
        first_set: first_set.unwrap_or(to_set),
        to_set,
        to_observed,
    }
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() {
    let (n, ns) = policy_cost();
    println!("policy evaluate: {ns:.0} ns per call ({n} calls)");

    let moto = ballast_testbed::moto().await;
    let sdk = moto.sdk_config().await;
    println!();
    println!(
        "| loop interval | trial | send 500 msgs | jump → first SetDesiredCapacity | jump → SetDesiredCapacity(5) | jump → DesiredCapacity 5 read back |"
    );
    println!("|---|---|---|---|---|---|");
    for (interval, trials) in [(Duration::from_secs(1), 5), (Duration::from_secs(10), 2)] {
        for i in 1..=trials {
            let t = trial(&sdk, interval).await;
            println!(
                "| {} s | {i} | {} | {} | {} | {} |",
                interval.as_secs(),
                ms(t.send),
                ms(t.first_set),
                ms(t.to_set),
                ms(t.to_observed)
            );
            assert!(
                t.to_set <= t.send + interval + Duration::from_secs(1),
                "acted on later than one interval after the jump was complete"
            );
        }
    }
}
