//! Operator operations on the transactions queue's dead-letter queue: list, show, redrive and
//! purge (`ballast-worker dlq ...`, docs/dead-letters.md "Operating the DLQ").
//!
//! # Reading is a receive
//!
//! SQS has no way to look at a message without receiving it. Listing receives the messages
//! with a short visibility ([`PEEK_VISIBILITY`]) and releases them (visibility 0) at the end:
//! every listing adds one to each message's `ApproximateReceiveCount`, and for up to
//! [`PEEK_VISIBILITY`] another reader (the consumer's rescue pass) does not see them. A
//! receive with visibility 0 would not hide them, but the same message could then be received
//! twice by one listing, and the count grows anyway.
//!
//! # Why a message is there
//!
//! Each message carries the reason the worker recorded: the consumer's `POISON#<message id>`
//! record (read through [`crate::store::poison`]), or, when the consumer copied the message to
//! the DLQ itself (a queue without a redrive policy), the [`PARSE_ERROR_ATTRIBUTE`] it set.
//! Without either, the body is parsed again to say what the consumer would think of it now.
//!
//! # Redrive
//!
//! Receive-and-send: the body is sent to the main queue unchanged (same transaction id and
//! idempotency key, so a transaction that was in fact applied is a ledger duplicate that moves
//! nothing), and the DLQ copy is deleted only after the SendMessage succeeded. A lost delete
//! leaves the DLQ copy behind (reported); redriving it again is harmless for the same reason.
//! SQS's `StartMessageMoveTask` is not used: moto 5.2.5 (the test bed) does not implement it,
//! and it moves every message, so it could not keep poison back. Poison is refused unless the
//! operator asks for it (it would only come back).
//!
//! # Purge
//!
//! Receives and deletes (DeleteMessageBatch) rather than PurgeQueue: PurgeQueue is refused
//! within 60 s of another, deletes whatever arrives during the 60 s it takes, and cannot say
//! how many messages it removed.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry, Message,
    MessageSystemAttributeName, QueueAttributeName,
};
use ballast_aws::{AwsError, SdkResultExt};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::consumer::PARSE_ERROR_ATTRIBUTE;
use crate::ledger::Ledger;
use crate::store::StoreError;
use crate::store::poison::{self, PoisonRecord};
use crate::transaction::{ParseError, parse_transaction};

/// Visibility of a message while `list`, `show`, `redrive` or `purge` holds it.
pub const PEEK_VISIBILITY: Duration = Duration::from_secs(30);
/// Default bound on the messages one command reads.
pub const DEFAULT_MAX_MESSAGES: usize = 1000;

/// Why a DLQ operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DlqError {
    /// An SQS call failed.
    #[error("dead-letter queue {dlq_url}: {source}")]
    Sqs {
        /// The queue.
        dlq_url: String,
        /// The SQS error.
        #[source]
        source: AwsError,
    },
    /// A poison record could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A batch request could not be built (a missing required field: a bug).
    #[error("cannot build an SQS batch entry: {0}")]
    Build(#[from] aws_sdk_sqs::error::BuildError),
}

/// Why a message is in the DLQ, as the worker recorded it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum Reason {
    /// The consumer's `POISON#<message id>` record.
    PoisonRecord(PoisonRecord),
    /// The parse error the consumer attached when it copied the message to the DLQ itself.
    ParseErrorAttribute {
        /// `<code>: <text>`.
        text: String,
    },
    /// Nothing recorded: what parsing the body says now.
    Parsed {
        /// The parse error's code.
        code: String,
        /// Its text.
        text: String,
    },
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::PoisonRecord(record) => match &record.reason {
                Some(text) => write!(f, "{} (recorded): {text}", record.reason_code),
                None => write!(f, "{} (recorded)", record.reason_code),
            },
            Reason::ParseErrorAttribute { text } => write!(f, "{text} (attribute)"),
            Reason::Parsed { code, text } => write!(f, "{code} (parsed now): {text}"),
        }
    }
}

