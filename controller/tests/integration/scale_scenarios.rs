//! The autoscaler against moto: a real SQS queue, a real Auto Scaling group,
//! real messages; one evaluation through the library with an injected clock,
//! then the group's DesiredCapacity read back from moto.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a failed test (clippy.toml covers only #[test] fns, not helpers)"
)]

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_autoscaling::types::LaunchTemplateSpecification;
use aws_sdk_cloudwatch::types::DimensionFilter;
use aws_sdk_ec2::types::RequestLaunchTemplateData;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use ballast_aws::CallRecorder;
use ballast_controller::autoscale::Action;
use ballast_controller::autoscale::Timestamp;
use ballast_controller::autoscale::actuator::{Actuator, ActuatorError, AsgActuator, SetOutcome};
use ballast_controller::autoscale::publish;
use ballast_controller::autoscale::reading::{QueueSource, describe_group};
use ballast_controller::autoscale::runner::{
    Actuation, Clients, Context, Evaluation, Mode, Publication, build_loops, evaluate_all,
};
use ballast_runtime::ManualClock;
use tokio_util::sync::CancellationToken;

const T0: Timestamp = Timestamp::from_secs(1_000_000);

struct Fixture {
    sdk: SdkConfig,
    queue_name: String,
    queue_url: String,
    group_name: String,
}

