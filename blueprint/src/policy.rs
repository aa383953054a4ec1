//! IAM policy documents: one typed value for every policy Ballast writes or reads (identity
//! policies from `ballast iam-policy`, and later queue, key and role policies), its JSON
//! rendering, and a semantic comparison.
//!
//! AWS hands a stored policy back in its own shape: IAM URL-encodes it, any service may reorder
//! statements and values, write a one-element list as a plain string, re-indent it, or render a
//! condition's `true` as `"true"`. None of that changes what the policy allows, so
//! [`PolicyDocument::same_as`] ignores it and a re-read policy is never reported as drift. What
//! does change the meaning is compared: the effect, the actions (case-insensitively, as IAM
//! matches them), resources, principals, conditions (keys case-insensitively) and the `Version`
//! (a missing `Version` is AWS's `2008-10-17`, under which `${aws:username}` is not a variable).
//!
//! Pure: no AWS types, so every crate and every kind uses this one module.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

/// The policy language version Ballast writes.
pub const POLICY_VERSION: &str = "2012-10-17";
/// The version AWS assumes when a document has no `Version`.
pub const IMPLIED_POLICY_VERSION: &str = "2008-10-17";

/// An IAM policy document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyDocument {
    /// `Version`; `None` when the document has none (AWS then applies `2008-10-17`).
    pub version: Option<String>,
    /// `Statement`, in the order given (the order does not matter to AWS).
    pub statements: Vec<Statement>,
}

/// `Allow` or `Deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Effect {
    Allow,
    Deny,
}

impl Effect {
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Allow => "Allow",
            Effect::Deny => "Deny",
        }
    }
}

/// `Principal` of a resource-based policy: `"*"` (anyone) or principals by type
/// (`{"AWS": [...], "Service": [...]}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    Anyone,
    ByType(BTreeMap<String, Vec<String>>),
}

/// One statement. `NotAction`, `NotResource` and `NotPrincipal` are not modelled: a document
/// using them is refused by [`PolicyDocument::parse`] rather than read as something else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub sid: Option<String>,
    pub effect: Effect,
    pub principal: Option<Principal>,
    /// `service:Action` names, `*` wildcards allowed.
    pub actions: Vec<String>,
    /// ARNs, `*` wildcards allowed. Empty only in a trust policy (which has a principal).
    pub resources: Vec<String>,
    /// operator (`StringEquals`, `ForAnyValue:StringLike`, `Bool`, …) → condition key → values.
    pub conditions: BTreeMap<String, BTreeMap<String, Vec<String>>>,
}

/// Why a policy document could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error(
        "the policy document is not JSON: {message}; hint: IAM returns documents URL-encoded, which is decoded first"
    )]
    NotJson { message: String },
    #[error("the policy document is not URL-encoded correctly at byte {offset}")]
    BadEncoding { offset: usize },
    #[error("`{field}` in the policy document {problem}")]
    Invalid { field: String, problem: String },
    #[error(
        "`{field}` is not supported in policy documents Ballast compares; hint: use `Action`/`Resource`/`Principal` with `Effect: Deny` instead"
    )]
    Unsupported { field: String },
}

/// One of a blueprint resource's own policy statements (`policyStatements` of a key or a queue),
/// as a statement; errors name fields within the statement.
pub fn own_statement(value: &serde_json::Value) -> Result<Statement, PolicyError> {
    let wrapped = serde_json::json!({ "Version": POLICY_VERSION, "Statement": [value] });
    // Errors name fields within the statement, not within the wrapper document.
    let unwrapped = |field: String| {
        field
            .strip_prefix("Statement[0].")
            .map_or_else(|| field.clone(), str::to_string)
    };
    let mut doc = PolicyDocument::parse(&wrapped.to_string()).map_err(|e| match e {
        PolicyError::Invalid { field, problem } => PolicyError::Invalid {
            field: unwrapped(field),
            problem,
        },
        PolicyError::Unsupported { field } => PolicyError::Unsupported {
            field: unwrapped(field),
        },
        other => other,
    })?;
    // One statement in, one out: the parser keeps the list as given.
    doc.statements.pop().ok_or_else(|| PolicyError::Invalid {
        field: "Statement".into(),
        problem: "is empty".into(),
    })
}

