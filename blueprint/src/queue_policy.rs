//! The policy of a blueprint queue (the SQS `Policy` attribute): what Ballast writes on the
//! queue and compares with the live one, as a whole.
//!
//! Three parts, in this order:
//! 1. **TLS only** ([`TLS_ONLY_SID`]): deny `sqs:*` to anyone whenever the request did not come
//!    over TLS. On by default; `tlsOnly: false` is a safety override.
//! 2. **What the blueprint needs**: one statement per blueprint topic with an `sqs`
//!    subscription to the queue, letting SNS send on behalf of that topic only
//!    ([`topic_sid`]).
//! 3. **The queue's own `policyStatements`** (e.g. another account that may send). Their
//!    `Resource` is written `"*"` in the blueprint and means this queue: Ballast writes the
//!    queue's ARN, which is known only once the queue exists.
//!
//! Validation refuses own statements that take a reserved `Sid`, name other resources, use
//! non-SQS actions, or could lock Ballast out of the queue's attributes (a `Deny` covering
//! `sqs:SetQueueAttributes`), and a policy over SQS's quotas. Pure: ARNs come from the caller.

use crate::model::{Blueprint, Queue};
use crate::policy::{Effect, PolicyDocument, Principal, Statement, own_statement};

/// The statement id of the TLS-only statement.
pub const TLS_ONLY_SID: &str = "DenyInsecureTransport";

/// The prefix of the statement ids letting a blueprint topic send ([`topic_sid`]).
pub const TOPIC_SID_PREFIX: &str = "AllowTopic";

/// SQS's policy quotas: bytes of the whole document, statements, actions in one statement.
pub const MAX_QUEUE_POLICY_BYTES: usize = 8_192;
pub const MAX_QUEUE_POLICY_STATEMENTS: usize = 20;
pub const MAX_ACTIONS_PER_STATEMENT: usize = 7;

/// Whether a blueprint statement may not take `sid`: one of the statements Ballast writes.
pub fn is_reserved_sid(sid: &str) -> bool {
    sid == TLS_ONLY_SID || sid.starts_with(TOPIC_SID_PREFIX)
}

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

/// The policy of a queue with `tlsOnly` (the default), no topic delivering to it and no
/// statements of its own.
pub fn tls_only_policy(queue_arn: &str) -> PolicyDocument {
    PolicyDocument::new(vec![tls_only_statement(queue_arn)])
}

/// The statement id letting blueprint topic `topic` send: `AllowTopic` and the topic's
/// blueprint name without its separators (statement ids are letters and digits).
pub fn topic_sid(topic: &str) -> String {
    let name: String = topic.chars().filter(char::is_ascii_alphanumeric).collect();
    format!("{TOPIC_SID_PREFIX}{name}")
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

/// The policy the blueprint wants on `queue` once its ARN is known (the three parts of the
/// module docs); `None` when that is nothing. A topic's ARN follows from the queue's: same
/// partition and account, the blueprint's region. A blueprint statement that does not read as
/// a policy statement is left out: validation refuses it, so it is never written.
pub fn queue_policy(bp: &Blueprint, queue: &Queue, queue_arn: &str) -> Option<PolicyDocument> {
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
    statements.extend(
        queue
            .policy_statements
            .iter()
            .filter_map(|value| own_statement(value).ok())
            .map(|statement| Statement {
                resources: vec![queue_arn.into()],
                ..statement
            }),
    );
    (!statements.is_empty()).then(|| PolicyDocument::new(statements))
}

/// The call that rewrites a queue's policy: an own statement may not deny it
/// ([`Statement::denies`]), even with conditions, or a mistake in it would leave no one able to
/// repair the policy through SQS.
pub const REPAIR_ACTION: &str = "sqs:SetQueueAttributes";

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:sqs:us-east-1:123456789012:t-q";

    fn blueprint(queue_extra: &str) -> Blueprint {
        let text = format!(
            "apiVersion: ballast.dev/v1\nkind: Blueprint\nmetadata: {{name: t, region: us-east-1}}\nspec:\n  topics:\n    - name: on-call\n      subscriptions: [{{protocol: sqs, endpoint: q}}]\n  queues:\n    - name: q\n{queue_extra}"
        );
        crate::parse("t", &text)
            .unwrap_or_else(|d| panic!("{d}"))
            .blueprint
    }

    fn sids(doc: &PolicyDocument) -> Vec<&str> {
        doc.statements
            .iter()
            .filter_map(|s| s.sid.as_deref())
            .collect()
    }

    #[test]
    fn tls_then_topics_then_own_statements_scoped_to_the_queue() {
        let bp = blueprint(
            "      policyStatements:\n        - {Sid: PartnerSends, Effect: Allow, Principal: {AWS: 'arn:aws:iam::210987654321:root'}, Action: sqs:SendMessage, Resource: '*'}\n",
        );
        let doc = queue_policy(&bp, &bp.spec.queues[0], ARN).unwrap();
        assert_eq!(
            sids(&doc),
            [TLS_ONLY_SID, "AllowTopiconcall", "PartnerSends"]
        );
        assert_eq!(doc.statements[2].resources, [ARN], "`*` means this queue");
        assert_eq!(
            doc.statements[1].conditions["ArnEquals"]["aws:SourceArn"],
            ["arn:aws:sns:us-east-1:123456789012:t-on-call"]
        );
    }

    #[test]
    fn reserved_sids() {
        assert!(is_reserved_sid(TLS_ONLY_SID));
        assert!(is_reserved_sid(&topic_sid("anything")));
        assert!(!is_reserved_sid("PartnerSends"));
    }

    #[test]
    fn a_queue_nothing_needs_a_policy_for_has_none() {
        let mut bp = blueprint("      tlsOnly: false\n");
        bp.spec.topics.clear();
        assert_eq!(queue_policy(&bp, &bp.spec.queues[0], ARN), None);
    }
}
