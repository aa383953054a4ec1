//! Validation of KMS keys.

use super::*;
use crate::key_policy::{MAX_KEY_POLICY_BYTES, RESERVED_SIDS, locks_out};
use crate::policy::own_statement;

impl Validator<'_> {
    pub(super) fn kms_key(&mut self, key: &KmsKey, path: &str) {
        if let Some(alias) = &key.alias {
            let ok = alias.starts_with("alias/")
                && !alias.starts_with("alias/aws/")
                && alias.len() > 6
                && alias.len() <= 256
                && alias[6..]
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "/_-".contains(c));
            if !ok {
                self.error(
                    &format!("{path}.alias"),
                    format!("`{alias}` is not a valid KMS alias"),
                    "write `alias/<name>` with letters, digits, `/`, `_` and `-`; `alias/aws/` is reserved",
                );
            }
        }
        if let Some(description) = &key.description
            && description.chars().count() > 8192
        {
            self.error(
                &format!("{path}.description"),
                format!(
                    "the description has {} characters, over KMS's 8192",
                    description.chars().count()
                ),
                "shorten it; link to longer documentation instead",
            );
        }
        self.duration_range(
            &format!("{path}.deletionWindow"),
            key.deletion_window,
            7 * DAY,
            30 * DAY,
        );
        if !key.deletion_window.as_secs().is_multiple_of(DAY) {
            self.error(
                &format!("{path}.deletionWindow"),
                "`deletionWindow` must be whole days",
                "e.g. 30d",
            );
        }
        if let Some(period) = key.rotation_period {
            self.duration_range(
                &format!("{path}.rotationPeriod"),
                period,
                90 * DAY,
                2560 * DAY,
            );
            if !key.rotation {
                self.error(
                    &format!("{path}.rotationPeriod"),
                    "`rotationPeriod` is set but `rotation` is off",
                    "remove `rotationPeriod` or set `rotation: true`",
                );
            }
        }
        self.key_policy_statements(key, path);
    }

    /// The key's own policy statements: each a resource-policy statement on this key (a
    /// `Principal`, `Resource: "*"`, KMS actions), none taking a `Sid` Ballast writes or able to
    /// lock the key out, the whole policy within KMS's size.
    fn key_policy_statements(&mut self, key: &KmsKey, path: &str) {
        let mut size = 0;
        for (i, value) in key.policy_statements.iter().enumerate() {
            let at = format!("{path}.policyStatements[{i}]");
            let statement = match own_statement(value) {
                Ok(statement) => statement,
                Err(e) => {
                    self.error(
                        &at,
                        format!("not a policy statement: {e}"),
                        "write `Effect`, `Principal`, `Action` and `Resource: \"*\"` (and `Condition` if needed), as in IAM",
                    );
                    continue;
                }
            };
            size += value.to_string().len();
            if let Some(sid) = statement.sid.as_deref()
                && RESERVED_SIDS.contains(&sid)
            {
                self.error(
                    &format!("{at}.Sid"),
                    format!("`{sid}` is the Sid of a statement Ballast writes on every key"),
                    "choose another Sid; the account's administration statement is always in the policy",
                );
            }
            if statement.principal.is_none() {
                self.error(
                    &at,
                    "a key policy statement names no `Principal`",
                    "name who it applies to, e.g. `Principal: {AWS: arn:aws:iam::<account>:role/<name>}` or `{Service: <service>.amazonaws.com}`",
                );
            }
            if statement.resources != ["*"] {
                self.error(
                    &format!("{at}.Resource"),
                    "a key policy statement's `Resource` must be `\"*\"`",
                    "in a key policy `*` means this key; a policy cannot name other resources",
                );
            }
            if let Some(action) = statement
                .actions
                .iter()
                .find(|a| !a.to_ascii_lowercase().starts_with("kms:"))
            {
                self.error(
                    &format!("{at}.Action"),
                    format!("`{action}` is not a KMS action"),
                    "a key policy governs `kms:` actions only, e.g. `kms:Decrypt`",
                );
            }
            if locks_out(&statement) {
                self.error(
                    &at,
                    "this `Deny` covers `kms:PutKeyPolicy`: a mistake in it would leave no one able to repair the key's policy, and every piece of data the key encrypts with it",
                    "deny the use actions instead (e.g. `kms:Decrypt`); who administers the key is decided by IAM policies through the account's statement",
                );
            }
        }
        if size > MAX_KEY_POLICY_BYTES {
            self.error(
                &format!("{path}.policyStatements"),
                format!("the statements are {size} bytes; KMS stores a key policy of at most {MAX_KEY_POLICY_BYTES}"),
                "grant through IAM policies instead: the account's statement lets them",
            );
        }
    }
}