impl Statement {
    /// Whether this is a `Deny` whose actions cover `action` (IAM's wildcards,
    /// case-insensitive), whatever its principal, resources and conditions.
    pub fn denies(&self, action: &str) -> bool {
        self.effect == Effect::Deny && self.actions.iter().any(|a| wildcard_match(a, action))
    }

    /// An `Allow` statement of `actions` on `resources`.
    pub fn allow(
        sid: impl Into<String>,
        actions: impl IntoIterator<Item = impl Into<String>>,
        resources: impl IntoIterator<Item = impl Into<String>>,
    ) -> Statement {
        Statement {
            sid: Some(sid.into()),
            effect: Effect::Allow,
            principal: None,
            actions: actions.into_iter().map(Into::into).collect(),
            resources: resources.into_iter().map(Into::into).collect(),
            conditions: BTreeMap::new(),
        }
    }

    /// Adds the condition `operator: {key: values}`.
    pub fn with_condition(
        mut self,
        operator: impl Into<String>,
        key: impl Into<String>,
        values: impl IntoIterator<Item = impl Into<String>>,
    ) -> Statement {
        self.conditions
            .entry(operator.into())
            .or_default()
            .entry(key.into())
            .or_default()
            .extend(values.into_iter().map(Into::into));
        self
    }

    fn to_json(&self) -> Value {
        let mut out = Map::new();
        if let Some(sid) = &self.sid {
            out.insert("Sid".into(), Value::String(sid.clone()));
        }
        out.insert("Effect".into(), Value::String(self.effect.as_str().into()));
        match &self.principal {
            None => {}
            Some(Principal::Anyone) => {
                out.insert("Principal".into(), Value::String("*".into()));
            }
            Some(Principal::ByType(by_type)) => {
                let map = by_type
                    .iter()
                    .map(|(kind, ids)| (kind.clone(), strings(ids)))
                    .collect();
                out.insert("Principal".into(), Value::Object(map));
            }
        }
        out.insert("Action".into(), strings(&self.actions));
        if !self.resources.is_empty() {
            out.insert("Resource".into(), strings(&self.resources));
        }
        if !self.conditions.is_empty() {
            let map = self
                .conditions
                .iter()
                .map(|(op, keys)| {
                    let keys = keys
                        .iter()
                        .map(|(key, values)| (key.clone(), strings(values)))
                        .collect();
                    (op.clone(), Value::Object(keys))
                })
                .collect();
            out.insert("Condition".into(), Value::Object(map));
        }
        Value::Object(out)
    }

    /// The statement with its lists sorted and deduplicated (its meaning unchanged).
    fn sorted(&self) -> Statement {
        Statement {
            sid: self.sid.clone(),
            effect: self.effect,
            principal: self.principal.as_ref().map(|p| match p {
                Principal::Anyone => Principal::Anyone,
                Principal::ByType(by_type) => Principal::ByType(
                    by_type
                        .iter()
                        .map(|(kind, ids)| (kind.clone(), sorted_set(ids, |s| s.to_owned())))
                        .collect(),
                ),
            }),
            actions: sorted_set(&self.actions, |s| s.to_owned()),
            resources: sorted_set(&self.resources, |s| s.to_owned()),
            conditions: self
                .conditions
                .iter()
                .map(|(op, keys)| {
                    let keys = keys
                        .iter()
                        .map(|(key, values)| (key.clone(), sorted_set(values, |s| s.to_owned())))
                        .collect();
                    (op.clone(), keys)
                })
                .collect(),
        }
    }