impl Fixture {
    /// A fresh queue and a fresh group (min 2, max 10, `desired` InService instances).
    async fn new(desired: i32) -> Fixture {
        let moto = ballast_testbed::moto().await;
        let sdk = moto.sdk_config().await;
        let queue_name = ballast_testbed::unique_name("scale-q");
        let group_name = ballast_testbed::unique_name("scale-g");
        let template = ballast_testbed::unique_name("scale-lt");
        let queue_url = aws_sdk_sqs::Client::new(&sdk)
            .create_queue()
            .queue_name(&queue_name)
            .send()
            .await
            .unwrap()
            .queue_url
            .unwrap();
        aws_sdk_ec2::Client::new(&sdk)
            .create_launch_template()
            .launch_template_name(&template)
            .launch_template_data(
                RequestLaunchTemplateData::builder()
                    .image_id("ami-0abcdef1234567890")
                    .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let asg = aws_sdk_autoscaling::Client::new(&sdk);
        asg.create_auto_scaling_group()
            .auto_scaling_group_name(&group_name)
            .launch_template(
                LaunchTemplateSpecification::builder()
                    .launch_template_name(&template)
                    .version("$Latest")
                    .build(),
            )
            .min_size(2)
            .max_size(10)
            .desired_capacity(desired)
            .availability_zones("us-east-1a")
            .send()
            .await
            .unwrap();
        let fixture = Fixture {
            sdk,
            queue_name,
            queue_url,
            group_name,
        };
        // moto launches the instances at once, all InService.
        let capacity = describe_group(&asg, &fixture.group_name).await.unwrap();
        assert_eq!(
            (capacity.desired, capacity.in_service),
            (desired as u32, desired as u32)
        );
        fixture
    }

    async fn send(&self, n: usize) {
        let sqs = aws_sdk_sqs::Client::new(&self.sdk);
        let batches = (0..n).collect::<Vec<_>>();
        let sends = batches.chunks(10).map(|chunk| {
            let entries = chunk
                .iter()
                .map(|i| {
                    SendMessageBatchRequestEntry::builder()
                        .id(format!("m{i}"))
                        .message_body(format!("{{\"n\":{i}}}"))
                        .build()
                        .unwrap()
                })
                .collect::<Vec<_>>();
            sqs.send_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
        });
        for result in futures::future::join_all(sends).await {
            let out = result.unwrap();
            assert!(out.failed.is_empty(), "{:?}", out.failed);
        }
    }

    async fn desired(&self) -> u32 {
        describe_group(
            &aws_sdk_autoscaling::Client::new(&self.sdk),
            &self.group_name,
        )
        .await
        .unwrap()
        .desired
    }

    fn blueprint_yaml(&self) -> String {
        format!(
            r#"apiVersion: ballast.dev/v1
kind: Blueprint
metadata:
  name: scale-test
  region: us-east-1
spec:
  queues:
    - name: work
      queueName: {queue}
  launchTemplates:
    - name: worker
      imageId: ami-0abcdef1234567890
      instanceTypes: [t3.micro]
  autoScalingGroups:
    - name: workers
      groupName: {group}
      launchTemplate: worker
      subnets: [subnet-0123456789abcdef0]
      minSize: 2
      maxSize: 10
  scalingPolicies:
    - name: backlog
      queue: work
      fleet: workers
      targetBacklogPerInstance: 100
      scaleInCooldown: 300s
      stabilizationWindow: 300s
      tolerancePercent: 10
      evaluationInterval: 10s
"#,
            queue = self.queue_name,
            group = self.group_name
        )
    }

    fn blueprint(&self) -> ballast_blueprint::Blueprint {
        match ballast_blueprint::parse("scale-test.yaml", &self.blueprint_yaml()) {
            Ok(loaded) => loaded.blueprint,
            Err(diagnostics) => panic!("{diagnostics}"),
        }
    }

    /// Clients carrying a call recorder, a manual clock at [`T0`].
    fn context(&self, mode: Mode) -> (Context, Arc<ManualClock>, CallRecorder) {
        let recorder = CallRecorder::default();
        let clients = Clients {
            sqs: aws_sdk_sqs::Client::from_conf(
                aws_sdk_sqs::config::Builder::from(&self.sdk)
                    .interceptor(recorder.clone())
                    .build(),
            ),
            autoscaling: aws_sdk_autoscaling::Client::from_conf(
                aws_sdk_autoscaling::config::Builder::from(&self.sdk)
                    .interceptor(recorder.clone())
                    .build(),
            ),
            cloudwatch: aws_sdk_cloudwatch::Client::from_conf(
                aws_sdk_cloudwatch::config::Builder::from(&self.sdk)
                    .interceptor(recorder.clone())
                    .build(),
            ),
            kube: None,
        };
        let clock = Arc::new(ManualClock::new(T0));
        let ctx = Context {
            clients,
            clock: clock.clone(),
            cancel: CancellationToken::new(),
            mode,
            oldest_message_age: false,
        };
        (ctx, clock, recorder)
    }
}

fn calls(recorder: &CallRecorder, operation: &str) -> u64 {
    recorder
        .snapshot()
        .iter()
        .filter(|(k, _)| k.operation == operation)
        .map(|(_, n)| n)
        .sum()
}

fn only(mut evaluations: Vec<Evaluation>) -> Evaluation {
    assert_eq!(evaluations.len(), 1);
    evaluations.pop().unwrap()
}

#[tokio::test]
async fn fifty_messages_with_two_instances_stays_at_two() {
    let f = Fixture::new(2).await;
    f.send(50).await;
    let (ctx, _clock, recorder) = f.context(Mode::Live);
    let mut loops = build_loops(&ctx, &f.blueprint(), None, None).unwrap();

    let e = only(evaluate_all(&ctx, &mut loops).await);

    let m = e.reading().expect("metrics read");
    assert_eq!((m.visible, m.in_service, m.desired), (50, 2, 2));
    assert_eq!(e.decision.action, Action::NoChange, "{}", e.decision.reason);
    assert!(matches!(e.actuation, Actuation::NotNeeded));
    assert_eq!(f.desired().await, 2);
    // One GetQueueAttributes per evaluation; the URL is resolved once.
    assert_eq!(calls(&recorder, "GetQueueAttributes"), 1);
    assert_eq!(calls(&recorder, "GetQueueUrl"), 1);
    assert_eq!(calls(&recorder, "SetDesiredCapacity"), 0);
    assert_eq!(calls(&recorder, "PutMetricData"), 1);

    only(evaluate_all(&ctx, &mut loops).await);
    assert_eq!(calls(&recorder, "GetQueueAttributes"), 2);
    assert_eq!(
        calls(&recorder, "GetQueueUrl"),
        1,
        "the queue URL is cached"
    );
}

#[tokio::test]
async fn five_hundred_messages_with_two_instances_scales_to_five_and_publishes_metrics() {
    let f = Fixture::new(2).await;
    f.send(500).await;
    let (ctx, _clock, recorder) = f.context(Mode::Live);
    let mut loops = build_loops(&ctx, &f.blueprint(), None, None).unwrap();

    let e = only(evaluate_all(&ctx, &mut loops).await);

    assert_eq!(e.decision.action, Action::ScaleOut { from: 2, to: 5 });
    assert!(matches!(
        e.actuation,
        Actuation::Done(SetOutcome::Changed { from: 2, to: 5 })
    ));
    assert!(matches!(e.publication, Publication::Published));
    assert_eq!(f.desired().await, 5);
    assert_eq!(calls(&recorder, "SetDesiredCapacity"), 1);

    // The autoscaler's metrics arrived in CloudWatch under the group's dimension.
    let cw = aws_sdk_cloudwatch::Client::new(&f.sdk);
    let listed = cw
        .list_metrics()
        .namespace(publish::NAMESPACE)
        .dimensions(
            DimensionFilter::builder()
                .name("AutoScalingGroupName")
                .value(&f.group_name)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let mut names: Vec<String> = listed
        .metrics()
        .iter()
        .filter_map(|m| m.metric_name.clone())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            publish::BACKLOG_PER_INSTANCE,
            publish::DESIRED_CAPACITY,
            publish::HEARTBEAT,
            publish::IN_SERVICE_CAPACITY
        ]
    );
    // The heartbeat the dead-man's switch's alarm reads: one sample per minute evaluated.
    assert_eq!(heartbeats(&f).await, [1.0]);
    let now = std::time::SystemTime::now();
    let stats = cw
        .get_metric_statistics()
        .namespace(publish::NAMESPACE)
        .metric_name(publish::BACKLOG_PER_INSTANCE)
        .dimensions(
            aws_sdk_cloudwatch::types::Dimension::builder()
                .name("AutoScalingGroupName")
                .value(&f.group_name)
                .build(),
        )
        .start_time((now - Duration::from_secs(600)).into())
        .end_time((now + Duration::from_secs(60)).into())
        .period(60)
        .statistics(aws_sdk_cloudwatch::types::Statistic::Maximum)
        .send()
        .await
        .unwrap();
    let maxima: Vec<f64> = stats
        .datapoints()
        .iter()
        .filter_map(|d| d.maximum)
        .collect();
    assert_eq!(maxima, [250.0]);
}

