//! EC2 helpers shared by the VPC, subnet, endpoint and launch-template kinds.

use std::collections::BTreeSet;

use aws_sdk_ec2::types::{AttributeBooleanValue, Filter, ResourceType, Tag, TagSpecification};
use ballast_aws::SdkResultExt;
use ballast_blueprint::{Blueprint, OWNERSHIP_BLUEPRINT_TAG, ResourceId, ResourceKind, Tags};
use serde_json::Value;

use crate::provision::error::ProvisionError;
use crate::provision::state::{DesiredState, Expect, FieldName, LiveFields, LiveState};

pub(crate) fn filter(name: &str, values: impl IntoIterator<Item = impl Into<String>>) -> Filter {
    let mut f = Filter::builder().name(name);
    for v in values {
        f = f.values(v);
    }
    f.build()
}

/// `tag:ballast.dev/blueprint = <metadata.name>`: everything this blueprint owns.
pub(crate) fn owner_filter(bp: &Blueprint) -> Filter {
    filter(
        &format!("tag:{OWNERSHIP_BLUEPRINT_TAG}"),
        [bp.metadata.name.clone()],
    )
}

pub(crate) fn ec2_tags(tags: &[Tag]) -> Tags {
    tags.iter()
        .filter_map(|t| Some((t.key.clone()?, t.value.clone().unwrap_or_default())))
        .collect()
}

pub(crate) fn ec2_tag_list(tags: &Tags) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

pub(crate) fn tag_spec(resource_type: ResourceType, tags: &Tags) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(resource_type)
        .set_tags(Some(ec2_tag_list(tags)))
        .build()
}

/// CreateTags with every desired tag (existing values are overwritten, others kept).
pub(crate) async fn put_tags(
    ec2: &aws_sdk_ec2::Client,
    id: &ResourceId,
    resource: &str,
    tags: &Tags,
) -> Result<(), ProvisionError> {
    ec2.create_tags()
        .resources(resource)
        .set_tags(Some(ec2_tag_list(tags)))
        .send()
        .await
        .classify("ec2:CreateTags")
        .map_err(ProvisionError::aws(id))?;
    Ok(())
}

pub(crate) fn name_tag(tags: &Tags) -> Option<&str> {
    tags.get("Name").map(String::as_str)
}

/// The ownership tags of `id`, the blueprint's `extra` tags and the `Name` tag.
pub(crate) fn with_name(bp: &Blueprint, id: &ResourceId, extra: &Tags, name: &str) -> Tags {
    let mut tags = bp.ownership_tags_for(id);
    tags.extend(extra.clone());
    tags.insert("Name".into(), name.to_string());
    tags
}

pub(crate) fn bool_attr(value: bool) -> AttributeBooleanValue {
    AttributeBooleanValue::builder().value(value).build()
}

pub(crate) fn sorted(values: impl IntoIterator<Item = String>) -> Value {
    let set: BTreeSet<String> = values.into_iter().collect();
    Value::Array(set.into_iter().map(Value::String).collect())
}

pub(crate) fn strings(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

pub(crate) fn missing(desired: &DesiredState, kind: ResourceKind, name: &str) -> ProvisionError {
    ProvisionError::MissingDependency {
        resource: desired.id.clone(),
        dependency: ResourceId::new(kind, name),
    }
}

/// Whether a VPC or subnet is one the blueprint gives by id (`referenced` in its live state).
pub(crate) fn is_referenced<F: FieldName>(live: &LiveState, referenced: F) -> bool {
    live.fields.field(referenced) == Some(&Value::Bool(true))
}

pub(crate) fn exact_or_later(value: Option<Value>) -> Expect {
    value.map(Expect::Exact).unwrap_or(Expect::KnownAfterApply)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lists_canonicalize_sorted_and_deduplicated() {
        assert_eq!(
            sorted(vec!["b".to_string(), "a".to_string(), "b".to_string()]),
            json!(["a", "b"])
        );
    }
}