    /// The statement as compared: sorted, with the case-insensitive parts (action names,
    /// condition keys) folded to lower case.
    fn comparable(&self) -> Statement {
        let mut out = self.sorted();
        out.actions = sorted_set(&out.actions, str::to_ascii_lowercase);
        out.conditions = out
            .conditions
            .into_iter()
            .map(|(op, keys)| {
                let mut folded: BTreeMap<String, Vec<String>> = BTreeMap::new();
                for (key, values) in keys {
                    folded
                        .entry(key.to_ascii_lowercase())
                        .or_default()
                        .extend(values);
                }
                for values in folded.values_mut() {
                    *values = sorted_set(values, |s| s.to_owned());
                }
                (op, folded)
            })
            .collect();
        out
    }

    fn from_json(value: &Value, at: &str) -> Result<Statement, PolicyError> {
        let Value::Object(map) = value else {
            return Err(invalid(at, "is not an object"));
        };
        for key in map.keys() {
            match key.as_str() {
                "Sid" | "Effect" | "Principal" | "Action" | "Resource" | "Condition" => {}
                "NotAction" | "NotResource" | "NotPrincipal" => {
                    return Err(PolicyError::Unsupported {
                        field: format!("{at}.{key}"),
                    });
                }
                other => return Err(invalid(&format!("{at}.{other}"), "is not a policy element")),
            }
        }
        let sid = match map.get("Sid") {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(invalid(&format!("{at}.Sid"), "is not a string")),
        };
        let effect = match map.get("Effect").and_then(Value::as_str) {
            Some("Allow") => Effect::Allow,
            Some("Deny") => Effect::Deny,
            _ => return Err(invalid(&format!("{at}.Effect"), "is not `Allow` or `Deny`")),
        };
        let principal = match map.get("Principal") {
            None => None,
            Some(Value::String(s)) if s == "*" => Some(Principal::Anyone),
            Some(Value::Object(by_type)) => {
                let mut out = BTreeMap::new();
                for (kind, ids) in by_type {
                    out.insert(
                        kind.clone(),
                        one_or_many(ids, &format!("{at}.Principal.{kind}"))?,
                    );
                }
                Some(Principal::ByType(out))
            }
            Some(_) => {
                return Err(invalid(
                    &format!("{at}.Principal"),
                    "is neither `*` nor an object",
                ));
            }
        };
        let actions = match map.get("Action") {
            Some(v) => one_or_many(v, &format!("{at}.Action"))?,
            None => return Err(invalid(&format!("{at}.Action"), "is missing")),
        };
        let resources = match map.get("Resource") {
            Some(v) => one_or_many(v, &format!("{at}.Resource"))?,
            None => Vec::new(),
        };
        let mut conditions = BTreeMap::new();
        match map.get("Condition") {
            None => {}
            Some(Value::Object(ops)) => {
                for (op, keys) in ops {
                    let Value::Object(keys) = keys else {
                        return Err(invalid(&format!("{at}.Condition.{op}"), "is not an object"));
                    };
                    let mut by_key = BTreeMap::new();
                    for (key, values) in keys {
                        by_key.insert(
                            key.clone(),
                            one_or_many(values, &format!("{at}.Condition.{op}.{key}"))?,
                        );
                    }
                    conditions.insert(op.clone(), by_key);
                }
            }
            Some(_) => return Err(invalid(&format!("{at}.Condition"), "is not an object")),
        }
        Ok(Statement {
            sid,
            effect,
            principal,
            actions,
            resources,
            conditions,
        })
    }
}

impl PolicyDocument {
    /// A document of `statements` at [`POLICY_VERSION`].
    pub fn new(statements: Vec<Statement>) -> PolicyDocument {
        PolicyDocument {
            version: Some(POLICY_VERSION.into()),
            statements,
        }
    }

    /// Reads a document as AWS returns it: JSON, or URL-encoded JSON (IAM's `Get*Policy`).
    pub fn parse(text: &str) -> Result<PolicyDocument, PolicyError> {
        let decoded;
        let json = if text.trim_start().starts_with('{') {
            text
        } else {
            decoded = percent_decode(text)?;
            decoded.as_str()
        };
        let value: Value = serde_json::from_str(json).map_err(|e| PolicyError::NotJson {
            message: e.to_string(),
        })?;
        PolicyDocument::from_json(&value)
    }