/// Seed scenario 2 with the latency written instead of the target: `latencyObjective: 20s` at
/// the default 5 msg/s per instance is the seed's 100 (AWS's guidance), so 500 visible messages
/// still ask for five instances; 40s allows 200 per instance, so three.
#[tokio::test]
async fn a_target_derived_from_the_latency_objective_scales_as_the_seed() {
    for (objective, to) in [("20s", 5), ("40s", 3)] {
        let f = Fixture::new(2).await;
        f.send(500).await;
        let text = f.blueprint_yaml().replace(
            "targetBacklogPerInstance: 100",
            &format!("latencyObjective: {objective}"),
        );
        let loaded = match ballast_blueprint::parse("scale-test.yaml", &text) {
            Ok(loaded) => loaded,
            Err(diagnostics) => panic!("{diagnostics}"),
        };
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        let (ctx, _clock, _recorder) = f.context(Mode::Live);
        let mut loops = build_loops(&ctx, &loaded.blueprint, None, None).unwrap();

        let e = only(evaluate_all(&ctx, &mut loops).await);

        assert_eq!(
            e.decision.action,
            Action::ScaleOut { from: 2, to },
            "{objective}"
        );
        assert_eq!(f.desired().await, to, "{objective}");
    }
}

#[tokio::test]
async fn two_thousand_messages_with_five_instances_scales_to_the_max_ten() {
    let f = Fixture::new(5).await;
    f.send(2000).await;
    let (ctx, _clock, _recorder) = f.context(Mode::Live);
    let mut loops = build_loops(&ctx, &f.blueprint(), None, None).unwrap();

    let e = only(evaluate_all(&ctx, &mut loops).await);

    assert_eq!(e.reading().unwrap().visible, 2000);
    assert_eq!(e.decision.action, Action::ScaleOut { from: 5, to: 10 });
    assert!(e.decision.reason.contains("clamped to [2,10] = 10"));
    assert_eq!(f.desired().await, 10);
}

#[tokio::test]
async fn ten_messages_with_five_instances_scales_to_two_when_the_group_has_not_scaled_recently() {
    // Seed scenario 4. The controller reads the group's scaling history
    // (`DescribeScalingActivities`; moto keeps none): no recent action, so no
    // cooldown holds the scale-in, even on the first evaluation (`scale --once`).
    // A recent activity holding it is covered by the runner's unit tests.
    let f = Fixture::new(5).await;
    f.send(10).await;
    let (ctx, _clock, recorder) = f.context(Mode::Live);
    let mut loops = build_loops(&ctx, &f.blueprint(), None, None).unwrap();

    let e = only(evaluate_all(&ctx, &mut loops).await);
    assert_eq!(
        e.decision.action,
        Action::ScaleIn { from: 5, to: 2 },
        "{}",
        e.decision.reason
    );
    assert!(
        e.decision.reason.contains("no previous scaling action"),
        "{}",
        e.decision.reason
    );
    assert!(matches!(
        e.actuation,
        Actuation::Done(SetOutcome::Changed { from: 5, to: 2 })
    ));
    assert_eq!(f.desired().await, 2);
    assert_eq!(calls(&recorder, "DescribeScalingActivities"), 1);
    assert_eq!(calls(&recorder, "SetDesiredCapacity"), 1);

    // The history is read once, at the first evaluation only.
    let e = only(evaluate_all(&ctx, &mut loops).await);
    assert_eq!(e.decision.action, Action::NoChange, "{}", e.decision.reason);
    assert_eq!(calls(&recorder, "DescribeScalingActivities"), 1);
}

