//! A queue's policy (the SQS `Policy` attribute): the TLS-only document Ballast writes, how a
//! live policy is read and compared (semantically, as a [`PolicyDocument`]), and how it reads
//! in a plan.

use ballast_blueprint::policy::{Effect, PolicyDocument, Principal, Statement};
use serde_json::Value;

use crate::provision::typed::FieldValue;

/// A queue's `Policy` attribute.
#[derive(Debug, Clone)]
pub enum QueuePolicy {
    Document(PolicyDocument),
    /// A live policy [`PolicyDocument`] cannot read (say, one using `NotPrincipal`, written by
    /// hand): never what the blueprint wants, so it is drift that apply replaces.
    Unreadable {
        text: String,
        problem: String,
    },
}

/// Semantic for documents ([`PolicyDocument::same_as`]): AWS may hand the policy back
/// reordered or with one-element lists as strings, and that is not drift.
impl PartialEq for QueuePolicy {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (QueuePolicy::Document(a), QueuePolicy::Document(b)) => a.same_as(b),
            (QueuePolicy::Unreadable { text: a, .. }, QueuePolicy::Unreadable { text: b, .. }) => {
                a == b
            }
            (QueuePolicy::Document(_), QueuePolicy::Unreadable { .. })
            | (QueuePolicy::Unreadable { .. }, QueuePolicy::Document(_)) => false,
        }
    }
}

impl QueuePolicy {
    /// The policy as read from the `Policy` attribute (never fails: see `Unreadable`).
    pub(super) fn read(text: &str) -> QueuePolicy {
        match PolicyDocument::parse(text) {
            Ok(doc) => QueuePolicy::Document(doc),
            Err(e) => QueuePolicy::Unreadable {
                text: text.to_string(),
                problem: e.to_string(),
            },
        }
    }

    /// The attribute value to write (sorted JSON; an unreadable policy is never written).
    pub(super) fn attribute(&self) -> Option<String> {
        match self {
            QueuePolicy::Document(doc) => Some(doc.to_json().to_string()),
            QueuePolicy::Unreadable { .. } => None,
        }
    }
}

impl FieldValue for QueuePolicy {
    /// The whole document (sorted), for the plan's JSON output.
    fn to_value(&self) -> Value {
        match self {
            QueuePolicy::Document(doc) => doc.to_json(),
            QueuePolicy::Unreadable { text, .. } => Value::String(text.clone()),
        }
    }

    /// One line per statement would not fit the `field: live → desired` line of plan text, so
    /// each statement is summarized (`Sid: Deny sqs:* to * on ARN when Bool aws:SecureTransport
    /// = false`), sorted, joined by `; `: a changed effect, action or condition value reads
    /// directly off the line.
    fn display(&self) -> String {
        match self {
            QueuePolicy::Document(doc) => {
                let sorted = doc.sorted();
                let mut parts: Vec<String> = sorted.statements.iter().map(summary).collect();
                if parts.is_empty() {
                    parts.push("no statements".into());
                }
                if sorted.version.as_deref() != Some(ballast_blueprint::policy::POLICY_VERSION) {
                    let version = sorted.version.as_deref().unwrap_or("none (2008-10-17)");
                    parts.push(format!("Version {version}"));
                }
                parts.join("; ")
            }
            QueuePolicy::Unreadable { text, problem } => {
                format!("unreadable policy ({problem}): {text}")
            }
        }
    }
}

/// One statement in a line: `Sid: Effect actions to principals on resources when conditions`.
fn summary(s: &Statement) -> String {
    let mut out = String::new();
    if let Some(sid) = &s.sid {
        out.push_str(sid);
        out.push_str(": ");
    }
    out.push_str(s.effect.as_str());
    out.push(' ');
    out.push_str(&s.actions.join(","));
    match &s.principal {
        None => {}
        Some(Principal::Anyone) => out.push_str(" to *"),
        Some(Principal::ByType(by_type)) => {
            let who: Vec<String> = by_type
                .iter()
                .map(|(kind, ids)| format!("{kind}:{}", ids.join(",")))
                .collect();
            out.push_str(" to ");
            out.push_str(&who.join(" "));
        }
    }
    if !s.resources.is_empty() {
        out.push_str(" on ");
        out.push_str(&s.resources.join(","));
    }
    let conditions: Vec<String> = s
        .conditions
        .iter()
        .flat_map(|(op, keys)| {
            keys.iter()
                .map(move |(key, values)| format!("{op} {key} = {}", values.join(",")))
        })
        .collect();
    if !conditions.is_empty() {
        out.push_str(" when ");
        out.push_str(&conditions.join(" and "));
    }
    out
}

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
) -> Option<QueuePolicy> {
    queue
        .tls_only
        .then(|| QueuePolicy::Document(tls_only_policy(queue_arn)))
}
