//! DynamoDB tables. DescribeTable omits BillingModeSummary for provisioned tables, and PITR and
//! TTL live behind their own calls (TTL is read only for tables whose blueprint sets it).

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode as DdbBilling, CreateGlobalSecondaryIndexAction,
    DeleteGlobalSecondaryIndexAction, GlobalSecondaryIndex, GlobalSecondaryIndexUpdate,
    IndexStatus, KeySchemaElement, KeyType, PointInTimeRecoverySpecification, Projection,
    ProjectionType, ProvisionedThroughput, ScalarAttributeType, SseSpecification, SseType,
    TableStatus, Tag, TimeToLiveSpecification,
};
use ballast_aws::{AwsError, BuildResultExt, SdkResultExt};
use ballast_blueprint::{self as bpl, Blueprint, ResourceId, ResourceKind, TableEncryptionKind};
use futures::future::try_join_all;
use serde_json::{Value, json};
use tracing::instrument;

mod indexes;
mod read;

use indexes::{
    desired_indexes, index_projection, key_attributes, key_schema, throughput, update_indexes,
    wait_active,
};
use read::{TableReads, read_table};

use super::queue::canonical_key;
use super::support::{Poll, poll_until};
use super::{ApplyContext, ObserveContext, Observed, ResourceOps, declared};
use crate::provision::diff::FieldChange;
use crate::provision::error::ProvisionError;
use crate::provision::state::{Changes, DesiredState, LiveState, Ownership, Resolved};
use crate::provision::tagged::{TagSnapshot, tags_or_read};
use crate::provision::typed::{Desired, FieldValue, Live, TypedDesired, TypedLive, Want};

pub struct Tables;

crate::provision::state::field_names! {
    /// The fields of Tables, as plan and drift output name them.
    pub enum TableField {
        KeySchema = "keySchema",
        GlobalSecondaryIndexes = "globalSecondaryIndexes",
        BillingMode = "billingMode",
        PointInTimeRecovery = "pointInTimeRecovery",
        DeletionProtection = "deletionProtection",
        TtlAttribute = "ttlAttribute",
        ReadCapacity = "readCapacity",
        WriteCapacity = "writeCapacity",
        Encryption = "encryption",
    }
}

crate::provision::typed::typed_state! {
    /// A table's compared state: `desired` builds it from the blueprint, `observe` from
    /// DescribeTable and the PITR and TTL reads (see [`read::read_table`]).
    pub struct TableState for TableField {
        KeySchema => key_schema: Vec<KeyAttribute> = CreateOnly,
        /// Indexes are derived data: one added to or removed from the blueprint is created or
        /// deleted in place (UpdateTable), never by replacing the table. Sorted by name.
        GlobalSecondaryIndexes => indexes: Vec<IndexKeys> = Enforced,
        /// `PAY_PER_REQUEST` or `PROVISIONED`, as DynamoDB names them.
        BillingMode => billing_mode: String = Enforced,
        PointInTimeRecovery => point_in_time_recovery: bool = Enforced,
        DeletionProtection => deletion_protection: bool = Enforced,
        /// Compared (and read: DescribeTimeToLive) only when the blueprint sets one; `None`:
        /// TTL disabled.
        TtlAttribute => ttl_attribute: Option<String> = Enforced,
        /// Compared only for provisioned tables.
        ReadCapacity => read_capacity: u64 = Enforced,
        WriteCapacity => write_capacity: u64 = Enforced,
        Encryption => encryption: TableEncryption = Enforced,
    }
}

/// One key attribute of a table or index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyAttribute {
    pub name: String,
    /// `S`, `N` or `B`; `None` when DescribeTable lists no definition for the attribute.
    pub attribute_type: Option<String>,
    /// `HASH` or `RANGE`.
    pub role: String,
}

impl FieldValue for KeyAttribute {
    fn to_value(&self) -> Value {
        json!({"name": self.name, "type": self.attribute_type, "role": self.role})
    }
}

