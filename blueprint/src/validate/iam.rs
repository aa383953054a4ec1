//! Validation of IAM roles, managed policies and instance profiles. The blueprint names they
//! reference (granted queues and tables, attached policies, a profile's role, a launch
//! template's profile) are checked with every other reference (`Validator::references`).

use super::*;

/// AWS's quota of managed policies attached to one role (10 by default, raisable to 20).
const MAX_ATTACHED_POLICIES: usize = 20;
/// The largest managed policy document IAM stores, in characters without whitespace.
const MAX_POLICY_DOCUMENT: usize = 6144;

/// Characters IAM allows in role, policy and instance profile names.
fn iam_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "+=,.@_-".contains(c)
}

impl Validator<'_> {
    pub(super) fn managed_policy(&mut self, p: &ManagedPolicy, path: &str) {
        if let Some(name) = &p.policy_name {
            self.iam_name(&format!("{path}.policyName"), name, 128, "policy name");
        }
        match (&p.grants, &p.document) {
            (None, None) => self.error(
                &format!("{path}.name"),
                format!("policy `{}` grants nothing", p.name),
                "write `grants: {for: worker}` (derived from the blueprint) or a `document`",
            ),
            (Some(_), Some(_)) => self.error(
                &format!("{path}.document"),
                "`grants` and `document` are both set",
                "keep one: `grants` derives the document from the blueprint",
            ),
            (None, Some(document)) => self.policy_document(document, &format!("{path}.document")),
            (Some(_), None) => {}
        }
    }

    /// A managed policy's own document: readable as a policy, an identity policy (no
    /// `Principal`, every statement on a `Resource`), within IAM's size.
    fn policy_document(&mut self, document: &serde_json::Value, path: &str) {
        let doc = match crate::policy::PolicyDocument::parse(&document.to_string()) {
            Ok(doc) => doc,
            Err(e) => {
                return self.error(
                    path,
                    format!("not a policy document: {e}"),
                    "write `Version: \"2012-10-17\"` and `Statement:` entries of `Effect`, `Action` and `Resource`",
                );
            }
        };
        for (i, statement) in doc.statements.iter().enumerate() {
            if statement.principal.is_some() {
                self.error(
                    &format!("{path}.Statement[{i}]"),
                    "a managed policy's statement names a `Principal`",
                    "a managed policy applies to whoever it is attached to: drop `Principal` (who may assume a role is its `assumedBy`)",
                );
            } else if statement.resources.is_empty() {
                self.error(
                    &format!("{path}.Statement[{i}]"),
                    "the statement has no `Resource`",
                    "name the exact ARNs it applies to (`*` only where AWS has no resource-level permissions)",
                );
            }
        }
        let size = doc.to_json().to_string().len();
        if size > MAX_POLICY_DOCUMENT {
            self.error(
                path,
                format!(
                    "the document is {size} characters; IAM stores at most {MAX_POLICY_DOCUMENT}"
                ),
                "split it into several policies attached to the role",
            );
        }
    }

    pub(super) fn iam_role(&mut self, r: &IamRole, path: &str) {
        if let Some(name) = &r.role_name {
            self.iam_name(&format!("{path}.roleName"), name, 64, "role name");
        }
        if r.assumed_by.is_empty() {
            self.error(
                &format!("{path}.assumedBy"),
                format!("role `{}` names no service that may assume it", r.name),
                "list the AWS services that use the role, e.g. `assumedBy: [ec2.amazonaws.com]`",
            );
        }
        let mut services = BTreeSet::new();
        for (i, service) in r.assumed_by.iter().enumerate() {
            let p = format!("{path}.assumedBy[{i}]");
            if !is_service_principal(service) {
                self.error(
                    &p,
                    format!("`{service}` is not an AWS service principal"),
                    "write the service's principal, e.g. ec2.amazonaws.com",
                );
            } else if !services.insert(service.as_str()) {
                self.error(
                    &p,
                    format!("`{service}` is listed twice"),
                    "list each service once",
                );
            }
        }
        let mut attached = BTreeSet::new();
        for (i, policy) in r.policies.iter().enumerate() {
            let p = format!("{path}.policies[{i}]");
            if is_policy_arn(policy) && !is_iam_arn(policy, "policy/") {
                self.error(
                    &p,
                    format!("`{policy}` is not an IAM policy ARN"),
                    "write a blueprint policy name, or arn:aws:iam::<account or aws>:policy/<name>",
                );
            } else if !attached.insert(policy.as_str()) {
                self.error(
                    &p,
                    format!("policy `{policy}` is attached twice"),
                    "list each policy once",
                );
            }
        }
        if r.policies.len() > MAX_ATTACHED_POLICIES {
            self.error(
                &format!("{path}.policies"),
                format!(
                    "role `{}` attaches {} policies; IAM allows at most {MAX_ATTACHED_POLICIES}",
                    r.name,
                    r.policies.len()
                ),
                "merge policies, or split the role",
            );
        }
    }

    pub(super) fn instance_profile(&mut self, p: &InstanceProfile, path: &str) {
        if let Some(name) = &p.instance_profile_name {
            self.iam_name(
                &format!("{path}.instanceProfileName"),
                name,
                128,
                "instance profile name",
            );
        }
    }

    /// A launch template's `instanceProfile` given by ARN must name an instance profile.
    pub(super) fn launch_template_profile(&mut self, lt: &LaunchTemplate, path: &str) {
        if let Some(profile) = &lt.instance_profile
            && lt.blueprint_instance_profile().is_none()
            && !is_iam_arn(profile, "instance-profile/")
        {
            self.error(
                &format!("{path}.instanceProfile"),
                format!("`{profile}` is not an instance profile ARN"),
                "write a blueprint instance profile name, or arn:aws:iam::<account>:instance-profile/<name>",
            );
        }
    }

    fn iam_name(&mut self, path: &str, name: &str, max: usize, what: &str) {
        if name.is_empty() || name.len() > max || !name.chars().all(iam_name_char) {
            self.error(
                path,
                format!("`{name}` is not a valid IAM {what}"),
                format!("use 1 to {max} characters: letters, digits and `+=,.@_-`"),
            );
        }
    }
}

