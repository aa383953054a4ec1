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

use super::queue::canonical_key;
use super::support::{Poll, poll_until};
use super::{ApplyContext, ObserveContext, Observed, ResourceOps, declared};
use crate::provision::diff::FieldChange;
use crate::provision::error::ProvisionError;
use crate::provision::state::{
    Changes, DesiredState, Expect, Field, FieldName, LiveFields, LiveState, Ownership, Resolved,
};
use crate::provision::tagged::{TagSnapshot, tags_or_read};

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

fn key_json(key: &bpl::KeyAttribute, role: &str) -> Value {
    json!({"name": key.name, "type": format!("{:?}", key.kind), "role": role})
}

fn keys_of(hash: &bpl::KeyAttribute, range: Option<&bpl::KeyAttribute>) -> Value {
    let mut keys = vec![key_json(hash, "HASH")];
    if let Some(r) = range {
        keys.push(key_json(r, "RANGE"));
    }
    Value::Array(keys)
}

impl ResourceOps for Tables {
    const KIND: ResourceKind = ResourceKind::Table;
    type Field = TableField;

    fn desired(bp: &Blueprint, resolved: &Resolved) -> Vec<DesiredState> {
        bp.spec
            .tables
            .iter()
            .map(|t| {
                let mut fields = vec![
                    Field::create_only(
                        TableField::KeySchema,
                        keys_of(&t.hash_key, t.range_key.as_ref()),
                    ),
                    // Indexes are derived data: one added to or removed from the blueprint is
                    // created or deleted in place (UpdateTable), never by replacing the table.
                    Field::enforced(TableField::GlobalSecondaryIndexes, desired_indexes(t)),
                    Field::enforced(
                        TableField::BillingMode,
                        match t.billing_mode {
                            bpl::BillingMode::PayPerRequest => "PAY_PER_REQUEST",
                            bpl::BillingMode::Provisioned => "PROVISIONED",
                        },
                    ),
                    Field::enforced(TableField::PointInTimeRecovery, t.point_in_time_recovery),
                    Field::enforced(TableField::DeletionProtection, t.deletion_protection),
                ];
                // Only a TTL the blueprint sets is compared (and read: DescribeTimeToLive).
                if let Some(ttl) = &t.ttl_attribute {
                    fields.push(Field::enforced(TableField::TtlAttribute, ttl.clone()));
                }
                if t.billing_mode == bpl::BillingMode::Provisioned {
                    fields.push(Field::enforced(
                        TableField::ReadCapacity,
                        t.read_capacity.unwrap_or(1),
                    ));
                    fields.push(Field::enforced(
                        TableField::WriteCapacity,
                        t.write_capacity.unwrap_or(1),
                    ));
                }
                let encryption = match t.encryption.kind {
                    TableEncryptionKind::AwsOwned => Expect::Exact(json!({"type": "awsOwned"})),
                    TableEncryptionKind::AwsManaged => Expect::Exact(json!({"type": "awsManaged"})),
                    TableEncryptionKind::Kms => {
                        match (&t.encryption.kms_key_arn, &t.encryption.kms_key) {
                            (Some(arn), _) => Expect::Exact(json!({"type": "kms", "key": arn})),
                            (None, Some(name)) => {
                                match resolved.arn(&ResourceId::new(ResourceKind::KmsKey, name)) {
                                    Some(arn) => Expect::Exact(json!({"type": "kms", "key": arn})),
                                    None => Expect::KnownAfterApply,
                                }
                            }
                            (None, None) => Expect::KnownAfterApply,
                        }
                    }
                };
                fields.push(
                    Field::enforced(TableField::Encryption, Value::Null).with_expect(encryption),
                );
                let mut tags = bp.ownership_tags();
                tags.extend(t.tags.clone());
                DesiredState {
                    id: ResourceId::new(Self::KIND, &t.name),
                    physical_name: bp.table_name(t),
                    fields,
                    tags,
                    adopt: t.adopt,
                    deletion_policy: Blueprint::effective_deletion_policy(
                        Self::KIND,
                        t.deletion_policy,
                    ),
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
        if let Some(Value::Object(enc)) = desired.value(TableField::Encryption) {
            let sse = match enc.get("type").and_then(Value::as_str) {
                Some("kms") => Some(
                    SseSpecification::builder()
                        .enabled(true)
                        .sse_type(SseType::Kms)
                        .set_kms_master_key_id(
                            enc.get("key").and_then(Value::as_str).map(String::from),
                        )
                        .build(),
                ),
                Some("awsManaged") => Some(
                    SseSpecification::builder()
                        .enabled(true)
                        .sse_type(SseType::Kms)
                        .build(),
                ),
                _ => None,
            };
            request = request.set_sse_specification(sse);
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
        let changes: Vec<FieldChange> = [TableField::PointInTimeRecovery, TableField::TtlAttribute]
            .iter()
            .filter(|f| {
                desired
                    .field(**f)
                    .is_some_and(|field| !field.expect.satisfied_by(live.fields.field(**f)))
            })
            .map(|f| FieldChange {
                field: f.name().to_string(),
                live: String::new(),
                desired: String::new(),
                class: crate::provision::state::FieldClass::Enforced,
            })
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
        let changes = Changes::<TableField>::of(changes);
        let ddb = &ctx.clients.dynamodb;
        let err = || ProvisionError::aws(&desired.id);
        let name = &live.physical_id;
        if changes.has(TableField::PointInTimeRecovery) {
            let on = desired.value(TableField::PointInTimeRecovery) == Some(&Value::Bool(true));
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
            let (attribute, enabled) = match desired.value(TableField::TtlAttribute) {
                Some(Value::String(a)) => (a.clone(), true),
                _ => match live.fields.field(TableField::TtlAttribute) {
                    Some(Value::String(a)) => (a.clone(), false),
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
            update_indexes(ctx, desired, table, live).await?;
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
                && let Some(Value::Object(enc)) = desired.value(TableField::Encryption)
            {
                let spec = match enc.get("type").and_then(Value::as_str) {
                    Some("kms") => SseSpecification::builder()
                        .enabled(true)
                        .sse_type(SseType::Kms)
                        .set_kms_master_key_id(
                            enc.get("key").and_then(Value::as_str).map(String::from),
                        )
                        .build(),
                    Some("awsManaged") => SseSpecification::builder()
                        .enabled(true)
                        .sse_type(SseType::Kms)
                        .build(),
                    _ => SseSpecification::builder().enabled(false).build(),
                };
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
        if live.fields.field(TableField::DeletionProtection) == Some(&Value::Bool(true)) {
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

fn attr_type(kind: bpl::AttributeType) -> ScalarAttributeType {
    match kind {
        bpl::AttributeType::S => ScalarAttributeType::S,
        bpl::AttributeType::N => ScalarAttributeType::N,
        bpl::AttributeType::B => ScalarAttributeType::B,
    }
}

fn key_schema(
    hash: &bpl::KeyAttribute,
    range: Option<&bpl::KeyAttribute>,
    operation: &'static str,
) -> Result<Vec<KeySchemaElement>, AwsError> {
    let mut keys = vec![
        KeySchemaElement::builder()
            .attribute_name(&hash.name)
            .key_type(KeyType::Hash)
            .build()
            .built(operation)?,
    ];
    if let Some(r) = range {
        keys.push(
            KeySchemaElement::builder()
                .attribute_name(&r.name)
                .key_type(KeyType::Range)
                .build()
                .built(operation)?,
        );
    }
    Ok(keys)
}

fn throughput(
    read: Option<u64>,
    write: Option<u64>,
    operation: &'static str,
) -> Result<ProvisionedThroughput, AwsError> {
    ProvisionedThroughput::builder()
        .read_capacity_units(read.unwrap_or(1) as i64)
        .write_capacity_units(write.unwrap_or(1) as i64)
        .build()
        .built(operation)
}

/// The blueprint's indexes as compared with the live table: name and keys, sorted by name.
fn desired_indexes(table: &bpl::Table) -> Value {
    let mut indexes: Vec<&bpl::GlobalSecondaryIndex> =
        table.global_secondary_indexes.iter().collect();
    indexes.sort_by(|a, b| a.name.cmp(&b.name));
    Value::Array(
        indexes
            .into_iter()
            .map(|g| json!({"name": g.name, "keys": keys_of(&g.hash_key, g.range_key.as_ref())}))
            .collect(),
    )
}

/// The key attributes of a table and of all its indexes, with their types.
fn key_attributes(table: &bpl::Table) -> BTreeMap<String, ScalarAttributeType> {
    let mut definitions = BTreeMap::new();
    let indexes = table
        .global_secondary_indexes
        .iter()
        .flat_map(|g| std::iter::once(&g.hash_key).chain(g.range_key.as_ref()));
    for key in std::iter::once(&table.hash_key)
        .chain(table.range_key.as_ref())
        .chain(indexes)
    {
        definitions.insert(key.name.clone(), attr_type(key.kind));
    }
    definitions
}

/// Index name → compared form (its keys), from a `globalSecondaryIndexes` value.
fn indexes_by_name(value: Option<&Value>) -> BTreeMap<String, Value> {
    value
        .and_then(Value::as_array)
        .map(|indexes| {
            indexes
                .iter()
                .filter_map(|g| {
                    let name = g.get("name")?.as_str()?.to_owned();
                    Some((name, g.get("keys").cloned().unwrap_or(Value::Null)))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn index_projection(g: &bpl::GlobalSecondaryIndex) -> Projection {
    let projection_type = match g.projection {
        bpl::Projection::All => ProjectionType::All,
        bpl::Projection::KeysOnly => ProjectionType::KeysOnly,
        bpl::Projection::Include => ProjectionType::Include,
    };
    Projection::builder()
        .projection_type(projection_type)
        .set_non_key_attributes(
            (!g.non_key_attributes.is_empty()).then(|| g.non_key_attributes.clone()),
        )
        .build()
}

/// Brings the live indexes to the blueprint's in place: deletes those the blueprint dropped or
/// whose keys changed, then creates the missing ones. DynamoDB takes one index creation or
/// deletion per UpdateTable and none while another is building, so each waits for the table
/// and all its indexes to be ACTIVE. The table and its items are never touched.
#[instrument(skip_all, fields(table = %live.physical_id))]
async fn update_indexes(
    ctx: &ApplyContext<'_>,
    desired: &DesiredState,
    table: &bpl::Table,
    live: &LiveState,
) -> Result<(), ProvisionError> {
    let ddb = &ctx.clients.dynamodb;
    let err = || ProvisionError::aws(&desired.id);
    let live_indexes = indexes_by_name(live.fields.field(TableField::GlobalSecondaryIndexes));
    let wanted = indexes_by_name(desired.value(TableField::GlobalSecondaryIndexes));
    for (name, keys) in &live_indexes {
        if wanted.get(name) == Some(keys) {
            continue;
        }
        let delete = DeleteGlobalSecondaryIndexAction::builder()
            .index_name(name)
            .build()
            .built("dynamodb:UpdateTable")
            .map_err(err())?;
        ddb.update_table()
            .table_name(&live.physical_id)
            .global_secondary_index_updates(
                GlobalSecondaryIndexUpdate::builder().delete(delete).build(),
            )
            .send()
            .await
            .classify("dynamodb:UpdateTable")
            .map_err(err())?;
        wait_active(ctx, desired).await?;
    }
    let provisioned = table.billing_mode == bpl::BillingMode::Provisioned;
    for g in &table.global_secondary_indexes {
        if live_indexes.contains_key(&g.name) && live_indexes.get(&g.name) == wanted.get(&g.name) {
            continue;
        }
        let mut create = CreateGlobalSecondaryIndexAction::builder()
            .index_name(&g.name)
            .set_key_schema(Some(
                key_schema(&g.hash_key, g.range_key.as_ref(), "dynamodb:UpdateTable")
                    .map_err(err())?,
            ))
            .projection(index_projection(g));
        if provisioned {
            create = create.provisioned_throughput(
                throughput(g.read_capacity, g.write_capacity, "dynamodb:UpdateTable")
                    .map_err(err())?,
            );
        }
        let mut request = ddb.update_table().table_name(&live.physical_id);
        // Every key attribute of the table and its indexes, not only the new index's: AWS
        // merges the list, but moto 5.2.5 replaces the table's definitions with it.
        for (name, kind) in key_attributes(table) {
            request = request.attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(name)
                    .attribute_type(kind)
                    .build()
                    .built("dynamodb:UpdateTable")
                    .map_err(err())?,
            );
        }
        request
            .global_secondary_index_updates(
                GlobalSecondaryIndexUpdate::builder()
                    .create(
                        create
                            .build()
                            .built("dynamodb:UpdateTable")
                            .map_err(err())?,
                    )
                    .build(),
            )
            .send()
            .await
            .classify("dynamodb:UpdateTable")
            .map_err(err())?;
        wait_active(ctx, desired).await?;
    }
    Ok(())
}

async fn wait_active(ctx: &ApplyContext<'_>, desired: &DesiredState) -> Result<(), ProvisionError> {
    poll_until(&ctx.readiness, &desired.id, "table ACTIVE", || async {
        let out = ctx
            .clients
            .dynamodb
            .describe_table()
            .table_name(&desired.physical_name)
            .send()
            .await
            .classify("dynamodb:DescribeTable")
            .map_err(ProvisionError::aws(&desired.id))?;
        // An index being created or deleted keeps the table from taking another index update.
        if out.table.is_some_and(|t| {
            t.table_status == Some(TableStatus::Active)
                && t.global_secondary_indexes()
                    .iter()
                    .all(|g| g.index_status == Some(IndexStatus::Active))
        }) {
            return Ok(Poll::Ready(()));
        }
        Ok(Poll::Pending)
    })
    .await
}

/// The reads beyond DescribeTable and tags that the blueprint's fields need.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct TableReads {
    /// DescribeContinuousBackups: `pointInTimeRecovery` (declared for every table, default on).
    pitr: bool,
    /// DescribeTimeToLive: `ttlAttribute`, only when the blueprint sets one.
    ttl: bool,
}

impl TableReads {
    fn of(bp: &Blueprint, id: &ResourceId) -> Self {
        match bp.table(&id.name) {
            Some(t) => Self {
                pitr: true,
                ttl: t.ttl_attribute.is_some(),
            },
            None => Self::default(),
        }
    }
}

/// `None` when the table does not exist.
#[instrument(skip_all, fields(table = %name))]
async fn read_table(
    ddb: &aws_sdk_dynamodb::Client,
    id: &ResourceId,
    name: &str,
    resolved: &Resolved,
    bp: &Blueprint,
    tagged: &TagSnapshot,
    reads: TableReads,
) -> Result<Option<LiveState>, ProvisionError> {
    let described = ddb
        .describe_table()
        .table_name(name)
        .send()
        .await
        .classify("dynamodb:DescribeTable");
    let table = match described {
        Ok(out) => out.table.ok_or_else(|| ProvisionError::Unexpected {
            resource: id.clone(),
            operation: "dynamodb:DescribeTable",
            detail: "no table description".into(),
        })?,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(ProvisionError::aws(id)(e)),
    };
    let arn = table.table_arn.clone();
    let (backups, ttl, tags) = tokio::try_join!(
        async {
            if !reads.pitr {
                return Ok(None);
            }
            ddb.describe_continuous_backups()
                .table_name(name)
                .send()
                .await
                .classify("dynamodb:DescribeContinuousBackups")
                .map(Some)
                .map_err(ProvisionError::aws(id))
        },
        async {
            if !reads.ttl {
                return Ok(None);
            }
            ddb.describe_time_to_live()
                .table_name(name)
                .send()
                .await
                .classify("dynamodb:DescribeTimeToLive")
                .map(Some)
                .map_err(ProvisionError::aws(id))
        },
        tags_or_read(tagged, arn.as_deref(), || async {
            let Some(arn) = &arn else {
                return Ok(BTreeMap::new());
            };
            Ok(ddb
                .list_tags_of_resource()
                .resource_arn(arn)
                .send()
                .await
                .classify("dynamodb:ListTagsOfResource")
                .map_err(ProvisionError::aws(id))?
                .tags
                .unwrap_or_default()
                .into_iter()
                .map(|t| (t.key, t.value))
                .collect::<BTreeMap<String, String>>())
        }),
    )?;
    let types: BTreeMap<String, String> = table
        .attribute_definitions()
        .iter()
        .map(|d| {
            (
                d.attribute_name.clone(),
                d.attribute_type.as_str().to_string(),
            )
        })
        .collect();
    let keys = |schema: &[KeySchemaElement]| {
        Value::Array(
            schema
                .iter()
                .map(|k| {
                    json!({"name": k.attribute_name, "type": types.get(&k.attribute_name), "role": k.key_type.as_str()})
                })
                .collect(),
        )
    };
    let mut fields = BTreeMap::new();
    fields.put(TableField::KeySchema, keys(table.key_schema()));
    let mut indexes: Vec<(Option<&str>, Value)> = table
        .global_secondary_indexes()
        .iter()
        .map(|g| {
            (
                g.index_name(),
                json!({"name": g.index_name, "keys": keys(g.key_schema())}),
            )
        })
        .collect();
    // DescribeTable lists indexes in no promised order; the blueprint's are compared by name.
    indexes.sort_by(|a, b| a.0.cmp(&b.0));
    fields.put(
        TableField::GlobalSecondaryIndexes,
        Value::Array(indexes.into_iter().map(|(_, v)| v).collect()),
    );
    // Provisioned tables come back without BillingModeSummary.
    let billing = table
        .billing_mode_summary
        .as_ref()
        .and_then(|b| b.billing_mode.as_ref())
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "PROVISIONED".into());
    if billing == "PROVISIONED"
        && let Some(t) = &table.provisioned_throughput
    {
        fields.put(
            TableField::ReadCapacity,
            Value::from(t.read_capacity_units.unwrap_or(0)),
        );
        fields.put(
            TableField::WriteCapacity,
            Value::from(t.write_capacity_units.unwrap_or(0)),
        );
    }
    fields.put(TableField::BillingMode, Value::from(billing));
    if let Some(backups) = backups {
        let pitr = backups
            .continuous_backups_description
            .and_then(|d| d.point_in_time_recovery_description)
            .and_then(|p| p.point_in_time_recovery_status)
            .is_some_and(|s| s.as_str() == "ENABLED");
        fields.put(TableField::PointInTimeRecovery, Value::Bool(pitr));
    }
    if let Some(ttl) = ttl {
        let ttl_attribute = ttl
            .time_to_live_description
            .filter(|d| {
                d.time_to_live_status
                    .as_ref()
                    .is_some_and(|s| matches!(s.as_str(), "ENABLED" | "ENABLING"))
            })
            .and_then(|d| d.attribute_name);
        fields.put(
            TableField::TtlAttribute,
            ttl_attribute.map(Value::from).unwrap_or(Value::Null),
        );
    }
    fields.put(
        TableField::DeletionProtection,
        Value::Bool(table.deletion_protection_enabled.unwrap_or(false)),
    );
    let encryption = match table.sse_description.as_ref() {
        Some(sse)
            if sse
                .status
                .as_ref()
                .is_some_and(|s| matches!(s.as_str(), "ENABLED" | "ENABLING")) =>
        {
            match &sse.kms_master_key_arn {
                Some(key) => {
                    let canonical = canonical_key(resolved, bp, key);
                    if canonical == *key && key.contains("alias/aws/dynamodb") {
                        json!({"type": "awsManaged"})
                    } else {
                        json!({"type": "kms", "key": canonical})
                    }
                }
                None => json!({"type": "awsManaged"}),
            }
        }
        _ => json!({"type": "awsOwned"}),
    };
    fields.put(TableField::Encryption, encryption);
    Ok(Some(LiveState {
        id: id.clone(),
        physical_name: name.to_string(),
        physical_id: name.to_string(),
        arn,
        ownership: Ownership::from_tags(&tags, &bp.metadata.name),
        tags,
        fields,
    }))
}
