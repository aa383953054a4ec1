//! Batched deletes: acknowledgements are collected and flushed with DeleteMessageBatch when
//! ten are waiting or after a short linger. Failed entries are retried.

use std::time::Duration;

use aws_sdk_sqs::types::DeleteMessageBatchRequestEntry;
use ballast_aws::SdkResultExt;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Most entries SQS accepts in one batch.
pub const MAX_BATCH: usize = 10;
const MAX_ATTEMPTS: u32 = 5;

/// A message whose effect is durable and that may be deleted.
#[derive(Debug, Clone)]
pub struct Ack {
    /// Receipt handle from ReceiveMessage.
    pub receipt_handle: String,
    /// SQS message id (for logs).
    pub message_id: String,
}

/// Runs until every sender is dropped, then flushes what is left.
pub async fn run(
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    linger: Duration,
    mut acks: mpsc::UnboundedReceiver<Ack>,
) {
    let mut batch: Vec<Ack> = Vec::with_capacity(MAX_BATCH);
    let mut open = true;
    while open {
        if batch.is_empty() {
            match acks.recv().await {
                Some(ack) => batch.push(ack),
                None => break,
            }
        }
        let deadline = Instant::now() + linger;
        while batch.len() < MAX_BATCH {
            tokio::select! {
                ack = acks.recv() => match ack {
                    Some(ack) => batch.push(ack),
                    None => { open = false; break; }
                },
                () = tokio::time::sleep_until(deadline) => break,
            }
        }
        flush(&sqs, &queue_url, std::mem::take(&mut batch)).await;
    }
    if !batch.is_empty() {
        flush(&sqs, &queue_url, batch).await;
    }
}

/// Deletes up to ten messages, retrying entries that failed for reasons other than the
/// request itself (and whole-call failures that are retryable).
#[tracing::instrument(skip_all, fields(count = entries.len()))]
pub async fn flush(sqs: &aws_sdk_sqs::Client, queue_url: &str, entries: Vec<Ack>) {
    let mut pending = entries;
    for attempt in 1..=MAX_ATTEMPTS {
        if pending.is_empty() {
            return;
        }
        let request: Vec<DeleteMessageBatchRequestEntry> = pending
            .iter()
            .enumerate()
            .filter_map(|(i, ack)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(&ack.receipt_handle)
                    .build()
                    .ok()
            })
            .collect();
        match sqs
            .delete_message_batch()
            .queue_url(queue_url)
            .set_entries(Some(request))
            .send()
            .await
            .classify("sqs:DeleteMessageBatch")
        {
            Ok(out) => {
                let mut retry = Vec::new();
                for failed in out.failed() {
                    let Some(ack) = failed
                        .id()
                        .parse::<usize>()
                        .ok()
                        .and_then(|i| pending.get(i))
                    else {
                        continue;
                    };
                    if failed.sender_fault() {
                        // e.g. an expired receipt handle: the message will be redelivered and
                        // recognised as a duplicate by the ledger.
                        tracing::warn!(
                            message_id = %ack.message_id,
                            code = failed.code(),
                            "delete rejected; the message will be redelivered as a duplicate"
                        );
                    } else {
                        retry.push(ack.clone());
                    }
                }
                pending = retry;
            }
            Err(error) if error.is_retryable() => {
                tracing::warn!(%error, attempt, "DeleteMessageBatch failed; retrying");
            }
            Err(error) => {
                tracing::error!(
                    %error,
                    "DeleteMessageBatch failed; the messages will be redelivered as duplicates"
                );
                return;
            }
        }
        if !pending.is_empty() {
            tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
        }
    }
    if !pending.is_empty() {
        tracing::error!(
            count = pending.len(),
            "could not delete messages; they will be redelivered as duplicates"
        );
    }
}
