//! The fault proxy against moto, observed through the real AWS SDK clients: each fault kind
//! must reach the client as the error class AWS itself would produce.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a failed test (clippy.toml covers only #[test] fns, not helpers)"
)]

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_sqs::error::SdkError;
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;
use ballast_testbed::proxy::{ErrorKind, Fault, FaultProxy, Rule};

async fn proxy() -> FaultProxy {
    let moto = ballast_testbed::moto().await;
    FaultProxy::start(&moto.endpoint(), 42)
        .await
        .expect("proxy starts")
}

/// An SQS client through the proxy; `retries` attempts (1 = no retry), fast backoff.
async fn sqs(proxy: &FaultProxy, attempts: u32) -> aws_sdk_sqs::Client {
    let config = proxy.sdk_config().await;
    aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::config::Builder::from(&config)
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(attempts)
                    .with_initial_backoff(Duration::from_millis(10)),
            )
            .timeout_config(
                TimeoutConfig::builder()
                    .operation_attempt_timeout(Duration::from_millis(1500))
                    .build(),
            )
            .build(),
    )
}

async fn dynamodb(proxy: &FaultProxy, attempts: u32) -> aws_sdk_dynamodb::Client {
    let config = proxy.sdk_config().await;
    aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&config)
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(attempts)
                    .with_initial_backoff(Duration::from_millis(10)),
            )
            .build(),
    )
}

async fn new_queue(client: &aws_sdk_sqs::Client) -> String {
    client
        .create_queue()
        .queue_name(ballast_testbed::unique_name("proxy"))
        .send()
        .await
        .expect("create queue")
        .queue_url
        .expect("queue url")
}

#[tokio::test]
async fn sqs_errors_arrive_as_aws_service_errors() {
    let proxy = proxy().await;
    let client = sqs(&proxy, 1).await;
    let url = new_queue(&client).await;
    for (kind, status, code) in [
        (ErrorKind::InternalServerError, 500, "InternalError"),
        (ErrorKind::ServiceUnavailable, 503, "ServiceUnavailable"),
        (ErrorKind::Throttling, 400, "ThrottlingException"),
    ] {
        let rule = proxy.add(
            Rule::new(Fault::Error(kind))
                .service("sqs")
                .operation("SendMessage")
                .next(1),
        );
        let err = client
            .send_message()
            .queue_url(&url)
            .message_body("x")
            .send()
            .await
            .expect_err("the injected error");
        assert_eq!(err.code(), Some(code), "{kind:?}: {err:?}");
        let SdkError::ServiceError(service) = &err else {
            panic!("{kind:?}: not a service error: {err:?}");
        };
        assert_eq!(service.raw().status().as_u16(), status);
        assert_eq!(proxy.injected(rule), 1);
        // Next(1): the following request passes.
        client
            .send_message()
            .queue_url(&url)
            .message_body("x")
            .send()
            .await
            .expect("passes after the rule is spent");
    }
    // Nothing injected reached moto: only the three successful sends are in the queue.
    let attrs = client
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .expect("attributes");
    let depth = attrs
        .attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages))
        .cloned();
    assert_eq!(depth.as_deref(), Some("3"));
}

#[tokio::test]
async fn dynamodb_errors_are_modelled_and_retried_as_transient() {
    let proxy = proxy().await;
    let strict = dynamodb(&proxy, 1).await;
    let rule = proxy.add(
        Rule::new(Fault::Error(ErrorKind::ProvisionedThroughputExceeded))
            .service("dynamodb")
            .operation("ListTables")
            .next(1),
    );
    let err = strict.list_tables().send().await.expect_err("throttled");
    assert_eq!(
        err.code(),
        Some("ProvisionedThroughputExceededException"),
        "{err:?}"
    );
    assert_eq!(proxy.injected(rule), 1);

    let rule = proxy.add(
        Rule::new(Fault::Error(ErrorKind::InternalServerError))
            .service("dynamodb")
            .next(1),
    );
    let err = strict.list_tables().send().await.expect_err("500");
    assert!(
        matches!(
            err.as_service_error(),
            Some(aws_sdk_dynamodb::operation::list_tables::ListTablesError::InternalServerError(_))
        ),
        "{err:?}"
    );
    assert_eq!(proxy.injected(rule), 1);

    // The SDK's standard retry treats all of them as transient: two faults, then success.
    let retrying = dynamodb(&proxy, 3).await;
    for kind in [
        ErrorKind::InternalServerError,
        ErrorKind::ServiceUnavailable,
        ErrorKind::Throttling,
        ErrorKind::ProvisionedThroughputExceeded,
    ] {
        let rule = proxy.add(
            Rule::new(Fault::Error(kind))
                .service("dynamodb")
                .operation("ListTables")
                .next(2),
        );
        retrying
            .list_tables()
            .send()
            .await
            .unwrap_or_else(|e| panic!("{kind:?} not retried: {e:?}"));
        assert_eq!(proxy.injected(rule), 2, "{kind:?}");
    }
    assert!(proxy.requests("dynamodb", "ListTables") >= 10);
}

