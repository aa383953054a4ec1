//! Pausing reconciliation, against moto: an Auto Scaling group under `management: observe`
//! whose maximum an operator raised by hand is reported as drift but kept by `apply` and by
//! `ballast run`, and restored once it is managed again; `ballast suspend` makes `apply` refuse
//! and `ballast run` write nothing (no capacity change by the autoscaler either) while its
//! metrics say the blueprint is suspended, and `ballast resume` lets it converge again.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a failed test (clippy.toml covers only #[test] fns, not helpers)"
)]

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use aws_types::SdkConfig;
use ballast_aws::CallRecorder;
use ballast_blueprint::{ResourceId, ResourceKind};
use ballast_controller::provision::engine::LogProgress;
use ballast_controller::provision::kinds::Readiness;
use ballast_controller::provision::{self, Action, Clients};
use ballast_testbed::{moto, unique_name};

use crate::running::{self, eventually};

const MAX: i32 = 4;
const RAISED: i32 = 8;

/// A small fleet: one subnet, a template, a group of 1..4 and a backlog policy on a queue.
/// `group_management` goes on the group, `template_management` on its launch template.
fn blueprint_text(name: &str, group_management: &str, template_management: &str) -> String {
    format!(
        r#"apiVersion: ballast.dev/v1
kind: Blueprint
metadata: {{ name: {name}, region: us-east-1 }}
spec:
  queues:
    - name: work
  network:
    vpc:
      name: main
      cidr: 10.30.0.0/16
      subnets:
        - {{ name: private-a, cidr: 10.30.1.0/24, availabilityZone: us-east-1a }}
  launchTemplates:
    - name: worker
      imageId: ami-0abcdef1234567890
      instanceTypes: [t3.micro]
      # moto cannot launch from an EBS mapping without VolumeSize/SnapshotId.
      encryptedVolumes: false
      management: {template_management}
  autoScalingGroups:
    - name: workers
      launchTemplate: worker
      subnets: [private-a]
      minSize: 1
      maxSize: {MAX}
      management: {group_management}
  scalingPolicies:
    - name: backlog
      queue: work
      fleet: workers
      targetBacklogPerInstance: 10
      tolerancePercent: 0
      evaluationInterval: 1s
"#
    )
}

struct Stack {
    name: String,
    file: PathBuf,
    sdk: SdkConfig,
}

impl Stack {
    /// Writes the blueprint (group managed) and applies it through the library.
    async fn applied(prefix: &str) -> Stack {
        let name = unique_name(prefix);
        let dir = std::env::temp_dir().join(&name);
        std::fs::create_dir_all(&dir).unwrap();
        let stack = Stack {
            file: dir.join("blueprint.yaml"),
            sdk: moto().await.sdk_config().await,
            name,
        };
        stack.write("manage");
        let bp = stack.blueprint();
        let clients = Clients::read_write(&stack.sdk, &CallRecorder::default());
        let observation = provision::observe(&clients.observer(), &bp).await.unwrap();
        provision::apply(&clients, &bp, observation, readiness(), &LogProgress)
            .await
            .unwrap_or_else(|e| panic!("apply failed: {e}"));
        stack
    }

    fn write(&self, group_management: &str) {
        std::fs::write(
            &self.file,
            blueprint_text(&self.name, group_management, "manage"),
        )
        .unwrap();
    }

    fn blueprint(&self) -> ballast_blueprint::Blueprint {
        ballast_blueprint::load(&self.file)
            .unwrap_or_else(|e| panic!("{e}"))
            .blueprint
    }

    fn group_name(&self) -> String {
        format!("{}-workers", self.name)
    }

    /// (desired, max) of the group.
    async fn group(&self) -> (i32, i32) {
        let out = aws_sdk_autoscaling::Client::new(&self.sdk)
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(self.group_name())
            .send()
            .await
            .unwrap();
        let group = &out.auto_scaling_groups.unwrap()[0];
        (group.desired_capacity.unwrap(), group.max_size.unwrap())
    }

    /// What an operator does during a backlog: raise the maximum by hand.
    async fn raise_max_by_hand(&self) {
        aws_sdk_autoscaling::Client::new(&self.sdk)
            .update_auto_scaling_group()
            .auto_scaling_group_name(self.group_name())
            .max_size(RAISED)
            .send()
            .await
            .unwrap();
    }

