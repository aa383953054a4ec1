//! Validation of KMS keys.

use super::common::OwnStatementRules;
use super::*;
use crate::key_policy::{MAX_KEY_POLICY_BYTES, REPAIR_ACTION, RESERVED_SIDS};

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

    /// The key's own policy statements ([`Validator::own_policy_statements`]), the whole
    /// policy within KMS's size.
    fn key_policy_statements(&mut self, key: &KmsKey, path: &str) {
        self.own_policy_statements(
            &key.policy_statements,
            path,
            &OwnStatementRules {
                resource: "key",
                written_on: "every key",
                is_reserved_sid: |sid| RESERVED_SIDS.contains(&sid),
                reserved_hint: "choose another Sid; the account's administration statement is always in the policy",
                prefix: "kms:",
                service: "a KMS",
                example_action: "kms:Decrypt",
                resource_hint: "in a key policy `*` means this key; a policy cannot name other resources",
                repair_action: REPAIR_ACTION,
                lockout_cost: ", and every piece of data the key encrypts with it",
                lockout_hint: "deny the use actions instead (e.g. `kms:Decrypt`); who administers the key is decided by IAM policies through the account's statement",
                max_actions: None,
            },
        );
        let size: usize = key
            .policy_statements
            .iter()
            .map(|value| value.to_string().len())
            .sum();
        if size > MAX_KEY_POLICY_BYTES {
            self.error(
                &format!("{path}.policyStatements"),
                format!("the statements are {size} bytes; KMS stores a key policy of at most {MAX_KEY_POLICY_BYTES}"),
                "grant through IAM policies instead: the account's statement lets them",
            );
        }
    }
}