/// One dead-lettered message.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeadLetter {
    /// The SQS message id (kept when SQS's redrive moved it, so it keys the `POISON#` record).
    pub message_id: String,
    /// The transaction id, when the body has a usable one.
    pub transaction_id: Option<Uuid>,
    /// When the message was first sent (to the main queue, for a message SQS moved).
    #[serde(serialize_with = "rfc3339")]
    pub sent_at: Option<OffsetDateTime>,
    /// Seconds since `sent_at`.
    pub age_seconds: Option<i64>,
    /// `ApproximateReceiveCount`, including the receive that read it now.
    pub receive_count: u32,
    /// Why it is here; `None` for a valid transaction nobody recorded a reason for.
    pub reason: Option<Reason>,
    /// Malformed (the consumer can never process it): `redrive` refuses it by default.
    pub poison: bool,
    /// The body as received.
    pub body: String,
    /// The message attributes with a string value.
    pub attributes: BTreeMap<String, String>,
}

/// Which messages `redrive` moves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// Every message in the DLQ.
    All,
    /// These message ids.
    Ids(Vec<String>),
}

impl Selection {
    fn includes(&self, message_id: &str) -> bool {
        match self {
            Selection::All => true,
            Selection::Ids(ids) => ids.iter().any(|id| id == message_id),
        }
    }
}

/// What `redrive` did with one message.
#[derive(Debug)]
pub enum RedriveOutcome {
    /// Sent to the main queue and deleted from the DLQ.
    Redriven,
    /// Sent to the main queue, but deleting the DLQ copy failed: the copy comes back to the DLQ
    /// (a second redrive is a ledger duplicate, harmless).
    RedrivenCopyKept {
        /// The DeleteMessage error.
        error: AwsError,
    },
    /// Poison without `--include-poison`: left in the DLQ.
    RefusedPoison,
    /// The SendMessage failed: the message stays in the DLQ, unchanged.
    SendFailed {
        /// The SendMessage error.
        error: AwsError,
    },
    /// A requested message id was not found in the DLQ.
    NotFound,
}

impl RedriveOutcome {
    /// A stable label for reports.
    pub fn label(&self) -> &'static str {
        match self {
            RedriveOutcome::Redriven => "redriven",
            RedriveOutcome::RedrivenCopyKept { .. } => "redriven_copy_kept",
            RedriveOutcome::RefusedPoison => "refused_poison",
            RedriveOutcome::SendFailed { .. } => "send_failed",
            RedriveOutcome::NotFound => "not_found",
        }
    }

    /// The AWS error behind the outcome, if any.
    pub fn error(&self) -> Option<&AwsError> {
        match self {
            RedriveOutcome::RedrivenCopyKept { error } | RedriveOutcome::SendFailed { error } => {
                Some(error)
            }
            _ => None,
        }
    }
}

/// One line of a redrive.
#[derive(Debug)]
pub struct Redriven {
    /// The DLQ message id.
    pub message_id: String,
    /// The transaction id, when the body has one.
    pub transaction_id: Option<Uuid>,
    /// What happened.
    pub outcome: RedriveOutcome,
}

/// The dead-letter queue of one transactions queue.
#[derive(Debug, Clone)]
pub struct DeadLetterQueue {
    sqs: aws_sdk_sqs::Client,
    ledger: Ledger,
    dlq_url: String,
    queue_url: String,
    max_messages: usize,
}

impl DeadLetterQueue {
    /// The DLQ at `dlq_url` of the queue at `queue_url`; reasons are read through `ledger`.
    pub fn new(
        sqs: aws_sdk_sqs::Client,
        ledger: Ledger,
        dlq_url: impl Into<String>,
        queue_url: impl Into<String>,
    ) -> Self {
        DeadLetterQueue {
            sqs,
            ledger,
            dlq_url: dlq_url.into(),
            queue_url: queue_url.into(),
            max_messages: DEFAULT_MAX_MESSAGES,
        }
    }

    /// At most `max` messages per command.
    pub fn with_max_messages(mut self, max: usize) -> Self {
        self.max_messages = max;
        self
    }

    /// The DLQ's URL.
    pub fn url(&self) -> &str {
        &self.dlq_url
    }

