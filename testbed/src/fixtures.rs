//! The AWS resources and waits that the tests of several crates set up the same way, so each
//! shape is written once: a queue with its dead-letter queue, the ledger's two tables, a queue's
//! depth, draining a queue, and polling a condition until it holds.
//!
//! Every resource gets a [`unique_name`](crate::unique_name), so tests sharing the process-wide
//! moto server never collide. Failures panic with the call that failed: this is test support.

use std::collections::HashMap;
use std::future::Future;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType,
};
use aws_sdk_sqs::types::QueueAttributeName;

use crate::unique_name;

/// A queue and the dead-letter queue its redrive policy points at.
#[derive(Debug, Clone)]
pub struct QueuePair {
    /// The work queue.
    pub url: String,
    /// Its dead-letter queue.
    pub dlq_url: String,
}

/// Creates `<prefix>-dlq-…` and `<prefix>-…` with the given visibility timeout and a redrive
/// policy moving a message to the dead-letter queue after `max_receive_count` receives.
pub async fn queue_with_dlq(
    sqs: &aws_sdk_sqs::Client,
    prefix: &str,
    visibility_secs: u32,
    max_receive_count: u32,
) -> QueuePair {
    let dlq_url = sqs
        .create_queue()
        .queue_name(unique_name(&format!("{prefix}-dlq")))
        .send()
        .await
        .expect("create dead-letter queue")
        .queue_url
        .expect("dead-letter queue url");
    let dlq_arn = sqs
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("dead-letter queue attributes")
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .expect("dead-letter queue arn");
    let url = sqs
        .create_queue()
        .queue_name(unique_name(prefix))
        .attributes(
            QueueAttributeName::VisibilityTimeout,
            visibility_secs.to_string(),
        )
        .attributes(
            QueueAttributeName::RedrivePolicy,
            format!(
                r#"{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":"{max_receive_count}"}}"#
            ),
        )
        .send()
        .await
        .expect("create queue")
        .queue_url
        .expect("queue url");
    QueuePair { url, dlq_url }
}

/// Creates the ledger's two tables as the worker expects them (accounts: `pk` + `sk`,
/// transactions: `pk`, on-demand) and returns their names `(accounts, transactions)`.
pub async fn ledger_tables(dynamodb: &aws_sdk_dynamodb::Client, prefix: &str) -> (String, String) {
    ledger_tables_with_indexes(dynamodb, prefix, &[]).await
}

/// A global secondary index of one of the ledger tables: its name and its string hash and range
/// keys; every attribute is projected.
#[derive(Debug, Clone, Copy)]
pub struct Gsi<'a> {
    /// The index name.
    pub name: &'a str,
    /// The hash key attribute.
    pub hash: &'a str,
    /// The range key attribute.
    pub range: &'a str,
}

/// [`ledger_tables`] whose transactions table also carries `indexes` (e.g. the API's audit and
/// pending-ingest indexes, which the caller names: the test bed knows no worker layout).
pub async fn ledger_tables_with_indexes(
    dynamodb: &aws_sdk_dynamodb::Client,
    prefix: &str,
    indexes: &[Gsi<'_>],
) -> (String, String) {
    ledger_tables_indexed(dynamodb, prefix, &[], indexes).await
}

/// [`ledger_tables`] with `accounts_indexes` on the accounts table (e.g. the bill runner's due
/// index) and `transactions_indexes` on the transactions table.
pub async fn ledger_tables_indexed(
    dynamodb: &aws_sdk_dynamodb::Client,
    prefix: &str,
    accounts_indexes: &[Gsi<'_>],
    transactions_indexes: &[Gsi<'_>],
) -> (String, String) {
    let accounts = unique_name(&format!("{prefix}-accounts"));
    let transactions = unique_name(&format!("{prefix}-transactions"));
    for (table, with_sort_key, indexes) in [
        (&accounts, true, accounts_indexes),
        (&transactions, false, transactions_indexes),
    ] {
        let mut request = dynamodb
            .create_table()
            .table_name(table.as_str())
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(string_attribute("pk"))
            .key_schema(key("pk", KeyType::Hash));
        let mut defined = vec!["pk"];
        if with_sort_key {
            defined.push("sk");
            request = request
                .attribute_definitions(string_attribute("sk"))
                .key_schema(key("sk", KeyType::Range));
        }
        for index in indexes {
            for name in [index.hash, index.range] {
                if !defined.contains(&name) {
                    defined.push(name);
                    request = request.attribute_definitions(string_attribute(name));
                }
            }
            request = request.global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(index.name)
                    .key_schema(key(index.hash, KeyType::Hash))
                    .key_schema(key(index.range, KeyType::Range))
                    .projection(
                        Projection::builder()
                            .projection_type(ProjectionType::All)
                            .build(),
                    )
                    .build()
                    .expect("global secondary index"),
            );
        }
        request.send().await.expect("create table");
    }
    (accounts, transactions)
}

/// A string (`S`) attribute definition.
pub fn string_attribute(name: &str) -> AttributeDefinition {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .expect("attribute definition")
}

/// A key schema element.
pub fn key(name: &str, kind: KeyType) -> KeySchemaElement {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
        .expect("key schema element")
}

/// Visible + in-flight + delayed messages of a queue.
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

/// Receives and deletes every message currently visible in the queue; returns their bodies.
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
            .expect("receive message");
        let messages = out.messages();
        if messages.is_empty() {
            return bodies;
        }
        for m in messages {
            bodies.push(m.body().expect("message body").to_owned());
            sqs.delete_message()
                .queue_url(queue_url)
                .receipt_handle(m.receipt_handle().expect("receipt handle"))
                .send()
                .await
                .expect("delete message");
        }
    }
}

/// Polls `check` every `interval` until it holds; panics naming `what` once `deadline` has
/// passed. The condition is polled, never slept on: a test waits only as long as it must.
pub async fn poll_until<F, Fut>(what: &str, deadline: Duration, interval: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let end = Instant::now() + deadline;
    loop {
        if check().await {
            return;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        tokio::time::sleep(interval).await;
    }
}
