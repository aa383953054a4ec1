//! The VPC's subnets. A subnet given by `id` is only read, never modified or deleted.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ec2::types::{Filter, ResourceType};
use ballast_aws::SdkResultExt;
use ballast_blueprint::{
    Blueprint, DeletionPolicy, ResourceId, ResourceKind, Tags, graph::is_literal_id,
};
use serde_json::{Value, json};
use tracing::instrument;

use super::ec2::*;
use super::route_tables::*;
use super::vpc::vpc_id;
use super::{ApplyContext, ObserveContext, Observed, ResourceOps};
use crate::provision::diff::FieldChange;
use crate::provision::error::ProvisionError;
use crate::provision::state::{
    Changes, DesiredState, Field, LiveFields, LiveState, Ownership, Resolved, live_fields,
};
use crate::provision::typed::{TypedDesired, TypedLive};

pub struct Subnets;

crate::provision::state::field_names! {
    /// The fields of Subnets, as plan and drift output name them.
    pub enum SubnetField {
        VpcId = "vpcId",
        Cidr = "cidr",
        AvailabilityZone = "availabilityZone",
        MapPublicIpOnLaunch = "mapPublicIpOnLaunch",
        RouteTable = "routeTable",
        RouteTableAssociationId = "routeTableAssociationId",
        Referenced = "referenced",
    }
}

/// A subnet reference (blueprint name or literal id) as a subnet id, if known.
pub fn subnet_id(bp: &Blueprint, resolved: &Resolved, reference: &str) -> Option<String> {
    if is_literal_id(reference, "subnet-") {
        return Some(reference.to_string());
    }
    let _ = bp;
    resolved
        .physical_id(&ResourceId::new(ResourceKind::Subnet, reference))
        .map(str::to_string)
}

impl ResourceOps for Subnets {
    const KIND: ResourceKind = ResourceKind::Subnet;
    type Field = SubnetField;

    fn desired(bp: &Blueprint, resolved: &Resolved) -> Vec<DesiredState> {
        let Some(network) = &bp.spec.network else {
            return Vec::new();
        };
        let new_vpc = network.vpc.id.is_none();
        let vpc = vpc_id(bp, resolved).map(Value::String);
        let route_table = private_route_table(bp, resolved).map(Value::String);
        network
            .vpc
            .subnets
            .iter()
            .map(|s| {
                let id = ResourceId::new(Self::KIND, &s.name);
                let physical_name = bp.subnet_name(s);
                if s.id.is_some() {
                    return DesiredState {
                        id,
                        physical_name,
                        fields: Vec::new(),
                        tags: Tags::new(),
                        adopt: s.adopt,
                        deletion_policy: DeletionPolicy::Retain,
                        typed: TypedDesired::untyped(),
                    };
                }
                let mut fields = vec![
                    Field::create_only(SubnetField::VpcId, Value::Null)
                        .with_expect(exact_or_later(vpc.clone())),
                    Field::create_only(SubnetField::Cidr, s.cidr.clone().unwrap_or_default()),
                ];
                if let Some(az) = &s.availability_zone {
                    fields.push(Field::create_only(
                        SubnetField::AvailabilityZone,
                        az.clone(),
                    ));
                }
                fields.push(Field::enforced(
                    SubnetField::MapPublicIpOnLaunch,
                    s.map_public_ip_on_launch,
                ));
                if new_vpc {
                    fields.push(
                        Field::enforced(SubnetField::RouteTable, Value::Null)
                            .with_expect(exact_or_later(route_table.clone())),
                    );
                }
                let tags = with_name(bp, &id, &Tags::new(), &physical_name);
                DesiredState {
                    id,
                    tags,
                    physical_name,
                    fields,
                    adopt: s.adopt,
                    deletion_policy: Blueprint::effective_deletion_policy(
                        Self::KIND,
                        s.deletion_policy,
                    ),
                    typed: TypedDesired::untyped(),
                }
            })
            .collect()
    }

