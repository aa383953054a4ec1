//! Key schemas, throughput and global secondary indexes of a table, and the wait for it and
//! its indexes to be ACTIVE.

use super::*;

pub(super) fn attr_type(kind: bpl::AttributeType) -> ScalarAttributeType {
    match kind {
        bpl::AttributeType::S => ScalarAttributeType::S,
        bpl::AttributeType::N => ScalarAttributeType::N,
        bpl::AttributeType::B => ScalarAttributeType::B,
    }
}

pub(super) fn key_schema(
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

pub(super) fn throughput(
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
pub(super) fn desired_indexes(table: &bpl::Table) -> Vec<IndexKeys> {
    let mut indexes: Vec<IndexKeys> = table
        .global_secondary_indexes
        .iter()
        .map(|g| IndexKeys {
            name: Some(g.name.clone()),
            keys: keys_of(&g.hash_key, g.range_key.as_ref()),
        })
        .collect();
    indexes.sort_by(|a, b| a.name.cmp(&b.name));
    indexes
}

/// The key attributes of a table and of all its indexes, with their types.
pub(super) fn key_attributes(table: &bpl::Table) -> BTreeMap<String, ScalarAttributeType> {
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

/// Index name → its keys, from a table state's indexes (an unnamed one is left out).
pub(super) fn indexes_by_name(indexes: Option<&Vec<IndexKeys>>) -> BTreeMap<&str, &[KeyAttribute]> {
    indexes
        .into_iter()
        .flatten()
        .filter_map(|g| Some((g.name.as_deref()?, g.keys.as_slice())))
        .collect()
}

pub(super) fn index_projection(g: &bpl::GlobalSecondaryIndex) -> Projection {
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
pub(super) async fn update_indexes(
    ctx: &ApplyContext<'_>,
    desired: &DesiredState,
    table: &bpl::Table,
    live: &LiveState,
    want: &TableState<Desired>,
    have: &TableState<Live>,
) -> Result<(), ProvisionError> {
    let ddb = &ctx.clients.dynamodb;
    let err = || ProvisionError::aws(&desired.id);
    let live_indexes = indexes_by_name(have.indexes.as_ref());
    let wanted = indexes_by_name(want.indexes.exact());
    for (name, keys) in &live_indexes {
        if wanted.get(name) == Some(keys) {
            continue;
        }
        let delete = DeleteGlobalSecondaryIndexAction::builder()
            .index_name(*name)
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
        let name = g.name.as_str();
        if live_indexes.contains_key(name) && live_indexes.get(name) == wanted.get(name) {
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

pub(super) async fn wait_active(
    ctx: &ApplyContext<'_>,
    desired: &DesiredState,
) -> Result<(), ProvisionError> {
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