/// `<service>.amazonaws.com` (or `.amazonaws.com.cn` in China), the form of a service principal.
fn is_service_principal(s: &str) -> bool {
    let service = s
        .strip_suffix(".amazonaws.com")
        .or_else(|| s.strip_suffix(".amazonaws.com.cn"));
    service.is_some_and(|name| {
        !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
    })
}

/// `arn:<partition>:iam::<account or aws>:<resource>…` with `resource` the given prefix.
fn is_iam_arn(s: &str, resource: &str) -> bool {
    let parts: Vec<&str> = s.splitn(6, ':').collect();
    matches!(
        parts.as_slice(),
        ["arn", partition, "iam", "", account, rest]
            if !partition.is_empty()
                && !account.is_empty()
                && rest.strip_prefix(resource).is_some_and(|name| !name.is_empty())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_principals() {
        assert!(is_service_principal("ec2.amazonaws.com"));
        assert!(is_service_principal("ec2.amazonaws.com.cn"));
        for bad in [
            "ec2",
            "amazonaws.com",
            ".amazonaws.com",
            "EC2.amazonaws.com",
            "arn:aws:iam::1:root",
        ] {
            assert!(!is_service_principal(bad), "{bad}");
        }
    }

    #[test]
    fn iam_arns() {
        assert!(is_iam_arn(
            "arn:aws:iam::aws:policy/ReadOnlyAccess",
            "policy/"
        ));
        assert!(is_iam_arn(
            "arn:aws:iam::123456789012:policy/team/x",
            "policy/"
        ));
        assert!(is_iam_arn(
            "arn:aws:iam::1:instance-profile/w",
            "instance-profile/"
        ));
        assert!(!is_iam_arn("arn:aws:iam::1:role/w", "instance-profile/"));
        assert!(!is_iam_arn("arn:aws:iam:us-east-1:1:policy/x", "policy/"));
        assert!(!is_iam_arn("arn:aws:iam::1:policy/", "policy/"));
        assert!(!is_iam_arn("arn:aws:sqs:us-east-1:1:q", "policy/"));
    }
}
