//! Batched deletes: acknowledgements are collected and flushed with DeleteMessageBatch when
//! ten are waiting or after a short linger.
//!
//! A failed delete is retried (with backoff) for as long as its receipt handle is valid, i.e.
//! while the message is still invisible ([`Ack::valid_until`]): every delete that is lost
//! turns into a redelivery, a receive counted towards the queue's `maxReceiveCount`, and
//! enough of them would let SQS's redrive move a settled message to the dead-letter queue.
//! Entries SQS rejects as the sender's fault (an expired or unknown receipt handle) are not
//! retried: the message will come back and the ledger answers it as a duplicate.

use std::time::Duration;

use aws_sdk_sqs::types::DeleteMessageBatchRequestEntry;
use ballast_aws::SdkResultExt;
use ballast_runtime::Backoff;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Most entries SQS accepts in one batch.
pub const MAX_BATCH: usize = 10;
/// Longest pause between two attempts at a delete.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// A message whose effect is durable and that may be deleted.
#[derive(Debug, Clone)]
pub struct Ack {
    /// Receipt handle from ReceiveMessage.
    pub receipt_handle: String,
    /// SQS message id (for logs).
    pub message_id: String,
    /// Until when the receipt handle is surely valid (the message is still invisible): the
    /// delete is retried until then.
    pub valid_until: Instant,
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

/// Deletes up to ten messages, retrying entries (and whole calls) that failed for reasons
/// other than the request itself while their receipt handles are valid.
#[tracing::instrument(skip_all, fields(count = entries.len()))]
pub async fn flush(sqs: &aws_sdk_sqs::Client, queue_url: &str, entries: Vec<Ack>) {
    let mut pending = entries;
    let mut attempt: u32 = 0;
    loop {
        let now = Instant::now();
        let (valid, expired): (Vec<Ack>, Vec<Ack>) =
            pending.into_iter().partition(|ack| ack.valid_until > now);
        for ack in &expired {
            tracing::warn!(
                message_id = %ack.message_id,
                "delete still failing when the receipt handle expired; the message will be redelivered as a duplicate"
            );
        }
        pending = valid;
        if pending.is_empty() {
            return;
        }
        attempt = attempt.saturating_add(1);
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
            tokio::time::sleep(backoff(attempt)).await;
        }
    }
}

/// Deletes one message now, retrying transient failures (throttling, 5xx, lost connections)
/// until it is gone. Used on the last receive before the redrive, where the caller keeps the message
/// invisible meanwhile (its heartbeat), so the receipt handle stays valid however long the
/// retries take; `valid_until` is ignored.
#[tracing::instrument(skip_all, fields(message_id = %ack.message_id))]
pub async fn delete_until_done(sqs: &aws_sdk_sqs::Client, queue_url: &str, ack: Ack) {
    let mut attempt: u32 = 0;
    loop {
        attempt = attempt.saturating_add(1);
        match sqs
            .delete_message()
            .queue_url(queue_url)
            .receipt_handle(&ack.receipt_handle)
            .send()
            .await
            .classify("sqs:DeleteMessage")
        {
            Ok(_) => return,
            Err(error) if error.is_retryable() => {
                tracing::warn!(%error, attempt, "DeleteMessage failed on the last receive; retrying");
            }
            Err(error) => {
                tracing::error!(%error, "delete rejected; the message will be redelivered as a duplicate");
                return;
            }
        }
        tokio::time::sleep(backoff(attempt)).await;
    }
}

/// 100 ms doubling per attempt (`100 ms · 2^attempt`), at most [`MAX_BACKOFF`].
fn backoff(attempt: u32) -> Duration {
    const BACKOFF: Backoff = Backoff {
        base: Duration::from_millis(100),
        max: MAX_BACKOFF,
    };
    BACKOFF.delay(attempt.saturating_add(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff(0), Duration::from_millis(100));
        assert_eq!(backoff(1), Duration::from_millis(200));
        assert_eq!(backoff(4), Duration::from_millis(1600));
        assert_eq!(backoff(5), MAX_BACKOFF);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }
}
