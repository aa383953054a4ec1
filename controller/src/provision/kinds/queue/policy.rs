//! A queue's policy (the SQS `Policy` attribute): the TLS-only document Ballast writes. It is
//! read and compared as every policy is ([`PolicyValue`], semantically).

use ballast_blueprint::policy::{Effect, PolicyDocument, Principal, Statement};

use super::super::policy_value::PolicyValue;

/// The statement id of the TLS-only statement.
pub const TLS_ONLY_SID: &str = "DenyInsecureTransport";

/// The policy of a queue with `tlsOnly` (the default): deny `sqs:*` to anyone on the queue
/// whenever the request did not come over TLS.
pub fn tls_only_policy(queue_arn: &str) -> PolicyDocument {
    PolicyDocument::new(vec![
        Statement {
            sid: Some(TLS_ONLY_SID.into()),
            effect: Effect::Deny,
            principal: Some(Principal::Anyone),
            actions: vec!["sqs:*".into()],
            resources: vec![queue_arn.into()],
            conditions: Default::default(),
        }
        .with_condition("Bool", "aws:SecureTransport", ["false"]),
    ])
}

/// The policy the blueprint wants on `queue` once its ARN is known: `None` with `tlsOnly: false`.
pub(super) fn wanted_policy(
    queue: &ballast_blueprint::Queue,
    queue_arn: &str,
) -> Option<PolicyValue> {
    queue
        .tls_only
        .then(|| PolicyValue::Document(tls_only_policy(queue_arn)))
}
