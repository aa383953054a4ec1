//! Leases as items of a DynamoDB table, claimed with conditional writes.
//!
//! One item per lease: `lease` (the hash key, the lease name), `holder`, `expires_at_ms` and
//! `acquired_at_ms` (milliseconds since the Unix epoch, DynamoDB numbers). Taking or renewing is
//! one `PutItem` that succeeds only if the item is absent, ours, or expired; releasing is one
//! `DeleteItem` that succeeds only if the item is ours. A crashed holder's item simply expires.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType, TableStatus, Tag,
};
use ballast_aws::{BuildResultExt, SdkResultExt, classify};
use tracing::instrument;

use super::{LeaseError, LeaseSpec, LeaseStatus};
use ballast_runtime::Clock;
use ballast_runtime::duration_millis;

/// The table's hash key (S): the lease name.
pub const ATTR_LEASE: &str = "lease";
/// Who holds the lease (S).
pub const ATTR_HOLDER: &str = "holder";
/// When the holder's claim runs out, in ms since the Unix epoch (N).
pub const ATTR_EXPIRES_AT_MS: &str = "expires_at_ms";
/// When the holder's current tenure began, in ms since the Unix epoch (N).
pub const ATTR_ACQUIRED_AT_MS: &str = "acquired_at_ms";

const TABLE_POLL: Duration = Duration::from_millis(500);
const TABLE_DEADLINE: Duration = Duration::from_secs(120);
/// Contention can make the conditional write fail and the item vanish or expire before we read
/// it; one more put settles it.
const ATTEMPTS: usize = 2;

/// The lease item as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRecord {
    pub holder: String,
    pub expires_at: SystemTime,
    pub acquired_at: Option<SystemTime>,
}

/// A lease held in one item of a DynamoDB table.
#[derive(Debug)]
pub struct DynamoLease {
    client: Client,
    table: String,
    spec: LeaseSpec,
    clock: Arc<dyn Clock>,
    /// Our current tenure: (acquired at, expires at), in ms. Kept so renewals keep
    /// `acquired_at_ms`.
    tenure: Mutex<Option<(u64, u64)>>,
}

impl DynamoLease {
    pub fn new(client: Client, table: String, spec: LeaseSpec, clock: Arc<dyn Clock>) -> Self {
        DynamoLease {
            client,
            table,
            spec,
            clock,
            tenure: Mutex::new(None),
        }
    }