/// A global secondary index as compared: its name and keys (projection and throughput are not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexKeys {
    /// `None` only if DescribeTable omits it.
    pub name: Option<String>,
    pub keys: Vec<KeyAttribute>,
}

impl FieldValue for IndexKeys {
    fn to_value(&self) -> Value {
        json!({"name": self.name, "keys": self.keys.to_value()})
    }
}

/// Server-side encryption of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableEncryption {
    AwsOwned,
    AwsManaged,
    /// The key by its canonical ARN (see [`canonical_key`]).
    Kms {
        key: String,
    },
}

impl FieldValue for TableEncryption {
    fn to_value(&self) -> Value {
        match self {
            TableEncryption::AwsOwned => json!({"type": "awsOwned"}),
            TableEncryption::AwsManaged => json!({"type": "awsManaged"}),
            TableEncryption::Kms { key } => json!({"type": "kms", "key": key}),
        }
    }
}

impl TableEncryption {
    /// The SSE specification that sets this encryption; `None` for AWS-owned keys (the
    /// default, which a create leaves unset).
    fn specification(&self) -> Option<SseSpecification> {
        match self {
            TableEncryption::Kms { key } => Some(
                SseSpecification::builder()
                    .enabled(true)
                    .sse_type(SseType::Kms)
                    .kms_master_key_id(key)
                    .build(),
            ),
            TableEncryption::AwsManaged => Some(
                SseSpecification::builder()
                    .enabled(true)
                    .sse_type(SseType::Kms)
                    .build(),
            ),
            TableEncryption::AwsOwned => None,
        }
    }
}

fn key_attribute(key: &bpl::KeyAttribute, role: &str) -> KeyAttribute {
    KeyAttribute {
        name: key.name.clone(),
        attribute_type: Some(format!("{:?}", key.kind)),
        role: role.to_string(),
    }
}

fn keys_of(hash: &bpl::KeyAttribute, range: Option<&bpl::KeyAttribute>) -> Vec<KeyAttribute> {
    let mut keys = vec![key_attribute(hash, "HASH")];
    if let Some(r) = range {
        keys.push(key_attribute(r, "RANGE"));
    }
    keys
}

/// The table's typed desired state; a key named by reference resolves through `resolved`.
fn desired_state(t: &bpl::Table, resolved: &Resolved) -> TableState<Desired> {
    let provisioned = t.billing_mode == bpl::BillingMode::Provisioned;
    let encryption = match t.encryption.kind {
        TableEncryptionKind::AwsOwned => Want::Exact(TableEncryption::AwsOwned),
        TableEncryptionKind::AwsManaged => Want::Exact(TableEncryption::AwsManaged),
        TableEncryptionKind::Kms => {
            let key = match (&t.encryption.kms_key_arn, &t.encryption.kms_key) {
                (Some(arn), _) => Some(arn.clone()),
                (None, Some(name)) => resolved
                    .arn(&ResourceId::new(ResourceKind::KmsKey, name))
                    .map(str::to_string),
                (None, None) => None,
            };
            Want::exact_or_later(key.map(|key| TableEncryption::Kms { key }))
        }
    };
    let capacity = |units: Option<u64>| match provisioned {
        true => Want::Exact(units.unwrap_or(1)),
        false => Want::Unchecked,
    };
    TableState {
        key_schema: Want::Exact(keys_of(&t.hash_key, t.range_key.as_ref())),
        indexes: Want::Exact(desired_indexes(t)),
        billing_mode: Want::Exact(
            match t.billing_mode {
                bpl::BillingMode::PayPerRequest => "PAY_PER_REQUEST",
                bpl::BillingMode::Provisioned => "PROVISIONED",
            }
            .to_string(),
        ),
        point_in_time_recovery: Want::Exact(t.point_in_time_recovery),
        deletion_protection: Want::Exact(t.deletion_protection),
        ttl_attribute: match &t.ttl_attribute {
            Some(ttl) => Want::Exact(Some(ttl.clone())),
            None => Want::Unchecked,
        },
        read_capacity: capacity(t.read_capacity),
        write_capacity: capacity(t.write_capacity),
        encryption,
    }
}

