//! Ledger errors.

use std::error::Error as StdError;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::http::Response as HttpResponse;

/// The boxed underlying error (typically an `aws_sdk_dynamodb` `SdkError<OperationError,
/// HttpResponse>`, kept intact so callers can downcast it).
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Why a ledger operation failed.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// Worth retrying later (throttling, transaction conflicts, timeouts, 5xx): leave the
    /// message on the queue for redelivery.
    #[error("transient failure in {operation}: {detail}")]
    Transient {
        /// The DynamoDB operation.
        operation: &'static str,
        /// What happened.
        detail: String,
        /// The SDK error, when there is one.
        #[source]
        source: Option<BoxError>,
    },
    /// Retrying will not help (missing table, access denied, invalid request).
    #[error("fatal failure in {operation}: {detail}")]
    Fatal {
        /// The DynamoDB operation.
        operation: &'static str,
        /// What happened.
        detail: String,
        /// The SDK error, when there is one.
        #[source]
        source: Option<BoxError>,
    },
    /// The request conflicts with the current state (account exists, close with a balance...).
    #[error("conflict on account {account}: {reason}")]
    Conflict {
        /// The account concerned.
        account: String,
        /// Why.
        reason: String,
    },
    /// The caller passed something the ledger cannot act on.
    #[error("invalid input: {detail}")]
    InvalidInput {
        /// What is wrong.
        detail: String,
    },
    /// An item in the table does not match the data model.
    #[error("corrupt item {key}: {detail}")]
    CorruptItem {
        /// `pk` or `pk/sk`.
        key: String,
        /// What is wrong.
        detail: String,
    },
}

/// DynamoDB transaction codes that are worth retrying although they are conflicts: another
/// transaction held an item for a moment. Throttling and internal errors are recognised by
/// [`ballast_aws::kind_for_code`] (the SDK's own retry lists), so they are not repeated here.
const TRANSACTION_RETRY_CODES: &[&str] = &[
    "TransactionInProgressException",
    "TransactionConflictException",
    "ReplicatedWriteConflictException",
];

/// Whether a service error code is worth retrying rather than dead-lettering.
fn retryable_code(code: &str) -> bool {
    TRANSACTION_RETRY_CODES.contains(&code)
        || ballast_aws::kind_for_code(code).is_some_and(ballast_aws::AwsErrorKind::is_retryable)
}

impl LedgerError {
    /// Whether the failed message should simply be retried later.
    pub fn is_transient(&self) -> bool {
        matches!(self, LedgerError::Transient { .. })
    }

    /// Classifies an SDK error as transient or fatal, keeping it as the source.
    pub fn from_sdk<E>(operation: &'static str, err: SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
    {
        let (transient, detail) = match &err {
            SdkError::TimeoutError(_) => (true, "timed out".to_owned()),
            SdkError::DispatchFailure(_) => (true, "could not send the request".to_owned()),
            SdkError::ResponseError(_) => (true, "unreadable response".to_owned()),
            SdkError::ServiceError(se) => {
                // A 5xx is the service's own failure even when it names no code (a bare 503
                // from a load balancer): retry it rather than dead-letter the message.
                let server_side = se.raw().status().is_server_error();
                let failure = ballast_aws::SdkFailure::describe(&err);
                let retryable = failure.code.as_deref().is_some_and(retryable_code);
                // `<code>: <message>`, or `transient failure: HTTP status 500` without a code.
                (server_side || retryable, failure.to_string())
            }
            SdkError::ConstructionFailure(_) => (false, "could not build the request".to_owned()),
            _ => (false, "unexpected SDK error".to_owned()),
        };
        let source: Option<BoxError> = Some(Box::new(err));
        if transient {
            LedgerError::Transient {
                operation,
                detail,
                source,
            }
        } else {
            LedgerError::Fatal {
                operation,
                detail,
                source,
            }
        }
    }

    pub(crate) fn build(err: aws_sdk_dynamodb::error::BuildError) -> Self {
        LedgerError::Fatal {
            operation: "build request",
            detail: err.to_string(),
            source: Some(Box::new(err)),
        }
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::error::ErrorMetadata;
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;

    use super::*;

    fn service_error(status: u16, code: Option<&str>) -> LedgerError {
        let mut meta = ErrorMetadata::builder();
        if let Some(code) = code {
            meta = meta.code(code);
        }
        let raw = HttpResponse::new(StatusCode::try_from(status).unwrap(), SdkBody::empty());
        let err = SdkError::service_error(TransactWriteItemsError::generic(meta.build()), raw);
        LedgerError::from_sdk("dynamodb:TransactWriteItems", err)
    }

    #[test]
    fn a_server_error_names_its_code_or_its_status() {
        assert_eq!(
            service_error(500, None).to_string(),
            "transient failure in dynamodb:TransactWriteItems: transient failure: HTTP status 500"
        );
        assert_eq!(
            service_error(500, Some("InternalServerError")).to_string(),
            "transient failure in dynamodb:TransactWriteItems: InternalServerError: HTTP status 500"
        );
    }

    #[test]
    fn a_codeless_server_error_is_retried() {
        assert!(service_error(503, None).is_transient());
        assert!(service_error(500, Some("InternalFailure")).is_transient());
    }

    #[test]
    fn every_code_the_ledger_ever_retried_is_still_retried() {
        // The hand-written list this replaced; a code dropped from it would dead-letter a
        // message that a retry would have applied.
        for code in [
            "ProvisionedThroughputExceededException",
            "RequestLimitExceeded",
            "ThrottlingException",
            "InternalServerError",
            "ServiceUnavailable",
            "TransactionInProgressException",
            "TransactionConflictException",
            "ReplicatedWriteConflictException",
        ] {
            assert!(service_error(400, Some(code)).is_transient(), "{code}");
        }
        assert!(!service_error(400, Some("ConditionalCheckFailedException")).is_transient());
        assert!(!service_error(400, Some("TransactionCanceledException")).is_transient());
    }

    #[test]
    fn throttling_is_retried_and_client_errors_are_not() {
        assert!(service_error(400, Some("ThrottlingException")).is_transient());
        assert!(!service_error(400, Some("ValidationException")).is_transient());
        assert!(!service_error(400, None).is_transient());
    }
}
