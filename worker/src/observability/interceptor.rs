//! An SDK interceptor counting AWS calls (by final outcome) and HTTP requests (attempts).

use std::sync::Arc;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

use super::metrics::{AwsCallLabels, AwsRequestLabels, Metrics};

/// Add to every client config: `Config::builder().interceptor(AwsCallCounter::new(m))`.
#[derive(Debug, Clone)]
pub struct AwsCallCounter {
    metrics: Arc<Metrics>,
}

impl AwsCallCounter {
    /// A counter feeding `metrics`.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        AwsCallCounter { metrics }
    }
}

/// The call's label, `service:Operation` (e.g. `sqs:ReceiveMessage`), as in errors and logs.
fn operation(cfg: &ConfigBag) -> String {
    cfg.load::<Metadata>()
        .map(|m| ballast_aws::operation_label(m.service(), m.name()))
        .unwrap_or_else(|| "unknown".to_owned())
}

impl Intercept for AwsCallCounter {
    fn name(&self) -> &'static str {
        "BallastAwsCallCounter"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.metrics
            .aws_requests
            .get_or_create(&AwsRequestLabels {
                operation: operation(cfg),
            })
            .inc();
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let outcome = match context.output_or_error() {
            Some(Ok(_)) => "ok",
            _ => "error",
        };
        self.metrics
            .aws_calls
            .get_or_create(&AwsCallLabels {
                operation: operation(cfg),
                outcome,
            })
            .inc();
        Ok(())
    }
}
