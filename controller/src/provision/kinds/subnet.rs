//! The VPC's subnets. A subnet given by `id` is only read, never modified or deleted.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ec2::types::{Filter, ResourceType};
use ballast_aws::SdkResultExt;
use ballast_blueprint::{
    Blueprint, DeletionPolicy, ResourceId, ResourceKind, Tags, graph::is_literal_id,
};
use tracing::instrument;

use super::ec2::*;
use super::route_tables::*;
use super::vpc::vpc_id;
use super::{ApplyContext, ObserveContext, Observed, ResourceOps};
use crate::provision::diff::FieldChange;
use crate::provision::error::ProvisionError;
use crate::provision::state::{Changes, DesiredState, LiveState, Ownership, Resolved};
use crate::provision::typed::{Desired, Live, TypedDesired, TypedLive, Want};

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

crate::provision::typed::typed_state! {
    /// A subnet's compared state: `desired` builds it from the blueprint, `observe` from
    /// DescribeSubnets and the route tables' associations ([`live_state`]). A subnet given by
    /// `id` is only read: its desired state checks nothing and its live state says
    /// `referenced`.
    pub struct SubnetState for SubnetField {
        VpcId => vpc_id: String = CreateOnly,
        Cidr => cidr: String = CreateOnly,
        /// Checked only when the blueprint sets it.
        AvailabilityZone => availability_zone: String = CreateOnly,
        MapPublicIpOnLaunch => map_public_ip_on_launch: bool = Enforced,
        /// The explicitly associated route table (`None`: the VPC's main one); checked only
        /// in a VPC Ballast creates.
        RouteTable => route_table: Option<String> = Enforced,
        /// Observed only (what ReplaceRouteTableAssociation takes); never compared.
        RouteTableAssociationId => route_table_association_id: String = Enforced,
        /// Observed only (`true` for a subnet given by `id`); never compared.
        Referenced => referenced: bool = Enforced,
    }
}