    #[instrument(skip_all, fields(kind = "subnet"))]
    async fn observe(ctx: &ObserveContext<'_>) -> Result<Observed, ProvisionError> {
        let ec2 = ctx.clients.ec2();
        let bp = ctx.blueprint;
        let any = &ResourceId::new(Self::KIND, "*");
        let declared: Vec<&ballast_blueprint::Subnet> = bp
            .spec
            .network
            .iter()
            .flat_map(|n| n.vpc.subnets.iter())
            .collect();
        let describe = |f: Filter| async move {
            ec2.describe_subnets()
                .filters(f)
                .into_paginator()
                .items()
                .send()
                .collect::<Result<Vec<_>, _>>()
                .await
                .classify("ec2:DescribeSubnets")
                .map_err(ProvisionError::aws(any))
        };
        let mut subnets = describe(owner_filter(bp)).await?;
        let found = |subnets: &[aws_sdk_ec2::types::Subnet], s: &ballast_blueprint::Subnet| {
            subnets.iter().any(|x| match &s.id {
                Some(id) => x.subnet_id.as_deref() == Some(id),
                None => name_tag(&ec2_tags(x.tags())) == Some(bp.subnet_name(s).as_str()),
            })
        };
        let missing_ids: Vec<String> = declared
            .iter()
            .filter(|s| s.id.is_some() && !found(&subnets, s))
            .filter_map(|s| s.id.clone())
            .collect();
        let missing_names: Vec<String> = declared
            .iter()
            .filter(|s| s.id.is_none() && !found(&subnets, s))
            .map(|s| bp.subnet_name(s))
            .collect();
        if !missing_ids.is_empty() {
            subnets.extend(describe(filter("subnet-id", missing_ids)).await?);
        }
        if !missing_names.is_empty() {
            subnets.extend(describe(filter("tag:Name", missing_names)).await?);
        }
        // Explicit route table associations: the VPC observe read every route table of the VPCs
        // it found; subnets elsewhere take one more read, only when there are any.
        let shared = ctx.shared.route_tables.get();
        let covered = |s: &aws_sdk_ec2::types::Subnet| {
            shared.is_some_and(|rt| s.vpc_id.as_ref().is_some_and(|v| rt.vpc_ids.contains(v)))
        };
        let elsewhere: BTreeSet<String> = subnets
            .iter()
            .filter(|s| !covered(s))
            .filter_map(|s| s.subnet_id.clone())
            .collect();
        let mut tables: Vec<aws_sdk_ec2::types::RouteTable> =
            shared.map(|rt| rt.tables.clone()).unwrap_or_default();
        tables.extend(describe_route_tables(ec2, any, "association.subnet-id", &elsewhere).await?);
        let mut associations: BTreeMap<String, (String, String)> = BTreeMap::new();
        for rt in tables {
            for a in rt.associations() {
                if let (Some(subnet), Some(rt_id), Some(assoc)) = (
                    a.subnet_id.clone(),
                    rt.route_table_id.clone(),
                    a.route_table_association_id.clone(),
                ) {
                    associations.insert(subnet, (rt_id, assoc));
                }
            }
        }
        let mut observed = Observed::default();
        let mut seen = BTreeSet::new();
        for s in subnets {
            let Some(physical_id) = s.subnet_id.clone() else {
                continue;
            };
            if !seen.insert(physical_id.clone()) {
                continue;
            }
            let tags = ec2_tags(s.tags());
            let decl = declared.iter().find(|d| match &d.id {
                Some(id) => *id == physical_id,
                None => name_tag(&tags) == Some(bp.subnet_name(d).as_str()),
            });
            let referenced = decl.is_some_and(|d| d.id.is_some());
            let (id, physical_name) = match decl {
                Some(d) => (ResourceId::new(Self::KIND, &d.name), bp.subnet_name(d)),
                None => {
                    let name = name_tag(&tags).unwrap_or(&physical_id).to_string();
                    let short = name
                        .strip_prefix(&format!("{}-", bp.metadata.name))
                        .unwrap_or(&name)
                        .to_string();
                    (ResourceId::new(Self::KIND, short), name)
                }
            };
            let mut fields = BTreeMap::new();
            fields.put(SubnetField::VpcId, json!(s.vpc_id));
            fields.put(SubnetField::Cidr, json!(s.cidr_block));
            fields.put(SubnetField::AvailabilityZone, json!(s.availability_zone));
            fields.put(
                SubnetField::MapPublicIpOnLaunch,
                Value::Bool(s.map_public_ip_on_launch.unwrap_or(false)),
            );
            match associations.get(&physical_id) {
                Some((rt, assoc)) => {
                    fields.put(SubnetField::RouteTable, Value::String(rt.clone()));
                    fields.put(
                        SubnetField::RouteTableAssociationId,
                        Value::String(assoc.clone()),
                    );
                }
                None => {
                    fields.put(SubnetField::RouteTable, Value::Null);
                }
            }
            let ownership = if referenced {
                fields.put(SubnetField::Referenced, Value::Bool(true));
                Ownership::Owned
            } else {
                Ownership::from_tags(&tags, &bp.metadata.name)
            };
            let live = LiveState {
                id,
                physical_name,
                physical_id,
                arn: s.subnet_arn.clone(),
                ownership,
                tags,
                fields,
                typed: TypedLive::untyped(),
            };
            observed.file(live, decl.is_some());
        }
        Ok(observed)
    }