#[tokio::test]
async fn dry_run_changes_nothing_and_writes_no_metric() {
    let f = Fixture::new(2).await;
    f.send(500).await;
    let (ctx, _clock, recorder) = f.context(Mode::DryRun);
    let mut loops = build_loops(&ctx, &f.blueprint(), None, None).unwrap();

    let e = only(evaluate_all(&ctx, &mut loops).await);

    assert!(e.dry_run);
    assert_eq!(e.decision.action, Action::ScaleOut { from: 2, to: 5 });
    assert!(matches!(
        e.actuation,
        Actuation::Done(SetOutcome::DryRun { from: 2, to: 5 })
    ));
    assert!(matches!(e.publication, Publication::Skipped));
    assert_eq!(f.desired().await, 2);
    assert_eq!(recorder.mutating(), 0, "{:?}", recorder.snapshot());
    let listed = aws_sdk_cloudwatch::Client::new(&f.sdk)
        .list_metrics()
        .namespace(publish::NAMESPACE)
        .dimensions(
            DimensionFilter::builder()
                .name("AutoScalingGroupName")
                .value(&f.group_name)
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert!(listed.metrics().is_empty(), "{:?}", listed.metrics());
}

#[tokio::test]
async fn missing_queue_is_missing_metrics_and_never_scales_in() {
    let f = Fixture::new(5).await;
    let (ctx, clock, recorder) = f.context(Mode::Live);
    let mut loops = build_loops(&ctx, &f.blueprint(), None, None).unwrap();
    aws_sdk_sqs::Client::new(&f.sdk)
        .delete_queue()
        .queue_url(&f.queue_url)
        .send()
        .await
        .unwrap();

    clock.set(T0 + Duration::from_secs(3600));
    let e = only(evaluate_all(&ctx, &mut loops).await);

    assert!(e.reading().is_none(), "{:?}", e.decision.inputs);
    assert!(
        e.decision.reason.contains("never scale in"),
        "{}",
        e.decision.reason
    );
    assert_eq!(e.decision.action, Action::NoChange);
    assert_eq!(f.desired().await, 5);
    assert_eq!(calls(&recorder, "SetDesiredCapacity"), 0);
    // Its other metrics are published, but not the heartbeat: without the queue Ballast is
    // not in charge of the fleet, and the dead-man's switch must stay armed.
    assert!(matches!(e.publication, Publication::Published));
    assert_eq!(heartbeats(&f).await, Vec::<f64>::new());
}

/// The heartbeat's samples per minute for the fixture's group, as the dead-man's switch's
/// alarm queries them (`GetMetricData`, `SampleCount`, 60 s).
async fn heartbeats(f: &Fixture) -> Vec<f64> {
    use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat};
    let now = std::time::SystemTime::now();
    let out = aws_sdk_cloudwatch::Client::new(&f.sdk)
        .get_metric_data()
        .metric_data_queries(
            MetricDataQuery::builder()
                .id("heartbeat")
                .metric_stat(
                    MetricStat::builder()
                        .metric(
                            Metric::builder()
                                .namespace(publish::NAMESPACE)
                                .metric_name(publish::HEARTBEAT)
                                .dimensions(
                                    Dimension::builder()
                                        .name("AutoScalingGroupName")
                                        .value(&f.group_name)
                                        .build(),
                                )
                                .build(),
                        )
                        .period(60)
                        .stat("SampleCount")
                        .build(),
                )
                .build(),
        )
        .start_time((now - Duration::from_secs(600)).into())
        .end_time((now + Duration::from_secs(60)).into())
        .send()
        .await
        .unwrap();
    out.metric_data_results()
        .iter()
        .flat_map(|r| r.values().to_vec())
        .collect()
}

#[tokio::test]
async fn in_service_counts_only_in_service_instances() {
    let f = Fixture::new(3).await;
    let asg = aws_sdk_autoscaling::Client::new(&f.sdk);
    let group = asg
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(&f.group_name)
        .send()
        .await
        .unwrap();
    let instance = group.auto_scaling_groups()[0].instances()[0]
        .instance_id
        .clone()
        .unwrap();
    asg.enter_standby()
        .auto_scaling_group_name(&f.group_name)
        .instance_ids(instance)
        .should_decrement_desired_capacity(true)
        .send()
        .await
        .unwrap();

    let capacity = describe_group(&asg, &f.group_name).await.unwrap();
    assert_eq!(capacity.in_service, 2, "Standby is not in service");
    assert_eq!((capacity.min, capacity.max), (2, 10));
}

#[tokio::test]
async fn asg_actuator_refuses_out_of_bounds_and_skips_unchanged() {
    let f = Fixture::new(3).await;
    let recorder = CallRecorder::default();
    let client = aws_sdk_autoscaling::Client::from_conf(
        aws_sdk_autoscaling::config::Builder::from(&f.sdk)
            .interceptor(recorder.clone())
            .build(),
    );
    let actuator = AsgActuator::new(client, f.group_name.clone());
    let capacity = actuator.current().await.unwrap();
    assert_eq!(capacity.desired, 3);

    assert!(matches!(
        actuator.set_desired(11).await,
        Err(ActuatorError::OutOfBounds {
            requested: 11,
            min: 2,
            max: 10,
            ..
        })
    ));
    assert!(matches!(
        actuator.set_desired(1).await,
        Err(ActuatorError::OutOfBounds { .. })
    ));
    assert_eq!(
        actuator.set_desired(3).await.unwrap(),
        SetOutcome::Unchanged { desired: 3 }
    );
    assert_eq!(calls(&recorder, "SetDesiredCapacity"), 0);
    assert_eq!(
        actuator.set_desired(4).await.unwrap(),
        SetOutcome::Changed { from: 3, to: 4 }
    );
    assert_eq!(calls(&recorder, "SetDesiredCapacity"), 1);
    let after = describe_group(&aws_sdk_autoscaling::Client::new(&f.sdk), &f.group_name)
        .await
        .unwrap();
    assert_eq!((after.desired, after.min, after.max), (4, 2, 10));
}

