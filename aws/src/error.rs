//! Typed classification of AWS SDK errors.
//!
//! Every SDK call in Ballast funnels its `SdkError` through [`classify`] so callers can
//! branch on *what kind* of failure happened (missing resource, throttling, ...) without
//! caring which service or protocol produced it.

use std::any::Any;
use std::error::Error;
use std::fmt;

use aws_runtime::retries::classifiers::{THROTTLING_ERRORS, TRANSIENT_ERRORS};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use aws_smithy_types::error::operation::BuildError;

/// Boxed source error carried by every [`AwsError`].
pub type BoxError = Box<dyn Error + Send + Sync + 'static>;

/// The category of an [`AwsError`], without its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AwsErrorKind {
    /// The addressed resource does not exist.
    NotFound,
    /// The request was rate limited; retry with backoff.
    Throttled,
    /// Credentials are missing, invalid, expired, or lack permission.
    AccessDenied,
    /// The resource exists already, is in use, or a condition/transaction conflicted.
    Conflict,
    /// The request was rejected as malformed or invalid.
    Validation,
    /// 5xx, timeout, connection or unparseable-response failure; retry with backoff.
    Transient,
    /// Anything else.
    Other,
}

impl AwsErrorKind {
    /// Short lowercase label, used when an error has no code.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotFound => "not found",
            Self::Throttled => "throttled",
            Self::AccessDenied => "access denied",
            Self::Conflict => "conflict",
            Self::Validation => "validation error",
            Self::Transient => "transient failure",
            Self::Other => "error",
        }
    }

    /// Whether errors of this kind are worth retrying with backoff.
    pub fn is_retryable(self) -> bool {
        matches!(self, Self::Throttled | Self::Transient)
    }
}

impl fmt::Display for AwsErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A classified AWS failure: one struct, whatever its [`AwsErrorKind`], so that every
/// failure carries the same facts and callers branch on [`AwsError::kind`].
///
/// `Display` renders as `"<operation> failed: <code>: <message>"`, e.g.
/// `sqs:ReceiveMessage failed: ThrottlingException: slow down`; the full SDK error (including
/// connector/timeout causes) is available through [`Error::source`].
pub struct AwsError {
    kind: AwsErrorKind,
    operation: &'static str,
    code: Option<String>,
    message: Option<String>,
    source: BoxError,
}

impl fmt::Display for AwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed: ", self.operation)?;
        write_reason(f, self.kind, self.code.as_deref(), self.message.as_deref())
    }
}

/// `<code>: <message>`, the category standing in for a missing code: the one rendering of
/// [`AwsError`] and [`SdkFailure`].
fn write_reason(
    f: &mut fmt::Formatter<'_>,
    kind: AwsErrorKind,
    code: Option<&str>,
    message: Option<&str>,
) -> fmt::Result {
    write!(
        f,
        "{}: {}",
        code.unwrap_or(kind.as_str()),
        message.unwrap_or("no message")
    )
}

impl Error for AwsError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&*self.source)
    }
}

impl AwsError {
    /// Builds an error of the given kind. Mostly useful for tests and non-SDK call sites.
    /// `operation` is the call's label, `service:Operation` (see [`crate::operation_label`]).
    pub fn new(
        kind: AwsErrorKind,
        operation: &'static str,
        code: Option<String>,
        message: Option<String>,
        source: impl Into<BoxError>,
    ) -> Self {
        AwsError {
            kind,
            operation,
            code,
            message,
            source: source.into(),
        }
    }

    /// The category of this error.
    pub fn kind(&self) -> AwsErrorKind {
        self.kind
    }

    /// The call that failed, as `service:Operation` (e.g. `"sqs:CreateQueue"`), the label
    /// logs and metrics use too.
    pub fn operation(&self) -> &'static str {
        self.operation
    }

    /// The service error code (e.g. `ThrottlingException`), when the service sent one.
    pub fn code(&self) -> Option<&str> {
        self.code.as_deref()
    }

    /// The service error message, or a rendering of the underlying cause.
    pub fn message(&self) -> Option<&str> {
        self.message.as_deref()
    }

    /// Whether retrying with backoff may succeed (throttling and transient failures).
    pub fn is_retryable(&self) -> bool {
        self.kind.is_retryable()
    }

    /// Shorthand for `kind() == AwsErrorKind::NotFound`.
    pub fn is_not_found(&self) -> bool {
        self.kind == AwsErrorKind::NotFound
    }

    /// Shorthand for `kind() == AwsErrorKind::Conflict`.
    pub fn is_conflict(&self) -> bool {
        self.kind == AwsErrorKind::Conflict
    }
}