    #[instrument(skip_all, fields(subnet = %desired.physical_name))]
    async fn create(
        ctx: &ApplyContext<'_>,
        desired: &DesiredState,
    ) -> Result<LiveState, ProvisionError> {
        let ec2 = &ctx.clients.ec2;
        let bp = ctx.blueprint;
        let decl = bp
            .spec
            .network
            .iter()
            .flat_map(|n| n.vpc.subnets.iter())
            .find(|s| s.name == desired.id.name);
        if let Some(existing) = decl.and_then(|s| s.id.as_ref()) {
            return Err(ProvisionError::Unexpected {
                resource: desired.id.clone(),
                operation: "ec2:DescribeSubnets",
                detail: format!(
                    "subnet `{existing}` does not exist or is not visible to these credentials; \
                     Ballast never creates a subnet given by id"
                ),
            });
        }
        let Some(Value::String(vpc)) = desired.value(SubnetField::VpcId) else {
            let vpc_name = bp.spec.network.as_ref().map(|n| n.vpc.name.as_str());
            return Err(missing(desired, ResourceKind::Vpc, vpc_name.unwrap_or("?")));
        };
        let err = || ProvisionError::aws(&desired.id);
        let mut request = ec2
            .create_subnet()
            .vpc_id(vpc)
            .tag_specifications(tag_spec(ResourceType::Subnet, &desired.tags));
        if let Some(Value::String(cidr)) = desired.value(SubnetField::Cidr) {
            request = request.cidr_block(cidr);
        }
        if let Some(Value::String(az)) = desired.value(SubnetField::AvailabilityZone) {
            request = request.availability_zone(az);
        }
        let subnet = request
            .send()
            .await
            .classify("ec2:CreateSubnet")
            .map_err(err())?
            .subnet
            .ok_or_else(|| ProvisionError::Unexpected {
                resource: desired.id.clone(),
                operation: "ec2:CreateSubnet",
                detail: "no subnet".into(),
            })?;
        let physical_id = subnet.subnet_id.clone().unwrap_or_default();
        let map_public =
            desired.value(SubnetField::MapPublicIpOnLaunch) == Some(&Value::Bool(true));
        if map_public {
            set_map_public(ec2, &desired.id, &physical_id, true).await?;
        }
        let mut fields = live_fields([
            (SubnetField::VpcId, Value::String(vpc.clone())),
            (SubnetField::Cidr, json!(subnet.cidr_block)),
            (
                SubnetField::AvailabilityZone,
                json!(subnet.availability_zone),
            ),
            (SubnetField::MapPublicIpOnLaunch, Value::Bool(map_public)),
            (SubnetField::RouteTable, Value::Null),
        ]);
        if let Some(Value::String(rt)) = desired.value(SubnetField::RouteTable) {
            let assoc = ec2
                .associate_route_table()
                .route_table_id(rt)
                .subnet_id(&physical_id)
                .send()
                .await
                .classify("ec2:AssociateRouteTable")
                .map_err(err())?
                .association_id;
            fields.put(SubnetField::RouteTable, Value::String(rt.clone()));
            fields.put(SubnetField::RouteTableAssociationId, json!(assoc));
        }
        Ok(LiveState {
            id: desired.id.clone(),
            physical_name: desired.physical_name.clone(),
            physical_id,
            arn: subnet.subnet_arn,
            ownership: Ownership::Owned,
            tags: desired.tags.clone(),
            fields,
            typed: TypedLive::untyped(),
        })
    }

