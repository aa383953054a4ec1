//! The store's error type: what a DynamoDB call of the ingest and audit items can fail with.

use ballast_aws::AwsError;
use uuid::Uuid;

use crate::ledger::LedgerError;

/// Why a store call failed. AWS errors stay typed ([`AwsError`], [`LedgerError`]); the other
/// variants are what the store itself finds wrong.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A DynamoDB call failed.
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// A ledger read (or a ledger time helper) failed.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// A request could not be built (a missing required field: a bug).
    #[error("cannot build the {what}: {source}")]
    Build {
        /// What was being built.
        what: &'static str,
        /// The SDK's complaint.
        #[source]
        source: aws_sdk_dynamodb::error::BuildError,
    },
    /// A time could not be formatted.
    #[error("cannot format a time: {0}")]
    Format(#[from] time::error::Format),
    /// `at + after` is outside the representable times.
    #[error("time out of range: {at} + {after:?}")]
    TimeOutOfRange {
        /// The start.
        at: time::OffsetDateTime,
        /// The delay.
        after: std::time::Duration,
    },
    /// A stored item lacks a field, or holds one that does not parse.
    #[error("corrupt item {pk}: missing or invalid `{field}`")]
    Corrupt {
        /// The item's `pk`.
        pk: String,
        /// The field.
        field: &'static str,
    },
    /// A page key that is not a key of the index and partition being read.
    #[error("not a page key of this query")]
    BadPageKey,
    /// Concurrent ingest writes with the same idempotency key kept cancelling each other.
    #[error("concurrent requests with this Idempotency-Key; retry")]
    IngestContended,
    /// The ingest transaction was cancelled for a reason other than the key's condition.
    #[error("ingest write of {transaction_id} cancelled: {codes:?}")]
    IngestCancelled {
        /// The transaction id of the attempt.
        transaction_id: Uuid,
        /// The cancellation codes, per item.
        codes: Vec<Option<String>>,
    },
    /// The winner's ingest record was gone when it was read back.
    #[error("ingest record changed; retry")]
    IngestVanished,
}

impl StoreError {
    /// Whether retrying the same call later may succeed (throttling, timeouts, a transient
    /// ledger failure); everything else needs a change before it can.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Aws(error) => error.is_retryable(),
            StoreError::Ledger(error) => error.is_transient(),
            StoreError::IngestContended | StoreError::IngestVanished => true,
            StoreError::Build { .. }
            | StoreError::Format(_)
            | StoreError::TimeOutOfRange { .. }
            | StoreError::Corrupt { .. }
            | StoreError::BadPageKey
            | StoreError::IngestCancelled { .. } => false,
        }
    }

    /// A `Build` error.
    pub(crate) fn build(
        what: &'static str,
    ) -> impl FnOnce(aws_sdk_dynamodb::error::BuildError) -> Self {
        move |source| StoreError::Build { what, source }
    }
}
