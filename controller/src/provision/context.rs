//! AWS clients for provisioning. Read-only commands get [`ReadOnlyClients`]: every client carries
//! [`ballast_aws::ReadOnlyGuard`], which refuses any non-read operation before it is sent, and the
//! observe half of every resource kind only accepts this type.

use aws_types::SdkConfig;
use ballast_aws::{CallRecorder, ReadOnlyGuard};

#[derive(Debug, Clone)]
pub struct Clients {
    pub kms: aws_sdk_kms::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub ec2: aws_sdk_ec2::Client,
    pub autoscaling: aws_sdk_autoscaling::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub sns: aws_sdk_sns::Client,
    /// Roles, managed policies and instance profiles (IAM is global: the region is unused).
    pub iam: aws_sdk_iam::Client,
    /// Resource Groups Tagging API: ownership tags of every tagged kind in one read.
    pub tagging: aws_sdk_resourcegroupstagging::Client,
}

macro_rules! client {
    ($sdk:ident, $config:expr, $recorder:expr, $guard:expr) => {{
        let mut builder = $sdk::config::Builder::from($config).interceptor($recorder.clone());
        if let Some(guard) = $guard {
            builder = builder.interceptor(guard);
        }
        $sdk::Client::from_conf(builder.build())
    }};
}

impl Clients {
    fn build(config: &SdkConfig, recorder: &CallRecorder, guard: Option<ReadOnlyGuard>) -> Self {
        Self {
            kms: client!(aws_sdk_kms, config, recorder, guard),
            sqs: client!(aws_sdk_sqs, config, recorder, guard),
            dynamodb: client!(aws_sdk_dynamodb, config, recorder, guard),
            ec2: client!(aws_sdk_ec2, config, recorder, guard),
            autoscaling: client!(aws_sdk_autoscaling, config, recorder, guard),
            cloudwatch: client!(aws_sdk_cloudwatch, config, recorder, guard),
            sns: client!(aws_sdk_sns, config, recorder, guard),
            iam: client!(aws_sdk_iam, config, recorder, guard),
            tagging: client!(aws_sdk_resourcegroupstagging, config, recorder, guard),
        }
    }

    /// Clients that may write; only `apply`, `destroy` and the controller build these.
    pub fn read_write(config: &SdkConfig, recorder: &CallRecorder) -> Self {
        Self::build(config, recorder, None)
    }
}

/// Clients that cannot write: the only kind `plan` and `drift` construct.
#[derive(Debug, Clone)]
pub struct ReadOnlyClients(Clients);

impl ReadOnlyClients {
    pub fn new(config: &SdkConfig, recorder: &CallRecorder) -> Self {
        Self(Clients::build(config, recorder, Some(ReadOnlyGuard)))
    }

    pub fn kms(&self) -> &aws_sdk_kms::Client {
        &self.0.kms
    }
    pub fn sqs(&self) -> &aws_sdk_sqs::Client {
        &self.0.sqs
    }
    pub fn dynamodb(&self) -> &aws_sdk_dynamodb::Client {
        &self.0.dynamodb
    }
    pub fn ec2(&self) -> &aws_sdk_ec2::Client {
        &self.0.ec2
    }
    pub fn autoscaling(&self) -> &aws_sdk_autoscaling::Client {
        &self.0.autoscaling
    }
    pub fn cloudwatch(&self) -> &aws_sdk_cloudwatch::Client {
        &self.0.cloudwatch
    }
    pub fn sns(&self) -> &aws_sdk_sns::Client {
        &self.0.sns
    }
    pub fn iam(&self) -> &aws_sdk_iam::Client {
        &self.0.iam
    }
    pub fn tagging(&self) -> &aws_sdk_resourcegroupstagging::Client {
        &self.0.tagging
    }
}

impl Clients {
    /// Writers also observe: the same reads, through clients that could write.
    pub fn observer(&self) -> ReadOnlyClients {
        ReadOnlyClients(self.clone())
    }
}
