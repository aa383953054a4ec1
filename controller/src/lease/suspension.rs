//! Pausing a whole blueprint: `ballast suspend` / `ballast resume`.
//!
//! Ballast keeps no state file, and a controller may run in several replicas, so the pause has
//! to live where every writer already looks before it writes: the lease table. A suspension is
//! one item there, next to the blueprint's writer lease, keyed
//! `ballast-suspension-<blueprint>` ([`suspension_item_name`]) with who suspended it, when, and
//! why. `ballast apply` and `ballast destroy` read it under the writer lease and refuse;
//! `ballast run` reads it at the start of every resync and then observes and reports only (no
//! apply, no capacity change), whichever replica leads. Deleting the item resumes.
//!
//! The item has no expiry on purpose: a pause during an incident must not lapse by itself while
//! an operator's hand-made change is still needed. The writer lease items are unaffected (a
//! suspended controller keeps leading, so a resume takes effect without a new election).

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use ballast_aws::{SdkResultExt, classify};
use tracing::instrument;

use super::dynamo::ATTR_LEASE;
use super::{LeaseError, format_time};

/// Who suspended the blueprint (S).
pub const ATTR_SUSPENDED_BY: &str = "suspended_by";
/// When, in ms since the Unix epoch (N).
pub const ATTR_SUSPENDED_AT_MS: &str = "suspended_at_ms";
/// Why, as the operator wrote it (`--reason`, S, optional).
pub const ATTR_REASON: &str = "reason";

/// The lease-table key of a blueprint's suspension; distinct from its writer lease
/// (`ballast-blueprint-<name>`), so taking or releasing the lease never touches it.
pub fn suspension_item_name(blueprint_name: &str) -> String {
    format!("ballast-suspension-{blueprint_name}")
}

/// A blueprint's suspension as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suspension {
    pub by: String,
    pub at: SystemTime,
    pub reason: Option<String>,
}

impl fmt::Display for Suspension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "suspended by {} at {}", self.by, format_time(self.at))?;
        match &self.reason {
            Some(reason) => write!(f, " (reason: {reason})"),
            None => Ok(()),
        }
    }
}

/// What [`Suspensions::suspend`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SuspendOutcome {
    Suspended,
    /// It was suspended already; the first record is kept (its who, when and why are the ones
    /// that matter to whoever resumes).
    AlreadySuspended(Suspension),
}

/// The suspension items of one lease table.
#[derive(Debug, Clone)]
pub struct Suspensions {
    client: Client,
    table: String,
}

impl Suspensions {
    pub fn new(client: Client, table: String) -> Self {
        Suspensions { client, table }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    fn key(blueprint: &str) -> HashMap<String, AttributeValue> {
        HashMap::from([(
            ATTR_LEASE.to_string(),
            AttributeValue::S(suspension_item_name(blueprint)),
        )])
    }

    /// The blueprint's suspension (consistent read), or `None`. A missing lease table means
    /// nothing was ever suspended in it (a controller electing through Kubernetes may run
    /// without one).
    #[instrument(skip(self), fields(table = %self.table))]
    pub async fn read(&self, blueprint: &str) -> Result<Option<Suspension>, LeaseError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(blueprint)))
            .consistent_read(true)
            .send()
            .await
            .classify("dynamodb:GetItem");
        match output {
            Ok(output) => output
                .item
                .map(|item| self.parse(blueprint, &item))
                .transpose(),
            Err(err) if err.is_not_found() => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    /// Records the suspension unless one is there already (one conditional `PutItem`).
    #[instrument(skip(self, suspension), fields(table = %self.table, by = %suspension.by))]
    pub async fn suspend(
        &self,
        blueprint: &str,
        suspension: &Suspension,
    ) -> Result<SuspendOutcome, LeaseError> {
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(
                ATTR_LEASE,
                AttributeValue::S(suspension_item_name(blueprint)),
            )
            .item(ATTR_SUSPENDED_BY, AttributeValue::S(suspension.by.clone()))
            .item(
                ATTR_SUSPENDED_AT_MS,
                AttributeValue::N(millis(suspension.at).to_string()),
            )
            .condition_expression("attribute_not_exists(#lease)")
            .expression_attribute_names("#lease", ATTR_LEASE);
        if let Some(reason) = &suspension.reason {
            put = put.item(ATTR_REASON, AttributeValue::S(reason.clone()));
        }
        match put.send().await {
            Ok(_) => Ok(SuspendOutcome::Suspended),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                // Resumed in between: suspending again is what was asked.
                match self.read(blueprint).await? {
                    Some(existing) => Ok(SuspendOutcome::AlreadySuspended(existing)),
                    None => Box::pin(self.suspend(blueprint, suspension)).await,
                }
            }
            Err(err) => Err(classify("dynamodb:PutItem", err).into()),
        }
    }

    /// Removes the suspension; returns the one removed (`None`: it was not suspended).
    #[instrument(skip(self), fields(table = %self.table))]
    pub async fn resume(&self, blueprint: &str) -> Result<Option<Suspension>, LeaseError> {
        let output = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(blueprint)))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .classify("dynamodb:DeleteItem");
        match output {
            Ok(output) => output
                .attributes
                .map(|item| self.parse(blueprint, &item))
                .transpose(),
            Err(err) if err.is_not_found() => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    fn parse(
        &self,
        blueprint: &str,
        item: &HashMap<String, AttributeValue>,
    ) -> Result<Suspension, LeaseError> {
        parse_item(&self.table, blueprint, item)
    }
}

