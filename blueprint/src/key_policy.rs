//! The policy of a blueprint KMS key: what Ballast writes on the key and compares with the live
//! one.
//!
//! Three parts, in this order of authority:
//! 1. **The account administers the key** ([`ACCOUNT_ADMINISTRATION_SID`]): AWS's default key
//!    policy, `kms:*` to the account root. It is always there. Without it a key whose policy
//!    names no one who can still call `kms:PutKeyPolicy` is locked out for good, and it is what
//!    lets the IAM policies (those `ballast iam-policy` prints, and the blueprint's managed
//!    policies) decide who may use the key, scoped to its ARN.
//! 2. **What the blueprint itself needs**: CloudWatch must be able to use a key that encrypts a
//!    topic one of the blueprint's alarms notifies ([`CLOUDWATCH_NOTIFY_SID`]), and SNS a key
//!    that encrypts a queue one of the blueprint's topics delivers to ([`SNS_DELIVER_SID`]), or
//!    the message is dropped silently (AWS's documented statements for both).
//! 3. **The blueprint's own `policyStatements`**, each a resource-policy statement on the key.
//!
//! Validation refuses own statements that take a reserved `Sid` or could lock the key out (a
//! `Deny` covering `kms:PutKeyPolicy`). Pure: the account and partition come from the caller.

use crate::model::{Blueprint, KmsKey, is_action_arn};
use crate::policy::{Effect, PolicyDocument, Principal, Statement, own_statement};

/// The `Sid` of the account's own administration statement: AWS's default key policy uses this
/// one, so a key created without a policy already has it, word for word.
pub const ACCOUNT_ADMINISTRATION_SID: &str = "Enable IAM User Permissions";

/// The `Sid` of the statement letting CloudWatch alarms notify a topic encrypted by the key.
pub const CLOUDWATCH_NOTIFY_SID: &str = "AllowCloudWatchAlarmsToNotifyEncryptedTopics";

/// The `Sid` of the statement letting SNS deliver to a queue encrypted by the key.
pub const SNS_DELIVER_SID: &str = "AllowSnsToDeliverToEncryptedQueues";

/// The `Sid`s Ballast writes itself; a blueprint statement may not take them.
pub const RESERVED_SIDS: [&str; 3] = [
    ACCOUNT_ADMINISTRATION_SID,
    CLOUDWATCH_NOTIFY_SID,
    SNS_DELIVER_SID,
];

/// The largest key policy KMS stores, in bytes.
pub const MAX_KEY_POLICY_BYTES: usize = 32_768;

/// The partition and account a key lives in: read off its ARN
/// (`arn:<partition>:kms:<region>:<account>:key/<id>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyScope {
    pub partition: String,
    pub account: String,
}

impl KeyScope {
    /// `None` for anything but a KMS ARN with a 12-digit account.
    pub fn from_key_arn(arn: &str) -> Option<KeyScope> {
        let mut parts = arn.splitn(6, ':');
        let (Some("arn"), Some(partition), Some("kms"), Some(_region), Some(account)) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return None;
        };
        let account_ok = account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit());
        (account_ok && !partition.is_empty()).then(|| KeyScope {
            partition: partition.to_string(),
            account: account.to_string(),
        })
    }

    fn root(&self) -> String {
        format!("arn:{}:iam::{}:root", self.partition, self.account)
    }
}

