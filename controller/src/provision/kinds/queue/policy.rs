//! A queue's policy (the SQS `Policy` attribute): the document Ballast writes, the TLS-only
//! statement and one statement per blueprint topic that delivers to the queue. It is read and
//! compared as every policy is ([`PolicyValue`], semantically), so it is the whole truth: a
//! statement added by hand is drift that apply removes.

use ballast_blueprint::policy::{Effect, PolicyDocument, Principal, Statement};
use ballast_blueprint::{Blueprint, Queue};

use super::super::policy_value::PolicyValue;

/// The statement id of the TLS-only statement.
pub const TLS_ONLY_SID: &str = "DenyInsecureTransport";

/// The TLS-only statement: deny `sqs:*` to anyone on the queue whenever the request did not
/// come over TLS.
fn tls_only_statement(queue_arn: &str) -> Statement {
    Statement {
        sid: Some(TLS_ONLY_SID.into()),
        effect: Effect::Deny,
        principal: Some(Principal::Anyone),
        actions: vec!["sqs:*".into()],
        resources: vec![queue_arn.into()],
        conditions: Default::default(),
    }
    .with_condition("Bool", "aws:SecureTransport", ["false"])
}

/// The policy of a queue with `tlsOnly` (the default) that no topic delivers to.
pub fn tls_only_policy(queue_arn: &str) -> PolicyDocument {
    PolicyDocument::new(vec![tls_only_statement(queue_arn)])
}

/// The statement id letting blueprint topic `topic` send: `AllowTopic` and the topic's
/// blueprint name without its separators (statement ids are letters and digits).
pub fn topic_sid(topic: &str) -> String {
    let name: String = topic.chars().filter(char::is_ascii_alphanumeric).collect();
    format!("AllowTopic{name}")
}

/// SNS may send to the queue on behalf of that one topic (`aws:SourceArn`), as SNS's
/// documentation writes it: without the condition any topic of any account could.
fn topic_statement(queue_arn: &str, sid: String, topic_arn: String) -> Statement {
    Statement {
        sid: Some(sid),
        effect: Effect::Allow,
        principal: Some(Principal::ByType(
            [("Service".to_string(), vec!["sns.amazonaws.com".into()])].into(),
        )),
        actions: vec!["sqs:SendMessage".into()],
        resources: vec![queue_arn.into()],
        conditions: Default::default(),
    }
    .with_condition("ArnEquals", "aws:SourceArn", [topic_arn])
}

/// The policy the blueprint wants on `queue` once its ARN is known: the TLS-only statement
/// (unless `tlsOnly: false`) and one per topic delivering to it; `None` when that is nothing.
/// A topic's ARN follows from the queue's: same partition and account, the blueprint's region.
pub(super) fn wanted_policy(bp: &Blueprint, queue: &Queue, queue_arn: &str) -> Option<PolicyValue> {
    let mut statements = Vec::new();
    if queue.tls_only {
        statements.push(tls_only_statement(queue_arn));
    }
    let mut parts = queue_arn.splitn(6, ':');
    if let (Some("arn"), Some(partition), Some(_), Some(_), Some(account)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) {
        for topic in bp.topics_delivering_to(queue) {
            let topic_arn = format!(
                "arn:{partition}:sns:{}:{account}:{}",
                bp.metadata.region,
                bp.topic_name(topic)
            );
            statements.push(topic_statement(
                queue_arn,
                topic_sid(&topic.name),
                topic_arn,
            ));
        }
    }
    (!statements.is_empty()).then(|| PolicyValue::Document(PolicyDocument::new(statements)))
}