    /// Every message (up to the bound), each with its reason; all are released again.
    #[tracing::instrument(skip(self), fields(dlq_url = %self.dlq_url))]
    pub async fn list(&self) -> Result<Vec<DeadLetter>, DlqError> {
        let mut seen = HashSet::new();
        let mut held: Vec<Message> = Vec::new();
        let read = self.read_all(&mut seen, &mut held).await;
        let described = match read {
            Ok(()) => self.describe_all(&held).await,
            Err(error) => Err(error),
        };
        let released = self.release(&held).await;
        let described = described?;
        released?;
        Ok(described)
    }

    /// The message `message_id`, if it is in the DLQ (every message read is released; only
    /// the one asked for is looked up in the store).
    #[tracing::instrument(skip(self), fields(dlq_url = %self.dlq_url))]
    pub async fn show(&self, message_id: &str) -> Result<Option<DeadLetter>, DlqError> {
        let mut seen = HashSet::new();
        let mut held: Vec<Message> = Vec::new();
        let read = self.read_all(&mut seen, &mut held).await;
        let described = match (
            read,
            held.iter().find(|m| m.message_id() == Some(message_id)),
        ) {
            (Err(error), _) => Err(error),
            (Ok(()), None) => Ok(None),
            (Ok(()), Some(message)) => self.describe(message).await.map(Some),
        };
        let released = self.release(&held).await;
        let described = described?;
        released?;
        Ok(described)
    }

    /// Moves the selected messages to the main queue, one at a time: SendMessage with the body
    /// unchanged, then DeleteMessage of the DLQ copy only once the send succeeded. Poison is
    /// refused unless `include_poison`. Messages not selected are released at the end.
    #[tracing::instrument(skip(self), fields(dlq_url = %self.dlq_url, queue_url = %self.queue_url))]
    pub async fn redrive(
        &self,
        selection: &Selection,
        include_poison: bool,
    ) -> Result<Vec<Redriven>, DlqError> {
        let mut seen = HashSet::new();
        let mut keep: Vec<Message> = Vec::new();
        let mut lines = Vec::new();
        let outcome = async {
            loop {
                let all_named_found = match selection {
                    Selection::All => false,
                    Selection::Ids(ids) => ids.iter().all(|id| seen.contains(id)),
                };
                if seen.len() >= self.max_messages || all_named_found {
                    return Ok::<(), DlqError>(());
                }
                let fresh = self.receive_fresh(&mut seen).await?;
                if fresh.is_empty() {
                    return Ok(());
                }
                for message in fresh {
                    let id = message.message_id().unwrap_or_default();
                    if !selection.includes(id) {
                        keep.push(message);
                        continue;
                    }
                    let letter = self.describe(&message).await?;
                    if letter.poison && !include_poison {
                        lines.push(letter.line(RedriveOutcome::RefusedPoison));
                        keep.push(message);
                        continue;
                    }
                    let outcome = self.move_to_queue(&message).await;
                    if matches!(outcome, RedriveOutcome::SendFailed { .. }) {
                        keep.push(message);
                    }
                    lines.push(letter.line(outcome));
                }
            }
        }
        .await;
        let released = self.release(&keep).await;
        outcome?;
        released?;
        if let Selection::Ids(ids) = selection {
            for id in ids {
                if !lines.iter().any(|l: &Redriven| &l.message_id == id) {
                    lines.push(Redriven {
                        message_id: id.clone(),
                        transaction_id: None,
                        outcome: RedriveOutcome::NotFound,
                    });
                }
            }
        }
        Ok(lines)
    }

    /// Deletes every message (up to the bound) and answers how many were deleted.
    #[tracing::instrument(skip(self), fields(dlq_url = %self.dlq_url))]
    pub async fn purge(&self) -> Result<usize, DlqError> {
        let mut seen = HashSet::new();
        let mut deleted = 0usize;
        loop {
            if seen.len() >= self.max_messages {
                return Ok(deleted);
            }
            let fresh = self.receive_fresh(&mut seen).await?;
            if fresh.is_empty() {
                return Ok(deleted);
            }
            let mut entries = Vec::with_capacity(fresh.len());
            for (index, message) in fresh.iter().enumerate() {
                if let Some(handle) = message.receipt_handle() {
                    entries.push(
                        DeleteMessageBatchRequestEntry::builder()
                            .id(index.to_string())
                            .receipt_handle(handle)
                            .build()?,
                    );
                }
            }
            let out = self
                .sqs
                .delete_message_batch()
                .queue_url(&self.dlq_url)
                .set_entries(Some(entries))
                .send()
                .await
                .classify("sqs:DeleteMessageBatch")
                .map_err(|source| self.sqs_error(source))?;
            for failed in out.failed() {
                tracing::warn!(
                    id = failed.id(),
                    code = failed.code(),
                    "a DLQ delete failed"
                );
            }
            deleted = deleted.saturating_add(out.successful().len());
        }
    }

