//! Security groups against moto: groups and their rules converge (EC2's default egress rule
//! removed where the blueprint declares none), endpoints and launch templates name groups by
//! blueprint name, and rules changed behind Ballast's back are reported and repaired.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a failed test (clippy.toml covers only #[test] fns, not helpers)"
)]

use std::collections::BTreeSet;

use aws_sdk_ec2::types::{Filter, IpPermission, IpRange, SecurityGroup};
use ballast_aws::CallRecorder;
use ballast_blueprint::{Blueprint, ResourceId, ResourceKind};
use ballast_controller::provision::engine::LogProgress;
use ballast_controller::provision::kinds::Readiness;
use ballast_controller::provision::{Action, Clients, Plan, apply, observe, plan};

fn blueprint(name: &str) -> Blueprint {
    let text = format!(
        r#"apiVersion: ballast.dev/v1
kind: Blueprint
metadata:
  name: {name}
  region: us-east-1
spec:
  network:
    vpc:
      name: main
      cidr: 10.30.0.0/16
      subnets:
        - {{ name: a, cidr: 10.30.1.0/24, availabilityZone: us-east-1a }}
      securityGroups:
        - name: endpoints
          description: Interface endpoints
          ingress:
            - {{ protocol: tcp, port: 443, cidr: 10.30.0.0/16 }}
        - name: workers
          description: Workers
          ingress:
            - {{ protocol: all, group: workers }}
          egress:
            - {{ protocol: tcp, port: 443, group: endpoints }}
            - {{ protocol: tcp, fromPort: 1024, toPort: 2048, cidr: 10.30.0.0/16 }}
    endpoints:
      - name: sqs
        service: sqs
        type: interface
        subnets: [a]
        securityGroups: [endpoints]
  launchTemplates:
    - name: worker
      imageId: ami-0abcdef1234567890
      instanceTypes: [m6i.large]
      securityGroups: [workers]
"#
    );
    ballast_blueprint::parse("t.yaml", &text)
        .unwrap_or_else(|d| panic!("{d}"))
        .blueprint
}

struct Env {
    sdk: aws_types::SdkConfig,
    bp: Blueprint,
}

async fn env() -> Env {
    let moto = ballast_testbed::moto().await;
    let name = ballast_testbed::unique_name("t").to_lowercase();
    Env {
        sdk: moto.sdk_config().await,
        bp: blueprint(&name),
    }
}

impl Env {
    async fn plan(&self) -> Plan {
        let clients = Clients::read_write(&self.sdk, &CallRecorder::default());
        let observation = observe(&clients.observer(), &self.bp).await.unwrap();
        plan(&self.bp, &observation)
    }

    async fn apply(&self) -> CallRecorder {
        let recorder = CallRecorder::default();
        let clients = Clients::read_write(&self.sdk, &recorder);
        let observation = observe(&clients.observer(), &self.bp).await.unwrap();
        apply(
            &clients,
            &self.bp,
            observation,
            Readiness::default(),
            &LogProgress,
        )
        .await
        .unwrap_or_else(|e| panic!("apply failed: {e}"));
        recorder
    }

    fn ec2(&self) -> aws_sdk_ec2::Client {
        aws_sdk_ec2::Client::new(&self.sdk)
    }

    async fn group(&self, name: &str) -> SecurityGroup {
        self.ec2()
            .describe_security_groups()
            .filters(
                Filter::builder()
                    .name("group-name")
                    .values(format!("{}-{name}", self.bp.metadata.name))
                    .build(),
            )
            .send()
            .await
            .unwrap()
            .security_groups
            .unwrap_or_default()
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("group {name} exists"))
    }
}

/// (protocol, from, to, peer) of every single rule in `permissions`.
fn rules(permissions: &[IpPermission]) -> BTreeSet<(String, Option<i32>, Option<i32>, String)> {
    let mut out = BTreeSet::new();
    for p in permissions {
        let protocol = p.ip_protocol().unwrap_or_default().to_string();
        let (from, to) = if protocol == "-1" {
            (None, None)
        } else {
            (p.from_port(), p.to_port())
        };
        for r in p.ip_ranges() {
            out.insert((protocol.clone(), from, to, r.cidr_ip().unwrap().to_string()));
        }
        for g in p.user_id_group_pairs() {
            out.insert((
                protocol.clone(),
                from,
                to,
                g.group_id().unwrap().to_string(),
            ));
        }
    }
    out
}