#[tokio::test]
async fn queue_source_reads_visible_in_flight_and_delayed() {
    let f = Fixture::new(2).await;
    f.send(7).await;
    let sqs = aws_sdk_sqs::Client::new(&f.sdk);
    sqs.send_message()
        .queue_url(&f.queue_url)
        .message_body("later")
        .delay_seconds(900)
        .send()
        .await
        .unwrap();
    let received = sqs
        .receive_message()
        .queue_url(&f.queue_url)
        .max_number_of_messages(3)
        .visibility_timeout(600)
        .send()
        .await
        .unwrap();
    assert_eq!(received.messages().len(), 3);

    let depth = QueueSource::new(sqs, f.queue_name.clone(), None)
        .read()
        .await
        .unwrap();
    assert_eq!((depth.visible, depth.in_flight, depth.delayed), (4, 3, 1));
    assert_eq!(depth.oldest_message_age, None);
}

fn ballast() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ballast"))
}

#[tokio::test]
async fn cli_once_dry_run_prints_the_decision_and_changes_nothing() {
    let f = Fixture::new(2).await;
    f.send(500).await;
    let dir = std::env::temp_dir().join(ballast_testbed::unique_name("ballast-scale-cli"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("scale.yaml");
    std::fs::write(&file, f.blueprint_yaml()).unwrap();
    let endpoint = ballast_testbed::moto().await.endpoint();

    // An environment's values file: a larger target per instance for the same policy.
    let values = dir.join("relaxed.yaml");
    std::fs::write(
        &values,
        "spec:\n  scalingPolicies:\n    - name: backlog\n      targetBacklogPerInstance: 250\n",
    )
    .unwrap();

    let run_with = |format: &'static str, extra: Vec<String>| {
        let ballast = ballast();
        let file = file.clone();
        let endpoint = endpoint.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                Command::new(ballast)
                    .args(["scale", file.to_str().unwrap(), "--once", "--dry-run"])
                    .args(["--endpoint-url", &endpoint, "--output", format])
                    .args(extra)
                    .env("AWS_ACCESS_KEY_ID", "testing")
                    .env("AWS_SECRET_ACCESS_KEY", "testing")
                    .env_remove("AWS_PROFILE")
                    .env_remove("AWS_ENDPOINT_URL")
                    .env_remove("AWS_REGION")
                    .env("AWS_EC2_METADATA_DISABLED", "true")
                    .env("AWS_CONFIG_FILE", "/nonexistent")
                    .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
                    .output()
                    .expect("ballast runs")
            })
            .await
            .unwrap()
        }
    };
    let run = |format: &'static str| run_with(format, Vec::new());

    let out = run("text").await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    for part in [
        "policy backlog:",
        "visible 500",
        "in flight 0",
        "in service 2",
        "backlog/instance 250.00",
        "desired 2 -> 5",
        "action scale-out (dry run: not set)",
        "reason: backlog 250.00/instance",
    ] {
        assert!(lines[0].contains(part), "`{part}` missing in {}", lines[0]);
    }

    let out = run("json").await;
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let record: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(record["policy"], "backlog");
    assert_eq!(record["visible"], 500);
    assert_eq!(record["in_service"], 2);
    assert_eq!(record["desired"], 5);
    assert_eq!(record["action"]["type"], "scale_out");
    assert_eq!(record["actuation"]["result"], "dry_run");
    assert_eq!(record["dry_run"], true);
    assert_eq!(record["metrics_published"], false);

    // With the values file laid over the blueprint, 500 visible fit the two in service.
    let values_args = vec!["--values".to_string(), values.display().to_string()];
    let out = run_with("json", values_args).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let record: serde_json::Value =
        serde_json::from_str(String::from_utf8(out.stdout).unwrap().trim()).unwrap();
    assert_eq!(record["desired"], 2, "{record}");
    assert_eq!(record["action"]["type"], "no_change", "{record}");

    assert_eq!(f.desired().await, 2, "a dry run never sets the capacity");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Puts one-minute `Sum` datapoints, one per `(minutes ago, value)`.
