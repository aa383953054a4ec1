//! A queue's policy (the SQS `Policy` attribute) as this kind writes and compares it: the
//! document of [`ballast_blueprint::queue_policy`], read and compared as every policy is
//! ([`PolicyValue`], semantically), so it is the whole truth: a statement added by hand is drift
//! that apply removes.

use ballast_blueprint::queue_policy::queue_policy;
use ballast_blueprint::{Blueprint, Queue};

use super::super::policy_value::PolicyValue;

pub use ballast_blueprint::queue_policy::{TLS_ONLY_SID, tls_only_policy};

/// The policy the blueprint wants on `queue` once its ARN is known; `None` when that is
/// nothing.
pub(super) fn wanted_policy(bp: &Blueprint, queue: &Queue, queue_arn: &str) -> Option<PolicyValue> {
    queue_policy(bp, queue, queue_arn).map(PolicyValue::Document)
}