/// The statements Ballast adds for the blueprint's own needs (part 2 of the module docs).
fn needed_statements(bp: &Blueprint, key: &KmsKey) -> Vec<Statement> {
    let notifies_encrypted_topic = bp.spec.alarms.iter().any(|alarm| {
        alarm
            .action_lists()
            .iter()
            .flat_map(|(_, actions)| actions.iter())
            .filter(|action| !is_action_arn(action))
            .filter_map(|topic| bp.topic(topic))
            .any(|topic| topic.kms_key.as_deref() == Some(key.name.as_str()))
    });
    let delivers_to_encrypted_queue = bp.spec.queues.iter().any(|queue| {
        queue.encryption.kms_key.as_deref() == Some(key.name.as_str())
            && bp.topics_delivering_to(queue).next().is_some()
    });
    let may_use = |sid: &str, service: &str| Statement {
        sid: Some(sid.into()),
        effect: Effect::Allow,
        principal: Some(Principal::ByType(
            [("Service".to_string(), vec![service.into()])].into(),
        )),
        actions: vec!["kms:Decrypt".into(), "kms:GenerateDataKey*".into()],
        resources: vec!["*".into()],
        conditions: Default::default(),
    };
    let mut out = Vec::new();
    if notifies_encrypted_topic {
        out.push(may_use(CLOUDWATCH_NOTIFY_SID, "cloudwatch.amazonaws.com"));
    }
    if delivers_to_encrypted_queue {
        out.push(may_use(SNS_DELIVER_SID, "sns.amazonaws.com"));
    }
    out
}

/// AWS's default key policy, which a key created without one has: the account's
/// administration statement alone.
pub fn aws_default_policy(scope: &KeyScope) -> PolicyDocument {
    PolicyDocument::new(vec![Statement {
        sid: Some(ACCOUNT_ADMINISTRATION_SID.into()),
        effect: Effect::Allow,
        principal: Some(Principal::ByType(
            [("AWS".to_string(), vec![scope.root()])].into(),
        )),
        actions: vec!["kms:*".into()],
        resources: vec!["*".into()],
        conditions: Default::default(),
    }])
}

/// The whole policy of `key` in `scope`. A blueprint statement that does not read as a policy
/// statement is left out: validation refuses it, so it is never written.
pub fn key_policy(bp: &Blueprint, key: &KmsKey, scope: &KeyScope) -> PolicyDocument {
    let mut policy = aws_default_policy(scope);
    policy.statements.extend(needed_statements(bp, key));
    policy.statements.extend(
        key.policy_statements
            .iter()
            .filter_map(|s| own_statement(s).ok()),
    );
    policy
}

