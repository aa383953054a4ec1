//! The private route table of a new VPC, and the route tables one observe reads once for the
//! VPC and its subnets.

use std::collections::BTreeSet;

use ballast_aws::SdkResultExt;
use ballast_blueprint::{Blueprint, ResourceId, ResourceKind};

use super::ec2::filter;
use super::vpc::VpcState;
use crate::provision::error::ProvisionError;
use crate::provision::state::Resolved;
use crate::provision::typed::Live;

/// Name tag of the one private route table of a new VPC.
pub fn route_table_name(bp: &Blueprint, vpc: &ballast_blueprint::Vpc) -> String {
    format!("{}-{}-private", bp.metadata.name, vpc.name)
}

/// Route tables of some VPCs, read once per observe by the VPC observe and reused by the subnets'.
#[derive(Debug, Clone, Default)]
pub struct RouteTables {
    /// The VPCs all of whose route tables are in `tables`.
    pub vpc_ids: BTreeSet<String>,
    pub tables: Vec<aws_sdk_ec2::types::RouteTable>,
}

/// DescribeRouteTables filtered on `name` ∈ `values`; no call when `values` is empty.
pub(crate) async fn describe_route_tables(
    ec2: &aws_sdk_ec2::Client,
    id: &ResourceId,
    name: &str,
    values: &BTreeSet<String>,
) -> Result<Vec<aws_sdk_ec2::types::RouteTable>, ProvisionError> {
    if values.is_empty() {
        return Ok(Vec::new());
    }
    ec2.describe_route_tables()
        .filters(filter(name, values.iter().cloned()))
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .classify("ec2:DescribeRouteTables")
        .map_err(ProvisionError::aws(id))
}

/// The private route table of the blueprint's new VPC, once it exists.
pub(crate) fn private_route_table(bp: &Blueprint, resolved: &Resolved) -> Option<String> {
    let vpc = &bp.spec.network.as_ref()?.vpc;
    resolved
        .get(&ResourceId::new(ResourceKind::Vpc, &vpc.name))?
        .state::<VpcState<Live>>()
        .ok()?
        .route_table_id
        .clone()
}