    #[instrument(skip_all, fields(subnet = %desired.physical_name))]
    async fn update(
        ctx: &ApplyContext<'_>,
        desired: &DesiredState,
        live: &LiveState,
        changes: &[FieldChange],
    ) -> Result<(), ProvisionError> {
        let changes = Changes::<SubnetField>::of(changes);
        if is_referenced(live, SubnetField::Referenced) {
            return Ok(());
        }
        let ec2 = &ctx.clients.ec2;
        let err = || ProvisionError::aws(&desired.id);
        if changes.has(SubnetField::MapPublicIpOnLaunch) {
            let on = desired.value(SubnetField::MapPublicIpOnLaunch) == Some(&Value::Bool(true));
            set_map_public(ec2, &desired.id, &live.physical_id, on).await?;
        }
        if changes.has(SubnetField::RouteTable)
            && let Some(Value::String(rt)) = desired.value(SubnetField::RouteTable)
        {
            match live
                .fields
                .field(SubnetField::RouteTableAssociationId)
                .and_then(Value::as_str)
            {
                Some(assoc) => {
                    ec2.replace_route_table_association()
                        .association_id(assoc)
                        .route_table_id(rt)
                        .send()
                        .await
                        .classify("ec2:ReplaceRouteTableAssociation")
                        .map_err(err())?;
                }
                None => {
                    ec2.associate_route_table()
                        .route_table_id(rt)
                        .subnet_id(&live.physical_id)
                        .send()
                        .await
                        .classify("ec2:AssociateRouteTable")
                        .map_err(err())?;
                }
            }
        }
        if changes.tags() {
            put_tags(ec2, &desired.id, &live.physical_id, &desired.tags).await?;
        }
        Ok(())
    }

    #[instrument(skip_all, fields(subnet = %live.physical_name))]
    async fn delete(ctx: &ApplyContext<'_>, live: &LiveState) -> Result<(), ProvisionError> {
        if is_referenced(live, SubnetField::Referenced) {
            return Ok(());
        }
        ProvisionError::unless_gone(
            &live.id,
            ctx.clients
                .ec2
                .delete_subnet()
                .subnet_id(&live.physical_id)
                .send()
                .await
                .classify("ec2:DeleteSubnet"),
        )
    }
}

async fn set_map_public(
    ec2: &aws_sdk_ec2::Client,
    id: &ResourceId,
    subnet_id: &str,
    on: bool,
) -> Result<(), ProvisionError> {
    ec2.modify_subnet_attribute()
        .subnet_id(subnet_id)
        .map_public_ip_on_launch(bool_attr(on))
        .send()
        .await
        .classify("ec2:ModifySubnetAttribute")
        .map_err(ProvisionError::aws(id))?;
    Ok(())
}
