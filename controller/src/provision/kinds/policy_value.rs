//! A policy document as a typed field ([`PolicyValue`]): how every kind that carries a policy
//! (queue policies, role trust policies, managed policies) reads, compares and shows it. The
//! comparison is [`PolicyDocument::same_as`]: order, one value or a list, `Version` spelled
//! out or implied by AWS's defaults, JSON layout and IAM's URL-encoding are not drift.

use ballast_blueprint::policy::{PolicyDocument, PolicyError, Principal, Statement};
use serde_json::Value;

use crate::provision::typed::FieldValue;

/// A policy document as a field value: a queue's `Policy` attribute, a role's trust policy, a
/// managed policy's default version.
#[derive(Debug, Clone)]
pub enum PolicyValue {
    Document(PolicyDocument),
    /// A live policy [`PolicyDocument`] cannot read (say, one using `NotPrincipal`, written by
    /// hand): never what the blueprint wants, so it is drift that apply replaces.
    Unreadable {
        text: String,
        problem: PolicyError,
    },
}

/// Semantic for documents ([`PolicyDocument::same_as`]): AWS may hand the policy back
/// reordered or with one-element lists as strings, and that is not drift.
impl PartialEq for PolicyValue {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (PolicyValue::Document(a), PolicyValue::Document(b)) => a.same_as(b),
            (PolicyValue::Unreadable { text: a, .. }, PolicyValue::Unreadable { text: b, .. }) => {
                a == b
            }
            (PolicyValue::Document(_), PolicyValue::Unreadable { .. })
            | (PolicyValue::Unreadable { .. }, PolicyValue::Document(_)) => false,
        }
    }
}

impl PolicyValue {
    /// The policy as AWS returns it (never fails: see `Unreadable`). IAM's URL-encoding is
    /// decoded by [`PolicyDocument::parse`].
    pub fn read(text: &str) -> PolicyValue {
        match PolicyDocument::parse(text) {
            Ok(doc) => PolicyValue::Document(doc),
            Err(e) => PolicyValue::Unreadable {
                text: text.to_string(),
                problem: e,
            },
        }
    }

    /// The document to write (sorted JSON; an unreadable policy is never written).
    pub fn text(&self) -> Option<String> {
        match self {
            PolicyValue::Document(doc) => Some(doc.to_json().to_string()),
            PolicyValue::Unreadable { .. } => None,
        }
    }
}

impl FieldValue for PolicyValue {
    /// The whole document (sorted), for the plan's JSON output.
    fn to_value(&self) -> Value {
        match self {
            PolicyValue::Document(doc) => doc.to_json(),
            PolicyValue::Unreadable { text, .. } => Value::String(text.clone()),
        }
    }

    /// One line per statement would not fit the `field: live → desired` line of plan text, so
    /// each statement is summarized (`Sid: Deny sqs:* to * on ARN when Bool aws:SecureTransport
    /// = false`), sorted, joined by `; `: a changed effect, action or condition value reads
    /// directly off the line.
    fn display(&self) -> String {
        match self {
            PolicyValue::Document(doc) => {
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
            PolicyValue::Unreadable { text, problem } => {
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