impl ResourceOps for Tables {
    const KIND: ResourceKind = ResourceKind::Table;
    type Field = TableField;

    fn desired(bp: &Blueprint, resolved: &Resolved) -> Vec<DesiredState> {
        bp.spec
            .tables
            .iter()
            .map(|t| {
                let state = desired_state(t, resolved);
                let mut tags = bp.ownership_tags_for(&ResourceId::new(Self::KIND, &t.name));
                tags.extend(t.tags.clone());
                DesiredState {
                    id: ResourceId::new(Self::KIND, &t.name),
                    physical_name: bp.table_name(t),
                    fields: state.expected_fields(),
                    tags,
                    adopt: t.adopt,
                    deletion_policy: Blueprint::effective_deletion_policy(
                        Self::KIND,
                        t.deletion_policy,
                    ),
                    typed: TypedDesired::new(state),
                }
            })
            .collect()
    }

    /// DescribeTable per declared table (ResourceNotFound: missing), no ListTables: owned tables
    /// no longer declared come from the tagging snapshot.
    #[instrument(skip_all, fields(kind = "table"))]
    async fn observe(ctx: &ObserveContext<'_>) -> Result<Observed, ProvisionError> {
        let ddb = ctx.clients.dynamodb();
        let bp = ctx.blueprint;
        let declared = declared(bp, Self::KIND);
        let prefix = format!("{}-", bp.metadata.name);
        let mut candidates: Vec<(ResourceId, String, bool)> = declared
            .iter()
            .map(|(id, name)| (id.clone(), name.clone(), true))
            .collect();
        for (_, name) in ctx.shared.tagged.resources("dynamodb", "table/") {
            if !declared.iter().any(|(_, n)| n == name)
                && let Some(short) = name.strip_prefix(&prefix)
            {
                candidates.push((ResourceId::new(Self::KIND, short), name.to_string(), false));
            }
        }
        let reads = candidates.iter().map(|(id, name, is_declared)| {
            // A removed table has nothing to compare: its description and tags suffice.
            let reads = match is_declared {
                true => TableReads::of(bp, id),
                false => TableReads::default(),
            };
            read_table(ddb, id, name, ctx.resolved, bp, &ctx.shared.tagged, reads)
        });
        let mut observed = Observed::default();
        for ((_, _, is_declared), live) in candidates.iter().zip(try_join_all(reads).await?) {
            if let Some(live) = live {
                observed.file(live, *is_declared);
            }
        }
        Ok(observed)
    }

