//! An interrupted `ballast apply` is harmless (#14 §2): the real `ballast` binary applies a
//! blueprint with every kind through the test bed's fault proxy, which holds one chosen AWS call
//! without answering; once that call arrives the apply is SIGKILLed, so it dies exactly between
//! two of its calls (a key without its alias, a VPC without its route table, …). Then, against
//! moto directly, `force-unlock` removes the dead writer's lease and ONE re-apply must succeed,
//! `ballast drift` must exit 0 (nothing drifted, no orphan), and each logical id must exist
//! exactly once in AWS.
//!
//! Every kill point runs on its own blueprint and proxy, all at once, so the test costs about
//! one kill and one re-apply (a few seconds on moto).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a failed test (clippy.toml covers only #[test] fns, not helpers)"
)]
#![cfg(unix)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_ec2::types::Filter;
use ballast_e2e::{controller_binary, moto, unique_name};
use ballast_testbed::proxy::{Fault, FaultProxy, Rule};

const OWNER_TAG: &str = "ballast.dev/blueprint";
const RESOURCE_TAG: &str = "ballast.dev/resource";

/// Where the apply dies: the call held (never answered, never forwarded) when it is killed.
/// Everything the apply sent before it happened; it and everything after did not.
const KILL_POINTS: [(&str, &str, &str); 6] = [
    ("kms", "CreateAlias", "a key without its alias"),
    (
        "ec2",
        "CreateRouteTable",
        "a VPC without its private route table",
    ),
    (
        "ec2",
        "AssociateRouteTable",
        "a subnet without its association",
    ),
    ("ec2", "CreateVpcEndpoint", "a network without its endpoint"),
    (
        "dynamodb",
        "UpdateContinuousBackups",
        "a table without point-in-time recovery",
    ),
    (
        "autoscaling",
        "PutLifecycleHook",
        "a group without its lifecycle hook",
    ),
];

/// How long a killed apply may take to reach its kill point.
const REACH_WITHIN: Duration = Duration::from_secs(60);

fn blueprint_text(name: &str) -> String {
    format!(
        r#"apiVersion: ballast.dev/v1
kind: Blueprint
metadata: {{ name: {name}, region: us-east-1 }}
spec:
  kmsKeys:
    - name: data
      deletionWindow: 7d
      deletionPolicy: delete
  queues:
    - name: work
      encryption: {{ type: kms, kmsKey: data }}
      deadLetter: {{ queue: work-dlq, maxReceiveCount: 5 }}
      deletionPolicy: delete
    - name: work-dlq
      encryption: {{ type: kms, kmsKey: data }}
      deletionPolicy: delete
  tables:
    - name: items
      hashKey: {{ name: pk, type: S }}
      ttlAttribute: expires_at
      deletionPolicy: delete
  network:
    vpc:
      name: main
      cidr: 10.40.0.0/16
      subnets:
        - {{ name: private-a, cidr: 10.40.1.0/24, availabilityZone: us-east-1a }}
    endpoints:
      - name: dynamodb
        service: dynamodb
        type: gateway
  launchTemplates:
    - name: worker
      imageId: ami-0abcdef1234567890
      instanceTypes: [m6i.large]
      rootVolumeSize: 20
  autoScalingGroups:
    - name: workers
      launchTemplate: worker
      subnets: [private-a]
      minSize: 0
      maxSize: 2
      lifecycleHooks:
        - {{ name: drain, transition: terminating, heartbeatTimeout: 30s }}
  alarms:
    - name: backlog
      queue: work
      metric: ApproximateNumberOfMessagesVisible
      statistic: Maximum
      period: 60s
      threshold: 1000
      comparison: greaterThan
      evaluationPeriods: 1
  dashboards:
    - name: operations
      widgets:
        - title: Backlog
          metrics:
            - {{ queue: work, metric: ApproximateNumberOfMessagesVisible, statistic: Maximum }}
"#
    )
}

/// The logical ids a duplicate of which AWS would allow (their names are not unique in AWS):
/// each must exist exactly once. Queues, tables, templates, groups, alarms and dashboards have
/// unique names, and the re-apply's drift check covers them.
const NON_UNIQUE: [&str; 4] = [
    "kms-key/data",
    "vpc/main",
    "subnet/private-a",
    "vpc-endpoint/dynamodb",
];

fn ballast(args: &[&str], log: &Path) -> Output {
    Command::new(controller_binary())
        .args(args)
        .envs(ballast_testbed::child_env())
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_PROFILE")
        .env("BALLAST_LOG", "info")
        .stdin(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .output()
        .expect("ballast runs")
}

struct Run {
    name: String,
    file: PathBuf,
    dir: PathBuf,
}

/// Applies `run`'s blueprint through a proxy that holds `service:operation`, and SIGKILLs the
/// apply as soon as that call arrives.
async fn apply_and_kill(run: &Run, service: &str, operation: &str, seed: u64) {
    let proxy = FaultProxy::start(&moto().await.endpoint(), seed)
        .await
        .unwrap();
    proxy.add(Rule::new(Fault::Hang).service(service).operation(operation));
    let log = run.dir.join("killed-apply.log");
    let mut child = Command::new(controller_binary())
        .args([
            "apply",
            run.file.to_str().unwrap(),
            "--auto-approve",
            "--endpoint-url",
            &proxy.endpoint(),
        ])
        .envs(ballast_testbed::child_env())
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_PROFILE")
        .env("BALLAST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    while proxy.requests(service, operation) == 0 {
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "{}: the apply ended ({status}) without calling {service}:{operation}; log: {}",
                run.name,
                log.display()
            );
        }
        assert!(
            started.elapsed() < REACH_WITHIN,
            "{}: {service}:{operation} not called within {REACH_WITHIN:?}; log: {}",
            run.name,
            log.display()
        );
        tick.tick().await;
    }
    child.kill().unwrap(); // SIGKILL: no cleanup, the lease stays behind
    child.wait().unwrap();
    drop(proxy); // stops it, and with it the held call
}

