//! Classification of real `aws-sdk-sqs` errors produced through aws-smithy-mocks.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a failed test (clippy.toml covers only #[test] fns, not helpers)"
)]

use aws_sdk_sqs::Client;
use aws_sdk_sqs::config::retry::RetryConfig;
use aws_sdk_sqs::error::ErrorMetadata;
use aws_sdk_sqs::operation::get_queue_url::GetQueueUrlError;
use aws_sdk_sqs::operation::send_message::SendMessageError;
use aws_sdk_sqs::types::error::QueueDoesNotExist;
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use ballast_aws::{AwsErrorKind, SdkResultExt, classify};

fn http_response(status: u16, headers: &[(&str, &str)], body: &'static str) -> HttpResponse {
    let mut resp = HttpResponse::new(
        StatusCode::try_from(status).unwrap(),
        SdkBody::from(body.as_bytes()),
    );
    for (name, value) in headers {
        resp.headers_mut()
            .insert(name.to_string(), value.to_string());
    }
    resp
}

#[tokio::test]
async fn modeled_queue_does_not_exist_is_not_found() {
    let rule = mock!(Client::get_queue_url).then_error(|| {
        GetQueueUrlError::QueueDoesNotExist(
            QueueDoesNotExist::builder()
                .message("The specified queue does not exist.")
                .meta(
                    ErrorMetadata::builder()
                        .code("QueueDoesNotExist")
                        .message("The specified queue does not exist.")
                        .build(),
                )
                .build(),
        )
    });
    let sqs = mock_client!(aws_sdk_sqs, RuleMode::Sequential, [&rule]);

    let err = sqs
        .get_queue_url()
        .queue_name("missing")
        .send()
        .await
        .map(|_| ())
        .classify("sqs:GetQueueUrl")
        .unwrap_err();

    assert_eq!(err.kind(), AwsErrorKind::NotFound, "{err:?}");
    assert_eq!(err.operation(), "sqs:GetQueueUrl");
    assert_eq!(err.code(), Some("QueueDoesNotExist"));
    assert!(!err.is_retryable());
    assert_eq!(
        err.to_string(),
        "sqs:GetQueueUrl failed: QueueDoesNotExist: The specified queue does not exist."
    );
    // The original SDK error stays reachable through the source chain.
    let source = std::error::Error::source(&err).expect("source");
    assert!(format!("{source:?}").contains("QueueDoesNotExist"));
    assert_eq!(rule.num_calls(), 1);
}

#[tokio::test]
async fn wire_queue_does_not_exist_is_not_found() {
    // What SQS (JSON protocol, query-compatible) actually sends back.
    let rule = mock!(Client::get_queue_url).then_http_response(|| {
        http_response(
            400,
            &[
                ("content-type", "application/x-amz-json-1.0"),
                (
                    "x-amzn-query-error",
                    "AWS.SimpleQueueService.NonExistentQueue;Sender",
                ),
            ],
            r#"{"__type":"com.amazonaws.sqs#QueueDoesNotExist","message":"The specified queue does not exist."}"#,
        )
    });
    let sqs = mock_client!(aws_sdk_sqs, RuleMode::Sequential, [&rule]);

    let sdk_err = sqs
        .get_queue_url()
        .queue_name("missing")
        .send()
        .await
        .unwrap_err();
    assert!(
        matches!(
            sdk_err.as_service_error(),
            Some(GetQueueUrlError::QueueDoesNotExist(_))
        ),
        "{sdk_err:?}"
    );
    let err = classify("sqs:GetQueueUrl", sdk_err);
    assert_eq!(err.kind(), AwsErrorKind::NotFound, "{err:?}");
    assert!(err.code().is_some());
    assert_eq!(err.message(), Some("The specified queue does not exist."));
}

#[tokio::test]
async fn unmodeled_throttling_exception_is_throttled() {
    let rule = mock!(Client::send_message).then_error(|| {
        SendMessageError::generic(
            ErrorMetadata::builder()
                .code("ThrottlingException")
                .message("Rate exceeded")
                .build(),
        )
    });
    let sqs = mock_client!(aws_sdk_sqs, RuleMode::Sequential, [&rule]);

    let sdk_err = sqs
        .send_message()
        .queue_url("https://sqs.us-east-1.amazonaws.com/000000000000/q")
        .message_body("{}")
        .send()
        .await
        .unwrap_err();
    let err = classify("sqs:SendMessage", sdk_err);

    assert_eq!(err.kind(), AwsErrorKind::Throttled, "{err:?}");
    assert_eq!(err.code(), Some("ThrottlingException"));
    assert!(err.is_retryable());
    assert_eq!(
        err.to_string(),
        "sqs:SendMessage failed: ThrottlingException: Rate exceeded"
    );
}

#[tokio::test]
async fn unmodeled_access_denied_is_access_denied() {
    let rule = mock!(Client::send_message).then_error(|| {
        SendMessageError::generic(
            ErrorMetadata::builder()
                .code("AccessDenied")
                .message("not allowed")
                .build(),
        )
    });
    let sqs = mock_client!(aws_sdk_sqs, RuleMode::Sequential, [&rule]);

    let err = sqs
        .send_message()
        .queue_url("https://sqs.us-east-1.amazonaws.com/000000000000/q")
        .message_body("{}")
        .send()
        .await
        .classify("sqs:SendMessage")
        .unwrap_err();
    assert_eq!(err.kind(), AwsErrorKind::AccessDenied);
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn http_500_is_transient() {
    let rule = mock!(Client::get_queue_url)
        .then_http_response(|| http_response(500, &[], "internal server error"));
    // Without retries so the test sees the first 500 instead of waiting out backoff.
    let sqs = mock_client!(aws_sdk_sqs, RuleMode::Sequential, [&rule], |conf| conf
        .retry_config(RetryConfig::disabled()));

    let err = sqs
        .get_queue_url()
        .queue_name("q")
        .send()
        .await
        .classify("sqs:GetQueueUrl")
        .unwrap_err();

    assert_eq!(err.kind(), AwsErrorKind::Transient, "{err:?}");
    assert!(err.is_retryable());
    assert!(
        err.to_string().starts_with("sqs:GetQueueUrl failed: "),
        "{err}"
    );
    assert_eq!(rule.num_calls(), 1);
}

#[tokio::test]
async fn http_400_without_code_is_other() {
    let rule = mock!(Client::get_queue_url).then_http_response(|| http_response(400, &[], ""));
    let sqs = mock_client!(aws_sdk_sqs, RuleMode::Sequential, [&rule]);

    let err = sqs
        .get_queue_url()
        .queue_name("q")
        .send()
        .await
        .classify("sqs:GetQueueUrl")
        .unwrap_err();
    assert_eq!(err.kind(), AwsErrorKind::Other, "{err:?}");
    assert!(!err.is_retryable());
}
