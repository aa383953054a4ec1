//! The VPC, its subnets (with one private route table per new VPC) and its endpoints.
//!
//! A VPC or subnet given by `id` is only read: Ballast never modifies or deletes it, and it is
//! treated as owned by reference (its live state carries `referenced: true`). Everything Ballast
//! creates carries a `Name` tag and the ownership tags, which is how `observe` finds it again.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use aws_sdk_ec2::types::{
    AttributeBooleanValue, Filter, ResourceType, Tag, TagSpecification, VpcAttributeName,
    VpcEndpointType,
};
use ballast_aws::SdkResultExt;
use ballast_blueprint::{
    Blueprint, DeletionPolicy, EndpointType, OWNERSHIP_BLUEPRINT_TAG, ResourceId, ResourceKind,
    Tags, graph::is_literal_id,
};
use serde_json::{Value, json};
use tracing::instrument;

use super::{ApplyContext, ObserveContext, Observed, ResourceOps, changed, changes_tags};
use crate::provision::diff::FieldChange;
use crate::provision::error::ProvisionError;
use crate::provision::state::{DesiredState, Expect, Field, LiveState, Ownership, Resolved};

pub struct Vpcs;
pub struct Subnets;
pub struct VpcEndpoints;

// ---------------------------------------------------------------------------------------------
// EC2 helpers shared with the launch templates.

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
        .classify("CreateTags")
        .map_err(ProvisionError::aws(id))?;
    Ok(())
}

fn name_tag(tags: &Tags) -> Option<&str> {
    tags.get("Name").map(String::as_str)
}

fn with_name(bp: &Blueprint, extra: &Tags, name: &str) -> Tags {
    let mut tags = bp.ownership_tags();
    tags.extend(extra.clone());
    tags.insert("Name".into(), name.to_string());
    tags
}

fn bool_attr(value: bool) -> AttributeBooleanValue {
    AttributeBooleanValue::builder().value(value).build()
}

fn sorted(values: impl IntoIterator<Item = String>) -> Value {
    let set: BTreeSet<String> = values.into_iter().collect();
    Value::Array(set.into_iter().map(Value::String).collect())
}

