//! Network, launch template and Auto Scaling group provisioning against moto: apply, converge
//! with zero mutations, restore drift, and leave the delegated desired capacity alone.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a failed test (clippy.toml covers only #[test] fns, not helpers)"
)]

use std::time::Duration;

use aws_types::SdkConfig;
use ballast_aws::CallRecorder;
use ballast_blueprint::{Blueprint, ResourceId, ResourceKind};
use ballast_controller::provision::engine::LogProgress;
use ballast_controller::provision::kinds::Readiness;
use ballast_controller::provision::{Action, Clients, Plan, apply, observe, plan};

fn readiness() -> Readiness {
    Readiness {
        timeout: Duration::from_secs(60),
        poll: Duration::from_millis(100),
        ..Readiness::default()
    }
}

fn blueprint(name: &str) -> Blueprint {
    let text = format!(
        r#"
apiVersion: ballast.dev/v1
kind: Blueprint
metadata:
  name: {name}
  region: us-east-1
  tags:
    team: payments
spec:
  network:
    vpc:
      name: main
      cidr: 10.20.0.0/16
      subnets:
        - {{ name: private-a, cidr: 10.20.1.0/24, availabilityZone: us-east-1a }}
        - {{ name: private-b, cidr: 10.20.2.0/24, availabilityZone: us-east-1b }}
    endpoints:
      - name: dynamodb
        service: dynamodb
        type: gateway
      - name: sqs
        service: sqs
        type: interface
        subnets: [private-a, private-b]
        privateDns: true
  launchTemplates:
    - name: worker
      imageId: ami-0abcdef1234567890
      instanceTypes: [m6i.large, m5.large]
      instanceProfile: "arn:aws:iam::123456789012:instance-profile/worker-profile"
      metadataHttpTokens: required
      userData: |
        #!/bin/bash
        exec /usr/local/bin/ballast-worker consume
      # moto cannot launch from an EBS mapping without VolumeSize/SnapshotId (AWS takes the
      # size from the AMI), so the fleet's template leaves the root volume alone here ...
      encryptedVolumes: false
    # ... and this one, not launched from, carries the encrypted mapping.
    - name: encrypted
      imageId: ami-0abcdef1234567890
      instanceTypes: [t3.micro]
      securityGroupIds: [sg-0123456789abcdef0]
  autoScalingGroups:
    - name: workers
      launchTemplate: worker
      subnets: [private-a, private-b]
      minSize: 2
      maxSize: 10
      instancesDistribution:
        onDemandBaseCapacity: 2
        onDemandPercentageAboveBase: 30
      healthCheck: {{ type: EC2, gracePeriod: 120s }}
      lifecycleHooks:
        - {{ name: drain, transition: terminating, heartbeatTimeout: 120s }}
      tags:
        role: worker
"#
    );
    ballast_blueprint::parse("t.yaml", &text)
        .unwrap_or_else(|d| panic!("blueprint invalid: {d}"))
        .blueprint
}

async fn sdk() -> SdkConfig {
    ballast_testbed::moto().await.sdk_config().await
}

async fn plan_of(sdk: &SdkConfig, bp: &Blueprint) -> Plan {
    let clients = Clients::read_write(sdk, &CallRecorder::default());
    let observation = observe(&clients.observer(), bp).await.expect("observe");
    plan(bp, &observation)
}

/// Applies with a fresh recorder and returns it.
async fn apply_once(sdk: &SdkConfig, bp: &Blueprint) -> CallRecorder {
    let recorder = CallRecorder::default();
    let clients = Clients::read_write(sdk, &recorder);
    let observation = observe(&clients.observer(), bp).await.expect("observe");
    apply(&clients, bp, observation, readiness(), &LogProgress)
        .await
        .unwrap_or_else(|e| panic!("apply failed: {e}"));
    recorder
}

fn change_of<'a>(plan: &'a Plan, kind: ResourceKind, name: &str) -> &'a Action {
    let id = ResourceId::new(kind, name);
    &plan
        .changes
        .iter()
        .find(|c| c.resource == id)
        .unwrap_or_else(|| panic!("{id} not in plan"))
        .action
}

fn unchanged(plan: &Plan) -> bool {
    !plan.has_changes()
}

