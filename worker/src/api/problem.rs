//! RFC 9457 problem details (`application/problem+json`) and the API's error type.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::ledger::LedgerError;
use crate::store::StoreError;
use crate::transaction::ValidationError;

/// Media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Prefix of every problem `type` URI; the suffix is the stable `code`.
pub const PROBLEM_TYPE_BASE: &str = "https://ballast.dev/problems/";

/// An RFC 9457 problem details object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the problem type: `https://ballast.dev/problems/<code>`.
    #[serde(rename = "type")]
    #[schema(example = "https://ballast.dev/problems/validation_failed")]
    pub kind: String,
    /// Short human summary of the problem type.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// Human explanation of this occurrence.
    pub detail: String,
    /// Stable machine code (the last segment of `type`).
    #[schema(example = "validation_failed")]
    pub code: String,
    /// The request field at fault (`validation_failed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The finer validation code, e.g. `amount_not_positive` (`validation_failed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Everything a handler can fail with; each maps to one status and one stable `code`.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request body or a parameter is invalid.
    #[error("{detail}")]
    Validation {
        /// The field at fault.
        field: String,
        /// The validation code of the transaction module (or a local one).
        reason: String,
        /// Human message.
        detail: String,
    },
    /// The body is not JSON (or not an object).
    #[error("{0}")]
    MalformedJson(String),
    /// The `Idempotency-Key` header is missing.
    #[error("the Idempotency-Key header is required; hint: send a unique key per transaction")]
    IdempotencyKeyMissing,
    /// The idempotency key was used before with a different body.
    #[error("Idempotency-Key was already used with a different request body; hint: use a new key")]
    IdempotencyKeyReused,
    /// The idempotency key belongs to another client (`sub`), whatever the body.
    #[error(
        "Idempotency-Key is already used by another client; hint: keys are unique across \
         clients, use a new key"
    )]
    IdempotencyKeyForeign,
    /// No or an invalid bearer token.
    #[error("{0}")]
    Unauthorized(String),
    /// The token lacks a scope.
    #[error("the token lacks the `{scope}` scope")]
    Forbidden {
        /// The missing scope.
        scope: &'static str,
    },
    /// The client exceeded its rate limit.
    #[error("rate limit exceeded; retry after {retry_after} s")]
    RateLimited {
        /// Seconds until a token is available.
        retry_after: u64,
    },
    /// The body exceeds the limit.
    #[error("the request body exceeds {limit} bytes")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// Wrong Content-Type.
    #[error("Content-Type must be application/json")]
    UnsupportedMediaType,
    /// No such resource.
    /// An operator asked to decide a held transaction of their own (four eyes).
    #[error("{0}")]
    FourEyes(String),
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with the resource's state.
    #[error("{0}")]
    Conflict(String),
    /// A dependency (AWS) is unavailable or throttling; retry later. `detail` is told to the
    /// client; `cause` (logged, never sent) keeps the error chain.
    #[error("{detail}")]
    Unavailable {
        detail: String,
        #[source]
        cause: Option<BoxError>,
    },
    /// A bug or a corrupt item. The cause is logged with its chain and never sent to clients.
    #[error("internal error")]
    Internal(#[source] BoxError),
}

