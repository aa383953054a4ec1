//! Reading one table's live state: DescribeTable, and the PITR, TTL and tag reads its
//! blueprint's fields need.

use super::*;

/// The reads beyond DescribeTable and tags that the blueprint's fields need.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct TableReads {
    /// DescribeContinuousBackups: `pointInTimeRecovery` (declared for every table, default on).
    pub(super) pitr: bool,
    /// DescribeTimeToLive: `ttlAttribute`, only when the blueprint sets one.
    pub(super) ttl: bool,
}

impl TableReads {
    pub(super) fn of(bp: &Blueprint, id: &ResourceId) -> Self {
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
pub(super) async fn read_table(
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
        schema
            .iter()
            .map(|k| KeyAttribute {
                name: k.attribute_name.clone(),
                attribute_type: types.get(&k.attribute_name).cloned(),
                role: k.key_type.as_str().to_string(),
            })
            .collect::<Vec<_>>()
    };
    let mut indexes: Vec<IndexKeys> = table
        .global_secondary_indexes()
        .iter()
        .map(|g| IndexKeys {
            name: g.index_name.clone(),
            keys: keys(g.key_schema()),
        })
        .collect();
    // DescribeTable lists indexes in no promised order; the blueprint's are compared by name.
    indexes.sort_by(|a, b| a.name.cmp(&b.name));
    // Provisioned tables come back without BillingModeSummary.
    let billing = table
        .billing_mode_summary
        .as_ref()
        .and_then(|b| b.billing_mode.as_ref())
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "PROVISIONED".into());
    let throughput = table
        .provisioned_throughput
        .as_ref()
        .filter(|_| billing == "PROVISIONED");
    // A negative count (never reported) reads as unset and so differs from any desired one.
    let capacity = |units: Option<i64>| u64::try_from(units.unwrap_or(0)).ok();
    let point_in_time_recovery = backups.map(|backups| {
        backups
            .continuous_backups_description
            .and_then(|d| d.point_in_time_recovery_description)
            .and_then(|p| p.point_in_time_recovery_status)
            .is_some_and(|s| s.as_str() == "ENABLED")
    });
    let ttl_attribute = ttl.map(|ttl| {
        ttl.time_to_live_description
            .filter(|d| {
                d.time_to_live_status
                    .as_ref()
                    .is_some_and(|s| matches!(s.as_str(), "ENABLED" | "ENABLING"))
            })
            .and_then(|d| d.attribute_name)
    });
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
                        TableEncryption::AwsManaged
                    } else {
                        TableEncryption::Kms { key: canonical }
                    }
                }
                None => TableEncryption::AwsManaged,
            }
        }
        _ => TableEncryption::AwsOwned,
    };
    let state = TableState {
        key_schema: Some(keys(table.key_schema())),
        indexes: Some(indexes),
        read_capacity: throughput.and_then(|t| capacity(t.read_capacity_units)),
        write_capacity: throughput.and_then(|t| capacity(t.write_capacity_units)),
        billing_mode: Some(billing),
        point_in_time_recovery,
        ttl_attribute,
        deletion_protection: Some(table.deletion_protection_enabled.unwrap_or(false)),
        encryption: Some(encryption),
    };
    Ok(Some(LiveState {
        id: id.clone(),
        physical_name: name.to_string(),
        physical_id: name.to_string(),
        arn,
        ownership: Ownership::from_tags(&tags, &bp.metadata.name),
        tags,
        fields: state.live_fields(),
        typed: TypedLive::new(state),
    }))
}