async fn put_minutes(
    cw: &aws_sdk_cloudwatch::Client,
    metric: &ballast_controller::autoscale::reading::MinuteMetric,
    now: std::time::SystemTime,
    points: &[(u64, f64)],
) {
    let (name, value) = &metric.dimension;
    let datums = points
        .iter()
        .map(|(ago, v)| {
            aws_sdk_cloudwatch::types::MetricDatum::builder()
                .metric_name(metric.metric_name)
                .dimensions(
                    aws_sdk_cloudwatch::types::Dimension::builder()
                        .name(*name)
                        .value(value)
                        .build(),
                )
                .timestamp((now - Duration::from_secs(ago * 60)).into())
                .unit(aws_sdk_cloudwatch::types::StandardUnit::Count)
                .value(*v)
                .build()
        })
        .collect::<Vec<_>>();
    for chunk in datums.chunks(500) {
        cw.put_metric_data()
            .namespace(metric.namespace)
            .set_metric_data(Some(chunk.to_vec()))
            .send()
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn queueing_mode_reads_measured_arrival_and_service_rates_from_cloudwatch() {
    use ballast_controller::autoscale::actuator::FleetId;
    use ballast_controller::autoscale::reading::MinuteMetric;

    let f = Fixture::new(4).await;
    f.send(100).await;
    let yaml = f.blueprint_yaml().replace(
        "      targetBacklogPerInstance: 100\n",
        "      targetBacklogPerInstance: 100\n      mode: queueing\n      serviceRatePerInstance: 5\n",
    );
    let bp = match ballast_blueprint::parse("scale-test.yaml", &yaml) {
        Ok(loaded) => loaded.blueprint,
        Err(diagnostics) => panic!("{diagnostics}"),
    };
    let (mut ctx, _clock, recorder) = f.context(Mode::DryRun);
    let now = std::time::SystemTime::now();
    let clock = Arc::new(ManualClock::new(Timestamp::from_system_time(now)));
    ctx.clock = clock.clone();
    let mut loops = build_loops(&ctx, &bp, None, None).unwrap();

    // A fresh fleet: nothing published yet, so the configured rate stands in.
    let e = only(evaluate_all(&ctx, &mut loops).await);
    let m = e.reading().expect("metrics read");
    assert_eq!(
        (m.measured_arrival_milli, m.measured_service_milli),
        (None, None)
    );
    assert!(
        e.decision
            .reason
            .contains("μ 5.00/s per instance (configured)"),
        "{}",
        e.decision.reason
    );
    assert_eq!(calls(&recorder, "GetMetricData"), 1);

    // Four settled minutes before the next evaluation (10 s from now): 1320 sent a minute
    // (22/s), messages visible at every minute's sample, and each of the group's 4 workers
    // reporting 240 processed a minute (4/s each: 960 a minute over 4 reports).
    let next = now + Duration::from_secs(10);
    let cw = aws_sdk_cloudwatch::Client::new(&f.sdk);
    let sent = MinuteMetric::messages_sent(&f.queue_name);
    let visible = MinuteMetric::messages_visible(&f.queue_name);
    let processed = MinuteMetric::transactions_processed(&FleetId::AutoScalingGroup {
        name: f.group_name.clone(),
    });
    let minutes: Vec<(u64, f64)> = (2..=5).map(|ago| (ago, 1320.0)).collect();
    put_minutes(&cw, &sent, next, &minutes).await;
    // The minute in progress and the one that closed less than a minute before the evaluation
    // may still be aggregating: their partial sums (100 and 500) must not read as a fall to 2
    // or 8/s.
    put_minutes(&cw, &sent, next, &[(0, 100.0), (1, 500.0)]).await;
    let minutes: Vec<(u64, f64)> = (1..=5).map(|ago| (ago, 150.0)).collect();
    put_minutes(&cw, &visible, next, &minutes).await;
    let minutes: Vec<(u64, f64)> = (1..=5)
        .flat_map(|ago| std::iter::repeat_n((ago, 240.0), 4))
        .collect();
    put_minutes(&cw, &processed, next, &minutes).await;

    clock.advance(Duration::from_secs(10));
    let e = only(evaluate_all(&ctx, &mut loops).await);
    let m = e.reading().expect("metrics read");
    assert_eq!(
        (m.measured_arrival_milli, m.measured_service_milli),
        (Some(22_000), Some(4_000))
    );
    // The settled minutes hold at 22/s, so the load reads as steady (the latency budget may
    // be spent on it); the partial minutes would have broken it.
    assert_eq!(m.measured_steady_arrival_milli, Some(22_000));
    assert!(
        e.decision
            .reason
            .contains("λ 22.00/s (measured), μ 4.00/s per instance (measured)"),
        "{}",
        e.decision.reason
    );
    assert!(
        e.decision.reason.contains("rate term 6"),
        "{}",
        e.decision.reason
    );
    // 4 in service fall 6/s short: the backlog at boot (100 + 6 × 90) still waits only 40 s,
    // but CloudWatch's minutes-long λ is no burst, so the rate term decides.
    assert!(
        e.decision.reason.ends_with(
            "projected wait 40s at boot (within objective): rate term 6, drain term 4; \
             rate decides: scale out 4 -> 6"
        ),
        "{}",
        e.decision.reason
    );
    assert!(!e.decision.reason.contains('\n'));
}

#[tokio::test]
async fn queueing_mode_spends_the_latency_budget_on_a_steady_load_cloudwatch_shows() {
    use ballast_controller::autoscale::reading::MinuteMetric;

    // 5 instances keep pace with 22/s (nothing visible). CloudWatch shows the 22/s steady for
    // eight minutes, so 4 instances, letting the queue grow 2/s, keep the wait within the 60 s
    // objective for over four boot times: the policy scales in to 4, one below ceil(22 ÷ 5).
    let f = Fixture::new(5).await;
    let yaml = f
        .blueprint_yaml()
        .replace(
            "      targetBacklogPerInstance: 100\n",
            "      targetBacklogPerInstance: 100\n      mode: queueing\n      serviceRatePerInstance: 5\n",
        )
        .replace("scaleInCooldown: 300s", "scaleInCooldown: 60s")
        .replace("stabilizationWindow: 300s", "stabilizationWindow: 30s");
    let bp = match ballast_blueprint::parse("scale-test.yaml", &yaml) {
        Ok(loaded) => loaded.blueprint,
        Err(diagnostics) => panic!("{diagnostics}"),
    };
    let now = std::time::SystemTime::now();
    let cw = aws_sdk_cloudwatch::Client::new(&f.sdk);
    let minutes: Vec<(u64, f64)> = (1..=8).map(|ago| (ago, 1320.0)).collect();
    put_minutes(
        &cw,
        &MinuteMetric::messages_sent(&f.queue_name),
        now,
        &minutes,
    )
    .await;

    let (mut ctx, _clock, recorder) = f.context(Mode::Live);
    let clock = Arc::new(ManualClock::new(Timestamp::from_system_time(now)));
    ctx.clock = clock.clone();
    let mut loops = build_loops(&ctx, &bp, None, None).unwrap();
    let mut reasons = Vec::new();
    // The cooldown runs from the group's creation (its activity history), the window is 30 s:
    // within two minutes of evaluations every 10 s.
    for _ in 0..13 {
        let e = only(evaluate_all(&ctx, &mut loops).await);
        let m = e.reading().expect("metrics read");
        assert_eq!(
            m.measured_steady_arrival_milli,
            Some(22_000),
            "{}",
            e.decision.reason
        );
        reasons.push(e.decision.reason.clone());
        if e.decision.action != Action::NoChange {
            break;
        }
        clock.advance(Duration::from_secs(10));
    }
    let last = reasons.last().unwrap();
    assert!(
        last.ends_with(
            "budget decides: scale in 5 -> 4, the queue absorbs 2.00/s within the 90s objective"
        ),
        "{reasons:#?}"
    );
    assert_eq!(calls(&recorder, "SetDesiredCapacity"), 1);
    assert_eq!(f.desired().await, 4);
}

#[tokio::test]
async fn trace_export_replays_the_queues_cloudwatch_history_in_the_simulator() {
    use ballast_controller::autoscale::reading::MinuteMetric;
    use ballast_controller::simulate::export::export_trace;
    use ballast_controller::simulate::trace::Trace;

    let moto = ballast_testbed::moto().await;
    let sdk = moto.sdk_config().await;
    let cw = aws_sdk_cloudwatch::Client::new(&sdk);
    let queue = ballast_testbed::unique_name("trace-q");
    let now = std::time::SystemTime::now();
    // Three hours back, every seventh minute: 1, 8, 15, ... minutes ago, with counts
    // that are not multiples of 60 (rates with more than three decimals).
    let points: Vec<(u64, f64)> = (0..26).map(|i| (1 + 7 * i, (13 * i + 1) as f64)).collect();
    put_minutes(&cw, &MinuteMetric::messages_sent(&queue), now, &points).await;
    // Another queue's traffic must not leak in.
    put_minutes(
        &cw,
        &MinuteMetric::messages_sent(&format!("{queue}-other")),
        now,
        &[(2, 999.0)],
    )
    .await;

    let text = export_trace(&cw, &queue, Duration::from_secs(4 * 3600), now)
        .await
        .unwrap();
    let trace = Trace::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(trace.duration_secs(), 4 * 3600);
    let sent: u64 = points.iter().map(|(_, v)| *v as u64).sum();
    assert_eq!(trace.total_messages(), sent, "{text}");
    assert!(text.contains("minutes without a datapoint are 0 arrivals"));
    // Each published minute carries its count (±1 milli-message/s of carried rounding);
    // the minute after it, unpublished, carries none.
    let end = trace.duration_secs();
    for (ago, count) in &points {
        // The datapoint `ago` minutes before now lies in the minute that ends `ago - 1`
        // whole minutes before the trace's end (now rounded down to the minute).
        let t = end - ago * 60;
        let rate = trace.rate_milli_at(t) as i64;
        let expected = (*count as i64) * 1000 / 60;
        assert!(
            (rate - expected).abs() <= 1,
            "{ago} min ago: {rate} vs {expected}\n{text}"
        );
    }
    assert_eq!(trace.rate_milli_at(end - 3 * 60), 0, "{text}");
}

#[tokio::test]
async fn prediction_learns_the_daily_profile_from_the_queues_cloudwatch_history() {
    use ballast_controller::autoscale::reading::MinuteMetric;
    use ballast_controller::autoscale::seasonal::Forecast;

    let moto = ballast_testbed::moto().await;
    let sdk = moto.sdk_config().await;
    let cw = aws_sdk_cloudwatch::Client::new(&sdk);
    let queue = ballast_testbed::unique_name("forecast-q");
    let now = std::time::SystemTime::now();
    // Ten minutes from now, a day ago and two days ago: 600 messages (10/s) each time. Thirty
    // minutes from now, only a day ago: a one-off 6000, which the median ignores.
    let day = 24 * 60;
    let points = [(day - 10, 600.0), (2 * day - 10, 600.0), (day - 30, 6000.0)];
    put_minutes(&cw, &MinuteMetric::messages_sent(&queue), now, &points).await;
    // Another queue's traffic must not leak in.
    put_minutes(
        &cw,
        &MinuteMetric::messages_sent(&format!("{queue}-other")),
        now,
        &[(day - 20, 999.0)],
    )
    .await;

    let mut forecast = Forecast::new(2);
    let at = Timestamp::from_system_time(now);
    forecast.refresh(&cw, &queue, at).await;
    let profile = forecast.profile().expect("learned");
    assert_eq!(profile.periods, 2);
    let ahead = |minutes: u64| at + Duration::from_secs(minutes * 60);
    assert_eq!(forecast.predict(ahead(10), Duration::ZERO), Some(10_000));
    assert_eq!(forecast.predict(ahead(30), Duration::ZERO), Some(0));
    assert_eq!(forecast.predict(ahead(20), Duration::ZERO), Some(0));
    // Boot time ahead: from 5 minutes from now, the peak 10 minutes from now is in range.
    assert_eq!(
        forecast.predict(ahead(5), Duration::from_secs(6 * 60)),
        Some(10_000)
    );
}

/// `ballast run` follows an edited blueprint: the supervisor rebuilds its loops when the
/// reconcile loop publishes a version whose scaling inputs differ (here in dry-run, so the
/// decision lands in the metric and the group is untouched).
#[tokio::test]
async fn a_running_autoscaler_follows_an_edited_target() {
    use ballast_controller::service::metrics::{PolicyLabels, ServiceMetrics};
    use ballast_controller::service::status::Backoff;
    use ballast_controller::service::{Context as ServiceContext, Pause, Settings, scaling};

    let f = Fixture::new(2).await;
    f.send(500).await;
    let (scaling_ctx, _clock, recorder) = f.context(Mode::DryRun);
    let with_target = |target: u32| {
        let text = f.blueprint_yaml().replace(
            "targetBacklogPerInstance: 100",
            &format!("targetBacklogPerInstance: {target}"),
        );
        match ballast_blueprint::parse("scale-test.yaml", &text) {
            Ok(loaded) => loaded.blueprint,
            Err(diagnostics) => panic!("{diagnostics}"),
        }
    };
    let ctx = Arc::new(ServiceContext {
        metrics: Arc::new(ServiceMetrics::new(recorder.clone())),
        clock: scaling_ctx.clock.clone(),
        cancel: CancellationToken::new(),
        settings: Settings {
            dry_run: true,
            resync: Duration::from_secs(60),
            scale_interval: Some(Duration::from_millis(100)),
            readiness: Default::default(),
            backoff: Backoff {
                base: Duration::from_secs(1),
                max: Duration::from_secs(1),
            },
        },
    });
    let (published, blueprints) = tokio::sync::watch::channel(with_target(250));
    let (_leader_tx, leader) = tokio::sync::watch::channel(false);
    let (_pause_tx, pause) = tokio::sync::watch::channel(Pause::Running);
    let supervisor = tokio::spawn(scaling::supervise(
        ctx.clone(),
        scaling_ctx.clients.clone(),
        blueprints,
        leader,
        pause,
    ));
    let labels = PolicyLabels {
        blueprint: "scale-test".into(),
        policy: "backlog".into(),
    };
    let desired = || ctx.metrics.desired_capacity.get_or_create(&labels).get();
    let evaluated_after = |n: u64| calls(&recorder, "GetQueueAttributes") > n;

    // 500 visible ÷ 250 per instance: the two instances are enough.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !(evaluated_after(1) && desired() == 2) {
        assert!(tokio::time::Instant::now() < deadline, "no evaluation");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The operator lowers the target: 500 ÷ 100 wants five.
    published.send_replace(with_target(100));
    let before = calls(&recorder, "GetQueueAttributes");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while desired() != 5 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the edited target was not followed (desired {})",
            desired()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(evaluated_after(before), "a new evaluation decided it");
    assert_eq!(f.desired().await, 2, "dry run: the group is untouched");

    // An edit that cannot run (a Deployment fleet, and this controller has no Kubernetes
    // client): the last version that ran goes on evaluating, target 100, five wanted.
    let text = f.blueprint_yaml().replace(
        "      fleet: workers\n",
        "      deployment: { namespace: default, name: workers }\n      minReplicas: 1\n      maxReplicas: 5\n",
    );
    let unrunnable = match ballast_blueprint::parse("scale-test.yaml", &text) {
        Ok(loaded) => loaded.blueprint,
        Err(diagnostics) => panic!("{diagnostics}"),
    };
    published.send_replace(unrunnable);
    let before = calls(&recorder, "GetQueueAttributes");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !evaluated_after(before + 3) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the autoscaler stopped after an edit it cannot run"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(desired(), 5);
    assert!(
        !supervisor.is_finished(),
        "a bad edit does not end the service"
    );

    ctx.cancel.cancel();
    supervisor.await.unwrap().unwrap();
}