/// The call that rewrites a key's policy: an own statement may not deny it
/// ([`Statement::denies`]), even with conditions, or a mistake in it would leave no one able to
/// repair the key, and every piece of data it encrypts with it.
pub const REPAIR_ACTION: &str = "kms:PutKeyPolicy";

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:kms:us-east-1:123456789012:key/1234abcd";

    fn blueprint(extra: &str) -> Blueprint {
        let text = format!(
            "apiVersion: ballast.dev/v1\nkind: Blueprint\nmetadata: {{name: t, region: us-east-1}}\nspec:\n  kmsKeys:\n    - name: data\n{extra}  topics:\n    - {{name: oncall, kmsKey: data}}\n    - {{name: plain}}\n  queues:\n    - {{name: q, encryption: {{type: kms, kmsKey: data}}}}\n  alarms:\n    - {{name: depth, queue: q, metric: ApproximateNumberOfMessagesVisible, statistic: Maximum, period: 60s, threshold: 10, comparison: greaterThan, alarmActions: [oncall]}}\n"
        );
        crate::parse("t", &text).unwrap().blueprint
    }

    fn sids(doc: &PolicyDocument) -> Vec<&str> {
        doc.statements
            .iter()
            .filter_map(|s| s.sid.as_deref())
            .collect()
    }

    #[test]
    fn the_scope_is_read_off_a_key_arn_only() {
        let scope = KeyScope::from_key_arn(ARN).unwrap();
        assert_eq!(scope.partition, "aws");
        assert_eq!(scope.account, "123456789012");
        assert_eq!(
            KeyScope::from_key_arn("arn:aws:sqs:us-east-1:123456789012:q"),
            None
        );
        assert_eq!(
            KeyScope::from_key_arn("arn:aws:kms:us-east-1:12345:key/x"),
            None
        );
        assert_eq!(KeyScope::from_key_arn("not an arn"), None);
    }

    /// A key created without a policy already has exactly what Ballast wants of a key nobody
    /// needs more of: AWS's (and moto's) default policy is the administration statement.
    #[test]
    fn a_key_nothing_needs_has_the_aws_default_policy() {
        let bp = crate::parse(
            "t",
            "apiVersion: ballast.dev/v1\nkind: Blueprint\nmetadata: {name: t, region: us-east-1}\nspec:\n  kmsKeys:\n    - name: data\n",
        )
        .unwrap()
        .blueprint;
        let scope = KeyScope::from_key_arn(ARN).unwrap();
        let aws_default = PolicyDocument::parse(
            r#"{"Version": "2012-10-17", "Id": "key-default-1", "Statement": [{"Sid": "Enable IAM User Permissions", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "kms:*", "Resource": "*"}]}"#,
        )
        .unwrap();
        assert!(key_policy(&bp, &bp.spec.kms_keys[0], &scope).same_as(&aws_default));
    }

    #[test]
    fn cloudwatch_may_use_a_key_encrypting_a_topic_an_alarm_notifies() {
        let bp = blueprint("");
        let scope = KeyScope::from_key_arn(ARN).unwrap();
        let doc = key_policy(&bp, &bp.spec.kms_keys[0], &scope);
        assert_eq!(
            sids(&doc),
            vec![ACCOUNT_ADMINISTRATION_SID, CLOUDWATCH_NOTIFY_SID]
        );
        let cloudwatch = &doc.statements[1];
        assert_eq!(
            cloudwatch.actions,
            vec!["kms:Decrypt", "kms:GenerateDataKey*"]
        );

        // An alarm notifying only an unencrypted topic, or an ARN, needs nothing of the key.
        for target in ["plain", "arn:aws:sns:us-east-1:123456789012:elsewhere"] {
            let other = notifying(&bp, target);
            let doc = key_policy(&other, &other.spec.kms_keys[0], &scope);
            assert_eq!(sids(&doc), vec![ACCOUNT_ADMINISTRATION_SID], "{target}");
        }
    }

    /// `bp` with its alarm notifying `target` instead.
    fn notifying(bp: &Blueprint, target: &str) -> Blueprint {
        let mut bp = bp.clone();
        bp.spec.alarms[0].alarm_actions = vec![target.to_string()];
        bp
    }

    #[test]
    fn sns_may_use_a_key_encrypting_a_queue_a_topic_delivers_to() {
        let mut bp = blueprint("");
        bp.spec.alarms.clear();
        let scope = KeyScope::from_key_arn(ARN).unwrap();
        let key = bp.spec.kms_keys[0].clone();
        assert_eq!(
            sids(&key_policy(&bp, &key, &scope)),
            vec![ACCOUNT_ADMINISTRATION_SID]
        );
        bp.spec.topics[1]
            .subscriptions
            .push(crate::TopicSubscription {
                protocol: crate::SubscriptionProtocol::Sqs,
                endpoint: "q".into(),
            });
        let doc = key_policy(&bp, &key, &scope);
        assert_eq!(
            sids(&doc),
            vec![ACCOUNT_ADMINISTRATION_SID, SNS_DELIVER_SID]
        );
        assert_eq!(
            doc.statements[1].principal,
            Some(Principal::ByType(
                [("Service".to_string(), vec!["sns.amazonaws.com".to_string()])].into()
            ))
        );
    }

    #[test]
    fn own_statements_come_after_the_ones_ballast_writes() {
        let bp = blueprint(
            "      policyStatements:\n        - {Sid: AuditorsDescribe, Effect: Allow, Principal: {AWS: 'arn:aws:iam::123456789012:role/auditor'}, Action: kms:DescribeKey, Resource: '*'}\n",
        );
        let scope = KeyScope::from_key_arn(ARN).unwrap();
        let doc = key_policy(&bp, &bp.spec.kms_keys[0], &scope);
        assert_eq!(
            sids(&doc),
            vec![
                ACCOUNT_ADMINISTRATION_SID,
                CLOUDWATCH_NOTIFY_SID,
                "AuditorsDescribe"
            ]
        );
    }
}