    fn from_json(value: &Value) -> Result<PolicyDocument, PolicyError> {
        let Value::Object(map) = value else {
            return Err(invalid("(document)", "is not a JSON object"));
        };
        for key in map.keys() {
            if !matches!(key.as_str(), "Version" | "Statement" | "Id") {
                return Err(invalid(key, "is not a policy element"));
            }
        }
        let version = match map.get("Version") {
            None => None,
            Some(Value::String(v)) => Some(v.clone()),
            Some(_) => return Err(invalid("Version", "is not a string")),
        };
        let statements = match map.get("Statement") {
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, s)| Statement::from_json(s, &format!("Statement[{i}]")))
                .collect::<Result<Vec<_>, _>>()?,
            Some(single @ Value::Object(_)) => vec![Statement::from_json(single, "Statement")?],
            Some(_) => return Err(invalid("Statement", "is neither a list nor an object")),
            None => return Err(invalid("Statement", "is missing")),
        };
        Ok(PolicyDocument {
            version,
            statements,
        })
    }

    /// The document with every list sorted and deduplicated and its statements in a fixed
    /// order (by Sid, then content): what [`PolicyDocument::to_json`] renders.
    pub fn sorted(&self) -> PolicyDocument {
        let mut statements: Vec<Statement> =
            self.statements.iter().map(Statement::sorted).collect();
        statements.sort_by_key(|s| (s.sid.clone(), s.to_json().to_string()));
        statements.dedup();
        PolicyDocument {
            version: self.version.clone(),
            statements,
        }
    }

    /// True when both documents allow and deny exactly the same (see the module docs for what
    /// is ignored).
    pub fn same_as(&self, other: &PolicyDocument) -> bool {
        self.comparable() == other.comparable()
    }

    fn comparable(&self) -> (String, BTreeSet<String>) {
        let version = self
            .version
            .clone()
            .unwrap_or_else(|| IMPLIED_POLICY_VERSION.into());
        let statements = self
            .statements
            .iter()
            .map(|s| s.comparable().to_json().to_string())
            .collect();
        (version, statements)
    }

    /// True when some `Allow` statement names `action` (IAM's `*` wildcard, case-insensitive),
    /// whatever its resources and conditions: the action half of an authorization, for checking
    /// that a generated policy covers the calls a program makes.
    pub fn allows_action(&self, action: &str) -> bool {
        self.statements.iter().any(|s| {
            s.effect == Effect::Allow && s.actions.iter().any(|a| wildcard_match(a, action))
        })
    }

    /// The document as a JSON value, sorted (deterministic).
    pub fn to_json(&self) -> Value {
        let sorted = self.sorted();
        let mut out = Map::new();
        if let Some(version) = &sorted.version {
            out.insert("Version".into(), Value::String(version.clone()));
        }
        out.insert(
            "Statement".into(),
            Value::Array(sorted.statements.iter().map(Statement::to_json).collect()),
        );
        Value::Object(out)
    }

    /// Pretty-printed JSON, sorted (deterministic), with a final newline.
    pub fn to_pretty_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(&self.to_json())
            .unwrap_or_else(|_| self.to_json().to_string());
        text.push('\n');
        text
    }
}

/// IAM's action matching: `*` matches any run of characters, `?` one; case-insensitive.
fn wildcard_match(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.to_ascii_lowercase().chars().collect();
    let text: Vec<char> = text.to_ascii_lowercase().chars().collect();
    // matches[j]: pattern[..i] matches text[..j].
    let mut matches = vec![false; text.len().saturating_add(1)];
    if let Some(first) = matches.first_mut() {
        *first = true;
    }
    for p in &pattern {
        let mut next = vec![false; matches.len()];
        for j in 0..matches.len() {
            let here = matches.get(j).copied().unwrap_or(false);
            let prev_next = j
                .checked_sub(1)
                .and_then(|k| next.get(k).copied())
                .unwrap_or(false);
            let prev_here = j
                .checked_sub(1)
                .and_then(|k| matches.get(k).copied())
                .unwrap_or(false);
            let ch = j.checked_sub(1).and_then(|k| text.get(k));
            let value = match p {
                '*' => here || prev_next,
                '?' => prev_here && ch.is_some(),
                c => prev_here && ch == Some(c),
            };
            if let Some(slot) = next.get_mut(j) {
                *slot = value;
            }
        }
        matches = next;
    }
    matches.last().copied().unwrap_or(false)
}

