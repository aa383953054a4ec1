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
use crate::provision::state::{
    Changes, DesiredState, Expect, Field, FieldName, LiveFields, LiveState, Ownership, Resolved,
};
use crate::provision::tagged::{TagSnapshot, tags_or_read};
use crate::provision::typed::{TypedDesired, TypedLive};

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
                let mut tags = bp.ownership_tags_for(&ResourceId::new(Self::KIND, &t.name));
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
                    typed: TypedDesired::untyped(),
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