async fn group(sdk: &SdkConfig, name: &str) -> aws_sdk_autoscaling::types::AutoScalingGroup {
    aws_sdk_autoscaling::Client::new(sdk)
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(name)
        .send()
        .await
        .unwrap()
        .auto_scaling_groups
        .unwrap_or_default()
        .into_iter()
        .next()
        .expect("group exists")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compute_stack_applies_then_converges_with_zero_mutations() {
    let sdk = sdk().await;
    let name = ballast_testbed::unique_name("t");
    let bp = blueprint(&name);

    let first = plan_of(&sdk, &bp).await;
    assert_eq!(first.summary.create, 8, "{first:#?}");

    let recorder = apply_once(&sdk, &bp).await;
    assert!(recorder.mutating() > 0);

    let after = plan_of(&sdk, &bp).await;
    assert!(unchanged(&after), "plan after apply: {after:#?}");
    assert_eq!(after.summary.unchanged, 8);

    let again = apply_once(&sdk, &bp).await;
    assert_eq!(
        again.mutating(),
        0,
        "second apply mutated: {:#?}",
        again.snapshot()
    );

    // What moto holds matches the blueprint.
    let g = group(&sdk, &format!("{name}-workers")).await;
    assert_eq!((g.min_size, g.max_size), (Some(2), Some(10)));
    assert_eq!(g.desired_capacity, Some(2));
    let in_service = g
        .instances()
        .iter()
        .filter(|i| {
            i.lifecycle_state == Some(aws_sdk_autoscaling::types::LifecycleState::InService)
        })
        .count();
    assert_eq!(in_service, 2);
    let policy = g.mixed_instances_policy.expect("mixed instances policy");
    let types: Vec<_> = policy
        .launch_template
        .as_ref()
        .unwrap()
        .overrides()
        .iter()
        .filter_map(|o| o.instance_type.clone())
        .collect();
    assert_eq!(types, ["m6i.large", "m5.large"]);
    assert_eq!(g.vpc_zone_identifier.unwrap().split(',').count(), 2);

    let ec2 = aws_sdk_ec2::Client::new(&sdk);
    let endpoints = ec2
        .describe_vpc_endpoints()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("tag:ballast.dev/blueprint")
                .values(&name)
                .build(),
        )
        .send()
        .await
        .unwrap()
        .vpc_endpoints
        .unwrap_or_default();
    assert_eq!(endpoints.len(), 2);
    let gateway = endpoints
        .iter()
        .find(|e| e.service_name.as_deref() == Some("com.amazonaws.us-east-1.dynamodb"))
        .expect("dynamodb gateway endpoint");
    assert_eq!(
        gateway.route_table_ids().len(),
        1,
        "the private route table"
    );
    let interface = endpoints
        .iter()
        .find(|e| e.service_name.as_deref() == Some("com.amazonaws.us-east-1.sqs"))
        .expect("sqs interface endpoint");
    assert_eq!(interface.subnet_ids().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asg_max_size_drift_is_restored_but_desired_capacity_within_bounds_is_not_drift() {
    let sdk = sdk().await;
    let name = ballast_testbed::unique_name("t");
    let bp = blueprint(&name);
    apply_once(&sdk, &bp).await;
    let group_name = format!("{name}-workers");
    let asg = aws_sdk_autoscaling::Client::new(&sdk);

    // The autoscaler moves the desired capacity inside [2, 10]: not drift.
    asg.set_desired_capacity()
        .auto_scaling_group_name(&group_name)
        .desired_capacity(5)
        .send()
        .await
        .unwrap();
    let p = plan_of(&sdk, &bp).await;
    assert!(unchanged(&p), "desired capacity 5 is not drift: {p:#?}");

    // Someone lowers the maximum behind Ballast's back. (moto drops a mixed instances policy
    // an update omits, which AWS keeps, so the policy is sent back as it is.)
    let mut policy = group(&sdk, &group_name)
        .await
        .mixed_instances_policy
        .expect("mixed instances policy");
    if let Some(template) = policy.launch_template.as_mut()
        && let Some(spec) = template.launch_template_specification.as_mut()
    {
        spec.launch_template_name = None;
    }
    asg.update_auto_scaling_group()
        .auto_scaling_group_name(&group_name)
        .mixed_instances_policy(policy)
        .max_size(7)
        .send()
        .await
        .unwrap();
    let p = plan_of(&sdk, &bp).await;
    let Action::Update { changes } = change_of(&p, ResourceKind::AutoScalingGroup, "workers")
    else {
        panic!("update expected: {p:#?}");
    };
    let fields: Vec<&str> = changes.iter().map(|c| c.field.as_str()).collect();
    assert_eq!(fields, ["maxSize"], "{changes:#?}");
    assert_eq!(
        (changes[0].live.as_str(), changes[0].desired.as_str()),
        ("7", "10")
    );

    let recorder = apply_once(&sdk, &bp).await;
    let mutations: Vec<String> = recorder
        .snapshot()
        .keys()
        .filter(|k| !ballast_aws::is_read_only_operation(&k.operation))
        .map(|k| k.operation.clone())
        .collect();
    assert_eq!(mutations, ["UpdateAutoScalingGroup"]);
    let g = group(&sdk, &group_name).await;
    assert_eq!((g.min_size, g.max_size), (Some(2), Some(10)));
    assert_eq!(
        g.desired_capacity,
        Some(5),
        "desired capacity is never sent"
    );
    assert!(
        g.mixed_instances_policy.is_some(),
        "update keeps the policy"
    );
    assert!(unchanged(&plan_of(&sdk, &bp).await));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vpc_given_by_id_is_never_created() {
    let sdk = sdk().await;
    let name = ballast_testbed::unique_name("t");
    let text = format!(
        "apiVersion: ballast.dev/v1\nkind: Blueprint\nmetadata: {{name: {name}, region: us-east-1}}\n\
         spec:\n  network:\n    vpc: {{name: main, id: vpc-0123456789abcdef0}}\n"
    );
    let bp = ballast_blueprint::parse("t.yaml", &text)
        .unwrap_or_else(|d| panic!("{d}"))
        .blueprint;
    let p = plan_of(&sdk, &bp).await;
    assert!(matches!(
        change_of(&p, ResourceKind::Vpc, "main"),
        Action::Create
    ));
    let clients = Clients::read_write(&sdk, &CallRecorder::default());
    let observation = observe(&clients.observer(), &bp).await.unwrap();
    let err = apply(&clients, &bp, observation, readiness(), &LogProgress)
        .await
        .expect_err("a missing VPC given by id fails");
    assert!(
        err.to_string().contains("vpc-0123456789abcdef0"),
        "clear error: {err}"
    );

    // An existing VPC given by id is read, owned by reference, and never changes.
    let vpc = aws_sdk_ec2::Client::new(&sdk)
        .create_vpc()
        .cidr_block("10.99.0.0/16")
        .send()
        .await
        .unwrap()
        .vpc
        .unwrap()
        .vpc_id
        .unwrap();
    let bp = ballast_blueprint::parse("t.yaml", &text.replace("vpc-0123456789abcdef0", &vpc))
        .unwrap()
        .blueprint;
    let p = plan_of(&sdk, &bp).await;
    assert!(unchanged(&p), "{p:#?}");
}
