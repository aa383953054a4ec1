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

/// Service error codes that are worth retrying.
pub(crate) const TRANSIENT_SERVICE_CODES: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "ThrottlingException",
    "InternalServerError",
    "ServiceUnavailable",
    "TransactionInProgressException",
    "TransactionConflictException",
    "ReplicatedWriteConflictException",
];

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
                let code = se.err().code().unwrap_or("unknown");
                let message = se.err().message().unwrap_or("");
                // A 5xx is the service's own failure even when it names no code (a bare 503
                // from a load balancer): retry it rather than dead-letter the message.
                let server_side = se.raw().status().is_server_error();
                (
                    server_side || TRANSIENT_SERVICE_CODES.contains(&code),
                    format!("{code}: {message}"),
                )
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
    fn a_codeless_server_error_is_retried() {
        assert!(service_error(503, None).is_transient());
        assert!(service_error(500, Some("InternalFailure")).is_transient());
    }

    #[test]
    fn throttling_is_retried_and_client_errors_are_not() {
        assert!(service_error(400, Some("ThrottlingException")).is_transient());
        assert!(!service_error(400, Some("ValidationException")).is_transient());
        assert!(!service_error(400, None).is_transient());
    }
}
