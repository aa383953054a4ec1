//! EC2 helpers shared by the VPC, subnet, endpoint and launch-template kinds.

use std::collections::BTreeSet;

use aws_sdk_ec2::types::{AttributeBooleanValue, Filter, ResourceType, Tag, TagSpecification};
use ballast_aws::SdkResultExt;
use ballast_blueprint::{Blueprint, OWNERSHIP_BLUEPRINT_TAG, ResourceId, ResourceKind, Tags};

use crate::provision::error::ProvisionError;
use crate::provision::state::DesiredState;

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

/// A list of ids sorted and deduplicated, so that the order AWS returns them in is not drift.
pub(crate) fn sorted(values: impl IntoIterator<Item = String>) -> Vec<String> {
    let set: BTreeSet<String> = values.into_iter().collect();
    set.into_iter().collect()
}

pub(crate) fn missing(desired: &DesiredState, kind: ResourceKind, name: &str) -> ProvisionError {
    ProvisionError::MissingDependency {
        resource: desired.id.clone(),
        dependency: ResourceId::new(kind, name),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::provision::state::{LiveState, Ownership, Resolved};
    use crate::provision::typed::{Live, TypedLive};

    /// A new VPC with two subnets, a gateway endpoint and an interface endpoint.
    pub(crate) fn network_blueprint() -> Blueprint {
        ballast_blueprint::parse(
            "t.yaml",
            r#"apiVersion: ballast.dev/v1
kind: Blueprint
metadata: {name: t, region: us-east-1}
spec:
  network:
    vpc:
      name: main
      cidr: 10.20.0.0/16
      subnets:
        - { name: a, cidr: 10.20.1.0/24, availabilityZone: us-east-1a }
        - { name: b, cidr: 10.20.2.0/24, availabilityZone: us-east-1b }
    endpoints:
      - { name: dynamodb, service: dynamodb, type: gateway }
      - { name: sqs, service: sqs, type: interface, subnets: [a, b], privateDns: true, securityGroupIds: [sg-2, sg-1] }
"#,
        )
        .unwrap()
        .blueprint
    }

    /// What observe finds of [`network_blueprint`] once applied: the VPC `vpc-1` with its
    /// private route table `rtb-1`, and the subnets `subnet-a` and `subnet-b` associated with it.
    pub(crate) fn network_resolved() -> Resolved {
        use crate::provision::kinds::subnet::SubnetState;
        use crate::provision::kinds::vpc::VpcState;
        let owned = |kind, name: &str, physical_id: &str, typed| LiveState {
            id: ResourceId::new(kind, name),
            physical_name: format!("t-{name}"),
            physical_id: physical_id.into(),
            arn: None,
            ownership: Ownership::Owned,
            tags: Tags::new(),
            fields: BTreeMap::new(),
            typed,
        };
        let mut resolved = Resolved::default();
        resolved.insert(owned(
            ResourceKind::Vpc,
            "main",
            "vpc-1",
            TypedLive::new(VpcState::<Live> {
                cidr: Some("10.20.0.0/16".to_string()),
                enable_dns_support: Some(true),
                enable_dns_hostnames: Some(true),
                private_route_table: Some(true),
                referenced: None,
                route_table_id: Some("rtb-1".to_string()),
            }),
        ));
        for name in ["a", "b"] {
            resolved.insert(owned(
                ResourceKind::Subnet,
                name,
                &format!("subnet-{name}"),
                TypedLive::new(SubnetState::<Live> {
                    vpc_id: Some("vpc-1".to_string()),
                    cidr: None,
                    availability_zone: None,
                    map_public_ip_on_launch: Some(false),
                    route_table: Some(Some("rtb-1".to_string())),
                    route_table_association_id: Some(format!("rtbassoc-{name}")),
                    referenced: None,
                }),
            ));
        }
        resolved
    }

    #[test]
    fn lists_canonicalize_sorted_and_deduplicated() {
        assert_eq!(
            sorted(vec!["b".to_string(), "a".to_string(), "b".to_string()]),
            ["a", "b"]
        );
    }
}