impl fmt::Debug for AwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsError")
            .field("kind", &self.kind)
            .field("operation", &self.operation)
            .field("code", &self.code)
            .field("message", &self.message)
            .field("source", &self.source)
            .finish()
    }
}

/// What an SDK error says, read without taking it: its category, the service's error code and
/// message. [`classify`] builds an [`AwsError`] from it; code that keeps its own error type
/// (the worker's ledger) renders its detail with it, so both read the same.
///
/// `Display` renders `"<code>: <message>"`; without a code the category stands in for it, and
/// a codeless HTTP error says its status (`transient failure: HTTP status 500`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdkFailure {
    /// The category.
    pub kind: AwsErrorKind,
    /// The service error code (e.g. `ThrottlingException`), when the service sent one.
    pub code: Option<String>,
    /// The service's message; for a failure without an answer (timeout, connection), its
    /// causes (`dispatch failure: io error: Connection refused (os error 111)`).
    pub message: Option<String>,
}

impl SdkFailure {
    /// Service errors are classified by error code first (see [`kind_for_code`]), then by HTTP
    /// status (5xx → transient, 429 → throttled, 403 → access denied, 404 → not found).
    /// Timeouts, dispatch failures and unparseable responses are [`AwsErrorKind::Transient`];
    /// request construction failures are [`AwsErrorKind::Other`].
    pub fn describe<E, R>(err: &SdkError<E, R>) -> SdkFailure
    where
        E: ProvideErrorMetadata + Error + 'static,
        R: fmt::Debug + 'static,
    {
        let status = err.raw_response().and_then(http_status);
        match err {
            SdkError::ServiceError(service) => {
                let inner = service.err();
                let code = inner.code().filter(|c| !c.is_empty()).map(str::to_owned);
                let kind = code
                    .as_deref()
                    .and_then(kind_for_code)
                    .or_else(|| status.and_then(kind_for_status))
                    .unwrap_or(AwsErrorKind::Other);
                let message = inner
                    .message()
                    .filter(|m| !m.is_empty())
                    .map(str::to_owned)
                    .or_else(|| status.map(|s| format!("HTTP status {s}")));
                SdkFailure {
                    kind,
                    code,
                    message,
                }
            }
            SdkError::TimeoutError(_)
            | SdkError::DispatchFailure(_)
            | SdkError::ResponseError(_) => SdkFailure {
                kind: AwsErrorKind::Transient,
                code: None,
                message: Some(causes_text(err)),
            },
            // `SdkError` is non-exhaustive; construction failures and anything new land here.
            _ => SdkFailure {
                kind: AwsErrorKind::Other,
                code: None,
                message: Some(causes_text(err)),
            },
        }
    }
}

impl fmt::Display for SdkFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_reason(f, self.kind, self.code.as_deref(), self.message.as_deref())
    }
}

/// The error and its causes, `: `-separated, each said once. Not the SDK's
/// `DisplayErrorContext`, which appends the whole error's `Debug` form and so says every cause
/// a second time.
fn causes_text(err: &(dyn Error + 'static)) -> String {
    let mut text = String::new();
    let mut next = Some(err);
    while let Some(cause) = next {
        let part = cause.to_string();
        if !part.is_empty() && !text.contains(&part) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&part);
        }
        next = cause.source();
    }
    text
}

