//! Shared helpers for the consumer tests against moto.
#![allow(dead_code)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use aws_sdk_sqs::types::QueueAttributeName;
use ballast_worker::consumer::ConsumerConfig;
use ballast_worker::ledger::Ledger;

/// A queue with a dead-letter queue (maxReceiveCount 3).
pub struct Queues {
    pub sqs: aws_sdk_sqs::Client,
    pub url: String,
    pub dlq_url: String,
}

pub async fn queues(visibility_secs: u32) -> Queues {
    let moto = ballast_testbed::moto().await;
    let sqs = aws_sdk_sqs::Client::new(&moto.sdk_config().await);
    let dlq_name = ballast_testbed::unique_name("dlq");
    let dlq_url = sqs
        .create_queue()
        .queue_name(&dlq_name)
        .send()
        .await
        .expect("create dlq")
        .queue_url
        .unwrap();
    let dlq_arn = sqs
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("dlq arn")
        .attributes
        .unwrap()
        .remove(&QueueAttributeName::QueueArn)
        .unwrap();
    let url = sqs
        .create_queue()
        .queue_name(ballast_testbed::unique_name("txq"))
        .attributes(
            QueueAttributeName::VisibilityTimeout,
            visibility_secs.to_string(),
        )
        .attributes(
            QueueAttributeName::RedrivePolicy,
            format!(r#"{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":"3"}}"#),
        )
        .send()
        .await
        .expect("create queue")
        .queue_url
        .unwrap();
    Queues { sqs, url, dlq_url }
}

pub async fn dynamodb() -> aws_sdk_dynamodb::Client {
    let moto = ballast_testbed::moto().await;
    aws_sdk_dynamodb::Client::new(&moto.sdk_config().await)
}

/// Creates a fresh pair of tables and returns their names.
pub async fn tables(client: &aws_sdk_dynamodb::Client) -> (String, String) {
    let accounts = ballast_testbed::unique_name("accounts");
    let transactions = ballast_testbed::unique_name("transactions");
    for (table, with_sort_key) in [(&accounts, true), (&transactions, false)] {
        let mut req = client
            .create_table()
            .table_name(table.as_str())
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attr("pk"))
            .key_schema(key("pk", KeyType::Hash));
        if with_sort_key {
            req = req
                .attribute_definitions(attr("sk"))
                .key_schema(key("sk", KeyType::Range));
        }
        req.send().await.expect("create table");
    }
    (accounts, transactions)
}

pub async fn ledger() -> Ledger {
    let client = dynamodb().await;
    let (a, t) = tables(&client).await;
    Ledger::new(client, a, t)
}

fn attr(name: &str) -> AttributeDefinition {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .unwrap()
}

fn key(name: &str, kind: KeyType) -> KeySchemaElement {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
        .unwrap()
}

/// Test consumer settings: 1 s long polling, short linger.
pub fn config(q: &Queues, visibility_secs: u64) -> ConsumerConfig {
    ConsumerConfig {
        dlq_url: Some(q.dlq_url.clone()),
        wait_time_seconds: 1,
        visibility_timeout: Duration::from_secs(visibility_secs),
        delete_linger: Duration::from_millis(20),
        ..ConsumerConfig::new(q.url.clone())
    }
}

/// Visible + in-flight + delayed messages.
pub async fn queue_depth(sqs: &aws_sdk_sqs::Client, url: &str) -> u64 {
    let attrs: HashMap<QueueAttributeName, String> = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
        .send()
        .await
        .expect("queue attributes")
        .attributes
        .unwrap_or_default();
    attrs.values().filter_map(|v| v.parse::<u64>().ok()).sum()
}

/// Polls `check` every 100 ms until it holds or `deadline` passes.
pub async fn eventually<F, Fut>(what: &str, deadline: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let end = Instant::now() + deadline;
    loop {
        if check().await {
            return;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Receives and deletes every message currently in the queue; returns their bodies.
pub async fn drain_queue(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> Vec<String> {
    let mut bodies = Vec::new();
    loop {
        let out = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(0)
            .send()
            .await
            .unwrap();
        let messages = out.messages();
        if messages.is_empty() {
            return bodies;
        }
        for m in messages {
            bodies.push(m.body().unwrap().to_owned());
            sqs.delete_message()
                .queue_url(queue_url)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
    }
}