#[tokio::test]
async fn reset_is_a_dispatch_failure_and_nothing_reaches_moto() {
    let proxy = proxy().await;
    let client = sqs(&proxy, 1).await;
    let url = new_queue(&client).await;
    proxy.add(
        Rule::new(Fault::Reset)
            .service("sqs")
            .operation("SendMessage")
            .next(1),
    );
    let err = client
        .send_message()
        .queue_url(&url)
        .message_body("lost")
        .send()
        .await
        .expect_err("reset");
    assert!(matches!(err, SdkError::DispatchFailure(_)), "{err:?}");
    let received = client
        .receive_message()
        .queue_url(&url)
        .wait_time_seconds(0)
        .send()
        .await
        .expect("receive");
    assert!(
        received.messages().is_empty(),
        "a reset request was applied"
    );
}

#[tokio::test]
async fn dropped_answer_is_a_dispatch_failure_but_the_effect_happened() {
    let proxy = proxy().await;
    let client = sqs(&proxy, 1).await;
    let url = new_queue(&client).await;
    let rule = proxy.add(
        Rule::new(Fault::DropResponse)
            .service("sqs")
            .operation("SendMessage")
            .next(1),
    );
    let err = client
        .send_message()
        .queue_url(&url)
        .message_body("applied")
        .send()
        .await
        .expect_err("dropped answer");
    assert!(matches!(err, SdkError::DispatchFailure(_)), "{err:?}");
    assert_eq!(proxy.injected(rule), 1);
    let received = client
        .receive_message()
        .queue_url(&url)
        .wait_time_seconds(1)
        .send()
        .await
        .expect("receive");
    let bodies: Vec<_> = received
        .messages()
        .iter()
        .filter_map(|m| m.body())
        .collect();
    assert_eq!(bodies, ["applied"]);
}

#[tokio::test]
async fn hang_is_a_timeout_and_latency_delays() {
    let proxy = proxy().await;
    let client = sqs(&proxy, 1).await;
    proxy.add(
        Rule::new(Fault::Hang)
            .service("sqs")
            .operation("ListQueues")
            .next(1),
    );
    let started = Instant::now();
    let err = client.list_queues().send().await.expect_err("hung");
    assert!(matches!(err, SdkError::TimeoutError(_)), "{err:?}");
    assert!(started.elapsed() >= Duration::from_millis(1400));

    let rule = proxy.add(
        Rule::new(Fault::Latency(Duration::from_millis(400)))
            .service("sqs")
            .operation("ListQueues")
            .next(1),
    );
    let started = Instant::now();
    client.list_queues().send().await.expect("slow but fine");
    assert!(started.elapsed() >= Duration::from_millis(400));
    assert_eq!(proxy.injected(rule), 1);
    let faults = proxy.injected_by_fault();
    assert_eq!(faults.get("hang"), Some(&1));
    assert_eq!(faults.get("latency"), Some(&1));
}

#[tokio::test]
async fn probability_is_reproducible_from_the_seed_and_windows_end() {
    let moto = ballast_testbed::moto().await;
    let mut counts = Vec::new();
    for _ in 0..2 {
        let proxy = FaultProxy::start(&moto.endpoint(), 7).await.expect("proxy");
        let client = sqs(&proxy, 1).await;
        let rule = proxy.add(
            Rule::new(Fault::Error(ErrorKind::InternalServerError))
                .service("sqs")
                .operation("ListQueues")
                .probability(0.3),
        );
        let mut failures = 0u64;
        for _ in 0..60 {
            if client.list_queues().send().await.is_err() {
                failures += 1;
            }
        }
        assert_eq!(failures, proxy.injected(rule));
        assert_eq!(proxy.requests("sqs", "ListQueues"), 60);
        counts.push(failures);
    }
    assert_eq!(counts[0], counts[1], "same seed, same faults");
    assert!((5..=35).contains(&counts[0]), "{counts:?}");

    let proxy = FaultProxy::start(&moto.endpoint(), 7).await.expect("proxy");
    let client = sqs(&proxy, 1).await;
    let window = Duration::from_millis(300);
    let rule = proxy.add(
        Rule::new(Fault::Error(ErrorKind::ServiceUnavailable))
            .service("sqs")
            .during(window),
    );
    client
        .list_queues()
        .send()
        .await
        .expect_err("inside the window");
    // Poll until the window has passed; every failure must have been injected by it.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut attempts = 1;
    while client.list_queues().send().await.is_err() {
        attempts += 1;
        assert!(Instant::now() < deadline, "the window never ended");
        tokio::task::yield_now().await;
    }
    assert_eq!(proxy.injected(rule), attempts);
    proxy.clear();
    client.list_queues().send().await.expect("no rules");
}
