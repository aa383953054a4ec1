//! The VPC (with one private route table when Ballast creates it).
//!
//! A VPC or subnet given by `id` is only read: Ballast never modifies or deletes it, and it is
//! treated as owned by reference (its live state carries `referenced: true`). Everything Ballast
//! creates carries a `Name` tag and the ownership tags, which is how `observe` finds it again.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ec2::types::{Filter, ResourceType, VpcAttributeName};
use ballast_aws::SdkResultExt;
use ballast_blueprint::{
    Blueprint, DeletionPolicy, OWNERSHIP_BLUEPRINT_TAG, ResourceId, ResourceKind, Tags,
};
use serde_json::{Value, json};
use tracing::instrument;

use super::ec2::*;
use super::route_tables::*;
use super::{ApplyContext, ObserveContext, Observed, ResourceOps};
use crate::provision::diff::FieldChange;
use crate::provision::error::ProvisionError;
use crate::provision::state::{
    Changes, DesiredState, Field, LiveFields, LiveState, Ownership, Resolved, live_fields,
};
use crate::provision::typed::{TypedDesired, TypedLive};

pub struct Vpcs;

crate::provision::state::field_names! {
    /// The fields of Vpcs, as plan and drift output name them.
    pub enum VpcField {
        EnableDnsSupport = "enableDnsSupport",
        EnableDnsHostnames = "enableDnsHostnames",
        PrivateRouteTable = "privateRouteTable",
        Cidr = "cidr",
        Referenced = "referenced",
        RouteTableId = "routeTableId",
    }
}

pub(crate) fn vpc_id(bp: &Blueprint, resolved: &Resolved) -> Option<String> {
    let vpc = &bp.spec.network.as_ref()?.vpc;
    resolved
        .physical_id(&ResourceId::new(ResourceKind::Vpc, &vpc.name))
        .map(str::to_string)
}

impl ResourceOps for Vpcs {
    const KIND: ResourceKind = ResourceKind::Vpc;
    type Field = VpcField;

    fn desired(bp: &Blueprint, _resolved: &Resolved) -> Vec<DesiredState> {
        let Some(network) = &bp.spec.network else {
            return Vec::new();
        };
        let vpc = &network.vpc;
        let id = ResourceId::new(Self::KIND, &vpc.name);
        let physical_name = bp.vpc_name(vpc);
        if vpc.id.is_some() {
            // Read only: nothing to enforce, never deleted.
            return vec![DesiredState {
                id,
                physical_name,
                fields: Vec::new(),
                tags: Tags::new(),
                adopt: vpc.adopt,
                deletion_policy: DeletionPolicy::Retain,
                typed: TypedDesired::untyped(),
            }];
        }
        let mut fields = vec![
            Field::enforced(VpcField::EnableDnsSupport, true),
            Field::enforced(VpcField::EnableDnsHostnames, true),
            Field::enforced(VpcField::PrivateRouteTable, true),
        ];
        if let Some(cidr) = &vpc.cidr {
            fields.insert(0, Field::create_only(VpcField::Cidr, cidr.clone()));
        }
        let tags = with_name(bp, &id, &vpc.tags, &physical_name);
        vec![DesiredState {
            id,
            tags,
            physical_name,
            fields,
            adopt: vpc.adopt,
            deletion_policy: Blueprint::effective_deletion_policy(Self::KIND, vpc.deletion_policy),
            typed: TypedDesired::untyped(),
        }]
    }

