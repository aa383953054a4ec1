//! Validation of KMS keys.

use super::*;

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
    }
}