    pub fn spec(&self) -> &LeaseSpec {
        &self.spec
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    pub(crate) fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    fn key(&self) -> HashMap<String, AttributeValue> {
        HashMap::from([(
            ATTR_LEASE.to_string(),
            AttributeValue::S(self.spec.name.clone()),
        )])
    }

    /// Takes the lease if it is absent, ours or expired (one conditional `PutItem`); otherwise
    /// reads who holds it.
    #[instrument(skip(self), fields(table = %self.table, lease = %self.spec.name, holder = %self.spec.holder))]
    pub async fn try_acquire(&self) -> Result<LeaseStatus, LeaseError> {
        let mut last_seen = None;
        for _ in 0..ATTEMPTS {
            let now = self.clock.now().as_millis();
            let expires = now.saturating_add(duration_millis(self.spec.duration));
            let acquired = match *self.tenure.lock().unwrap_or_else(|e| e.into_inner()) {
                // Still within our tenure: a renewal keeps when it began.
                Some((acquired, until)) if now <= until => acquired,
                _ => now,
            };
            let put = self
                .client
                .put_item()
                .table_name(&self.table)
                .item(ATTR_LEASE, AttributeValue::S(self.spec.name.clone()))
                .item(ATTR_HOLDER, AttributeValue::S(self.spec.holder.clone()))
                .item(ATTR_EXPIRES_AT_MS, AttributeValue::N(expires.to_string()))
                .item(ATTR_ACQUIRED_AT_MS, AttributeValue::N(acquired.to_string()))
                .condition_expression(
                    "attribute_not_exists(#lease) OR #holder = :me OR #expires < :now",
                )
                .expression_attribute_names("#lease", ATTR_LEASE)
                .expression_attribute_names("#holder", ATTR_HOLDER)
                .expression_attribute_names("#expires", ATTR_EXPIRES_AT_MS)
                .expression_attribute_values(":me", AttributeValue::S(self.spec.holder.clone()))
                .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
                .send()
                .await;
            match put {
                Ok(_) => {
                    *self.tenure.lock().unwrap_or_else(|e| e.into_inner()) =
                        Some((acquired, expires));
                    return Ok(LeaseStatus::Held {
                        until: from_millis(expires),
                    });
                }
                Err(err)
                    if err
                        .as_service_error()
                        .is_some_and(|e| e.is_conditional_check_failed_exception()) => {}
                Err(err) => return Err(classify("dynamodb:PutItem", err).into()),
            }
            *self.tenure.lock().unwrap_or_else(|e| e.into_inner()) = None;
            match self.read().await? {
                Some(record)
                    if record.holder != self.spec.holder
                        && record.expires_at >= from_millis(self.clock.now().as_millis()) =>
                {
                    return Ok(LeaseStatus::HeldByOther {
                        holder: record.holder,
                        until: record.expires_at,
                    });
                }
                // Released, expired or ours in the meantime: try again.
                other => last_seen = other,
            }
        }
        let (holder, until) = match last_seen {
            Some(record) => (record.holder, record.expires_at),
            None => (
                "(unknown)".to_string(),
                from_millis(self.clock.now().as_millis()),
            ),
        };
        tracing::debug!(%holder, "lease contended; giving up for this round");
        Ok(LeaseStatus::HeldByOther { holder, until })
    }

    /// Deletes the item only if we hold it. A lease someone else holds now is left alone.
    #[instrument(skip(self), fields(table = %self.table, lease = %self.spec.name, holder = %self.spec.holder))]
    pub async fn release(&self) -> Result<(), LeaseError> {
        *self.tenure.lock().unwrap_or_else(|e| e.into_inner()) = None;
        let delete = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(self.key()))
            .condition_expression("#holder = :me")
            .expression_attribute_names("#holder", ATTR_HOLDER)
            .expression_attribute_values(":me", AttributeValue::S(self.spec.holder.clone()))
            .send()
            .await;
        match delete {
            Ok(_) => Ok(()),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                tracing::debug!("lease not ours any more; nothing to release");
                Ok(())
            }
            Err(err) => Err(classify("dynamodb:DeleteItem", err).into()),
        }
    }

    /// Deletes the lease whoever holds it, but only if it is still exactly `seen` (same holder,
    /// same expiry): an operator's `force-unlock` removes what they were shown, never a lease
    /// renewed or taken over since. Returns whether it was deleted.
    #[instrument(skip(self), fields(table = %self.table, lease = %self.spec.name, seen_holder = %seen.holder))]
    pub async fn force_release(&self, seen: &LeaseRecord) -> Result<bool, LeaseError> {
        let expires = seen
            .expires_at
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or_default();
        let delete = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(self.key()))
            .condition_expression("#holder = :holder AND #expires = :expires")
            .expression_attribute_names("#holder", ATTR_HOLDER)
            .expression_attribute_names("#expires", ATTR_EXPIRES_AT_MS)
            .expression_attribute_values(":holder", AttributeValue::S(seen.holder.clone()))
            .expression_attribute_values(":expires", AttributeValue::N(expires.to_string()))
            .send()
            .await;
        match delete {
            Ok(_) => Ok(true),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(err) => Err(classify("dynamodb:DeleteItem", err).into()),
        }
    }

    /// The lease item as stored (consistent read), or `None` when nobody holds it.
    #[instrument(skip(self), fields(table = %self.table, lease = %self.spec.name))]
    pub async fn read(&self) -> Result<Option<LeaseRecord>, LeaseError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(self.key()))
            .consistent_read(true)
            .send()
            .await
            .classify("dynamodb:GetItem")?;
        let Some(item) = output.item else {
            return Ok(None);
        };
        let malformed = |attribute| LeaseError::MalformedItem {
            table: self.table.clone(),
            name: self.spec.name.clone(),
            attribute,
        };
        let holder = match item.get(ATTR_HOLDER) {
            Some(AttributeValue::S(holder)) => holder.clone(),
            _ => return Err(malformed(ATTR_HOLDER)),
        };
        let number = |attribute: &'static str| match item.get(attribute) {
            Some(AttributeValue::N(n)) => n.parse::<u64>().ok(),
            _ => None,
        };
        let expires_at = number(ATTR_EXPIRES_AT_MS)
            .map(from_millis)
            .ok_or_else(|| malformed(ATTR_EXPIRES_AT_MS))?;
        Ok(Some(LeaseRecord {
            holder,
            expires_at,
            acquired_at: number(ATTR_ACQUIRED_AT_MS).map(from_millis),
        }))
    }
}