/// After the kill: force-unlock, one re-apply, drift, and each logical id exactly once.
async fn recover_and_check(run: &Run, what: &str) {
    let endpoint = moto().await.endpoint();
    let file = run.file.to_str().unwrap();
    let unlock = ballast(
        &[
            "force-unlock",
            file,
            "--endpoint-url",
            &endpoint,
            "--auto-approve",
        ],
        &run.dir.join("force-unlock.log"),
    );
    assert_eq!(unlock.status.code(), Some(0), "{}: force-unlock", run.name);
    let log = run.dir.join("reapply.log");
    let reapply = ballast(
        &["apply", file, "--auto-approve", "--endpoint-url", &endpoint],
        &log,
    );
    assert_eq!(
        reapply.status.code(),
        Some(0),
        "{} ({what}): one re-apply must converge; log: {}\n{}",
        run.name,
        log.display(),
        String::from_utf8_lossy(&reapply.stdout)
    );
    let drift = ballast(
        &["drift", file, "--endpoint-url", &endpoint],
        &run.dir.join("drift.log"),
    );
    assert_eq!(
        drift.status.code(),
        Some(0),
        "{} ({what}): drift after the re-apply:\n{}",
        run.name,
        String::from_utf8_lossy(&drift.stdout)
    );
    let counts = logical_ids(&run.name).await;
    for id in NON_UNIQUE {
        assert_eq!(
            counts.get(id).copied(),
            Some(1),
            "{} ({what}): {id} must exist exactly once: {counts:?}",
            run.name
        );
    }
}

/// How many resources of the non-unique kinds carry each logical id, for blueprint `name`.
async fn logical_ids(name: &str) -> BTreeMap<String, usize> {
    let config = moto().await.sdk_config().await;
    let mut counts = BTreeMap::new();
    let mut count = |tags: Vec<(String, String)>| {
        if let Some((_, id)) = tags.into_iter().find(|(k, _)| k == RESOURCE_TAG) {
            *counts.entry(id).or_insert(0) += 1;
        }
    };
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let owner = || {
        Filter::builder()
            .name(format!("tag:{OWNER_TAG}"))
            .values(name)
            .build()
    };
    let pairs = |tags: &[aws_sdk_ec2::types::Tag]| -> Vec<(String, String)> {
        tags.iter()
            .map(|t| {
                (
                    t.key().unwrap_or_default().to_string(),
                    t.value().unwrap_or_default().to_string(),
                )
            })
            .collect()
    };
    for v in ec2
        .describe_vpcs()
        .filters(owner())
        .send()
        .await
        .unwrap()
        .vpcs()
    {
        count(pairs(v.tags()));
    }
    for s in ec2
        .describe_subnets()
        .filters(owner())
        .send()
        .await
        .unwrap()
        .subnets()
    {
        count(pairs(s.tags()));
    }
    for e in ec2
        .describe_vpc_endpoints()
        .filters(owner())
        .send()
        .await
        .unwrap()
        .vpc_endpoints()
    {
        let gone = e
            .state()
            .is_some_and(|s| s.as_str().eq_ignore_ascii_case("deleted"));
        if !gone {
            count(pairs(e.tags()));
        }
    }
    let kms = aws_sdk_kms::Client::new(&config);
    for key in kms.list_keys().send().await.unwrap().keys() {
        let Some(key_id) = key.key_id() else { continue };
        let tags: Vec<(String, String)> = kms
            .list_resource_tags()
            .key_id(key_id)
            .send()
            .await
            .unwrap()
            .tags()
            .iter()
            .map(|t| (t.tag_key().to_string(), t.tag_value().to_string()))
            .collect();
        if tags.iter().any(|(k, v)| k == OWNER_TAG && v == name) {
            count(tags);
        }
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_apply_killed_at_any_of_its_calls_converges_with_one_reapply() {
    let started = Instant::now();
    let runs: Vec<(Run, &'static str, &'static str, &'static str)> = KILL_POINTS
        .iter()
        .map(|(service, operation, what)| {
            let name = unique_name("kill");
            let dir = std::env::temp_dir().join(&name);
            std::fs::create_dir_all(&dir).unwrap();
            let file = dir.join("bp.yaml");
            std::fs::write(&file, blueprint_text(&name)).unwrap();
            (Run { name, file, dir }, *service, *operation, *what)
        })
        .collect();
    // One thread per kill point: the child processes do the work, each thread waits on its own.
    let runtime = tokio::runtime::Handle::current();
    let checks: Vec<_> = runs
        .into_iter()
        .enumerate()
        .map(|(i, (run, service, operation, what))| {
            let runtime = runtime.clone();
            tokio::task::spawn_blocking(move || {
                runtime.block_on(async {
                    apply_and_kill(&run, service, operation, i as u64).await;
                    recover_and_check(&run, what).await;
                })
            })
        })
        .collect();
    for check in checks {
        if let Err(e) = check.await {
            std::panic::resume_unwind(e.into_panic());
        }
    }
    eprintln!(
        "{} kill points, each killed and re-applied once, in {:.1}s",
        KILL_POINTS.len(),
        started.elapsed().as_secs_f64()
    );
}