/// Reads a suspension item; pure, so malformed items are unit-tested.
fn parse_item(
    table: &str,
    blueprint: &str,
    item: &HashMap<String, AttributeValue>,
) -> Result<Suspension, LeaseError> {
    let malformed = |attribute| LeaseError::MalformedItem {
        table: table.to_string(),
        name: suspension_item_name(blueprint),
        attribute,
    };
    let by = match item.get(ATTR_SUSPENDED_BY) {
        Some(AttributeValue::S(by)) => by.clone(),
        _ => return Err(malformed(ATTR_SUSPENDED_BY)),
    };
    let at = match item.get(ATTR_SUSPENDED_AT_MS) {
        Some(AttributeValue::N(n)) => n.parse::<u64>().ok(),
        _ => None,
    }
    .map(|ms| UNIX_EPOCH + Duration::from_millis(ms))
    .ok_or_else(|| malformed(ATTR_SUSPENDED_AT_MS))?;
    let reason = match item.get(ATTR_REASON) {
        Some(AttributeValue::S(reason)) => Some(reason.clone()),
        _ => None,
    };
    Ok(Suspension { by, at, reason })
}

fn millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or_default()
}

/// Who is suspending, for the record: `$USER@host` (an operator, not a process id).
pub fn default_suspender() -> String {
    let user = ["USER", "LOGNAME"]
        .iter()
        .filter_map(|var| std::env::var(var).ok())
        .find(|u| !u.is_empty())
        .unwrap_or_else(|| "unknown".to_string());
    let host = ["HOSTNAME"]
        .iter()
        .filter_map(|var| std::env::var(var).ok())
        .chain(
            ["/proc/sys/kernel/hostname", "/etc/hostname"]
                .iter()
                .filter_map(|path| std::fs::read_to_string(path).ok()),
        )
        .map(|name| name.trim().to_string())
        .find(|name| !name.is_empty())
        .unwrap_or_else(|| "unknown-host".to_string());
    format!("{user}@{host}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(pairs: &[(&str, AttributeValue)]) -> HashMap<String, AttributeValue> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn an_item_reads_back_with_who_when_and_why() {
        let parsed = parse_item(
            "t",
            "banking",
            &item(&[
                (ATTR_SUSPENDED_BY, AttributeValue::S("alice@ops".into())),
                (ATTR_SUSPENDED_AT_MS, AttributeValue::N("1000".into())),
                (ATTR_REASON, AttributeValue::S("backlog".into())),
            ]),
        )
        .unwrap();
        assert_eq!(parsed.by, "alice@ops");
        assert_eq!(parsed.at, UNIX_EPOCH + Duration::from_secs(1));
        assert_eq!(
            parsed.to_string(),
            "suspended by alice@ops at 1970-01-01T00:00:01Z (reason: backlog)"
        );
        assert_eq!(millis(parsed.at), 1000);
    }

    #[test]
    fn a_malformed_item_names_the_attribute() {
        let err = parse_item(
            "t",
            "banking",
            &item(&[(ATTR_SUSPENDED_BY, AttributeValue::S("a".into()))]),
        )
        .unwrap_err();
        assert!(err.to_string().contains(ATTR_SUSPENDED_AT_MS), "{err}");
        assert!(
            err.to_string().contains("ballast-suspension-banking"),
            "{err}"
        );
    }

    #[test]
    fn the_item_is_not_the_writer_lease() {
        assert_ne!(
            suspension_item_name("banking"),
            super::super::blueprint_lease_name("banking")
        );
    }
}
