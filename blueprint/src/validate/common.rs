//! Checks shared by several kinds: ranges, physical names, the key choice of encryption.

use super::*;

impl Validator<'_> {
    pub(super) fn duration_range(&mut self, path: &str, value: Duration, min: u64, max: u64) {
        let field = path.rsplit('.').next().unwrap_or(path);
        if value.std().subsec_nanos() != 0 {
            self.error(
                path,
                format!("`{field}` must be whole seconds, not {value}"),
                "AWS counts this in seconds",
            );
        } else if value.as_secs() < min || value.as_secs() > max {
            self.error(
                path,
                format!(
                    "`{field}` is {value}, outside the AWS range {}..{}",
                    human(min),
                    human(max)
                ),
                format!("use a value from {} to {}", human(min), human(max)),
            );
        }
    }

    pub(super) fn int_range(&mut self, path: &str, value: u64, min: u64, max: u64) {
        if value < min || value > max {
            let field = path.rsplit('.').next().unwrap_or(path);
            self.error(
                path,
                format!("`{field}` is {value}, outside the range {min}..{max}"),
                format!("use a value from {min} to {max}"),
            );
        }
    }

    pub(super) fn physical_name(
        &mut self,
        path: &str,
        name: &str,
        max: usize,
        allowed: fn(char) -> bool,
        what: &str,
    ) {
        if name.is_empty() || name.len() > max || !name.chars().all(allowed) {
            self.error(
                path,
                format!("`{name}` is not a valid {what}"),
                format!(
                    "use 1 to {max} characters: letters, digits{}",
                    match what {
                        "table name" => ", `_`, `-` and `.`",
                        _ => ", `_` and `-`",
                    }
                ),
            );
        }
    }

    pub(super) fn key_choice(
        &mut self,
        path: &str,
        is_kms: bool,
        key: &Option<String>,
        arn: &Option<String>,
    ) {
        match (is_kms, key, arn) {
            (true, None, None) => self.error(
                &format!("{path}.type"),
                "`type: kms` needs `kmsKey` or `kmsKeyArn`",
                "name a blueprint key with `kmsKey`, or an existing key with `kmsKeyArn`",
            ),
            (true, Some(_), Some(_)) => self.error(
                &format!("{path}.kmsKeyArn"),
                "`kmsKey` and `kmsKeyArn` are both set",
                "keep one of them",
            ),
            (false, Some(_), _) | (false, _, Some(_)) => self.error(
                &format!("{path}.type"),
                "a KMS key is given but `type` is not `kms`",
                "set `type: kms`",
            ),
            _ => {}
        }
        if let Some(arn) = arn
            && !(arn.starts_with("arn:aws") && arn.contains(":kms:"))
        {
            self.error(
                &format!("{path}.kmsKeyArn"),
                format!("`{arn}` is not a KMS key ARN"),
                "write arn:aws:kms:<region>:<account>:key/<id>",
            );
        }
    }
}