    /// ApproximateNumberOfMessages + ApproximateNumberOfMessagesNotVisible of the DLQ.
    #[tracing::instrument(skip(self), fields(dlq_url = %self.dlq_url))]
    pub async fn approximate_depth(&self) -> Result<u64, DlqError> {
        let out = self
            .sqs
            .get_queue_attributes()
            .queue_url(&self.dlq_url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .classify("sqs:GetQueueAttributes")
            .map_err(|source| self.sqs_error(source))?;
        let attrs = out.attributes();
        let count = |name: QueueAttributeName| {
            attrs
                .and_then(|a| a.get(&name))
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        Ok(
            count(QueueAttributeName::ApproximateNumberOfMessages).saturating_add(count(
                QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
            )),
        )
    }

    fn sqs_error(&self, source: AwsError) -> DlqError {
        DlqError::Sqs {
            dlq_url: self.dlq_url.clone(),
            source,
        }
    }

    /// Receives until a receive brings nothing new or the bound is reached.
    async fn read_all(
        &self,
        seen: &mut HashSet<String>,
        held: &mut Vec<Message>,
    ) -> Result<(), DlqError> {
        while seen.len() < self.max_messages {
            let fresh = self.receive_fresh(seen).await?;
            if fresh.is_empty() {
                break;
            }
            held.extend(fresh);
        }
        Ok(())
    }

    /// One ReceiveMessage (held for [`PEEK_VISIBILITY`]), without messages already seen.
    async fn receive_fresh(&self, seen: &mut HashSet<String>) -> Result<Vec<Message>, DlqError> {
        let room = self.max_messages.saturating_sub(seen.len()).clamp(1, 10);
        let out = self
            .sqs
            .receive_message()
            .queue_url(&self.dlq_url)
            .max_number_of_messages(i32::try_from(room).unwrap_or(10))
            .visibility_timeout(i32::try_from(PEEK_VISIBILITY.as_secs()).unwrap_or(30))
            .wait_time_seconds(1)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
            .classify("sqs:ReceiveMessage")
            .map_err(|source| self.sqs_error(source))?;
        Ok(out
            .messages
            .unwrap_or_default()
            .into_iter()
            .filter(|m| seen.insert(m.message_id().unwrap_or_default().to_owned()))
            .collect())
    }

    /// Makes `messages` visible again (ChangeMessageVisibilityBatch, visibility 0).
    async fn release(&self, messages: &[Message]) -> Result<(), DlqError> {
        for chunk in messages.chunks(10) {
            let mut entries = Vec::with_capacity(chunk.len());
            for (index, message) in chunk.iter().enumerate() {
                if let Some(handle) = message.receipt_handle() {
                    entries.push(
                        ChangeMessageVisibilityBatchRequestEntry::builder()
                            .id(index.to_string())
                            .receipt_handle(handle)
                            .visibility_timeout(0)
                            .build()?,
                    );
                }
            }
            if entries.is_empty() {
                continue;
            }
            self.sqs
                .change_message_visibility_batch()
                .queue_url(&self.dlq_url)
                .set_entries(Some(entries))
                .send()
                .await
                .classify("sqs:ChangeMessageVisibilityBatch")
                .map_err(|source| self.sqs_error(source))?;
        }
        Ok(())
    }

    async fn describe_all(&self, messages: &[Message]) -> Result<Vec<DeadLetter>, DlqError> {
        let mut letters = Vec::with_capacity(messages.len());
        for message in messages {
            letters.push(self.describe(message).await?);
        }
        Ok(letters)
    }

    /// The message with its reason: the `POISON#` record, else the parse-error attribute, else
    /// what parsing the body says.
    async fn describe(&self, message: &Message) -> Result<DeadLetter, DlqError> {
        let message_id = message.message_id().unwrap_or_default().to_owned();
        let body = message.body().unwrap_or_default().to_owned();
        let attributes: BTreeMap<String, String> = message
            .message_attributes()
            .map(|attrs| {
                attrs
                    .iter()
                    .filter_map(|(k, v)| v.string_value().map(|s| (k.clone(), s.to_owned())))
                    .collect()
            })
            .unwrap_or_default();
        let system = |name: MessageSystemAttributeName| {
            message
                .attributes()
                .and_then(|a| a.get(&name))
                .map(String::as_str)
        };
        let receive_count = system(MessageSystemAttributeName::ApproximateReceiveCount)
            .and_then(|v| v.parse().ok())
            .unwrap_or(1);
        let sent_at = system(MessageSystemAttributeName::SentTimestamp)
            .and_then(|v| v.parse::<i128>().ok())
            .and_then(|ms| ms.checked_mul(1_000_000))
            .and_then(|ns| OffsetDateTime::from_unix_timestamp_nanos(ns).ok());
        let age_seconds =
            sent_at.map(|sent| (OffsetDateTime::now_utc() - sent).whole_seconds().max(0));
        let parsed = parse_transaction(body.as_bytes());
        let transaction_id = match &parsed {
            Ok(transaction) => Some(transaction.transaction_id),
            Err(ParseError::Invalid { transaction_id, .. }) => Some(*transaction_id),
            Err(ParseError::Malformed(_)) => None,
        };
        let malformed = matches!(parsed, Err(ParseError::Malformed(_)));
        let recorded = poison::read(&self.ledger, &message_id).await?;
        let attribute = attributes.get(PARSE_ERROR_ATTRIBUTE).cloned();
        let poison = malformed || recorded.is_some() || attribute.is_some();
        let reason = match (recorded, attribute, parsed) {
            (Some(record), _, _) => Some(Reason::PoisonRecord(record)),
            (None, Some(text), _) => Some(Reason::ParseErrorAttribute { text }),
            (None, None, Err(error)) => Some(Reason::Parsed {
                code: error.code().to_owned(),
                text: error.to_string(),
            }),
            (None, None, Ok(_)) => None,
        };
        Ok(DeadLetter {
            message_id,
            transaction_id,
            sent_at,
            age_seconds,
            receive_count,
            reason,
            poison,
            body,
            attributes,
        })
    }

    /// SendMessage to the main queue (body and attributes unchanged), then DeleteMessage of the
    /// DLQ copy: never the delete before the send succeeded.
    async fn move_to_queue(&self, message: &Message) -> RedriveOutcome {
        let sent = self
            .sqs
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(message.body().unwrap_or_default())
            .set_message_attributes(message.message_attributes().map(|a| a.to_owned()))
            .send()
            .await
            .classify("sqs:SendMessage");
        if let Err(error) = sent {
            tracing::warn!(%error, message_id = message.message_id(), "redrive: send failed");
            return RedriveOutcome::SendFailed { error };
        }
        // A received message always has a receipt handle; without one the delete fails and
        // the copy is reported as kept.
        match self
            .sqs
            .delete_message()
            .queue_url(&self.dlq_url)
            .set_receipt_handle(message.receipt_handle().map(str::to_owned))
            .send()
            .await
            .classify("sqs:DeleteMessage")
        {
            Ok(_) => RedriveOutcome::Redriven,
            Err(error) => {
                tracing::warn!(%error, message_id = message.message_id(), "redrive: DLQ copy kept");
                RedriveOutcome::RedrivenCopyKept { error }
            }
        }
    }
}

/// `sent_at` as RFC 3339 (a time that cannot be formatted is left out).
fn rfc3339<S: serde::Serializer>(
    at: &Option<OffsetDateTime>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let text = at.and_then(|t| {
        t.format(&time::format_description::well_known::Rfc3339)
            .ok()
    });
    serializer.serialize_some(&text)
}

impl DeadLetter {
    fn line(&self, outcome: RedriveOutcome) -> Redriven {
        Redriven {
            message_id: self.message_id.clone(),
            transaction_id: self.transaction_id,
            outcome,
        }
    }
}