impl SubnetState<Live> {
    /// Whether this is a subnet the blueprint gives by `id`, which Ballast never changes.
    pub fn is_referenced(&self) -> bool {
        self.referenced == Some(true)
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
        let vpc = vpc_id(bp, resolved);
        let route_table = private_route_table(bp, resolved);
        network
            .vpc
            .subnets
            .iter()
            .map(|s| {
                let id = ResourceId::new(Self::KIND, &s.name);
                let physical_name = bp.subnet_name(s);
                if s.id.is_some() {
                    let state = SubnetState::<Desired>::read_only();
                    return DesiredState {
                        id,
                        physical_name,
                        fields: state.expected_fields(),
                        tags: Tags::new(),
                        adopt: s.adopt,
                        deletion_policy: DeletionPolicy::Retain,
                        typed: TypedDesired::new(state),
                    };
                }
                let state = SubnetState {
                    vpc_id: Want::exact_or_later(vpc.clone()),
                    cidr: Want::Exact(s.cidr.clone().unwrap_or_default()),
                    availability_zone: s
                        .availability_zone
                        .clone()
                        .map(Want::Exact)
                        .unwrap_or(Want::Unchecked),
                    map_public_ip_on_launch: Want::Exact(s.map_public_ip_on_launch),
                    // In a VPC Ballast creates, every subnet uses its private route table.
                    route_table: if new_vpc {
                        Want::exact_or_later(route_table.clone().map(Some))
                    } else {
                        Want::Unchecked
                    },
                    route_table_association_id: Want::Unchecked,
                    referenced: Want::Unchecked,
                };
                let tags = with_name(bp, &id, &Tags::new(), &physical_name);
                DesiredState {
                    id,
                    tags,
                    physical_name,
                    fields: state.expected_fields(),
                    adopt: s.adopt,
                    deletion_policy: Blueprint::effective_deletion_policy(
                        Self::KIND,
                        s.deletion_policy,
                    ),
                    typed: TypedDesired::new(state),
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
            let state = live_state(&s, associations.get(&physical_id), referenced);
            let ownership = if referenced {
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
                fields: state.live_fields(),
                typed: TypedLive::new(state),
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
        let want = desired.state::<SubnetState<Desired>>()?;
        let Some(vpc) = want.vpc_id.exact() else {
            let vpc_name = bp.spec.network.as_ref().map(|n| n.vpc.name.as_str());
            return Err(missing(desired, ResourceKind::Vpc, vpc_name.unwrap_or("?")));
        };
        let err = || ProvisionError::aws(&desired.id);
        let mut request = ec2
            .create_subnet()
            .vpc_id(vpc)
            .tag_specifications(tag_spec(ResourceType::Subnet, &desired.tags));
        if let Some(cidr) = want.cidr.exact() {
            request = request.cidr_block(cidr);
        }
        if let Some(az) = want.availability_zone.exact() {
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
        let map_public = want.map_public_ip_on_launch.exact() == Some(&true);
        if map_public {
            set_map_public(ec2, &desired.id, &physical_id, true).await?;
        }
        let mut state = SubnetState {
            vpc_id: Some(vpc.clone()),
            cidr: subnet.cidr_block.clone(),
            availability_zone: subnet.availability_zone.clone(),
            map_public_ip_on_launch: Some(map_public),
            route_table: Some(None),
            route_table_association_id: None,
            referenced: None,
        };
        if let Some(Some(rt)) = want.route_table.exact() {
            let assoc = ec2
                .associate_route_table()
                .route_table_id(rt)
                .subnet_id(&physical_id)
                .send()
                .await
                .classify("ec2:AssociateRouteTable")
                .map_err(err())?
                .association_id;
            state.route_table = Some(Some(rt.clone()));
            state.route_table_association_id = assoc;
        }
        Ok(LiveState {
            id: desired.id.clone(),
            physical_name: desired.physical_name.clone(),
            physical_id,
            arn: subnet.subnet_arn,
            ownership: Ownership::Owned,
            tags: desired.tags.clone(),
            fields: state.live_fields(),
            typed: TypedLive::new(state),
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
        let have = live.state::<SubnetState<Live>>()?;
        if have.is_referenced() {
            return Ok(());
        }
        let want = desired.state::<SubnetState<Desired>>()?;
        let ec2 = &ctx.clients.ec2;
        let err = || ProvisionError::aws(&desired.id);
        if changes.has(SubnetField::MapPublicIpOnLaunch) {
            let on = want.map_public_ip_on_launch.exact() == Some(&true);
            set_map_public(ec2, &desired.id, &live.physical_id, on).await?;
        }
        if changes.has(SubnetField::RouteTable)
            && let Some(Some(rt)) = want.route_table.exact()
        {
            match &have.route_table_association_id {
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
        // An orphan's live state (`orphan::Orphan`) carries no typed state: Ballast tagged it,
        // so it is never one the blueprint gives by `id`.
        if live
            .state::<SubnetState<Live>>()
            .is_ok_and(SubnetState::is_referenced)
        {
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

impl SubnetState<Desired> {
    /// A subnet given by `id`: only read, nothing checked.
    fn read_only() -> Self {
        SubnetState {
            vpc_id: Want::Unchecked,
            cidr: Want::Unchecked,
            availability_zone: Want::Unchecked,
            map_public_ip_on_launch: Want::Unchecked,
            route_table: Want::Unchecked,
            route_table_association_id: Want::Unchecked,
            referenced: Want::Unchecked,
        }
    }
}

/// The subnet's typed live state; `association` is its explicit route table association
/// (route table id, association id), if any.
fn live_state(
    s: &aws_sdk_ec2::types::Subnet,
    association: Option<&(String, String)>,
    referenced: bool,
) -> SubnetState<Live> {
    SubnetState {
        vpc_id: s.vpc_id.clone(),
        cidr: s.cidr_block.clone(),
        availability_zone: s.availability_zone.clone(),
        map_public_ip_on_launch: Some(s.map_public_ip_on_launch.unwrap_or(false)),
        route_table: Some(association.map(|(rt, _)| rt.clone())),
        route_table_association_id: association.map(|(_, assoc)| assoc.clone()),
        referenced: referenced.then_some(true),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provision::diff::Action;
    use crate::provision::kinds::ec2::tests::{network_blueprint, network_resolved};
    use crate::provision::state::{FieldClass, FieldName};
    use crate::provision::typed::Change;
    use crate::provision::typed::testing::{owned_live, typed_diff};

    fn described(association: Option<&(String, String)>) -> SubnetState<Live> {
        let subnet = aws_sdk_ec2::types::Subnet::builder()
            .subnet_id("subnet-a")
            .vpc_id("vpc-1")
            .cidr_block("10.20.1.0/24")
            .availability_zone("us-east-1a")
            .map_public_ip_on_launch(false)
            .build();
        live_state(&subnet, association, false)
    }

    /// A subnet whose association with the private route table was removed by hand is
    /// exactly one change, `routeTable`; the VPC's id and route table come from its typed
    /// live state.
    #[test]
    fn one_differing_field_is_exactly_one_change() {
        let bp = network_blueprint();
        let desired = Subnets::desired(&bp, &network_resolved());
        let want = desired[0].state::<SubnetState<Desired>>().unwrap();
        assert_eq!(want.vpc_id, Want::Exact("vpc-1".to_string()));
        let associated = ("rtb-1".to_string(), "rtbassoc-a".to_string());
        assert_eq!(want.changes(&described(Some(&associated))), vec![]);
        let detached = described(None);
        assert_eq!(
            want.changes(&detached),
            vec![Change {
                field: SubnetField::RouteTable,
                class: FieldClass::Enforced,
                live: "(unset)".into(),
                desired: "rtb-1".into(),
            }]
        );
        let action = typed_diff(
            &desired[0],
            &owned_live(&desired[0], detached.clone(), detached.live_fields()),
        );
        let Action::Update { changes } = action else {
            panic!("expected an update, got {action:?}");
        };
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].field, SubnetField::RouteTable.name());
        // The rendered live state keeps `routeTable: null` for "no explicit association".
        assert_eq!(
            detached.live_fields()[SubnetField::RouteTable.name()],
            serde_json::Value::Null
        );
    }

    /// Before the VPC exists, its id is known only after apply (and so is the route table).
    #[test]
    fn references_are_known_after_apply() {
        let bp = network_blueprint();
        let desired = Subnets::desired(&bp, &Resolved::default());
        let want = desired[0].state::<SubnetState<Desired>>().unwrap();
        assert_eq!(want.vpc_id, Want::KnownAfterApply);
        assert_eq!(want.route_table, Want::KnownAfterApply);
        let action = typed_diff(
            &desired[0],
            &owned_live(&desired[0], described(None), described(None).live_fields()),
        );
        assert!(matches!(action, Action::Replace { .. }), "{action:?}");
    }
}
