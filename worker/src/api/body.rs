//! The JSON request body as an axum extractor, as in axum's `customize-extractor-error`
//! example: [`JsonBody`] checks the Content-Type and reads the body within the router's
//! [`DefaultBodyLimit`](axum::extract::DefaultBodyLimit) (set from `--body-limit` in
//! [`super::router`]); its typed rejection [`BodyRejection`] renders as the API's problem
//! details (415, 413, or 400 when the body cannot be read).
//!
//! The extractor yields the raw bytes, not a parsed value: `POST /v1/transactions` audits the
//! digest of the raw body and parses it with the worker's own transaction parser, and
//! [`StrictJson`] parses the other bodies with [`super::models::parse_strict`].

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::ApiState;
use super::models::{StrictBody, parse_strict};
use super::problem::ApiError;

/// Why a body was refused before it was parsed.
#[derive(Debug, thiserror::Error)]
pub enum BodyRejection {
    /// A Content-Type other than `application/json` or `*+json` (none is accepted as JSON).
    #[error("Content-Type must be application/json")]
    UnsupportedMediaType,
    /// More bytes than the limit.
    #[error("the request body exceeds {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The body could not be read (the client went away, a broken chunk).
    #[error("cannot read body: {0}")]
    Unreadable(#[source] BytesRejection),
}

impl From<BodyRejection> for ApiError {
    fn from(rejection: BodyRejection) -> Self {
        match rejection {
            BodyRejection::UnsupportedMediaType => ApiError::UnsupportedMediaType,
            BodyRejection::TooLarge { limit } => ApiError::PayloadTooLarge { limit },
            unreadable @ BodyRejection::Unreadable(_) => {
                ApiError::MalformedJson(unreadable.to_string())
            }
        }
    }
}

impl IntoResponse for BodyRejection {
    fn into_response(self) -> Response {
        ApiError::from(self).into_response()
    }
}

/// Whether a Content-Type names JSON: `application/json` or a `+json` suffix, any parameters.
fn is_json(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json" || essence.ends_with("+json")
}

/// The raw bytes of a JSON request body, at most the API's body limit.
#[derive(Debug, Clone)]
pub struct JsonBody(pub Bytes);

impl FromRequest<ApiState> for JsonBody {
    type Rejection = BodyRejection;

    async fn from_request(request: Request, state: &ApiState) -> Result<Self, BodyRejection> {
        if let Some(ct) = request.headers().get(header::CONTENT_TYPE)
            && !is_json(ct.to_str().unwrap_or(""))
        {
            return Err(BodyRejection::UnsupportedMediaType);
        }
        // `Bytes` honours the router's `DefaultBodyLimit`, with or without Content-Length.
        match Bytes::from_request(request, state).await {
            Ok(bytes) => Ok(JsonBody(bytes)),
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(BodyRejection::TooLarge {
                    limit: state.config().body_limit,
                })
            }
            Err(rejection) => Err(BodyRejection::Unreadable(rejection)),
        }
    }
}

/// A JSON body parsed strictly into `T` (unknown, duplicate, missing and mistyped fields are
/// `validation_failed` naming the field, see [`parse_strict`]).
#[derive(Debug, Clone)]
pub struct StrictJson<T>(pub T);

impl<T: StrictBody> FromRequest<ApiState> for StrictJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &ApiState) -> Result<Self, ApiError> {
        let JsonBody(bytes) = JsonBody::from_request(request, state).await?;
        parse_strict(&bytes).map(StrictJson)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_media_types() {
        assert!(is_json("application/json"));
        assert!(is_json("Application/JSON; charset=utf-8"));
        assert!(is_json("application/merge-patch+json"));
        assert!(!is_json("text/plain"));
        assert!(!is_json(""));
    }

    #[test]
    fn rejections_are_the_api_problems() {
        let too_large: ApiError = BodyRejection::TooLarge { limit: 10 }.into();
        assert_eq!(too_large.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(too_large.code(), "payload_too_large");
        let media: ApiError = BodyRejection::UnsupportedMediaType.into();
        assert_eq!(media.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let response = BodyRejection::TooLarge { limit: 10 }.into_response();
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            super::super::problem::PROBLEM_JSON
        );
    }
}
