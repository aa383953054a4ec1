//! Validation of SQS queues.

use super::*;

impl Validator<'_> {
    pub(super) fn queue(&mut self, bp: &Blueprint, q: &Queue, path: &str) {
        if let Some(name) = &q.queue_name {
            let p = format!("{path}.queueName");
            if name.ends_with(".fifo") {
                self.error(
                    &p,
                    "FIFO queues are not supported",
                    "the platform uses a standard queue; drop `.fifo`",
                );
            } else {
                self.physical_name(
                    &p,
                    name,
                    80,
                    |c| c.is_ascii_alphanumeric() || c == '-' || c == '_',
                    "queue name",
                );
            }
        }
        self.duration_range(
            &format!("{path}.visibilityTimeout"),
            q.visibility_timeout,
            0,
            12 * HOUR,
        );
        self.duration_range(&format!("{path}.retention"), q.retention, MINUTE, 14 * DAY);
        self.duration_range(
            &format!("{path}.receiveWaitTime"),
            q.receive_wait_time,
            0,
            20 * SECOND,
        );
        self.duration_range(&format!("{path}.delay"), q.delay, 0, 15 * MINUTE);
        self.int_range(
            &format!("{path}.maxMessageSize"),
            q.max_message_size,
            1024,
            1_048_576,
        );
        let enc = format!("{path}.encryption");
        let is_kms = q.encryption.kind == QueueEncryptionKind::Kms;
        self.key_choice(
            &enc,
            is_kms,
            &q.encryption.kms_key,
            &q.encryption.kms_key_arn,
        );
        if let Some(reuse) = q.encryption.data_key_reuse {
            if is_kms {
                self.duration_range(&format!("{enc}.dataKeyReuse"), reuse, MINUTE, DAY);
            } else {
                self.error(
                    &format!("{enc}.dataKeyReuse"),
                    "`dataKeyReuse` applies only to `type: kms`",
                    "remove it or set `type: kms`",
                );
            }
        }
        if let Some(dl) = &q.dead_letter {
            let p = format!("{path}.deadLetter");
            self.int_range(
                &format!("{p}.maxReceiveCount"),
                dl.max_receive_count.into(),
                1,
                1000,
            );
            if let Some(target) = bp.spec.queues.iter().find(|t| t.name == dl.queue) {
                if target.name == q.name {
                    self.error(
                        &format!("{p}.queue"),
                        "a queue cannot be its own dead-letter queue",
                        "declare a separate DLQ",
                    );
                }
                if target.retention < q.retention {
                    self.warning(
                        &format!("{p}.queue"),
                        format!(
                            "dead-letter queue `{}` keeps messages {} but this queue keeps them {}",
                            target.name, target.retention, q.retention
                        ),
                        "a message keeps its original age in the DLQ: give the DLQ a longer retention",
                    );
                }
                // The DLQ holds this queue's messages: a plain-HTTP DLQ would serve them
                // without the TLS this queue insists on.
                if q.tls_only && !target.tls_only {
                    self.warning(
                        &format!("{p}.queue"),
                        format!(
                            "dead-letter queue `{}` accepts plain HTTP (`tlsOnly: false`) but this queue is TLS-only",
                            target.name
                        ),
                        format!(
                            "messages moved to `{}` can be read without TLS: remove its `tlsOnly: false`",
                            target.name
                        ),
                    );
                }
                if let Some(ra) = &target.redrive_allow {
                    let allowed = match ra.policy {
                        RedrivePermission::AllowAll => true,
                        RedrivePermission::DenyAll => false,
                        RedrivePermission::ByQueue => ra.source_queues.contains(&q.name),
                    };
                    if !allowed {
                        self.error(
                            &format!("{p}.queue"),
                            format!(
                                "`{}`'s redriveAllow does not admit `{}`",
                                target.name, q.name
                            ),
                            format!(
                                "add `{}` to `{}`.redriveAllow.sourceQueues",
                                q.name, target.name
                            ),
                        );
                    }
                }
            }
        }
        if let Some(ra) = &q.redrive_allow {
            let p = format!("{path}.redriveAllow");
            match (ra.policy, ra.source_queues.len()) {
                (RedrivePermission::ByQueue, 0) => self.error(
                    &format!("{p}.sourceQueues"),
                    "`policy: byQueue` needs `sourceQueues`",
                    "list 1 to 10 queue names",
                ),
                (RedrivePermission::ByQueue, n) if n > 10 => self.error(
                    &format!("{p}.sourceQueues"),
                    format!("{n} source queues, AWS allows at most 10"),
                    "use `policy: allowAll` or split the DLQ",
                ),
                (RedrivePermission::ByQueue, _) => {}
                (_, 0) => {}
                (_, _) => self.error(
                    &format!("{p}.sourceQueues"),
                    "`sourceQueues` needs `policy: byQueue`",
                    "set `policy: byQueue` or remove the list",
                ),
            }
        }
        self.queue_policy_statements(bp, q, path);
    }

    /// The queue's own policy statements ([`Validator::own_policy_statements`], at most SQS's
    /// actions in one), and the whole policy (with the statements Ballast adds) within SQS's
    /// quotas.
    fn queue_policy_statements(&mut self, bp: &Blueprint, q: &Queue, path: &str) {
        use crate::queue_policy::{
            MAX_ACTIONS_PER_STATEMENT, MAX_QUEUE_POLICY_BYTES, MAX_QUEUE_POLICY_STATEMENTS,
            REPAIR_ACTION, is_reserved_sid, queue_policy,
        };
        self.own_policy_statements(
            &q.policy_statements,
            path,
            &super::common::OwnStatementRules {
                resource: "queue",
                written_on: "queues",
                is_reserved_sid,
                reserved_hint: "choose another Sid; `DenyInsecureTransport` and `AllowTopic…` are Ballast's",
                prefix: "sqs:",
                service: "an SQS",
                example_action: "sqs:SendMessage",
                resource_hint: "`*` means this queue (Ballast writes its ARN); a queue policy cannot name other resources",
                repair_action: REPAIR_ACTION,
                lockout_cost: "",
                lockout_hint: "deny the message actions instead (e.g. `sqs:SendMessage`, `sqs:ReceiveMessage`)",
                max_actions: Some(MAX_ACTIONS_PER_STATEMENT),
            },
        );
        if q.policy_statements.is_empty() {
            return;
        }
        // The queue's ARN in the standard partition (every account id has 12 digits): the
        // quotas are checked on what would be written.
        let arn = format!(
            "arn:aws:sqs:{}:123456789012:{}",
            bp.metadata.region,
            bp.queue_name(q)
        );
        if let Some(policy) = queue_policy(bp, q, &arn) {
            let statements = policy.statements.len();
            if statements > MAX_QUEUE_POLICY_STATEMENTS {
                self.error(
                    &format!("{path}.policyStatements"),
                    format!("the queue's policy would have {statements} statements; SQS allows at most {MAX_QUEUE_POLICY_STATEMENTS}"),
                    "merge statements with the same principal, or grant through IAM policies instead",
                );
            }
            let bytes = policy.to_json().to_string().len();
            if bytes > MAX_QUEUE_POLICY_BYTES {
                self.error(
                    &format!("{path}.policyStatements"),
                    format!("the queue's policy would be {bytes} bytes; SQS stores at most {MAX_QUEUE_POLICY_BYTES}"),
                    "grant through IAM policies instead, or shorten the statements",
                );
            }
        }
    }
}