fn strings(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn missing(desired: &DesiredState, kind: ResourceKind, name: &str) -> ProvisionError {
    ProvisionError::MissingDependency {
        resource: desired.id.clone(),
        dependency: ResourceId::new(kind, name),
    }
}

fn is_referenced(live: &LiveState) -> bool {
    live.fields.get("referenced") == Some(&Value::Bool(true))
}

/// The VPC's physical name: its id when it exists already, else `<metadata.name>-<name>`.
pub fn vpc_name(bp: &Blueprint, vpc: &ballast_blueprint::Vpc) -> String {
    vpc.id
        .clone()
        .unwrap_or_else(|| format!("{}-{}", bp.metadata.name, vpc.name))
}

pub fn subnet_name(bp: &Blueprint, subnet: &ballast_blueprint::Subnet) -> String {
    subnet
        .id
        .clone()
        .unwrap_or_else(|| format!("{}-{}", bp.metadata.name, subnet.name))
}

pub fn endpoint_name(bp: &Blueprint, endpoint: &ballast_blueprint::VpcEndpoint) -> String {
    format!("{}-{}", bp.metadata.name, endpoint.name)
}

/// Name tag of the one private route table of a new VPC.
pub fn route_table_name(bp: &Blueprint, vpc: &ballast_blueprint::Vpc) -> String {
    format!("{}-{}-private", bp.metadata.name, vpc.name)
}

/// `com.amazonaws.<region>.<service>` unless already a full name.
pub fn service_name(region: &str, service: &str) -> String {
    if service.contains('.') {
        service.to_string()
    } else {
        format!("com.amazonaws.{region}.{service}")
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

fn vpc_id(bp: &Blueprint, resolved: &Resolved) -> Option<String> {
    let vpc = &bp.spec.network.as_ref()?.vpc;
    resolved
        .physical_id(&ResourceId::new(ResourceKind::Vpc, &vpc.name))
        .map(str::to_string)
}

fn exact_or_later(value: Option<Value>) -> Expect {
    value.map(Expect::Exact).unwrap_or(Expect::KnownAfterApply)
}

fn removed_or_live(observed: &mut Observed, live: LiveState, declared: bool) {
    if declared {
        observed.live.push(live);
    } else if live.ownership == Ownership::Owned {
        observed.removed.push(live);
    }
}

async fn wait_until<F, Fut>(
    ctx: &ApplyContext<'_>,
    id: &ResourceId,
    what: &'static str,
    mut check: F,
) -> Result<(), ProvisionError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool, ProvisionError>>,
{
    let started = Instant::now();
    loop {
        if check().await? {
            return Ok(());
        }
        if started.elapsed() > ctx.readiness.timeout {
            return Err(ProvisionError::NotReady {
                resource: id.clone(),
                what,
                waited_secs: started.elapsed().as_secs(),
            });
        }
        tokio::time::sleep(ctx.readiness.poll).await;
    }
}

/// Route tables of some VPCs, read once per observe by the VPC observe and reused by the subnets'.
#[derive(Debug, Clone, Default)]
pub struct RouteTables {
    /// The VPCs all of whose route tables are in `tables`.
    pub vpc_ids: BTreeSet<String>,
    pub tables: Vec<aws_sdk_ec2::types::RouteTable>,
}

/// DescribeRouteTables filtered on `name` ∈ `values`; no call when `values` is empty.
async fn describe_route_tables(
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
        .classify("DescribeRouteTables")
        .map_err(ProvisionError::aws(id))
}

// ---------------------------------------------------------------------------------------------
// VPC

impl ResourceOps for Vpcs {
    const KIND: ResourceKind = ResourceKind::Vpc;

    fn desired(bp: &Blueprint, _resolved: &Resolved) -> Vec<DesiredState> {
        let Some(network) = &bp.spec.network else {
            return Vec::new();
        };
        let vpc = &network.vpc;
        let id = ResourceId::new(Self::KIND, &vpc.name);
        let physical_name = vpc_name(bp, vpc);
        if vpc.id.is_some() {
            // Read only: nothing to enforce, never deleted.
            return vec![DesiredState {
                id,
                physical_name,
                fields: Vec::new(),
                tags: Tags::new(),
                adopt: vpc.adopt,
                deletion_policy: DeletionPolicy::Retain,
            }];
        }
        let mut fields = vec![
            Field::enforced("enableDnsSupport", true),
            Field::enforced("enableDnsHostnames", true),
            Field::enforced("privateRouteTable", true),
        ];
        if let Some(cidr) = &vpc.cidr {
            fields.insert(0, Field::create_only("cidr", cidr.clone()));
        }
        vec![DesiredState {
            id,
            tags: with_name(bp, &vpc.tags, &physical_name),
            physical_name,
            fields,
            adopt: vpc.adopt,
            deletion_policy: Blueprint::effective_deletion_policy(Self::KIND, vpc.deletion_policy),
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
                .classify("DescribeVpcs")
                .map_err(ProvisionError::aws(any))
        };
        let mut vpcs = describe(owner_filter(bp)).await?;
        if let Some(vpc) = declared {
            let name = vpc_name(bp, vpc);
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
                .filter(|d| d.id.is_none() && name_tag(&tags) == Some(vpc_name(bp, d).as_str()));
            let (id, physical_name) = match declared.filter(|_| referenced).or(declared_new) {
                Some(d) => (ResourceId::new(Self::KIND, &d.name), vpc_name(bp, d)),
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
                fields.insert("referenced".into(), Value::Bool(true));
                Ownership::Owned
            } else {
                Ownership::from_tags(&tags, &bp.metadata.name)
            };
            if let Some(d) = declared_new {
                fields.insert("cidr".into(), json!(v.cidr_block));
                let (support, hostnames) = tokio::try_join!(
                    vpc_attribute(ec2, &physical_id, VpcAttributeName::EnableDnsSupport),
                    vpc_attribute(ec2, &physical_id, VpcAttributeName::EnableDnsHostnames),
                )
                .map_err(ProvisionError::aws(&id))?;
                fields.insert("enableDnsSupport".into(), Value::Bool(support));
                fields.insert("enableDnsHostnames".into(), Value::Bool(hostnames));
                let rt_name = route_table_name(bp, d);
                let rt = route_tables.tables.iter().find(|rt| {
                    let tags = ec2_tags(rt.tags());
                    rt.vpc_id.as_deref() == Some(&physical_id)
                        && name_tag(&tags) == Some(&rt_name)
                        && tags.get(OWNERSHIP_BLUEPRINT_TAG) == Some(&bp.metadata.name)
                });
                fields.insert("privateRouteTable".into(), Value::Bool(rt.is_some()));
                if let Some(rt_id) = rt.and_then(|rt| rt.route_table_id.clone()) {
                    fields.insert("routeTableId".into(), Value::String(rt_id));
                }
            }
            let live = LiveState {
                id,
                physical_name,
                physical_id,
                arn: None,
                ownership,
                tags,
                fields,
            };
            removed_or_live(&mut observed, live, referenced || declared_new.is_some());
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
                operation: "DescribeVpcs",
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
            .classify("CreateVpc")
            .map_err(err())?;
        let physical_id =
            out.vpc
                .and_then(|v| v.vpc_id)
                .ok_or_else(|| ProvisionError::Unexpected {
                    resource: desired.id.clone(),
                    operation: "CreateVpc",
                    detail: "no VPC id".into(),
                })?;
        // Interface endpoints with private DNS need both.
        set_dns(ec2, &desired.id, &physical_id, true, true).await?;
        let rt_id = create_route_table(ctx, desired, &physical_id).await?;
        let fields = BTreeMap::from([
            ("cidr".to_string(), Value::String(cidr)),
            ("enableDnsSupport".to_string(), Value::Bool(true)),
            ("enableDnsHostnames".to_string(), Value::Bool(true)),
            ("privateRouteTable".to_string(), Value::Bool(true)),
            ("routeTableId".to_string(), Value::String(rt_id)),
        ]);
        Ok(LiveState {
            id: desired.id.clone(),
            physical_name: desired.physical_name.clone(),
            physical_id,
            arn: None,
            ownership: Ownership::Owned,
            tags: desired.tags.clone(),
            fields,
        })
    }

    #[instrument(skip_all, fields(vpc = %desired.physical_name))]
    async fn update(
        ctx: &ApplyContext<'_>,
        desired: &DesiredState,
        live: &LiveState,
        changes: &[FieldChange],
    ) -> Result<(), ProvisionError> {
        if is_referenced(live) {
            return Ok(());
        }
        let ec2 = &ctx.clients.ec2;
        let support = changed(changes, "enableDnsSupport");
        let hostnames = changed(changes, "enableDnsHostnames");
        if support || hostnames {
            set_dns(ec2, &desired.id, &live.physical_id, support, hostnames).await?;
        }
        if changed(changes, "privateRouteTable") {
            create_route_table(ctx, desired, &live.physical_id).await?;
        }
        if changes_tags(changes) {
            put_tags(ec2, &desired.id, &live.physical_id, &desired.tags).await?;
        }
        Ok(())
    }

    /// Deletes the VPC's Ballast route tables, then the VPC; a referenced VPC is never touched.
    #[instrument(skip_all, fields(vpc = %live.physical_name))]
    async fn delete(ctx: &ApplyContext<'_>, live: &LiveState) -> Result<(), ProvisionError> {
        if is_referenced(live) {
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
            .classify("DescribeRouteTables")
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
                        .classify("DisassociateRouteTable")
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
                .classify("DeleteRouteTable")
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
            .classify("DeleteVpc")
        {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(err()(e)),
        }
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
        .classify("DescribeVpcAttribute")?;
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
            .classify("ModifyVpcAttribute")
            .map_err(ProvisionError::aws(id))?;
    }
    if hostnames {
        ec2.modify_vpc_attribute()
            .vpc_id(vpc_id)
            .enable_dns_hostnames(bool_attr(true))
            .send()
            .await
            .classify("ModifyVpcAttribute")
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
    let tags = with_name(bp, &vpc.tags, &route_table_name(bp, vpc));
    ctx.clients
        .ec2
        .create_route_table()
        .vpc_id(vpc_id)
        .tag_specifications(tag_spec(ResourceType::RouteTable, &tags))
        .send()
        .await
        .classify("CreateRouteTable")
        .map_err(ProvisionError::aws(&desired.id))?
        .route_table
        .and_then(|rt| rt.route_table_id)
        .ok_or_else(|| ProvisionError::Unexpected {
            resource: desired.id.clone(),
            operation: "CreateRouteTable",
            detail: "no route table id".into(),
        })
}

// ---------------------------------------------------------------------------------------------
// Subnets

/// The private route table of the blueprint's new VPC, once it exists.
fn private_route_table(bp: &Blueprint, resolved: &Resolved) -> Option<String> {
    let vpc = &bp.spec.network.as_ref()?.vpc;
    resolved
        .get(&ResourceId::new(ResourceKind::Vpc, &vpc.name))?
        .fields
        .get("routeTableId")?
        .as_str()
        .map(str::to_string)
}

impl ResourceOps for Subnets {
    const KIND: ResourceKind = ResourceKind::Subnet;

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
                let physical_name = subnet_name(bp, s);
                if s.id.is_some() {
                    return DesiredState {
                        id,
                        physical_name,
                        fields: Vec::new(),
                        tags: Tags::new(),
                        adopt: s.adopt,
                        deletion_policy: DeletionPolicy::Retain,
                    };
                }
                let mut fields = vec![
                    Field::create_only("vpcId", Value::Null)
                        .with_expect(exact_or_later(vpc.clone())),
                    Field::create_only("cidr", s.cidr.clone().unwrap_or_default()),
                ];
                if let Some(az) = &s.availability_zone {
                    fields.push(Field::create_only("availabilityZone", az.clone()));
                }
                fields.push(Field::enforced(
                    "mapPublicIpOnLaunch",
                    s.map_public_ip_on_launch,
                ));
                if new_vpc {
                    fields.push(
                        Field::enforced("routeTable", Value::Null)
                            .with_expect(exact_or_later(route_table.clone())),
                    );
                }
                DesiredState {
                    id,
                    tags: with_name(bp, &Tags::new(), &physical_name),
                    physical_name,
                    fields,
                    adopt: s.adopt,
                    deletion_policy: Blueprint::effective_deletion_policy(
                        Self::KIND,
                        s.deletion_policy,
                    ),
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
                .classify("DescribeSubnets")
                .map_err(ProvisionError::aws(any))
        };
        let mut subnets = describe(owner_filter(bp)).await?;
        let found = |subnets: &[aws_sdk_ec2::types::Subnet], s: &ballast_blueprint::Subnet| {
            subnets.iter().any(|x| match &s.id {
                Some(id) => x.subnet_id.as_deref() == Some(id),
                None => name_tag(&ec2_tags(x.tags())) == Some(subnet_name(bp, s).as_str()),
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
            .map(|s| subnet_name(bp, s))
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
                None => name_tag(&tags) == Some(subnet_name(bp, d).as_str()),
            });
            let referenced = decl.is_some_and(|d| d.id.is_some());
            let (id, physical_name) = match decl {
                Some(d) => (ResourceId::new(Self::KIND, &d.name), subnet_name(bp, d)),
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
            fields.insert("vpcId".into(), json!(s.vpc_id));
            fields.insert("cidr".into(), json!(s.cidr_block));
            fields.insert("availabilityZone".into(), json!(s.availability_zone));
            fields.insert(
                "mapPublicIpOnLaunch".into(),
                Value::Bool(s.map_public_ip_on_launch.unwrap_or(false)),
            );
            match associations.get(&physical_id) {
                Some((rt, assoc)) => {
                    fields.insert("routeTable".into(), Value::String(rt.clone()));
                    fields.insert(
                        "routeTableAssociationId".into(),
                        Value::String(assoc.clone()),
                    );
                }
                None => {
                    fields.insert("routeTable".into(), Value::Null);
                }
            }
            let ownership = if referenced {
                fields.insert("referenced".into(), Value::Bool(true));
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
            };
            removed_or_live(&mut observed, live, decl.is_some());
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
                operation: "DescribeSubnets",
                detail: format!(
                    "subnet `{existing}` does not exist or is not visible to these credentials; \
                     Ballast never creates a subnet given by id"
                ),
            });
        }
        let Some(Value::String(vpc)) = desired.value("vpcId") else {
            let vpc_name = bp.spec.network.as_ref().map(|n| n.vpc.name.as_str());
            return Err(missing(desired, ResourceKind::Vpc, vpc_name.unwrap_or("?")));
        };
        let err = || ProvisionError::aws(&desired.id);
        let mut request = ec2
            .create_subnet()
            .vpc_id(vpc)
            .tag_specifications(tag_spec(ResourceType::Subnet, &desired.tags));
        if let Some(Value::String(cidr)) = desired.value("cidr") {
            request = request.cidr_block(cidr);
        }
        if let Some(Value::String(az)) = desired.value("availabilityZone") {
            request = request.availability_zone(az);
        }
        let subnet = request
            .send()
            .await
            .classify("CreateSubnet")
            .map_err(err())?
            .subnet
            .ok_or_else(|| ProvisionError::Unexpected {
                resource: desired.id.clone(),
                operation: "CreateSubnet",
                detail: "no subnet".into(),
            })?;
        let physical_id = subnet.subnet_id.clone().unwrap_or_default();
        let map_public = desired.value("mapPublicIpOnLaunch") == Some(&Value::Bool(true));
        if map_public {
            set_map_public(ec2, &desired.id, &physical_id, true).await?;
        }
        let mut fields = BTreeMap::from([
            ("vpcId".to_string(), Value::String(vpc.clone())),
            ("cidr".to_string(), json!(subnet.cidr_block)),
            (
                "availabilityZone".to_string(),
                json!(subnet.availability_zone),
            ),
            ("mapPublicIpOnLaunch".to_string(), Value::Bool(map_public)),
            ("routeTable".to_string(), Value::Null),
        ]);
        if let Some(Value::String(rt)) = desired.value("routeTable") {
            let assoc = ec2
                .associate_route_table()
                .route_table_id(rt)
                .subnet_id(&physical_id)
                .send()
                .await
                .classify("AssociateRouteTable")
                .map_err(err())?
                .association_id;
            fields.insert("routeTable".into(), Value::String(rt.clone()));
            fields.insert("routeTableAssociationId".into(), json!(assoc));
        }
        Ok(LiveState {
            id: desired.id.clone(),
            physical_name: desired.physical_name.clone(),
            physical_id,
            arn: subnet.subnet_arn,
            ownership: Ownership::Owned,
            tags: desired.tags.clone(),
            fields,
        })
    }

    #[instrument(skip_all, fields(subnet = %desired.physical_name))]
    async fn update(
        ctx: &ApplyContext<'_>,
        desired: &DesiredState,
        live: &LiveState,
        changes: &[FieldChange],
    ) -> Result<(), ProvisionError> {
        if is_referenced(live) {
            return Ok(());
        }
        let ec2 = &ctx.clients.ec2;
        let err = || ProvisionError::aws(&desired.id);
        if changed(changes, "mapPublicIpOnLaunch") {
            let on = desired.value("mapPublicIpOnLaunch") == Some(&Value::Bool(true));
            set_map_public(ec2, &desired.id, &live.physical_id, on).await?;
        }
        if changed(changes, "routeTable")
            && let Some(Value::String(rt)) = desired.value("routeTable")
        {
            match live
                .fields
                .get("routeTableAssociationId")
                .and_then(Value::as_str)
            {
                Some(assoc) => {
                    ec2.replace_route_table_association()
                        .association_id(assoc)
                        .route_table_id(rt)
                        .send()
                        .await
                        .classify("ReplaceRouteTableAssociation")
                        .map_err(err())?;
                }
                None => {
                    ec2.associate_route_table()
                        .route_table_id(rt)
                        .subnet_id(&live.physical_id)
                        .send()
                        .await
                        .classify("AssociateRouteTable")
                        .map_err(err())?;
                }
            }
        }
        if changes_tags(changes) {
            put_tags(ec2, &desired.id, &live.physical_id, &desired.tags).await?;
        }
        Ok(())
    }

    #[instrument(skip_all, fields(subnet = %live.physical_name))]
    async fn delete(ctx: &ApplyContext<'_>, live: &LiveState) -> Result<(), ProvisionError> {
        if is_referenced(live) {
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
                .classify("DeleteSubnet"),
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
        .classify("ModifySubnetAttribute")
        .map_err(ProvisionError::aws(id))?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// VPC endpoints

/// Route tables a gateway endpoint defaults to: the new VPC's private route table, or those of
/// the blueprint's (existing) subnets.
fn default_route_tables(bp: &Blueprint, resolved: &Resolved) -> Option<Vec<String>> {
    let network = bp.spec.network.as_ref()?;
    if network.vpc.id.is_none() {
        return private_route_table(bp, resolved).map(|rt| vec![rt]);
    }
    let mut out = Vec::new();
    for s in &network.vpc.subnets {
        let live = resolved.get(&ResourceId::new(ResourceKind::Subnet, &s.name))?;
        if let Some(rt) = live.fields.get("routeTable").and_then(Value::as_str) {
            out.push(rt.to_string());
        }
    }
    Some(out)
}

fn endpoint_type(kind: EndpointType) -> &'static str {
    match kind {
        EndpointType::Gateway => "Gateway",
        EndpointType::Interface => "Interface",
    }
}

impl ResourceOps for VpcEndpoints {
    const KIND: ResourceKind = ResourceKind::VpcEndpoint;

    fn desired(bp: &Blueprint, resolved: &Resolved) -> Vec<DesiredState> {
        let Some(network) = &bp.spec.network else {
            return Vec::new();
        };
        let vpc = vpc_id(bp, resolved).map(Value::String);
        network
            .endpoints
            .iter()
            .map(|e| {
                let mut fields = vec![
                    Field::create_only("vpcId", Value::Null)
                        .with_expect(exact_or_later(vpc.clone())),
                    Field::create_only("service", service_name(&bp.metadata.region, &e.service)),
                    Field::create_only("type", endpoint_type(e.kind)),
                ];
                match e.kind {
                    EndpointType::Gateway => {
                        let tables = if e.route_tables.is_empty() {
                            default_route_tables(bp, resolved)
                        } else {
                            Some(e.route_tables.clone())
                        };
                        fields.push(
                            Field::enforced("routeTables", Value::Null)
                                .with_expect(exact_or_later(tables.map(sorted))),
                        );
                    }
                    EndpointType::Interface => {
                        let subnets: Option<Vec<String>> = e
                            .subnets
                            .iter()
                            .map(|s| subnet_id(bp, resolved, s))
                            .collect();
                        fields.push(
                            Field::enforced("subnets", Value::Null)
                                .with_expect(exact_or_later(subnets.map(sorted))),
                        );
                        if !e.security_group_ids.is_empty() {
                            fields.push(Field::enforced(
                                "securityGroups",
                                sorted(e.security_group_ids.clone()),
                            ));
                        }
                        fields.push(Field::enforced("privateDns", e.private_dns));
                    }
                }
                let physical_name = endpoint_name(bp, e);
                DesiredState {
                    id: ResourceId::new(Self::KIND, &e.name),
                    tags: with_name(bp, &e.tags, &physical_name),
                    physical_name,
                    fields,
                    adopt: e.adopt,
                    deletion_policy: Blueprint::effective_deletion_policy(
                        Self::KIND,
                        e.deletion_policy,
                    ),
                }
            })
            .collect()
    }

    /// One DescribeVpcEndpoints by the ownership tag (moto does not implement the `vpc-id`
    /// filter for endpoints), and one by Name only when a declared endpoint is missing.
    #[instrument(skip_all, fields(kind = "vpc-endpoint"))]
    async fn observe(ctx: &ObserveContext<'_>) -> Result<Observed, ProvisionError> {
        let ec2 = ctx.clients.ec2();
        let bp = ctx.blueprint;
        let any = &ResourceId::new(Self::KIND, "*");
        let declared: Vec<&ballast_blueprint::VpcEndpoint> = bp
            .spec
            .network
            .iter()
            .flat_map(|n| n.endpoints.iter())
            .collect();
        let describe = |f: Filter| async move {
            ec2.describe_vpc_endpoints()
                .filters(f)
                .into_paginator()
                .items()
                .send()
                .collect::<Result<Vec<_>, _>>()
                .await
                .classify("DescribeVpcEndpoints")
                .map_err(ProvisionError::aws(any))
        };
        let gone = |e: &aws_sdk_ec2::types::VpcEndpoint| {
            e.state.as_ref().is_some_and(|s| {
                let s = s.as_str().to_ascii_lowercase();
                s == "deleted" || s == "deleting"
            })
        };
        let mut endpoints: Vec<_> = describe(owner_filter(bp))
            .await?
            .into_iter()
            .filter(|e| !gone(e))
            .collect();
        let missing_names: Vec<String> = declared
            .iter()
            .map(|d| endpoint_name(bp, d))
            .filter(|n| {
                !endpoints
                    .iter()
                    .any(|e| name_tag(&ec2_tags(e.tags())) == Some(n.as_str()))
            })
            .collect();
        if !missing_names.is_empty() {
            let more = describe(filter("tag:Name", missing_names)).await?;
            for e in more {
                if !gone(&e)
                    && !endpoints
                        .iter()
                        .any(|x| x.vpc_endpoint_id == e.vpc_endpoint_id)
                {
                    endpoints.push(e);
                }
            }
        }
        let mut observed = Observed::default();
        for e in endpoints {
            let tags = ec2_tags(e.tags());
            let decl = declared
                .iter()
                .find(|d| name_tag(&tags) == Some(endpoint_name(bp, d).as_str()));
            let live = endpoint_live(bp, decl.copied(), &e, tags);
            removed_or_live(&mut observed, live, decl.is_some());
        }
        Ok(observed)
    }

    #[instrument(skip_all, fields(endpoint = %desired.physical_name))]
    async fn create(
        ctx: &ApplyContext<'_>,
        desired: &DesiredState,
    ) -> Result<LiveState, ProvisionError> {
        let ec2 = &ctx.clients.ec2;
        let bp = ctx.blueprint;
        let Some(Value::String(vpc)) = desired.value("vpcId") else {
            let vpc_name = bp.spec.network.as_ref().map(|n| n.vpc.name.as_str());
            return Err(missing(desired, ResourceKind::Vpc, vpc_name.unwrap_or("?")));
        };
        let kind = desired
            .value("type")
            .and_then(Value::as_str)
            .unwrap_or("Gateway");
        let mut request = ec2
            .create_vpc_endpoint()
            .vpc_id(vpc)
            .service_name(
                desired
                    .value("service")
                    .and_then(Value::as_str)
                    .unwrap_or_default(),
            )
            .vpc_endpoint_type(VpcEndpointType::from(kind))
            .tag_specifications(tag_spec(ResourceType::VpcEndpoint, &desired.tags));
        if kind == "Gateway" {
            let Some(tables) = desired.value("routeTables") else {
                return Err(missing(desired, ResourceKind::Vpc, "route table"));
            };
            request = request.set_route_table_ids(Some(strings(Some(tables))));
        } else {
            let Some(subnets) = desired.value("subnets") else {
                return Err(missing(desired, ResourceKind::Subnet, "subnets"));
            };
            request = request
                .set_subnet_ids(Some(strings(Some(subnets))))
                .private_dns_enabled(desired.value("privateDns") == Some(&Value::Bool(true)));
            let groups = strings(desired.value("securityGroups"));
            if !groups.is_empty() {
                request = request.set_security_group_ids(Some(groups));
            }
        }
        let endpoint = request
            .send()
            .await
            .classify("CreateVpcEndpoint")
            .map_err(ProvisionError::aws(&desired.id))?
            .vpc_endpoint
            .ok_or_else(|| ProvisionError::Unexpected {
                resource: desired.id.clone(),
                operation: "CreateVpcEndpoint",
                detail: "no endpoint".into(),
            })?;
        let endpoint_id = endpoint.vpc_endpoint_id.clone().unwrap_or_default();
        let mut last = endpoint;
        let started = Instant::now();
        loop {
            let state = last.state.as_ref().map(|s| s.as_str().to_ascii_lowercase());
            match state.as_deref() {
                Some("available") => break,
                Some(bad @ ("failed" | "rejected")) => {
                    return Err(ProvisionError::Unexpected {
                        resource: desired.id.clone(),
                        operation: "DescribeVpcEndpoints",
                        detail: format!("endpoint {endpoint_id} is {bad}"),
                    });
                }
                _ => {}
            }
            if started.elapsed() > ctx.readiness.timeout {
                return Err(ProvisionError::NotReady {
                    resource: desired.id.clone(),
                    what: "VPC endpoint available",
                    waited_secs: started.elapsed().as_secs(),
                });
            }
            tokio::time::sleep(ctx.readiness.poll).await;
            if let Some(e) = describe_endpoint(ec2, &desired.id, &endpoint_id).await? {
                last = e;
            }
        }
        let decl = bp
            .spec
            .network
            .iter()
            .flat_map(|n| n.endpoints.iter())
            .find(|e| e.name == desired.id.name);
        Ok(endpoint_live(bp, decl, &last, desired.tags.clone()))
    }

    #[instrument(skip_all, fields(endpoint = %desired.physical_name))]
    async fn update(
        ctx: &ApplyContext<'_>,
        desired: &DesiredState,
        live: &LiveState,
        changes: &[FieldChange],
    ) -> Result<(), ProvisionError> {
        let ec2 = &ctx.clients.ec2;
        let diff = |field: &str| {
            let want: BTreeSet<String> = strings(desired.value(field)).into_iter().collect();
            let have: BTreeSet<String> = strings(live.fields.get(field)).into_iter().collect();
            let add: Vec<String> = want.difference(&have).cloned().collect();
            let remove: Vec<String> = have.difference(&want).cloned().collect();
            (add, remove)
        };
        let mut request = ec2.modify_vpc_endpoint().vpc_endpoint_id(&live.physical_id);
        let mut any = false;
        if changed(changes, "routeTables") && desired.value("routeTables").is_some() {
            let (add, remove) = diff("routeTables");
            any |= !add.is_empty() || !remove.is_empty();
            request = request
                .set_add_route_table_ids(Some(add).filter(|v| !v.is_empty()))
                .set_remove_route_table_ids(Some(remove).filter(|v| !v.is_empty()));
        }
        if changed(changes, "subnets") && desired.value("subnets").is_some() {
            let (add, remove) = diff("subnets");
            any |= !add.is_empty() || !remove.is_empty();
            request = request
                .set_add_subnet_ids(Some(add).filter(|v| !v.is_empty()))
                .set_remove_subnet_ids(Some(remove).filter(|v| !v.is_empty()));
        }
        if changed(changes, "securityGroups") {
            let (add, remove) = diff("securityGroups");
            any |= !add.is_empty() || !remove.is_empty();
            request = request
                .set_add_security_group_ids(Some(add).filter(|v| !v.is_empty()))
                .set_remove_security_group_ids(Some(remove).filter(|v| !v.is_empty()));
        }
        if changed(changes, "privateDns") {
            any = true;
            request = request
                .private_dns_enabled(desired.value("privateDns") == Some(&Value::Bool(true)));
        }
        if any {
            request
                .send()
                .await
                .classify("ModifyVpcEndpoint")
                .map_err(ProvisionError::aws(&desired.id))?;
        }
        if changes_tags(changes) {
            put_tags(ec2, &desired.id, &live.physical_id, &desired.tags).await?;
        }
        Ok(())
    }

    /// Deletes the endpoint and waits until it is gone (its interfaces hold the subnets).
    #[instrument(skip_all, fields(endpoint = %live.physical_name))]
    async fn delete(ctx: &ApplyContext<'_>, live: &LiveState) -> Result<(), ProvisionError> {
        let ec2 = &ctx.clients.ec2;
        match ec2
            .delete_vpc_endpoints()
            .vpc_endpoint_ids(&live.physical_id)
            .send()
            .await
            .classify("DeleteVpcEndpoints")
        {
            Ok(_) => {}
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) => return Err(ProvisionError::aws(&live.id)(e)),
        }
        wait_until(ctx, &live.id, "VPC endpoint deleted", || async {
            let found = describe_endpoint(ec2, &live.id, &live.physical_id).await?;
            Ok(found.is_none_or(|e| {
                e.state
                    .as_ref()
                    .is_some_and(|s| s.as_str().eq_ignore_ascii_case("deleted"))
            }))
        })
        .await
    }
}

async fn describe_endpoint(
    ec2: &aws_sdk_ec2::Client,
    id: &ResourceId,
    endpoint_id: &str,
) -> Result<Option<aws_sdk_ec2::types::VpcEndpoint>, ProvisionError> {
    match ec2
        .describe_vpc_endpoints()
        .vpc_endpoint_ids(endpoint_id)
        .send()
        .await
        .classify("DescribeVpcEndpoints")
    {
        Ok(out) => Ok(out.vpc_endpoints.unwrap_or_default().into_iter().next()),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(ProvisionError::aws(id)(e)),
    }
}

fn endpoint_live(
    bp: &Blueprint,
    decl: Option<&ballast_blueprint::VpcEndpoint>,
    e: &aws_sdk_ec2::types::VpcEndpoint,
    tags: Tags,
) -> LiveState {
    let physical_id = e.vpc_endpoint_id.clone().unwrap_or_default();
    let (id, physical_name) = match decl {
        Some(d) => (
            ResourceId::new(ResourceKind::VpcEndpoint, &d.name),
            endpoint_name(bp, d),
        ),
        None => {
            let name = name_tag(&tags).unwrap_or(&physical_id).to_string();
            let short = name
                .strip_prefix(&format!("{}-", bp.metadata.name))
                .unwrap_or(&name)
                .to_string();
            (ResourceId::new(ResourceKind::VpcEndpoint, short), name)
        }
    };
    // moto answers `gateway`/`interface`; AWS `Gateway`/`Interface`.
    let kind = match e
        .vpc_endpoint_type
        .as_ref()
        .map(|t| t.as_str().to_ascii_lowercase())
        .as_deref()
    {
        Some("gateway") => Value::from("Gateway"),
        Some("interface") => Value::from("Interface"),
        Some(other) => Value::from(other),
        None => Value::Null,
    };
    let mut fields = BTreeMap::new();
    fields.insert("vpcId".into(), json!(e.vpc_id));
    fields.insert("service".into(), json!(e.service_name));
    fields.insert("routeTables".into(), sorted(e.route_table_ids().to_vec()));
    fields.insert("subnets".into(), sorted(e.subnet_ids().to_vec()));
    fields.insert(
        "securityGroups".into(),
        sorted(e.groups().iter().filter_map(|g| g.group_id.clone())),
    );
    fields.insert(
        "privateDns".into(),
        Value::Bool(e.private_dns_enabled.unwrap_or(false)),
    );
    if kind == "Gateway" {
        fields.remove("subnets");
        fields.remove("securityGroups");
        fields.remove("privateDns");
    } else {
        fields.remove("routeTables");
    }
    fields.insert("type".into(), kind);
    LiveState {
        id,
        physical_name,
        physical_id,
        arn: None,
        ownership: Ownership::from_tags(&tags, &bp.metadata.name),
        tags,
        fields,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_names_expand_short_forms() {
        assert_eq!(
            service_name("eu-west-1", "sqs"),
            "com.amazonaws.eu-west-1.sqs"
        );
        assert_eq!(
            service_name("eu-west-1", "com.amazonaws.eu-west-1.dynamodb"),
            "com.amazonaws.eu-west-1.dynamodb"
        );
    }

    #[test]
    fn lists_canonicalize_sorted_and_deduplicated() {
        assert_eq!(
            sorted(vec!["b".to_string(), "a".to_string(), "b".to_string()]),
            json!(["a", "b"])
        );
    }
}