    async fn send_messages(&self, count: usize) {
        let sqs = aws_sdk_sqs::Client::new(&self.sdk);
        let url = sqs
            .get_queue_url()
            .queue_name(format!("{}-work", self.name))
            .send()
            .await
            .unwrap()
            .queue_url
            .unwrap();
        for i in 0..count {
            sqs.send_message()
                .queue_url(&url)
                .message_body(format!("m{i}"))
                .send()
                .await
                .unwrap();
        }
    }

    /// Runs `ballast ARGS FILE --endpoint-url …` to completion.
    async fn ballast(&self, args: &[&str], extra: &[&str]) -> Output {
        ballast(args, &self.file, extra).await
    }
}

fn readiness() -> Readiness {
    Readiness {
        timeout: Duration::from_secs(60),
        poll: Duration::from_millis(100),
        ..Readiness::default()
    }
}

async fn ballast(args: &[&str], file: &Path, extra: &[&str]) -> Output {
    let endpoint = moto().await.endpoint();
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_ballast"));
    command
        .args(args)
        .arg(file)
        .args(["--endpoint-url", &endpoint])
        .args(extra)
        .envs(ballast_testbed::child_env())
        .env_remove("AWS_ENDPOINT_URL")
        .stdin(Stdio::null());
    command.output().await.expect("ballast runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `ballast run` on a stack, with its metrics read for that stack's blueprint.
struct Controller {
    run: running::Controller,
    blueprint: String,
}

impl Controller {
    async fn start(stack: &Stack, table: &str) -> Self {
        Controller {
            run: running::Controller::start(&stack.file, &["--lease-table", table]).await,
            blueprint: format!("blueprint=\"{}\"", stack.name),
        }
    }

    /// The value of the first sample of `name` for this blueprint with every label in `labels`.
    fn metric(&self, name: &str, labels: &[&str]) -> Option<f64> {
        self.run
            .metrics()
            .lines()
            .find(|l| {
                l.starts_with(name)
                    && l.contains(&self.blueprint)
                    && labels.iter().all(|label| l.contains(label))
            })
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    fn completed_rounds(&self) -> f64 {
        self.metric("ballast_reconciles_total", &["result=\"ok\""])
            .unwrap_or(0.0)
    }

    /// Waits until it leads, then for two more complete rounds: at least one whole round
    /// (observe, plan, apply) ran as the writer.
    async fn two_rounds_as_leader(&self) {
        eventually(60, "the controller to lead", || async {
            self.metric("ballast_leader", &[]) == Some(1.0)
        })
        .await;
        let start = self.completed_rounds();
        eventually(60, "two more reconcile rounds", || async {
            self.completed_rounds() >= start + 2.0
        })
        .await;
    }

    /// SIGTERM, then the exit code.
    fn terminate(self) -> Option<i32> {
        self.run.terminate()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_observed_group_keeps_its_hand_raised_maximum_until_managed_again() {
    let stack = Stack::applied("observe").await;
    stack.raise_max_by_hand().await;
    stack.write("observe");

    // The plan reports what it would fix, and that it will not.
    let bp = stack.blueprint();
    let clients = Clients::read_write(&stack.sdk, &CallRecorder::default());
    let observation = provision::observe(&clients.observer(), &bp).await.unwrap();
    let plan = provision::plan(&bp, &observation);
    let group = ResourceId::new(ResourceKind::AutoScalingGroup, "workers");
    let change = plan.changes.iter().find(|c| c.resource == group).unwrap();
    let Action::Observed { would } = &change.action else {
        panic!("observed expected: {:?}", change.action)
    };
    let Action::Update { changes } = would.as_ref() else {
        panic!("an update under manage expected: {would:?}")
    };
    assert_eq!(
        changes
            .iter()
            .map(|c| (c.field.as_str(), c.live.as_str(), c.desired.as_str()))
            .collect::<Vec<_>>(),
        [("maxSize", "8", "4")]
    );
    assert!(!plan.has_changes() && plan.has_drift());

    // `drift` fails on it; `apply` has nothing to do and keeps it.
    let drift = stack.ballast(&["drift"], &[]).await;
    assert_eq!(drift.status.code(), Some(2), "{}", text(&drift.stderr));
    assert!(
        text(&drift.stdout).contains("observed"),
        "{}",
        text(&drift.stdout)
    );
    let table = unique_name("leases");
    let apply = stack
        .ballast(&["apply"], &["--auto-approve", "--lease-table", &table])
        .await;
    assert_eq!(apply.status.code(), Some(0), "{}", text(&apply.stderr));
    assert!(
        text(&apply.stdout).contains("maxSize: 8 (blueprint: 4)"),
        "{}",
        text(&apply.stdout)
    );
    assert_eq!(
        stack.group().await.1,
        RAISED,
        "apply reverted an observed group"
    );

    // The controller reports it every round and never writes it.
    let controller = Controller::start(&stack, &table).await;
    controller.two_rounds_as_leader().await;
    assert_eq!(
        controller.metric("ballast_observed_resources", &[]),
        Some(1.0)
    );
    assert_eq!(
        controller.metric("ballast_resource_drift", &["resource=\"workers\""]),
        Some(1.0),
        "the observed group's drift is exported"
    );
    assert_eq!(
        controller.metric("ballast_blueprint_suspended", &[]),
        Some(0.0)
    );
    assert_eq!(
        stack.group().await.1,
        RAISED,
        "run reverted an observed group"
    );

    // Managed again: the next round restores the blueprint's maximum.
    stack.write("manage");
    eventually(60, "the controller to restore maxSize", || async {
        stack.group().await.1 == MAX
    })
    .await;
    eventually(10, "no observed resources left", || async {
        controller.metric("ballast_observed_resources", &[]) == Some(0.0)
    })
    .await;
    assert_eq!(controller.terminate(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_blueprint_is_observed_and_never_written_until_resumed() {
    let stack = Stack::applied("suspend").await;
    assert_eq!(stack.group().await, (1, MAX));
    let table = unique_name("leases");
    let lease_table = ["--lease-table", table.as_str()];

    let suspend = stack
        .ballast(
            &["suspend"],
            &[
                "--lease-table",
                &table,
                "--reason",
                "month-end backlog",
                "--by",
                "alice",
            ],
        )
        .await;
    assert_eq!(suspend.status.code(), Some(0), "{}", text(&suspend.stderr));
    assert!(
        text(&suspend.stdout).contains("suspended by alice at"),
        "{}",
        text(&suspend.stdout)
    );
    // Suspending again keeps the first record.
    let again = stack
        .ballast(&["suspend"], &["--lease-table", &table, "--by", "bob"])
        .await;
    assert_eq!(again.status.code(), Some(0), "{}", text(&again.stderr));
    assert!(
        text(&again.stdout).contains("already suspended by alice"),
        "{}",
        text(&again.stdout)
    );

    // The operator's changes: a raised maximum, and a backlog that asks for 3 instances.
    stack.raise_max_by_hand().await;
    stack.send_messages(30).await;

    let apply = stack
        .ballast(&["apply"], &["--auto-approve", "--lease-table", &table])
        .await;
    assert_eq!(apply.status.code(), Some(1), "apply must refuse");
    let refusal = text(&apply.stderr);
    for expected in [
        "suspended by alice",
        "month-end backlog",
        "ballast resume",
        "nothing was changed",
    ] {
        assert!(
            refusal.contains(expected),
            "`{expected}` missing: {refusal}"
        );
    }
    assert_eq!(stack.group().await, (1, RAISED));

    let controller = Controller::start(&stack, &table).await;
    controller.two_rounds_as_leader().await;
    assert_eq!(
        controller.metric("ballast_blueprint_suspended", &[]),
        Some(1.0)
    );
    // The autoscaler evaluated (and would scale to 3) without setting the capacity.
    eventually(60, "an evaluation of the scaling policy", || async {
        controller.metric("ballast_fleet_desired_capacity", &["policy=\"backlog\""]) == Some(3.0)
    })
    .await;
    controller.two_rounds_as_leader().await;
    assert_eq!(
        controller.metric("ballast_resource_drift", &["resource=\"workers\""]),
        Some(1.0),
        "drift is still reported while suspended"
    );
    assert_eq!(
        controller.metric("ballast_scaling_actions_total", &[]),
        None,
        "no scaling action while suspended"
    );
    assert_eq!(
        stack.group().await,
        (1, RAISED),
        "a suspended blueprint was written"
    );

    let resume = stack.ballast(&["resume"], &lease_table).await;
    assert_eq!(resume.status.code(), Some(0), "{}", text(&resume.stderr));
    assert!(
        text(&resume.stdout).contains("it was suspended by alice"),
        "{}",
        text(&resume.stdout)
    );
    eventually(60, "the controller to converge after resume", || async {
        stack.group().await == (3, MAX)
    })
    .await;
    assert_eq!(
        controller.metric("ballast_blueprint_suspended", &[]),
        Some(0.0)
    );
    assert_eq!(controller.terminate(), Some(0));

    // `--ignore-suspension` applies once and keeps the blueprint suspended.
    let suspend = stack.ballast(&["suspend"], &lease_table).await;
    assert_eq!(suspend.status.code(), Some(0), "{}", text(&suspend.stderr));
    stack.raise_max_by_hand().await;
    let forced = stack
        .ballast(
            &["apply"],
            &[
                "--auto-approve",
                "--ignore-suspension",
                "--lease-table",
                &table,
            ],
        )
        .await;
    assert_eq!(forced.status.code(), Some(0), "{}", text(&forced.stderr));
    assert_eq!(stack.group().await.1, MAX);
    let resume = stack.ballast(&["resume"], &lease_table).await;
    assert!(
        text(&resume.stdout).contains("Resumed"),
        "still suspended after --ignore-suspension: {}",
        text(&resume.stdout)
    );

    let not = stack.ballast(&["resume"], &lease_table).await;
    assert!(
        text(&not.stdout).contains("was not suspended"),
        "{}",
        text(&not.stdout)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_observed_resource_is_not_created_and_its_dependents_are_skipped() {
    let name = unique_name("missing");
    let bp = ballast_blueprint::parse("t.yaml", &blueprint_text(&name, "manage", "observe"))
        .unwrap_or_else(|e| panic!("{e}"))
        .blueprint;
    let sdk = moto().await.sdk_config().await;
    let clients = Clients::read_write(&sdk, &CallRecorder::default());
    let observation = provision::observe(&clients.observer(), &bp).await.unwrap();
    let plan = provision::plan(&bp, &observation);
    let template = ResourceId::new(ResourceKind::LaunchTemplate, "worker");
    let group = ResourceId::new(ResourceKind::AutoScalingGroup, "workers");
    let action = |id: &ResourceId| {
        plan.changes
            .iter()
            .find(|c| &c.resource == id)
            .map(|c| c.action.clone())
    };
    assert_eq!(
        action(&template),
        Some(Action::Observed {
            would: Box::new(Action::Create)
        })
    );
    assert_eq!(action(&group), Some(Action::Create));

    let err = provision::apply(&clients, &bp, observation, readiness(), &LogProgress)
        .await
        .expect_err("the group cannot be created without its template");
    let ballast_controller::provision::EngineError::Failed(errors) = &err else {
        panic!("failed expected: {err}")
    };
    assert_eq!(errors.len(), 1, "{err}");
    let message = errors[0].to_string();
    assert!(
        message.starts_with("auto-scaling-group/workers: skipped: needs launch-template/worker")
            && message.contains("management: observe"),
        "{message}"
    );
    // Everything that does not need the template was created; the template was not.
    let ec2 = aws_sdk_ec2::Client::new(&sdk);
    let templates = ec2
        .describe_launch_templates()
        .launch_template_names(format!("{name}-worker"))
        .send()
        .await;
    assert!(
        templates.map_or(true, |out| out.launch_templates().is_empty()),
        "an observed template was created"
    );
    let queue = aws_sdk_sqs::Client::new(&sdk)
        .get_queue_url()
        .queue_name(format!("{name}-work"))
        .send()
        .await;
    assert!(queue.is_ok(), "the queue does not depend on the template");
}