    #[instrument(skip_all, fields(table = %desired.physical_name))]
    async fn create(
        ctx: &ApplyContext<'_>,
        desired: &DesiredState,
    ) -> Result<LiveState, ProvisionError> {
        let want = desired.state::<TableState<Desired>>()?;
        let ddb = &ctx.clients.dynamodb;
        let table =
            ctx.blueprint
                .table(&desired.id.name)
                .ok_or_else(|| ProvisionError::NotDeclared {
                    resource: desired.id.clone(),
                })?;
        let err = || ProvisionError::aws(&desired.id);
        let definitions = key_attributes(table);
        let provisioned = table.billing_mode == bpl::BillingMode::Provisioned;
        let mut request = ddb
            .create_table()
            .table_name(&desired.physical_name)
            .set_key_schema(Some(
                key_schema(
                    &table.hash_key,
                    table.range_key.as_ref(),
                    "dynamodb:CreateTable",
                )
                .map_err(err())?,
            ))
            .billing_mode(if provisioned {
                DdbBilling::Provisioned
            } else {
                DdbBilling::PayPerRequest
            })
            .deletion_protection_enabled(table.deletion_protection);
        for (name, kind) in definitions {
            request = request.attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(name)
                    .attribute_type(kind)
                    .build()
                    .built("dynamodb:CreateTable")
                    .map_err(err())?,
            );
        }
        if provisioned {
            request = request.provisioned_throughput(
                throughput(
                    table.read_capacity,
                    table.write_capacity,
                    "dynamodb:CreateTable",
                )
                .map_err(err())?,
            );
        }
        for g in &table.global_secondary_indexes {
            let mut index = GlobalSecondaryIndex::builder()
                .index_name(&g.name)
                .set_key_schema(Some(
                    key_schema(&g.hash_key, g.range_key.as_ref(), "dynamodb:CreateTable")
                        .map_err(err())?,
                ))
                .projection(index_projection(g));
            if provisioned {
                index = index.provisioned_throughput(
                    throughput(g.read_capacity, g.write_capacity, "dynamodb:CreateTable")
                        .map_err(err())?,
                );
            }
            request = request.global_secondary_indexes(
                index.build().built("dynamodb:CreateTable").map_err(err())?,
            );
        }
        if let Some(encryption) = want.encryption.exact() {
            request = request.set_sse_specification(encryption.specification());
        }
        for (k, v) in &desired.tags {
            request = request.tags(
                Tag::builder()
                    .key(k)
                    .value(v)
                    .build()
                    .built("dynamodb:CreateTable")
                    .map_err(err())?,
            );
        }
        request
            .send()
            .await
            .classify("dynamodb:CreateTable")
            .map_err(err())?;
        wait_active(ctx, desired).await?;
        let live = read_table(
            &ctx.clients.dynamodb,
            &desired.id,
            &desired.physical_name,
            ctx.resolved,
            ctx.blueprint,
            &TagSnapshot::default(),
            TableReads::of(ctx.blueprint, &desired.id),
        )
        .await?
        .ok_or_else(|| ProvisionError::Unexpected {
            resource: desired.id.clone(),
            operation: "dynamodb:DescribeTable",
            detail: "the table is ACTIVE but not found".into(),
        })?;
        // CreateTable sets neither PITR nor TTL: their own calls follow, as an update's would.
        let changes: Vec<FieldChange> = want
            .changes(live.state::<TableState<Live>>()?)
            .into_iter()
            .filter(|c| {
                matches!(
                    c.field,
                    TableField::PointInTimeRecovery | TableField::TtlAttribute
                )
            })
            .map(FieldChange::from)
            .collect();
        Self::update(ctx, desired, &live, &changes).await?;
        Ok(live)
    }

    #[instrument(skip_all, fields(table = %desired.physical_name))]
    async fn update(
        ctx: &ApplyContext<'_>,
        desired: &DesiredState,
        live: &LiveState,
        changes: &[FieldChange],
    ) -> Result<(), ProvisionError> {
        let want = desired.state::<TableState<Desired>>()?;
        let have = live.state::<TableState<Live>>()?;
        let changes = Changes::<TableField>::of(changes);
        let ddb = &ctx.clients.dynamodb;
        let err = || ProvisionError::aws(&desired.id);
        let name = &live.physical_id;
        if changes.has(TableField::PointInTimeRecovery) {
            let on = want.point_in_time_recovery.exact() == Some(&true);
            ddb.update_continuous_backups()
                .table_name(name)
                .point_in_time_recovery_specification(
                    PointInTimeRecoverySpecification::builder()
                        .point_in_time_recovery_enabled(on)
                        .build()
                        .built("dynamodb:UpdateContinuousBackups")
                        .map_err(err())?,
                )
                .send()
                .await
                .classify("dynamodb:UpdateContinuousBackups")
                .map_err(err())?;
        }
        if changes.has(TableField::TtlAttribute) {
            let (attribute, enabled) = match want.ttl_attribute.exact() {
                Some(Some(a)) => (a.clone(), true),
                _ => match &have.ttl_attribute {
                    Some(Some(a)) => (a.clone(), false),
                    _ => (String::new(), false),
                },
            };
            if !attribute.is_empty() {
                ddb.update_time_to_live()
                    .table_name(name)
                    .time_to_live_specification(
                        TimeToLiveSpecification::builder()
                            .attribute_name(attribute)
                            .enabled(enabled)
                            .build()
                            .built("dynamodb:UpdateTimeToLive")
                            .map_err(err())?,
                    )
                    .send()
                    .await
                    .classify("dynamodb:UpdateTimeToLive")
                    .map_err(err())?;
            }
        }
        if changes.has(TableField::GlobalSecondaryIndexes) {
            let table = ctx.blueprint.table(&desired.id.name).ok_or_else(|| {
                ProvisionError::NotDeclared {
                    resource: desired.id.clone(),
                }
            })?;
            update_indexes(ctx, desired, table, live, want, have).await?;
        }
        let table_changes = [
            TableField::BillingMode,
            TableField::ReadCapacity,
            TableField::WriteCapacity,
            TableField::DeletionProtection,
            TableField::Encryption,
        ];
        if changes.any(&table_changes) {
            let table = ctx.blueprint.table(&desired.id.name).ok_or_else(|| {
                ProvisionError::NotDeclared {
                    resource: desired.id.clone(),
                }
            })?;
            let provisioned = table.billing_mode == bpl::BillingMode::Provisioned;
            let mut request = ddb.update_table().table_name(name);
            if changes.has(TableField::BillingMode)
                || changes.has(TableField::ReadCapacity)
                || changes.has(TableField::WriteCapacity)
            {
                request = request.billing_mode(if provisioned {
                    DdbBilling::Provisioned
                } else {
                    DdbBilling::PayPerRequest
                });
                if provisioned {
                    request = request.provisioned_throughput(
                        throughput(
                            table.read_capacity,
                            table.write_capacity,
                            "dynamodb:UpdateTable",
                        )
                        .map_err(err())?,
                    );
                }
            }
            if changes.has(TableField::DeletionProtection) {
                request = request.deletion_protection_enabled(table.deletion_protection);
            }
            if changes.has(TableField::Encryption)
                && let Some(encryption) = want.encryption.exact()
            {
                // AWS-owned keys are restored by disabling SSE (the table's default).
                let spec = encryption
                    .specification()
                    .unwrap_or_else(|| SseSpecification::builder().enabled(false).build());
                request = request.sse_specification(spec);
            }
            request
                .send()
                .await
                .classify("dynamodb:UpdateTable")
                .map_err(err())?;
            wait_active(ctx, desired).await?;
        }
        if changes.tags()
            && let Some(arn) = &live.arn
        {
            let mut request = ddb.tag_resource().resource_arn(arn);
            for (k, v) in &desired.tags {
                request = request.tags(
                    Tag::builder()
                        .key(k)
                        .value(v)
                        .build()
                        .built("dynamodb:TagResource")
                        .map_err(err())?,
                );
            }
            request
                .send()
                .await
                .classify("dynamodb:TagResource")
                .map_err(err())?;
        }
        Ok(())
    }

    #[instrument(skip_all, fields(table = %live.physical_name))]
    async fn delete(ctx: &ApplyContext<'_>, live: &LiveState) -> Result<(), ProvisionError> {
        let ddb = &ctx.clients.dynamodb;
        let have = live.state::<TableState<Live>>()?;
        if have.deletion_protection == Some(true) {
            ddb.update_table()
                .table_name(&live.physical_id)
                .deletion_protection_enabled(false)
                .send()
                .await
                .classify("dynamodb:UpdateTable")
                .map_err(ProvisionError::aws(&live.id))?;
        }
        ProvisionError::unless_gone(
            &live.id,
            ddb.delete_table()
                .table_name(&live.physical_id)
                .send()
                .await
                .classify("dynamodb:DeleteTable"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provision::diff::Action;
    use crate::provision::state::FieldName;
    use crate::provision::typed::testing::{changed_fields, owned_live, typed_diff};

    fn blueprint() -> Blueprint {
        ballast_blueprint::parse(
            "t",
            "apiVersion: ballast.dev/v1\nkind: Blueprint\nmetadata: {name: t, region: us-east-1}\nspec:\n  tables:\n    - name: ledger\n      hashKey: {name: pk, type: S}\n      rangeKey: {name: sk, type: S}\n      billingMode: provisioned\n      readCapacity: 5\n      writeCapacity: 2\n      ttlAttribute: expires\n      globalSecondaryIndexes:\n        - {name: by-day, hashKey: {name: day, type: S}, projection: all, readCapacity: 1, writeCapacity: 1}\n",
        )
        .unwrap()
        .blueprint
    }

    #[test]
    fn a_table_differing_in_one_field_yields_exactly_that_change() {
        let bp = blueprint();
        let desired = Tables::desired(&bp, &Resolved::default());
        let want = desired[0].state::<TableState<Desired>>().unwrap();
        let same = want.assumed_live();
        let live = owned_live(&desired[0], same.clone(), same.live_fields());
        assert_eq!(typed_diff(&desired[0], &live), Action::NoChange);

        let mut drifted = same.clone();
        drifted.write_capacity = Some(9);
        let live = owned_live(&desired[0], drifted.clone(), drifted.live_fields());
        let action = typed_diff(&desired[0], &live);
        assert!(matches!(action, Action::Update { .. }), "{action:?}");
        assert_eq!(changed_fields(&action), vec!["writeCapacity"]);

        // An index dropped behind our back is an in-place update, a key schema a replacement.
        let mut drifted = same.clone();
        drifted.indexes = Some(Vec::new());
        let live = owned_live(&desired[0], drifted.clone(), drifted.live_fields());
        assert_eq!(
            changed_fields(&typed_diff(&desired[0], &live)),
            vec!["globalSecondaryIndexes"]
        );
        let mut drifted = same;
        drifted.key_schema = Some(keys_of(&bp.spec.tables[0].hash_key, None));
        let live = owned_live(&desired[0], drifted.clone(), drifted.live_fields());
        let action = typed_diff(&desired[0], &live);
        assert!(matches!(action, Action::Replace { .. }), "{action:?}");
        assert_eq!(changed_fields(&action), vec!["keySchema"]);
    }

    /// The rendered fields keep the shape the untyped state had (plan JSON is unchanged).
    #[test]
    fn rendered_fields_keep_their_shape() {
        let desired = Tables::desired(&blueprint(), &Resolved::default());
        let want = desired[0].state::<TableState<Desired>>().unwrap();
        let fields = want.assumed_live().live_fields();
        assert_eq!(
            fields[TableField::KeySchema.name()],
            json!([{"name": "pk", "type": "S", "role": "HASH"}, {"name": "sk", "type": "S", "role": "RANGE"}])
        );
        assert_eq!(
            fields[TableField::GlobalSecondaryIndexes.name()],
            json!([{"name": "by-day", "keys": [{"name": "day", "type": "S", "role": "HASH"}]}])
        );
        assert_eq!(fields[TableField::ReadCapacity.name()], json!(5));
        assert_eq!(fields[TableField::TtlAttribute.name()], json!("expires"));
        assert_eq!(
            fields[TableField::Encryption.name()],
            json!({"type": "awsOwned"})
        );
        assert_eq!(
            desired[0].fields.iter().map(|f| f.name).collect::<Vec<_>>(),
            TableField::ALL.iter().map(|f| f.name()).collect::<Vec<_>>()
        );
    }
}