/// Creates the lease table if it is missing (hash key `lease`, on-demand billing, tagged
/// `ballast.dev/managed=true`) and waits until it is ACTIVE. Safe to call concurrently.
#[instrument(skip(client))]
pub async fn ensure_table(client: &Client, table: &str) -> Result<(), LeaseError> {
    let status = match table_status(client, table).await? {
        Some(status) => status,
        None => {
            let created = client
                .create_table()
                .table_name(table)
                .attribute_definitions(
                    AttributeDefinition::builder()
                        .attribute_name(ATTR_LEASE)
                        .attribute_type(ScalarAttributeType::S)
                        .build()
                        .built("dynamodb:CreateTable")?,
                )
                .key_schema(
                    KeySchemaElement::builder()
                        .attribute_name(ATTR_LEASE)
                        .key_type(KeyType::Hash)
                        .build()
                        .built("dynamodb:CreateTable")?,
                )
                .billing_mode(BillingMode::PayPerRequest)
                .tags(
                    Tag::builder()
                        .key(ballast_blueprint::OWNERSHIP_MANAGED_TAG)
                        .value("true")
                        .build()
                        .built("dynamodb:CreateTable")?,
                )
                .send()
                .await
                .classify("dynamodb:CreateTable");
            match created {
                Ok(output) => {
                    tracing::info!(table, "created lease table");
                    output
                        .table_description
                        .and_then(|d| d.table_status)
                        .unwrap_or(TableStatus::Creating)
                }
                // Someone else is creating it right now.
                Err(err) if err.is_conflict() => TableStatus::Creating,
                Err(err) => return Err(err.into()),
            }
        }
    };
    wait_active(client, table, status).await
}

async fn table_status(client: &Client, table: &str) -> Result<Option<TableStatus>, LeaseError> {
    match client
        .describe_table()
        .table_name(table)
        .send()
        .await
        .classify("dynamodb:DescribeTable")
    {
        Ok(output) => Ok(Some(
            output
                .table
                .and_then(|t| t.table_status)
                .unwrap_or(TableStatus::Creating),
        )),
        Err(err) if err.is_not_found() => Ok(None),
        Err(err) => Err(err.into()),
    }
}

async fn wait_active(
    client: &Client,
    table: &str,
    mut status: TableStatus,
) -> Result<(), LeaseError> {
    let started = tokio::time::Instant::now();
    loop {
        match status {
            TableStatus::Active => return Ok(()),
            TableStatus::Creating | TableStatus::Updating => {}
            other => {
                return Err(LeaseError::TableNotActive {
                    table: table.to_string(),
                    status: other.as_str().to_string(),
                    waited: started.elapsed(),
                });
            }
        }
        if started.elapsed() >= TABLE_DEADLINE {
            return Err(LeaseError::TableNotActive {
                table: table.to_string(),
                status: status.as_str().to_string(),
                waited: started.elapsed(),
            });
        }
        tokio::time::sleep(TABLE_POLL).await;
        // A table that vanished while we waited is reported as not active.
        status = table_status(client, table)
            .await?
            .unwrap_or(TableStatus::Deleting);
    }
}

fn from_millis(millis: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(millis)
}