/// The cause of an internal or unavailable answer, kept typed for the log.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// An error and its sources, `a: b: c`, for one log field.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl ApiError {
    /// A 500 whose cause is logged (with its chain) and never sent.
    pub fn internal(cause: impl Into<BoxError>) -> Self {
        ApiError::Internal(cause.into())
    }

    /// A 503 telling the client `detail`, with the cause (if any) for the log.
    pub fn unavailable(detail: impl Into<String>, cause: Option<BoxError>) -> Self {
        ApiError::Unavailable {
            detail: detail.into(),
            cause,
        }
    }

    /// A `validation_failed` error from the transaction module's validation.
    pub fn from_validation(err: &ValidationError) -> Self {
        ApiError::Validation {
            field: err.field().to_owned(),
            reason: err.code().to_owned(),
            detail: err.to_string(),
        }
    }

    /// A `validation_failed` error about a parameter.
    pub fn invalid(field: &str, reason: &str, detail: impl Into<String>) -> Self {
        ApiError::Validation {
            field: field.to_owned(),
            reason: reason.to_owned(),
            detail: detail.into(),
        }
    }

    /// HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Validation { .. }
            | ApiError::MalformedJson(_)
            | ApiError::IdempotencyKeyMissing => StatusCode::BAD_REQUEST,
            ApiError::IdempotencyKeyReused
            | ApiError::IdempotencyKeyForeign
            | ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. } | ApiError::FourEyes(_) => StatusCode::FORBIDDEN,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Validation { .. } => "validation_failed",
            ApiError::MalformedJson(_) => "malformed_json",
            ApiError::IdempotencyKeyMissing => "idempotency_key_missing",
            ApiError::IdempotencyKeyReused => "idempotency_key_reused",
            ApiError::IdempotencyKeyForeign => "idempotency_key_foreign",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden { .. } => "forbidden",
            ApiError::FourEyes(_) => "four_eyes",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::NotFound(_) => "not_found",
            ApiError::Conflict(_) => "conflict",
            ApiError::Unavailable { .. } => "service_unavailable",
            ApiError::Internal(_) => "internal_error",
        }
    }

    fn title(&self) -> &'static str {
        match self {
            ApiError::Validation { .. } => "The request is invalid",
            ApiError::MalformedJson(_) => "The body is not a JSON object",
            ApiError::IdempotencyKeyMissing => "Idempotency-Key header missing",
            ApiError::IdempotencyKeyReused => "Idempotency-Key reused with another body",
            ApiError::IdempotencyKeyForeign => "Idempotency-Key owned by another client",
            ApiError::Unauthorized(_) => "Authentication required",
            ApiError::Forbidden { .. } => "Insufficient scope",
            ApiError::FourEyes(_) => "A second operator must decide",
            ApiError::RateLimited { .. } => "Too many requests",
            ApiError::PayloadTooLarge { .. } => "Payload too large",
            ApiError::UnsupportedMediaType => "Unsupported media type",
            ApiError::NotFound(_) => "Not found",
            ApiError::Conflict(_) => "Conflict",
            ApiError::Unavailable { .. } => "Service unavailable",
            ApiError::Internal(_) => "Internal error",
        }
    }

    /// The problem details body.
    pub fn problem(&self) -> Problem {
        let (field, reason) = match self {
            ApiError::Validation { field, reason, .. } => {
                (Some(field.clone()), Some(reason.clone()))
            }
            _ => (None, None),
        };
        let detail = match self {
            // Never leak internals to clients; they are logged instead.
            ApiError::Internal(_) => "internal error; see the server logs".to_owned(),
            other => other.to_string(),
        };
        Problem {
            kind: format!("{PROBLEM_TYPE_BASE}{}", self.code()),
            title: self.title().to_owned(),
            status: self.status().as_u16(),
            detail,
            code: self.code().to_owned(),
            field,
            reason,
        }
    }
}

impl From<LedgerError> for ApiError {
    fn from(err: LedgerError) -> Self {
        match err {
            e @ LedgerError::Transient { .. } => ApiError::unavailable(
                "the ledger is temporarily unavailable; retry later",
                Some(e.into()),
            ),
            LedgerError::Conflict { reason, .. } => ApiError::Conflict(reason),
            LedgerError::InvalidInput { detail } => {
                ApiError::invalid("request", "invalid_input", detail)
            }
            other => ApiError::internal(other),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Aws(e) => e.into(),
            StoreError::Ledger(e) => e.into(),
            StoreError::BadPageKey => super::paging::bad_cursor(),
            e @ (StoreError::IngestContended | StoreError::IngestVanished) => {
                ApiError::unavailable(e.to_string(), Some(e.into()))
            }
            e @ (StoreError::Build { .. }
            | StoreError::Format(_)
            | StoreError::TimeOutOfRange { .. }
            | StoreError::Corrupt { .. }
            | StoreError::IngestCancelled { .. }) => ApiError::internal(e),
        }
    }
}

impl From<ballast_aws::AwsError> for ApiError {
    fn from(err: ballast_aws::AwsError) -> Self {
        if err.is_retryable() {
            ApiError::unavailable(
                format!("{} is temporarily unavailable", err.operation()),
                Some(err.into()),
            )
        } else {
            ApiError::internal(err)
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        match &self {
            ApiError::Internal(cause) => {
                tracing::error!(code = self.code(), error = %chain(cause.as_ref()), "request failed")
            }
            ApiError::Unavailable { detail, cause } => {
                let cause = cause.as_deref().map(|c| chain(c)).unwrap_or_default();
                tracing::warn!(code = self.code(), %detail, %cause, "request failed")
            }
            _ => tracing::debug!(code = self.code(), "request refused"),
        }
        let body = serde_json::to_vec(&self.problem()).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        match &self {
            ApiError::Unauthorized(_) => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(r#"Bearer realm="ballast", error="invalid_token""#),
                );
            }
            ApiError::Forbidden { scope } => {
                if let Ok(v) = HeaderValue::from_str(&format!(
                    r#"Bearer realm="ballast", error="insufficient_scope", scope="{scope}""#
                )) {
                    headers.insert(header::WWW_AUTHENTICATE, v);
                }
            }
            ApiError::RateLimited { retry_after } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
            }
            ApiError::Unavailable { .. } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        response
    }
}
