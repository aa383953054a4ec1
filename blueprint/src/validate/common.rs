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

/// What the own statements of a resource policy (`policyStatements` of a key or a queue) may
/// say, and how its messages name things; [`Validator::own_policy_statements`] checks them.
pub(super) struct OwnStatementRules {
    /// The resource, as messages name it: `key`, `queue`.
    pub resource: &'static str,
    /// Whose statements a blueprint may not take, as messages say it: `every key`, `queues`.
    pub written_on: &'static str,
    pub is_reserved_sid: fn(&str) -> bool,
    pub reserved_hint: &'static str,
    /// The service's action prefix (`kms:`), its name with an article (`a KMS`), an action.
    pub prefix: &'static str,
    pub service: &'static str,
    pub example_action: &'static str,
    pub resource_hint: &'static str,
    /// The call that rewrites the policy, which no own statement may deny.
    pub repair_action: &'static str,
    /// What a mistaken lockout costs besides the policy (`, and …`), and the hint.
    pub lockout_cost: &'static str,
    pub lockout_hint: &'static str,
    /// The service's limit of actions in one statement, if it has one.
    pub max_actions: Option<usize>,
}

impl Validator<'_> {
    /// Each own statement is a resource-policy statement on this resource: a `Principal`,
    /// `Resource: "*"` (the resource itself), the service's actions only, no `Sid` Ballast
    /// writes, and no `Deny` of the call that repairs the policy.
    pub(super) fn own_policy_statements(
        &mut self,
        values: &[serde_json::Value],
        path: &str,
        rules: &OwnStatementRules,
    ) {
        let resource = rules.resource;
        for (i, value) in values.iter().enumerate() {
            let at = format!("{path}.policyStatements[{i}]");
            let statement = match crate::policy::own_statement(value) {
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
            if let Some(sid) = statement.sid.as_deref()
                && (rules.is_reserved_sid)(sid)
            {
                self.error(
                    &format!("{at}.Sid"),
                    format!(
                        "`{sid}` is the Sid of a statement Ballast writes on {}",
                        rules.written_on
                    ),
                    rules.reserved_hint,
                );
            }
            if statement.principal.is_none() {
                self.error(
                    &at,
                    format!("a {resource} policy statement names no `Principal`"),
                    "name who it applies to, e.g. `Principal: {AWS: arn:aws:iam::<account>:role/<name>}` or `{Service: <service>.amazonaws.com}`",
                );
            }
            if statement.resources != ["*"] {
                self.error(
                    &format!("{at}.Resource"),
                    format!("a {resource} policy statement's `Resource` must be `\"*\"`"),
                    rules.resource_hint,
                );
            }
            if let Some(action) = statement
                .actions
                .iter()
                .find(|a| !a.to_ascii_lowercase().starts_with(rules.prefix))
            {
                self.error(
                    &format!("{at}.Action"),
                    format!("`{action}` is not {} action", rules.service),
                    format!(
                        "a {resource} policy governs `{}` actions only, e.g. `{}`",
                        rules.prefix, rules.example_action
                    ),
                );
            }
            if let Some(max) = rules.max_actions
                && statement.actions.len() > max
            {
                self.error(
                    &format!("{at}.Action"),
                    format!(
                        "{} actions; {} allows at most {max} in one statement",
                        statement.actions.len(),
                        rules
                            .service
                            .trim_start_matches("an ")
                            .trim_start_matches("a ")
                    ),
                    format!(
                        "split the statement, or use a wildcard such as `{}Get*`",
                        rules.prefix
                    ),
                );
            }
            if statement.denies(rules.repair_action) {
                self.error(
                    &at,
                    format!(
                        "this `Deny` covers `{}`: a mistake in it would leave no one able to repair the {resource}'s policy{}",
                        rules.repair_action, rules.lockout_cost
                    ),
                    rules.lockout_hint,
                );
            }
        }
    }
}
