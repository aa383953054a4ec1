//! One real call per AWS service Ballast uses, through the Rust SDK, against moto.
//! Proves the testbed wiring (endpoint, credentials, region, protocols) end to end.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a failed test (clippy.toml covers only #[test] fns, not helpers)"
)]

use aws_sdk_autoscaling as autoscaling;
use aws_sdk_cloudwatch as cloudwatch;
use aws_sdk_dynamodb as dynamodb;
use aws_sdk_ec2 as ec2;
use aws_sdk_kms as kms;
use aws_sdk_sqs as sqs;
use ballast_e2e::{moto, unique_name};

#[tokio::test]
async fn ec2_create_and_describe_vpc() {
    let client = ec2::Client::new(&moto().await.sdk_config().await);
    let cidr = "10.42.0.0/16";
    let created = client.create_vpc().cidr_block(cidr).send().await.unwrap();
    let vpc_id = created.vpc().and_then(|v| v.vpc_id()).expect("vpc id");

    let described = client.describe_vpcs().vpc_ids(vpc_id).send().await.unwrap();
    let vpcs = described.vpcs();
    assert_eq!(vpcs.len(), 1);
    assert_eq!(vpcs[0].vpc_id(), Some(vpc_id));
    assert_eq!(vpcs[0].cidr_block(), Some(cidr));
}

#[tokio::test]
async fn autoscaling_create_and_describe_group() {
    let client = autoscaling::Client::new(&moto().await.sdk_config().await);
    let lc = unique_name("ballast-lc");
    let asg = unique_name("ballast-asg");
    client
        .create_launch_configuration()
        .launch_configuration_name(&lc)
        .image_id("ami-12c6146b")
        .instance_type("t3.micro")
        .send()
        .await
        .unwrap();
    client
        .create_auto_scaling_group()
        .auto_scaling_group_name(&asg)
        .launch_configuration_name(&lc)
        .availability_zones("us-east-1a")
        .min_size(0)
        .max_size(4)
        .desired_capacity(0)
        .send()
        .await
        .unwrap();

    let out = client
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(&asg)
        .send()
        .await
        .unwrap();
    let groups = out.auto_scaling_groups();
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].auto_scaling_group_name(), Some(asg.as_str()));
    assert_eq!(groups[0].max_size(), Some(4));
    assert_eq!(groups[0].desired_capacity(), Some(0));

    let missing = client
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(unique_name("missing"))
        .send()
        .await
        .unwrap();
    assert!(missing.auto_scaling_groups().is_empty());
}

#[tokio::test]
async fn sqs_create_queue_and_read_attributes() {
    let client = sqs::Client::new(&moto().await.sdk_config().await);
    let name = unique_name("ballast-tx");
    let created = client
        .create_queue()
        .queue_name(&name)
        .attributes(sqs::types::QueueAttributeName::VisibilityTimeout, "45")
        .send()
        .await
        .unwrap();
    let url = created.queue_url().expect("queue url");
    assert!(url.ends_with(&name), "{url}");

    let attrs = client
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(sqs::types::QueueAttributeName::All)
        .send()
        .await
        .unwrap();
    let attrs = attrs.attributes().expect("attributes");
    assert_eq!(
        attrs
            .get(&sqs::types::QueueAttributeName::VisibilityTimeout)
            .map(String::as_str),
        Some("45")
    );
    assert!(
        attrs
            .get(&sqs::types::QueueAttributeName::QueueArn)
            .is_some_and(|arn| arn.ends_with(&name))
    );
}

#[tokio::test]
async fn cloudwatch_put_and_list_metrics() {
    let client = cloudwatch::Client::new(&moto().await.sdk_config().await);
    let namespace = unique_name("Ballast/Smoke");
    client
        .put_metric_data()
        .namespace(&namespace)
        .metric_data(
            cloudwatch::types::MetricDatum::builder()
                .metric_name("BacklogPerInstance")
                .value(3.0)
                .unit(cloudwatch::types::StandardUnit::Count)
                .build(),
        )
        .send()
        .await
        .unwrap();

    let listed = client
        .list_metrics()
        .namespace(&namespace)
        .send()
        .await
        .unwrap();
    let names: Vec<_> = listed
        .metrics()
        .iter()
        .filter_map(|m| m.metric_name())
        .collect();
    assert_eq!(names, ["BacklogPerInstance"]);
}

#[tokio::test]
async fn kms_create_and_describe_key() {
    let client = kms::Client::new(&moto().await.sdk_config().await);
    let description = unique_name("ballast-smoke-key");
    let created = client
        .create_key()
        .description(&description)
        .send()
        .await
        .unwrap();
    let key_id = created
        .key_metadata()
        .map(|m| m.key_id().to_owned())
        .expect("key metadata");

    let described = client.describe_key().key_id(&key_id).send().await.unwrap();
    let meta = described.key_metadata().expect("key metadata");
    assert_eq!(meta.key_id(), key_id);
    assert_eq!(meta.description(), Some(description.as_str()));
    assert!(meta.enabled());
    assert_eq!(meta.key_state(), Some(&kms::types::KeyState::Enabled));
}

#[tokio::test]
async fn dynamodb_create_and_describe_table() {
    use dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
        TableStatus,
    };
    let client = dynamodb::Client::new(&moto().await.sdk_config().await);
    let table = unique_name("ballast-ledger");
    client
        .create_table()
        .table_name(&table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();

    let described = client
        .describe_table()
        .table_name(&table)
        .send()
        .await
        .unwrap();
    let desc = described.table().expect("table description");
    assert_eq!(desc.table_name(), Some(table.as_str()));
    assert_eq!(desc.table_status(), Some(&TableStatus::Active));
    let key = desc.key_schema();
    assert_eq!(key.len(), 1);
    assert_eq!(key[0].attribute_name(), "pk");
    assert_eq!(key[0].key_type(), &KeyType::Hash);
}