    #[instrument(skip_all, fields(kind = "vpc"))]
    async fn observe(ctx: &ObserveContext<'_>) -> Result<Observed, ProvisionError> {
        let ec2 = ctx.clients.ec2();
        let bp = ctx.blueprint;
        let any = &ResourceId::new(Self::KIND, "*");
        let declared = bp.spec.network.as_ref().map(|n| &n.vpc);
        let describe = |f: Filter| async move {
            ec2.describe_vpcs()
                .filters(f)
                .into_paginator()
                .items()
                .send()
                .collect::<Result<Vec<_>, _>>()
                .await
                .classify("ec2:DescribeVpcs")
                .map_err(ProvisionError::aws(any))
        };
        let mut vpcs = describe(owner_filter(bp)).await?;
        if let Some(vpc) = declared {
            let name = bp.vpc_name(vpc);
            let found = vpcs.iter().any(|v| match &vpc.id {
                Some(id) => v.vpc_id.as_deref() == Some(id),
                None => name_tag(&ec2_tags(v.tags())) == Some(&name),
            });
            if !found {
                let f = match &vpc.id {
                    Some(id) => filter("vpc-id", [id.clone()]),
                    None => filter("tag:Name", [name]),
                };
                vpcs.extend(describe(f).await?);
            }
        }
        // One read for the route tables of every VPC found: the VPC's private table here, and the
        // subnets' associations when the subnets are observed (see `Subnets::observe`).
        let vpc_ids: BTreeSet<String> = vpcs.iter().filter_map(|v| v.vpc_id.clone()).collect();
        let route_tables = RouteTables {
            tables: describe_route_tables(ec2, any, "vpc-id", &vpc_ids).await?,
            vpc_ids,
        };
        let mut observed = Observed::default();
        for v in vpcs {
            let Some(physical_id) = v.vpc_id.clone() else {
                continue;
            };
            let tags = ec2_tags(v.tags());
            let referenced = declared.is_some_and(|d| d.id.as_deref() == Some(&physical_id));
            let declared_new = declared
                .filter(|d| d.id.is_none() && name_tag(&tags) == Some(bp.vpc_name(d).as_str()));
            let (id, physical_name) = match declared.filter(|_| referenced).or(declared_new) {
                Some(d) => (ResourceId::new(Self::KIND, &d.name), bp.vpc_name(d)),
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
            let ownership = if referenced {
                fields.put(VpcField::Referenced, Value::Bool(true));
                Ownership::Owned
            } else {
                Ownership::from_tags(&tags, &bp.metadata.name)
            };
            if let Some(d) = declared_new {
                fields.put(VpcField::Cidr, json!(v.cidr_block));
                let (support, hostnames) = tokio::try_join!(
                    vpc_attribute(ec2, &physical_id, VpcAttributeName::EnableDnsSupport),
                    vpc_attribute(ec2, &physical_id, VpcAttributeName::EnableDnsHostnames),
                )
                .map_err(ProvisionError::aws(&id))?;
                fields.put(VpcField::EnableDnsSupport, Value::Bool(support));
                fields.put(VpcField::EnableDnsHostnames, Value::Bool(hostnames));
                put_private_route_table(&mut fields, bp, d, &physical_id, &route_tables.tables);
            }
            let live = LiveState {
                id,
                physical_name,
                physical_id,
                arn: None,
                ownership,
                tags,
                fields,
                typed: TypedLive::untyped(),
            };
            observed.file(live, referenced || declared_new.is_some());
        }
        // Set once per observe; a second VPC observe in the same one would read the same.
        let _ = ctx.shared.route_tables.set(route_tables);
        Ok(observed)
    }

    #[instrument(skip_all, fields(vpc = %desired.physical_name))]
    async fn create(
        ctx: &ApplyContext<'_>,
        desired: &DesiredState,
    ) -> Result<LiveState, ProvisionError> {
        let ec2 = &ctx.clients.ec2;
        let Some(vpc) = ctx.blueprint.spec.network.as_ref().map(|n| &n.vpc) else {
            return Err(missing(desired, Self::KIND, &desired.id.name));
        };
        if let Some(existing) = &vpc.id {
            return Err(ProvisionError::Unexpected {
                resource: desired.id.clone(),
                operation: "ec2:DescribeVpcs",
                detail: format!(
                    "VPC `{existing}` (spec.network.vpc.id) does not exist or is not visible to \
                     these credentials; Ballast never creates a VPC given by id"
                ),
            });
        }
        let err = || ProvisionError::aws(&desired.id);
        let cidr = vpc.cidr.clone().unwrap_or_default();
        let out = ec2
            .create_vpc()
            .cidr_block(&cidr)
            .tag_specifications(tag_spec(ResourceType::Vpc, &desired.tags))
            .send()
            .await
            .classify("ec2:CreateVpc")
            .map_err(err())?;
        let physical_id =
            out.vpc
                .and_then(|v| v.vpc_id)
                .ok_or_else(|| ProvisionError::Unexpected {
                    resource: desired.id.clone(),
                    operation: "ec2:CreateVpc",
                    detail: "no VPC id".into(),
                })?;
        // Interface endpoints with private DNS need both.
        set_dns(ec2, &desired.id, &physical_id, true, true).await?;
        let rt_id = create_route_table(ctx, desired, &physical_id).await?;
        let fields = live_fields([
            (VpcField::Cidr, Value::String(cidr)),
            (VpcField::EnableDnsSupport, Value::Bool(true)),
            (VpcField::EnableDnsHostnames, Value::Bool(true)),
            (VpcField::PrivateRouteTable, Value::Bool(true)),
            (VpcField::RouteTableId, Value::String(rt_id)),
        ]);
        Ok(LiveState {
            id: desired.id.clone(),
            physical_name: desired.physical_name.clone(),
            physical_id,
            arn: None,
            ownership: Ownership::Owned,
            tags: desired.tags.clone(),
            fields,
            typed: TypedLive::untyped(),
        })
    }

    #[instrument(skip_all, fields(vpc = %desired.physical_name))]
    async fn update(
        ctx: &ApplyContext<'_>,
        desired: &DesiredState,
        live: &LiveState,
        changes: &[FieldChange],
    ) -> Result<(), ProvisionError> {
        let changes = Changes::<VpcField>::of(changes);
        if is_referenced(live, VpcField::Referenced) {
            return Ok(());
        }
        let ec2 = &ctx.clients.ec2;
        let support = changes.has(VpcField::EnableDnsSupport);
        let hostnames = changes.has(VpcField::EnableDnsHostnames);
        if support || hostnames {
            set_dns(ec2, &desired.id, &live.physical_id, support, hostnames).await?;
        }
        if changes.has(VpcField::PrivateRouteTable) {
            create_route_table(ctx, desired, &live.physical_id).await?;
        }
        if changes.tags() {
            put_tags(ec2, &desired.id, &live.physical_id, &desired.tags).await?;
        }
        Ok(())
    }

    /// An update that created the private route table (of a VPC whose create was interrupted
    /// before it) reads its id back: the subnets and gateway endpoints of the same apply need it.
    #[instrument(skip_all, fields(vpc = %desired.physical_name))]
    async fn updated(
        ctx: &ApplyContext<'_>,
        desired: &DesiredState,
        live: &LiveState,
    ) -> Result<Option<LiveState>, ProvisionError> {
        let bp = ctx.blueprint;
        let Some(vpc) = bp.spec.network.as_ref().map(|n| &n.vpc) else {
            return Ok(None);
        };
        if is_referenced(live, VpcField::Referenced)
            || live.fields.field(VpcField::RouteTableId).is_some()
        {
            return Ok(None);
        }
        let vpc_ids = BTreeSet::from([live.physical_id.clone()]);
        let tables =
            describe_route_tables(&ctx.clients.ec2, &desired.id, "vpc-id", &vpc_ids).await?;
        let mut live = live.clone();
        put_private_route_table(&mut live.fields, bp, vpc, &live.physical_id, &tables);
        Ok(Some(live))
    }

    /// Deletes the VPC's Ballast route tables, then the VPC; a referenced VPC is never touched.
    #[instrument(skip_all, fields(vpc = %live.physical_name))]
    async fn delete(ctx: &ApplyContext<'_>, live: &LiveState) -> Result<(), ProvisionError> {
        if is_referenced(live, VpcField::Referenced) {
            return Ok(());
        }
        let ec2 = &ctx.clients.ec2;
        let err = || ProvisionError::aws(&live.id);
        let tables = ec2
            .describe_route_tables()
            .filters(filter("vpc-id", [live.physical_id.clone()]))
            .filters(owner_filter(ctx.blueprint))
            .send()
            .await
            .classify("ec2:DescribeRouteTables")
            .map_err(err())?
            .route_tables
            .unwrap_or_default();
        for rt in tables {
            let Some(rt_id) = rt.route_table_id.clone() else {
                continue;
            };
            for a in rt.associations() {
                if a.main != Some(true)
                    && let Some(assoc) = &a.route_table_association_id
                {
                    match ec2
                        .disassociate_route_table()
                        .association_id(assoc)
                        .send()
                        .await
                        .classify("ec2:DisassociateRouteTable")
                    {
                        Ok(_) => {}
                        Err(e) if e.is_not_found() => {}
                        Err(e) => return Err(err()(e)),
                    }
                }
            }
            match ec2
                .delete_route_table()
                .route_table_id(&rt_id)
                .send()
                .await
                .classify("ec2:DeleteRouteTable")
            {
                Ok(_) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(err()(e)),
            }
        }
        match ec2
            .delete_vpc()
            .vpc_id(&live.physical_id)
            .send()
            .await
            .classify("ec2:DeleteVpc")
        {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(err()(e)),
        }
    }
}

/// The `privateRouteTable` and `routeTableId` fields of the new VPC `vpc_id` from its route
/// tables: the one with the blueprint's Name and ownership tags.
fn put_private_route_table(
    fields: &mut BTreeMap<String, Value>,
    bp: &Blueprint,
    vpc: &ballast_blueprint::Vpc,
    vpc_id: &str,
    tables: &[aws_sdk_ec2::types::RouteTable],
) {
    let rt_name = route_table_name(bp, vpc);
    let rt = tables.iter().find(|rt| {
        let tags = ec2_tags(rt.tags());
        rt.vpc_id.as_deref() == Some(vpc_id)
            && name_tag(&tags) == Some(&rt_name)
            && tags.get(OWNERSHIP_BLUEPRINT_TAG) == Some(&bp.metadata.name)
    });
    fields.put(VpcField::PrivateRouteTable, Value::Bool(rt.is_some()));
    if let Some(rt_id) = rt.and_then(|rt| rt.route_table_id.clone()) {
        fields.put(VpcField::RouteTableId, Value::String(rt_id));
    }
}

async fn vpc_attribute(
    ec2: &aws_sdk_ec2::Client,
    vpc_id: &str,
    attribute: VpcAttributeName,
) -> Result<bool, ballast_aws::AwsError> {
    let out = ec2
        .describe_vpc_attribute()
        .vpc_id(vpc_id)
        .attribute(attribute.clone())
        .send()
        .await
        .classify("ec2:DescribeVpcAttribute")?;
    let value = match attribute {
        VpcAttributeName::EnableDnsSupport => out.enable_dns_support,
        _ => out.enable_dns_hostnames,
    };
    Ok(value.and_then(|v| v.value).unwrap_or(false))
}

/// ModifyVpcAttribute takes one attribute per call; support must be on before hostnames.
async fn set_dns(
    ec2: &aws_sdk_ec2::Client,
    id: &ResourceId,
    vpc_id: &str,
    support: bool,
    hostnames: bool,
) -> Result<(), ProvisionError> {
    if support {
        ec2.modify_vpc_attribute()
            .vpc_id(vpc_id)
            .enable_dns_support(bool_attr(true))
            .send()
            .await
            .classify("ec2:ModifyVpcAttribute")
            .map_err(ProvisionError::aws(id))?;
    }
    if hostnames {
        ec2.modify_vpc_attribute()
            .vpc_id(vpc_id)
            .enable_dns_hostnames(bool_attr(true))
            .send()
            .await
            .classify("ec2:ModifyVpcAttribute")
            .map_err(ProvisionError::aws(id))?;
    }
    Ok(())
}

async fn create_route_table(
    ctx: &ApplyContext<'_>,
    desired: &DesiredState,
    vpc_id: &str,
) -> Result<String, ProvisionError> {
    let bp = ctx.blueprint;
    let Some(vpc) = bp.spec.network.as_ref().map(|n| &n.vpc) else {
        return Err(missing(desired, ResourceKind::Vpc, &desired.id.name));
    };
    // The route table is part of the VPC: it carries the VPC's logical id.
    let tags = with_name(bp, &desired.id, &vpc.tags, &route_table_name(bp, vpc));
    ctx.clients
        .ec2
        .create_route_table()
        .vpc_id(vpc_id)
        .tag_specifications(tag_spec(ResourceType::RouteTable, &tags))
        .send()
        .await
        .classify("ec2:CreateRouteTable")
        .map_err(ProvisionError::aws(&desired.id))?
        .route_table
        .and_then(|rt| rt.route_table_id)
        .ok_or_else(|| ProvisionError::Unexpected {
            resource: desired.id.clone(),
            operation: "ec2:CreateRouteTable",
            detail: "no route table id".into(),
        })
}
