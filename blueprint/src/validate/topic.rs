//! Validation of SNS topics and their subscriptions. The queue and KMS key names they reference
//! are checked with every other reference (`Validator::references`).

use super::*;

impl Validator<'_> {
    pub(super) fn topic(&mut self, t: &Topic, path: &str) {
        if let Some(name) = &t.topic_name {
            let p = format!("{path}.topicName");
            if name.ends_with(".fifo") {
                self.error(
                    &p,
                    "FIFO topics are not supported",
                    "alarm notifications use a standard topic; drop `.fifo`",
                );
            } else {
                self.physical_name(
                    &p,
                    name,
                    256,
                    |c| c.is_ascii_alphanumeric() || c == '-' || c == '_',
                    "topic name",
                );
            }
        }
        let mut seen: BTreeMap<&TopicSubscription, usize> = BTreeMap::new();
        for (i, s) in t.subscriptions.iter().enumerate() {
            let p = format!("{path}.subscriptions[{i}]");
            self.subscription_endpoint(s, &format!("{p}.endpoint"));
            if let Some(first) = seen.insert(s, i) {
                self.error(
                    &p,
                    format!(
                        "duplicate subscription {} `{}`",
                        s.protocol.as_str(),
                        s.endpoint
                    ),
                    format!("it is already {path}.subscriptions[{first}]; SNS keeps one"),
                );
            }
        }
    }

    fn subscription_endpoint(&mut self, s: &TopicSubscription, path: &str) {
        let endpoint = s.endpoint.as_str();
        match s.protocol {
            SubscriptionProtocol::Email if !is_email_address(endpoint) => self.error(
                path,
                format!("`{endpoint}` is not an email address"),
                "write one address such as oncall@example.com (no display name, no spaces)",
            ),
            SubscriptionProtocol::Https if !is_https_url(endpoint) => self.error(
                path,
                format!("`{endpoint}` is not an https URL"),
                "write a URL such as https://hooks.example.com/alarms; plain http is refused",
            ),
            SubscriptionProtocol::Sqs if endpoint.starts_with("arn:") && !is_sqs_arn(endpoint) => {
                self.error(
                    path,
                    format!("`{endpoint}` is not an SQS queue ARN"),
                    "write a blueprint queue name, or arn:aws:sqs:<region>:<account>:<queue>",
                )
            }
            _ => {}
        }
    }
}

/// `local@domain.tld`: one `@`, a local part of 1..64 printable characters, a domain of dotted
/// labels of letters, digits and `-`; 254 characters at most (RFC 5321's path limit).
fn is_email_address(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c))
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..");
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    s.len() <= 254 && local_ok && domain_ok
}

/// `https://host[:port][/path]` without whitespace.
fn is_https_url(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("https://") else {
        return false;
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = host.rsplit_once(':').map_or(host, |(h, port)| {
        if !port.is_empty() && port.chars().all(|c| c.is_ascii_digit()) {
            h
        } else {
            ""
        }
    });
    !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        && !s.chars().any(char::is_whitespace)
}

/// `arn:<partition>:sqs:<region>:<account>:<queue>`.
fn is_sqs_arn(s: &str) -> bool {
    let parts: Vec<&str> = s.split(':').collect();
    parts.len() == 6 && parts.get(2) == Some(&"sqs") && parts.iter().skip(3).all(|p| !p.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_addresses() {
        for ok in ["oncall@example.com", "a.b+alarms@sub.example.co.uk"] {
            assert!(is_email_address(ok), "{ok}");
        }
        for bad in [
            "oncall",
            "oncall@",
            "@example.com",
            "on call@example.com",
            "oncall@example",
            "a@b@example.com",
            "Ops <ops@example.com>",
            "oncall@-example.com",
            ".a@example.com",
        ] {
            assert!(!is_email_address(bad), "{bad}");
        }
    }

    #[test]
    fn https_urls() {
        for ok in [
            "https://hooks.example.com/alarms",
            "https://hooks.example.com:8443/a?b=c",
            "https://example.com",
        ] {
            assert!(is_https_url(ok), "{ok}");
        }
        for bad in [
            "http://hooks.example.com",
            "https://",
            "https:///path",
            "https://exa mple.com",
            "https://host:port/",
            "hooks.example.com",
        ] {
            assert!(!is_https_url(bad), "{bad}");
        }
    }

    #[test]
    fn sqs_arns() {
        assert!(is_sqs_arn("arn:aws:sqs:us-east-1:123456789012:orders"));
        assert!(!is_sqs_arn("arn:aws:sns:us-east-1:123456789012:orders"));
        assert!(!is_sqs_arn("arn:aws:sqs:us-east-1::orders"));
    }
}