fn strings(values: &[String]) -> Value {
    Value::Array(values.iter().cloned().map(Value::String).collect())
}

fn sorted_set(values: &[String], fold: impl Fn(&str) -> String) -> Vec<String> {
    values
        .iter()
        .map(|v| fold(v))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

fn invalid(field: &str, problem: &str) -> PolicyError {
    PolicyError::Invalid {
        field: field.into(),
        problem: problem.into(),
    }
}

/// A policy value: a string, a list of strings, or a scalar AWS writes either way (`true` and
/// `"true"` are the same condition value).
fn one_or_many(value: &Value, at: &str) -> Result<Vec<String>, PolicyError> {
    let scalar = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    match value {
        Value::Array(items) => items
            .iter()
            .map(|item| {
                scalar(item).ok_or_else(|| invalid(at, "holds a value that is not a string"))
            })
            .collect(),
        other => scalar(other)
            .map(|s| vec![s])
            .ok_or_else(|| invalid(at, "is not a string or a list of strings")),
    }
}

/// Decodes `%XX` escapes (IAM's URL-encoded documents); other bytes pass through.
fn percent_decode(text: &str) -> Result<String, PolicyError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes
                .get(i.saturating_add(1)..i.saturating_add(3))
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or(PolicyError::BadEncoding { offset: i })?;
            out.push(hex);
            i = i.saturating_add(3);
        } else {
            out.push(b);
            i = i.saturating_add(1);
        }
    }
    String::from_utf8(out).map_err(|e| PolicyError::BadEncoding {
        offset: e.utf8_error().valid_up_to(),
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// What an own statement may not deny (`kms:PutKeyPolicy` on a key, `sqs:SetQueueAttributes`
    /// on a queue) is matched with IAM's wildcards, case-insensitively; an `Allow` denies nothing.
    #[test]
    fn a_deny_covers_the_actions_its_patterns_match() {
        let statement = |effect: &str, action: &str| {
            own_statement(&serde_json::json!({
                "Effect": effect, "Principal": "*", "Action": action, "Resource": "*"
            }))
            .unwrap()
        };
        for (repair, denying, not_denying) in [
            (
                crate::key_policy::REPAIR_ACTION,
                ["kms:*", "kms:Put*", "KMS:PutKeyPolicy"],
                "kms:Decrypt",
            ),
            (
                crate::queue_policy::REPAIR_ACTION,
                ["sqs:*", "sqs:Set*", "SQS:SetQueueAttributes"],
                "sqs:SendMessage",
            ),
        ] {
            for action in denying {
                assert!(statement("Deny", action).denies(repair), "{action}");
                assert!(!statement("Allow", action).denies(repair), "{action}");
            }
            assert!(!statement("Deny", not_denying).denies(repair));
        }
    }

    const STORED: &str = r#"{
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "Read", "Effect": "Allow", "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage"],
             "Resource": "arn:aws:sqs:us-east-1:123456789012:banking-transactions"},
            {"Sid": "Metrics", "Effect": "Allow", "Action": "cloudwatch:PutMetricData", "Resource": "*",
             "Condition": {"StringEquals": {"cloudwatch:namespace": "Ballast/Worker"}}}
        ]
    }"#;

    fn stored() -> PolicyDocument {
        PolicyDocument::parse(STORED).unwrap()
    }

    #[test]
    fn reordered_single_valued_and_reindented_documents_are_the_same() {
        let reordered = r#"{"Statement":[
            {"Condition":{"StringEquals":{"CloudWatch:Namespace":["Ballast/Worker"]}},
             "Resource":["*"],"Action":["cloudwatch:putmetricdata"],"Effect":"Allow","Sid":"Metrics"},
            {"Resource":["arn:aws:sqs:us-east-1:123456789012:banking-transactions"],
             "Action":["sqs:DeleteMessage","sqs:ReceiveMessage","sqs:DeleteMessage"],
             "Effect":"Allow","Sid":"Read"}],"Version":"2012-10-17"}"#;
        assert!(stored().same_as(&PolicyDocument::parse(reordered).unwrap()));
    }

    #[test]
    fn url_encoded_document_as_iam_returns_it_is_the_same() {
        let encoded: String = STORED
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                other => format!("%{other:02X}"),
            })
            .collect();
        assert!(encoded.starts_with("%7B"));
        assert!(stored().same_as(&PolicyDocument::parse(&encoded).unwrap()));
    }

    #[test]
    fn a_missing_version_is_2008_and_differs_from_2012() {
        let mut doc = stored();
        doc.version = None;
        assert!(!doc.same_as(&stored()));
        let mut old = stored();
        old.version = Some(IMPLIED_POLICY_VERSION.into());
        assert!(doc.same_as(&old));
    }

    #[test]
    fn meaningful_changes_are_differences() {
        let base = stored();
        let mut other_resource = base.clone();
        other_resource.statements[0].resources =
            vec!["arn:aws:sqs:us-east-1:123456789012:other".into()];
        let mut deny = base.clone();
        deny.statements[0].effect = Effect::Deny;
        let mut more_actions = base.clone();
        more_actions.statements[0]
            .actions
            .push("sqs:DeleteQueue".into());
        let mut other_namespace = base.clone();
        let metrics = &mut other_namespace.statements[1];
        metrics.conditions.clear();
        *metrics =
            metrics
                .clone()
                .with_condition("StringEquals", "cloudwatch:namespace", ["Other"]);
        let mut dropped = base.clone();
        dropped.statements.pop();
        for changed in [other_resource, deny, more_actions, other_namespace, dropped] {
            assert!(!base.same_as(&changed), "{}", changed.to_pretty_json());
        }
    }

    #[test]
    fn condition_booleans_and_strings_are_the_same() {
        let a = r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","Principal":"*","Action":"sqs:*",
            "Resource":"*","Condition":{"Bool":{"aws:SecureTransport":false}}}}"#;
        let b = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":["sqs:*"],
            "Resource":["*"],"Condition":{"Bool":{"aws:SecureTransport":["false"]}}}]}"#;
        let a = PolicyDocument::parse(a).unwrap();
        assert!(a.same_as(&PolicyDocument::parse(b).unwrap()));
        assert_eq!(a.statements[0].principal, Some(Principal::Anyone));
    }

    #[test]
    fn unsupported_and_malformed_documents_are_refused_with_the_field() {
        let not_action = r#"{"Statement":[{"Effect":"Allow","NotAction":"iam:*","Resource":"*"}]}"#;
        assert_eq!(
            PolicyDocument::parse(not_action).unwrap_err(),
            PolicyError::Unsupported {
                field: "Statement[0].NotAction".into()
            }
        );
        let bad_effect = r#"{"Statement":[{"Effect":"Permit","Action":"s3:*","Resource":"*"}]}"#;
        let err = PolicyDocument::parse(bad_effect).unwrap_err().to_string();
        assert!(err.contains("Statement[0].Effect"), "{err}");
        assert!(matches!(
            PolicyDocument::parse("%7B%ZZ").unwrap_err(),
            PolicyError::BadEncoding { offset: 3 }
        ));
        assert!(matches!(
            PolicyDocument::parse("{not json").unwrap_err(),
            PolicyError::NotJson { .. }
        ));
    }

    #[test]
    fn rendering_is_sorted_and_parses_back_to_the_same_document() {
        let text = stored().to_pretty_json();
        let again = PolicyDocument::parse(&text).unwrap();
        assert!(again.same_as(&stored()));
        assert_eq!(again.to_pretty_json(), text);
        let metrics = text.find("\"Metrics\"").unwrap();
        let read = text.find("\"Read\"").unwrap();
        assert!(metrics < read, "statements sorted by Sid:\n{text}");
    }

    #[test]
    fn allows_action_matches_wildcards_and_ignores_case() {
        let doc = PolicyDocument::new(vec![
            Statement::allow("Describe", ["ec2:Describe*"], ["*"]),
            Statement::allow("Queue", ["sqs:ReceiveMessage"], ["arn:aws:sqs:*:*:q"]),
        ]);
        assert!(doc.allows_action("ec2:DescribeVpcs"));
        assert!(doc.allows_action("SQS:receivemessage"));
        assert!(!doc.allows_action("ec2:CreateVpc"));
        assert!(!doc.allows_action("sqs:ReceiveMessages"));
        let mut deny = doc.clone();
        deny.statements
            .iter_mut()
            .for_each(|s| s.effect = Effect::Deny);
        assert!(!deny.allows_action("ec2:DescribeVpcs"));
        assert!(wildcard_match("a?c*", "abcdef"));
        assert!(!wildcard_match("a?c", "ac"));
    }

    fn arb_statement() -> impl Strategy<Value = Statement> {
        (
            proptest::option::of("[A-Za-z]{1,6}"),
            any::<bool>(),
            proptest::collection::vec("(sqs|dynamodb):[A-Z][a-z]{1,5}", 1..4),
            proptest::collection::vec("arn:aws:sqs:us-east-1:1:[a-z]{1,4}|\\*", 0..4),
            proptest::collection::vec("[a-z]{1,4}", 0..3),
        )
            .prop_map(|(sid, allow, actions, resources, namespaces)| {
                let mut s = Statement::allow(sid.unwrap_or_default(), actions, resources);
                if !allow {
                    s.effect = Effect::Deny;
                }
                if !namespaces.is_empty() {
                    s = s.with_condition("StringEquals", "cloudwatch:namespace", namespaces);
                }
                s
            })
    }

    /// The shapes AWS may return a stored document in: statements and every list reversed, a
    /// one-element list as a string, action names in another case, and URL-encoded.
    fn as_aws_returns_it(doc: &PolicyDocument) -> String {
        let mut json = doc.to_json();
        fn reshape(value: &mut Value) {
            match value {
                Value::Array(items) => {
                    items.reverse();
                    items.iter_mut().for_each(reshape);
                    if items.len() == 1 {
                        *value = items.remove(0);
                    }
                }
                Value::Object(map) => {
                    let mut entries: Vec<(String, Value)> =
                        std::mem::take(map).into_iter().collect();
                    entries.reverse();
                    for (key, mut v) in entries {
                        reshape(&mut v);
                        if key == "Action"
                            && let Value::String(s) = &mut v
                        {
                            *s = s.to_ascii_uppercase();
                        }
                        map.insert(key, v);
                    }
                }
                _ => {}
            }
        }
        if let Some(Value::Array(statements)) = json.get_mut("Statement") {
            statements.reverse();
            statements.iter_mut().for_each(reshape);
        }
        json.to_string()
            .bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' => (b as char).to_string(),
                other => format!("%{other:02X}"),
            })
            .collect()
    }

    proptest! {
        #[test]
        fn any_document_is_the_same_as_aws_returns_it(
            statements in proptest::collection::vec(arb_statement(), 1..5)
        ) {
            let doc = PolicyDocument::new(statements);
            let returned = PolicyDocument::parse(&as_aws_returns_it(&doc)).unwrap();
            prop_assert!(doc.same_as(&returned), "{}", doc.to_pretty_json());
        }

        #[test]
        fn one_more_action_is_always_a_difference(
            statements in proptest::collection::vec(arb_statement(), 1..5),
            which in any::<prop::sample::Index>()
        ) {
            let doc = PolicyDocument::new(statements);
            let mut widened = doc.clone();
            let i = which.index(widened.statements.len());
            widened.statements[i].actions.push("iam:PassRole".into());
            // Only a difference if no identical statement already grants it.
            let duplicate = doc.statements.iter().any(|s| s.actions.iter().any(|a| a == "iam:PassRole"));
            prop_assume!(!duplicate);
            prop_assert!(!doc.same_as(&widened));
        }
    }
}
