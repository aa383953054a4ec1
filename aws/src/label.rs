//! The one label format of an AWS call, `service:Operation` (e.g. `sqs:ReceiveMessage`,
//! `dynamodb:TransactWriteItems`): the IAM action name, used in error messages
//! ([`crate::AwsError`]), logs and metric labels alike, so one grep finds a call everywhere.
//!
//! Call sites name their operation with a literal label (`.classify("sqs:GetQueueUrl")`);
//! interceptors, which see the SDK's own operation metadata (service `"Auto Scaling"`,
//! operation `"UpdateAutoScalingGroup"`), build the same label with [`operation_label`].

use std::borrow::Cow;

/// The SDK service names Ballast calls and their IAM service prefixes.
const PREFIXES: &[(&str, &str)] = &[
    ("SQS", "sqs"),
    ("DynamoDB", "dynamodb"),
    ("Auto Scaling", "autoscaling"),
    ("CloudWatch", "cloudwatch"),
    ("EC2", "ec2"),
    ("KMS", "kms"),
    ("Resource Groups Tagging API", "tag"),
];

/// The IAM service prefix of an SDK service name (the `service` of the SDK's operation
/// metadata): `"Auto Scaling"` → `autoscaling`. A service not listed is lower-cased with
/// everything but letters and digits dropped.
pub fn service_prefix(sdk_service: &str) -> Cow<'static, str> {
    match PREFIXES.iter().find(|(name, _)| *name == sdk_service) {
        Some((_, prefix)) => Cow::Borrowed(prefix),
        None => Cow::Owned(
            sdk_service
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .map(|c| c.to_ascii_lowercase())
                .collect(),
        ),
    }
}

/// The label `service:Operation` of an SDK service name and operation name.
pub fn operation_label(sdk_service: &str, operation: &str) -> String {
    format!("{}:{operation}", service_prefix(sdk_service))
}

/// The operation name of a label (`sqs:ReceiveMessage` → `ReceiveMessage`); a bare operation
/// name is returned as it is.
pub fn operation_name(label: &str) -> &str {
    label.rsplit(':').next().unwrap_or(label)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdk_service_names_become_iam_prefixes() {
        assert_eq!(
            operation_label("SQS", "ReceiveMessage"),
            "sqs:ReceiveMessage"
        );
        assert_eq!(
            operation_label("DynamoDB", "TransactWriteItems"),
            "dynamodb:TransactWriteItems"
        );
        assert_eq!(
            operation_label("Auto Scaling", "SetInstanceProtection"),
            "autoscaling:SetInstanceProtection"
        );
        assert_eq!(
            operation_label("Resource Groups Tagging API", "GetResources"),
            "tag:GetResources"
        );
        assert_eq!(service_prefix("Secrets Manager"), "secretsmanager");
        assert_eq!(operation_name("sqs:ReceiveMessage"), "ReceiveMessage");
        assert_eq!(operation_name("ReceiveMessage"), "ReceiveMessage");
    }
}