/// Classifies an SDK error into an [`AwsError`] ([`SdkFailure::describe`]), keeping it as the
/// source.
pub fn classify<E, R>(operation: &'static str, err: SdkError<E, R>) -> AwsError
where
    E: ProvideErrorMetadata + Error + Send + Sync + 'static,
    R: fmt::Debug + Send + Sync + 'static,
{
    let SdkFailure {
        kind,
        code,
        message,
    } = SdkFailure::describe(&err);
    AwsError::new(kind, operation, code, message, err)
}

/// Extension for SDK results: `client.op().send().await.classify("svc:Op")?`.
pub trait SdkResultExt<T> {
    /// Maps the error through [`classify`].
    fn classify(self, operation: &'static str) -> Result<T, AwsError>;
}

impl<T, E, R> SdkResultExt<T> for Result<T, SdkError<E, R>>
where
    E: ProvideErrorMetadata + Error + Send + Sync + 'static,
    R: fmt::Debug + Send + Sync + 'static,
{
    fn classify(self, operation: &'static str) -> Result<T, AwsError> {
        self.map_err(|err| classify(operation, err))
    }
}

/// Extension for SDK model builders: `Tag::builder()….build().built("dynamodb:TagResource")?`.
///
/// A builder fails only when a required field is left unset, a bug in the caller; it is reported
/// as an [`AwsErrorKind::Other`] error of the operation the value was built for (like the SDK's
/// own construction failures in [`classify`]) so that it can never become a panic.
pub trait BuildResultExt<T> {
    /// Maps a [`BuildError`] to an [`AwsError`] of `operation`, keeping it as the source.
    fn built(self, operation: &'static str) -> Result<T, AwsError>;
}

impl<T> BuildResultExt<T> for Result<T, BuildError> {
    fn built(self, operation: &'static str) -> Result<T, AwsError> {
        self.map_err(|err| {
            let message = format!("could not build the request: {err}");
            AwsError::new(AwsErrorKind::Other, operation, None, Some(message), err)
        })
    }
}

fn http_status<R: 'static>(raw: &R) -> Option<u16> {
    (raw as &dyn Any)
        .downcast_ref::<HttpResponse>()
        .map(|resp| resp.status().as_u16())
}

fn kind_for_status(status: u16) -> Option<AwsErrorKind> {
    match status {
        500..=599 => Some(AwsErrorKind::Transient),
        429 => Some(AwsErrorKind::Throttled),
        401 | 403 => Some(AwsErrorKind::AccessDenied),
        404 => Some(AwsErrorKind::NotFound),
        409 => Some(AwsErrorKind::Conflict),
        _ => None,
    }
}

/// Throttling codes the SDK's own retry classifier does not list, but services send.
const THROTTLED_EXTRA: &[&str] = &["RequestLimitExceededException"];

const ACCESS_DENIED: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "UnauthorizedAccess",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "ExpiredToken",
    "ExpiredTokenException",
    "AuthFailure",
    "SignatureDoesNotMatch",
    "IncompleteSignature",
    "InvalidSignatureException",
    "MissingAuthenticationToken",
    "MissingAuthenticationTokenException",
    "OptInRequired",
    "NotAuthorized",
];

const NOT_FOUND: &[&str] = &[
    "NotFound",
    "ResourceNotFound",
    "ResourceNotFoundException",
    "NotFoundException",
    "AWS.SimpleQueueService.NonExistentQueue",
    "QueueDoesNotExist",
    "NoSuchEntity",
    "NoSuchKey",
    "NoSuchBucket",
];

const CONFLICT: &[&str] = &[
    "ConditionalCheckFailedException",
    "TransactionConflictException",
    "ResourceInUseException",
    "ResourceInUse",
    "ResourceInUseFault",
    "ScalingActivityInProgress",
    "ScalingActivityInProgressFault",
    "QueueAlreadyExists",
    "QueueNameExists",
    "AWS.SimpleQueueService.QueueDeletedRecently",
    "QueueDeletedRecently",
    "ConflictException",
    "ConcurrentModificationException",
    "DependencyViolation",
    "IdempotentParameterMismatch",
    "IncorrectState",
    "IncorrectInstanceState",
];

const VALIDATION: &[&str] = &[
    "ValidationException",
    "ValidationError",
    "InvalidParameterValue",
    "InvalidParameterValueException",
    "InvalidParameterCombination",
    "InvalidAttributeValue",
    "InvalidAttributeName",
    "InvalidParameter",
    "InvalidParameterException",
    "InvalidInput",
    "InvalidInputException",
    "MissingParameter",
    "MissingRequiredParameter",
    "MalformedQueryString",
    "SerializationException",
    "InvalidAction",
];

/// Transient codes beyond the SDK's own list ([`TRANSIENT_ERRORS`]: request timeouts): the
/// services' internal and unavailable errors, which the SDK retries by HTTP status instead.
const TRANSIENT_EXTRA: &[&str] = &[
    "InternalError",
    "InternalFailure",
    "InternalServerError",
    "InternalServiceError",
    "InternalServiceErrorException",
    "InternalServerException",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "Unavailable",
    "KMSInternalException",
    "DependencyTimeoutException",
    "AWS.SimpleQueueService.ServiceUnavailable",
];

/// Classifies a service error code, or `None` when the code carries no known meaning.
///
/// Throttling and timeout codes are the SDK's own lists (`aws_runtime`'s retry classifier,
/// [`THROTTLING_ERRORS`] and [`TRANSIENT_ERRORS`]), so a code the SDK learns to retry is
/// classified the same here; the other tables are Ballast's. Exact matches come first, then suffix/prefix conventions (`*.NotFound`,
/// `*NotFoundException`, `*AlreadyExists*`, `*.Duplicate`, `*.Malformed`, `Invalid*`).
/// A namespace prefix such as `com.amazonaws.dynamodb.v20120810#` is ignored.
pub fn kind_for_code(code: &str) -> Option<AwsErrorKind> {
    let code = code.rsplit('#').next().unwrap_or(code).trim();
    let code = code.split(':').next().unwrap_or(code);
    if code.is_empty() {
        return None;
    }
    let exact = [
        (THROTTLING_ERRORS, AwsErrorKind::Throttled),
        (THROTTLED_EXTRA, AwsErrorKind::Throttled),
        (ACCESS_DENIED, AwsErrorKind::AccessDenied),
        (NOT_FOUND, AwsErrorKind::NotFound),
        (CONFLICT, AwsErrorKind::Conflict),
        (VALIDATION, AwsErrorKind::Validation),
        (TRANSIENT_ERRORS, AwsErrorKind::Transient),
        (TRANSIENT_EXTRA, AwsErrorKind::Transient),
    ];
    for (codes, kind) in exact {
        if codes.contains(&code) {
            return Some(kind);
        }
    }
    if code.ends_with("NotFound")
        || code.ends_with("NotFoundException")
        || code.ends_with("NotFoundFault")
        || code.starts_with("NoSuch")
    {
        return Some(AwsErrorKind::NotFound);
    }
    if code.contains("AlreadyExists") || code.ends_with(".Duplicate") || code.ends_with("InUse") {
        return Some(AwsErrorKind::Conflict);
    }
    if code.ends_with("Throttled") || code.ends_with("ThrottlingException") {
        return Some(AwsErrorKind::Throttled);
    }
    if code.ends_with(".Malformed") || code.starts_with("Invalid") {
        return Some(AwsErrorKind::Validation);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_table() {
        use AwsErrorKind::*;
        let cases = [
            ("ThrottlingException", Throttled),
            ("Throttling", Throttled),
            ("RequestLimitExceeded", Throttled),
            ("ProvisionedThroughputExceededException", Throttled),
            ("TooManyRequestsException", Throttled),
            ("RequestThrottled", Throttled),
            ("AccessDenied", AccessDenied),
            ("AccessDeniedException", AccessDenied),
            ("UnauthorizedOperation", AccessDenied),
            ("UnrecognizedClientException", AccessDenied),
            ("InvalidClientTokenId", AccessDenied),
            ("ExpiredToken", AccessDenied),
            ("AuthFailure", AccessDenied),
            ("ResourceNotFoundException", NotFound),
            ("NotFoundException", NotFound),
            ("AWS.SimpleQueueService.NonExistentQueue", NotFound),
            ("QueueDoesNotExist", NotFound),
            ("NotFound", NotFound),
            ("InvalidVpcID.NotFound", NotFound),
            ("InvalidLaunchTemplateName.NotFoundException", NotFound),
            ("InvalidGroup.NotFound", NotFound),
            (
                "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException",
                NotFound,
            ),
            ("ConditionalCheckFailedException", Conflict),
            ("TransactionConflictException", Conflict),
            ("ResourceInUseException", Conflict),
            ("AlreadyExistsFault", Conflict),
            ("AlreadyExistsException", Conflict),
            ("InvalidLaunchTemplateName.AlreadyExistsException", Conflict),
            ("QueueAlreadyExists", Conflict),
            ("InvalidGroup.Duplicate", Conflict),
            ("ConflictException", Conflict),
            ("ValidationException", Validation),
            ("ValidationError", Validation),
            ("InvalidParameterValue", Validation),
            ("InvalidParameterCombination", Validation),
            ("InvalidAttributeValue", Validation),
            ("InvalidAMIID.Malformed", Validation),
            ("InternalError", Transient),
            ("ServiceUnavailable", Transient),
        ];
        for (code, want) in cases {
            assert_eq!(kind_for_code(code), Some(want), "code {code}");
        }
        assert_eq!(kind_for_code("SomethingNobodyHeardOf"), None);
        assert_eq!(kind_for_code(""), None);
    }

    #[test]
    fn every_code_the_sdk_retries_is_retryable_here() {
        for code in THROTTLING_ERRORS {
            assert_eq!(kind_for_code(code), Some(AwsErrorKind::Throttled), "{code}");
        }
        for code in TRANSIENT_ERRORS {
            assert_eq!(kind_for_code(code), Some(AwsErrorKind::Transient), "{code}");
        }
        assert_eq!(
            kind_for_code("RequestLimitExceededException"),
            Some(AwsErrorKind::Throttled)
        );
        assert_eq!(
            kind_for_code("TransactionInProgressException"),
            Some(AwsErrorKind::Throttled)
        );
    }

    #[test]
    fn one_struct_renders_its_label_code_and_message() {
        let err = AwsError::new(
            AwsErrorKind::Throttled,
            "sqs:ReceiveMessage",
            Some("ThrottlingException".into()),
            Some("slow down".into()),
            std::io::Error::other("cause"),
        );
        assert_eq!(
            err.to_string(),
            "sqs:ReceiveMessage failed: ThrottlingException: slow down"
        );
        assert!(err.is_retryable());
        assert!(err.source().is_some_and(|s| s.to_string() == "cause"));
        let bare = AwsError::new(
            AwsErrorKind::NotFound,
            "dynamodb:DescribeTable",
            None,
            None,
            std::io::Error::other("cause"),
        );
        assert_eq!(
            bare.to_string(),
            "dynamodb:DescribeTable failed: not found: no message"
        );
        assert!(bare.is_not_found() && !bare.is_conflict());
        assert!(format!("{bare:?}").contains("NotFound"));
    }

    #[test]
    fn a_failure_without_an_answer_says_each_cause_once_and_no_debug_form() {
        use aws_smithy_runtime_api::client::result::ConnectorError;
        let refused =
            std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "Connection refused");
        let err: SdkError<aws_sdk_sqs::operation::list_queues::ListQueuesError, HttpResponse> =
            SdkError::dispatch_failure(ConnectorError::io(Box::new(refused)));
        let err = classify("sqs:ListQueues", err);
        assert_eq!(
            err.to_string(),
            "sqs:ListQueues failed: transient failure: dispatch failure: io error: Connection refused"
        );
        assert!(err.is_retryable());
    }

    #[test]
    fn a_codeless_server_error_says_its_status() {
        use aws_smithy_runtime_api::http::StatusCode;
        use aws_smithy_types::body::SdkBody;
        use aws_smithy_types::error::ErrorMetadata;
        let raw = HttpResponse::new(StatusCode::try_from(500).unwrap(), SdkBody::empty());
        let err = SdkError::service_error(
            aws_sdk_sqs::operation::list_queues::ListQueuesError::generic(
                ErrorMetadata::builder().build(),
            ),
            raw,
        );
        let failure = SdkFailure::describe(&err);
        assert_eq!(failure.kind, AwsErrorKind::Transient);
        assert_eq!(failure.to_string(), "transient failure: HTTP status 500");
        assert_eq!(
            classify("sqs:ListQueues", err).to_string(),
            "sqs:ListQueues failed: transient failure: HTTP status 500"
        );
    }

    #[test]
    fn kind_retryability() {
        assert!(AwsErrorKind::Throttled.is_retryable());
        assert!(AwsErrorKind::Transient.is_retryable());
        assert!(!AwsErrorKind::NotFound.is_retryable());
        assert!(!AwsErrorKind::Conflict.is_retryable());
        assert!(!AwsErrorKind::Other.is_retryable());
    }

    #[test]
    fn a_builder_missing_a_required_field_is_an_other_error_of_the_operation() {
        // `MessageAttributeValue` requires `data_type`.
        let err = aws_sdk_sqs::types::MessageAttributeValue::builder()
            .string_value("x")
            .build()
            .built("sqs:SendMessage")
            .unwrap_err();
        assert_eq!(err.kind(), AwsErrorKind::Other);
        assert_eq!(err.operation(), "sqs:SendMessage");
        assert!(
            err.message().is_some_and(|m| m.contains("data_type")),
            "{err}"
        );
        assert!(err.source().is_some_and(|s| s.is::<BuildError>()));
    }
}