fn rule(
    protocol: &str,
    ports: Option<(i32, i32)>,
    peer: &str,
) -> (String, Option<i32>, Option<i32>, String) {
    (
        protocol.to_string(),
        ports.map(|p| p.0),
        ports.map(|p| p.1),
        peer.to_string(),
    )
}

fn assert_no_changes(plan: &Plan) {
    assert!(
        !plan.has_changes(),
        "unexpected changes: {}",
        serde_json::to_string_pretty(plan).unwrap()
    );
}

#[tokio::test]
async fn groups_converge_and_are_named_by_endpoints_and_launch_templates() {
    let env = env().await;
    env.apply().await;

    let endpoints = env.group("endpoints").await;
    let workers = env.group("workers").await;
    let endpoints_id = endpoints.group_id().unwrap().to_string();
    let workers_id = workers.group_id().unwrap().to_string();
    assert_eq!(
        rules(endpoints.ip_permissions()),
        BTreeSet::from([rule("tcp", Some((443, 443)), "10.30.0.0/16")])
    );
    // No egress declared: EC2's allow-all default is gone.
    assert_eq!(rules(endpoints.ip_permissions_egress()), BTreeSet::new());
    assert_eq!(
        rules(workers.ip_permissions()),
        BTreeSet::from([rule("-1", None, &workers_id)])
    );
    assert_eq!(
        rules(workers.ip_permissions_egress()),
        BTreeSet::from([
            rule("tcp", Some((443, 443)), &endpoints_id),
            rule("tcp", Some((1024, 2048)), "10.30.0.0/16"),
        ])
    );
    let tags: Vec<(&str, &str)> = workers
        .tags()
        .iter()
        .map(|t| (t.key().unwrap(), t.value().unwrap()))
        .collect();
    assert!(tags.contains(&("ballast.dev/blueprint", env.bp.metadata.name.as_str())));

    // The endpoint and the launch template carry the groups by id.
    let endpoint = env
        .ec2()
        .describe_vpc_endpoints()
        .filters(
            Filter::builder()
                .name("tag:Name")
                .values(format!("{}-sqs", env.bp.metadata.name))
                .build(),
        )
        .send()
        .await
        .unwrap()
        .vpc_endpoints
        .unwrap_or_default()
        .into_iter()
        .next()
        .expect("endpoint exists");
    let endpoint_groups: Vec<&str> = endpoint
        .groups()
        .iter()
        .filter_map(|g| g.group_id())
        .collect();
    assert_eq!(endpoint_groups, [endpoints_id.as_str()]);
    let plan = env.plan().await;
    assert_no_changes(&plan);
    let template = plan
        .changes
        .iter()
        .find(|c| c.resource == ResourceId::new(ResourceKind::LaunchTemplate, "worker"))
        .expect("template in plan");
    assert_eq!(template.action, Action::NoChange);

    let second = env.apply().await;
    assert_eq!(second.mutating(), 0, "{:?}", second.snapshot());
}

#[tokio::test]
async fn rules_changed_behind_our_back_are_reported_and_repaired() {
    let env = env().await;
    env.apply().await;
    let endpoints = env.group("endpoints").await;
    let id = endpoints.group_id().unwrap();
    // Someone opens the endpoints to the world and drops the VPC rule.
    env.ec2()
        .authorize_security_group_ingress()
        .group_id(id)
        .ip_permissions(
            IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(22)
                .to_port(22)
                .ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build())
                .build(),
        )
        .send()
        .await
        .unwrap();
    env.ec2()
        .revoke_security_group_ingress()
        .group_id(id)
        .ip_permissions(
            IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(443)
                .to_port(443)
                .ip_ranges(IpRange::builder().cidr_ip("10.30.0.0/16").build())
                .build(),
        )
        .send()
        .await
        .unwrap();

    let plan = env.plan().await;
    let change = plan
        .changes
        .iter()
        .find(|c| c.resource == ResourceId::new(ResourceKind::SecurityGroup, "endpoints"))
        .unwrap();
    let Action::Update { changes } = &change.action else {
        panic!("update expected: {plan:?}");
    };
    let fields: Vec<&str> = changes.iter().map(|c| c.field.as_str()).collect();
    assert_eq!(fields, ["ingress"]);
    assert!(changes[0].live.contains("0.0.0.0/0"), "{changes:?}");
    assert_eq!(plan.summary.update, 1, "{plan:?}");

    env.apply().await;
    assert_eq!(
        rules(env.group("endpoints").await.ip_permissions()),
        BTreeSet::from([rule("tcp", Some((443, 443)), "10.30.0.0/16")])
    );
    assert_no_changes(&env.plan().await);
}
