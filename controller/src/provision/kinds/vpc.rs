//! The VPC (with one private route table when Ballast creates it).
//!
//! A VPC or subnet given by `id` is only read: Ballast never modifies or deletes it, and it is
//! treated as owned by reference (its live state carries `referenced: true`). Everything Ballast
//! creates carries a `Name` tag and the ownership tags, which is how `observe` finds it again.

use std::collections::BTreeSet;

use aws_sdk_ec2::types::{Filter, ResourceType, VpcAttributeName};
use ballast_aws::SdkResultExt;
use ballast_blueprint::{
    Blueprint, DeletionPolicy, OWNERSHIP_BLUEPRINT_TAG, ResourceId, ResourceKind, Tags,
};
use tracing::instrument;

use super::ec2::*;
use super::route_tables::*;
use super::{ApplyContext, ObserveContext, Observed, ResourceOps};
use crate::provision::diff::FieldChange;
use crate::provision::error::ProvisionError;
use crate::provision::state::{Changes, DesiredState, LiveState, Ownership, Resolved};
use crate::provision::typed::{Desired, Live, TypedDesired, TypedLive, Want};

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

crate::provision::typed::typed_state! {
    /// A VPC's compared state: `desired` builds it from the blueprint, `observe` from
    /// DescribeVpcs, DescribeVpcAttribute and the VPC's route tables. A VPC given by `id` is
    /// only read: its desired state checks nothing and its live state says `referenced`.
    pub struct VpcState for VpcField {
        /// Checked only when the blueprint sets it.
        Cidr => cidr: String = CreateOnly,
        EnableDnsSupport => enable_dns_support: bool = Enforced,
        EnableDnsHostnames => enable_dns_hostnames: bool = Enforced,
        /// Whether the VPC has its Ballast private route table.
        PrivateRouteTable => private_route_table: bool = Enforced,
        /// Observed only (`true` for a VPC given by `id`); never compared.
        Referenced => referenced: bool = Enforced,
        /// Observed only (the private route table's id, for subnets and endpoints); never
        /// compared.
        RouteTableId => route_table_id: String = Enforced,
    }
}

impl VpcState<Live> {
    /// Whether this is a VPC the blueprint gives by `id`, which Ballast never changes.
    pub fn is_referenced(&self) -> bool {
        self.referenced == Some(true)
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
        let state = desired_state(vpc);
        if vpc.id.is_some() {
            // Read only: nothing to enforce, never deleted.
            return vec![DesiredState {
                id,
                physical_name,
                fields: state.expected_fields(),
                tags: Tags::new(),
                adopt: vpc.adopt,
                deletion_policy: DeletionPolicy::Retain,
                typed: TypedDesired::new(state),
            }];
        }
        let tags = with_name(bp, &id, &vpc.tags, &physical_name);
        vec![DesiredState {
            id,
            tags,
            physical_name,
            fields: state.expected_fields(),
            adopt: vpc.adopt,
            deletion_policy: Blueprint::effective_deletion_policy(Self::KIND, vpc.deletion_policy),
            typed: TypedDesired::new(state),
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
            let mut state = unread_state();
            let ownership = if referenced {
                state.referenced = Some(true);
                Ownership::Owned
            } else {
                Ownership::from_tags(&tags, &bp.metadata.name)
            };
            if let Some(d) = declared_new {
                state.cidr = v.cidr_block.clone();
                let (support, hostnames) = tokio::try_join!(
                    vpc_attribute(ec2, &physical_id, VpcAttributeName::EnableDnsSupport),
                    vpc_attribute(ec2, &physical_id, VpcAttributeName::EnableDnsHostnames),
                )
                .map_err(ProvisionError::aws(&id))?;
                state.enable_dns_support = Some(support);
                state.enable_dns_hostnames = Some(hostnames);
                read_private_route_table(&mut state, bp, d, &physical_id, &route_tables.tables);
            }
            let live = LiveState {
                id,
                physical_name,
                physical_id,
                arn: None,
                ownership,
                tags,
                fields: state.live_fields(),
                typed: TypedLive::new(state),
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
        let want = desired.state::<VpcState<Desired>>()?;
        let cidr = want.cidr.exact().cloned().unwrap_or_default();
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
        set_dns(ec2, &desired.id, &physical_id, Some(true), Some(true)).await?;
        let rt_id = create_route_table(ctx, desired, &physical_id).await?;
        let state = VpcState {
            cidr: Some(cidr),
            enable_dns_support: Some(true),
            enable_dns_hostnames: Some(true),
            private_route_table: Some(true),
            referenced: None,
            route_table_id: Some(rt_id),
        };
        Ok(LiveState {
            id: desired.id.clone(),
            physical_name: desired.physical_name.clone(),
            physical_id,
            arn: None,
            ownership: Ownership::Owned,
            tags: desired.tags.clone(),
            fields: state.live_fields(),
            typed: TypedLive::new(state),
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
        if live.state::<VpcState<Live>>()?.is_referenced() {
            return Ok(());
        }
        let want = desired.state::<VpcState<Desired>>()?;
        let ec2 = &ctx.clients.ec2;
        let changed = |field: VpcField, want: &Want<bool>| {
            want.exact().copied().filter(|_| changes.has(field))
        };
        let support = changed(VpcField::EnableDnsSupport, &want.enable_dns_support);
        let hostnames = changed(VpcField::EnableDnsHostnames, &want.enable_dns_hostnames);
        if support.is_some() || hostnames.is_some() {
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
        let have = live.state::<VpcState<Live>>()?;
        if have.is_referenced() || have.route_table_id.is_some() {
            return Ok(None);
        }
        let vpc_ids = BTreeSet::from([live.physical_id.clone()]);
        let tables =
            describe_route_tables(&ctx.clients.ec2, &desired.id, "vpc-id", &vpc_ids).await?;
        let mut state = have.clone();
        read_private_route_table(&mut state, bp, vpc, &live.physical_id, &tables);
        Ok(Some(LiveState {
            fields: state.live_fields(),
            typed: TypedLive::new(state),
            ..live.clone()
        }))
    }

    /// Deletes the VPC's Ballast route tables, then the VPC; a referenced VPC is never touched.
    #[instrument(skip_all, fields(vpc = %live.physical_name))]
    async fn delete(ctx: &ApplyContext<'_>, live: &LiveState) -> Result<(), ProvisionError> {
        // An orphan's live state (`orphan::Orphan`) carries no typed state: Ballast tagged it,
        // so it is never one the blueprint gives by `id`.
        if live
            .state::<VpcState<Live>>()
            .is_ok_and(VpcState::is_referenced)
        {
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

/// The private route table of the new VPC `vpc_id` (`privateRouteTable`, `routeTableId`) from
/// its route tables: the one with the blueprint's Name and ownership tags.
fn read_private_route_table(
    state: &mut VpcState<Live>,
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
    state.private_route_table = Some(rt.is_some());
    state.route_table_id = rt.and_then(|rt| rt.route_table_id.clone());
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

/// The VPC's typed desired state; a VPC given by `id` checks nothing.
fn desired_state(vpc: &ballast_blueprint::Vpc) -> VpcState<Desired> {
    if vpc.id.is_some() {
        return VpcState {
            cidr: Want::Unchecked,
            enable_dns_support: Want::Unchecked,
            enable_dns_hostnames: Want::Unchecked,
            private_route_table: Want::Unchecked,
            referenced: Want::Unchecked,
            route_table_id: Want::Unchecked,
        };
    }
    VpcState {
        cidr: vpc.cidr.clone().map(Want::Exact).unwrap_or(Want::Unchecked),
        // Interface endpoints with private DNS need both.
        enable_dns_support: Want::Exact(true),
        enable_dns_hostnames: Want::Exact(true),
        private_route_table: Want::Exact(true),
        referenced: Want::Unchecked,
        route_table_id: Want::Unchecked,
    }
}

/// A live state with nothing read yet (a VPC that is neither declared new nor referenced is
/// only filed by its tags).
fn unread_state() -> VpcState<Live> {
    VpcState {
        cidr: None,
        enable_dns_support: None,
        enable_dns_hostnames: None,
        private_route_table: None,
        referenced: None,
        route_table_id: None,
    }
}

/// ModifyVpcAttribute takes one attribute per call; support must be on before hostnames.
/// `None` leaves an attribute as it is.
async fn set_dns(
    ec2: &aws_sdk_ec2::Client,
    id: &ResourceId,
    vpc_id: &str,
    support: Option<bool>,
    hostnames: Option<bool>,
) -> Result<(), ProvisionError> {
    if let Some(support) = support {
        ec2.modify_vpc_attribute()
            .vpc_id(vpc_id)
            .enable_dns_support(bool_attr(support))
            .send()
            .await
            .classify("ec2:ModifyVpcAttribute")
            .map_err(ProvisionError::aws(id))?;
    }
    if let Some(hostnames) = hostnames {
        ec2.modify_vpc_attribute()
            .vpc_id(vpc_id)
            .enable_dns_hostnames(bool_attr(hostnames))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provision::diff::Action;
    use crate::provision::kinds::ec2::tests::network_blueprint;
    use crate::provision::state::{FieldClass, FieldName};
    use crate::provision::typed::Change;
    use crate::provision::typed::testing::{owned_live, typed_diff};

    fn live_as_desired() -> VpcState<Live> {
        VpcState {
            cidr: Some("10.20.0.0/16".into()),
            enable_dns_support: Some(true),
            enable_dns_hostnames: Some(true),
            private_route_table: Some(true),
            referenced: None,
            route_table_id: Some("rtb-1".into()),
        }
    }

    /// Hostnames turned off by hand is exactly one change, `enableDnsHostnames`.
    #[test]
    fn one_differing_field_is_exactly_one_change() {
        let bp = network_blueprint();
        let desired = Vpcs::desired(&bp, &Resolved::default());
        let want = desired[0].state::<VpcState<Desired>>().unwrap();
        let same = live_as_desired();
        assert_eq!(want.changes(&same), vec![]);
        let edited = VpcState {
            enable_dns_hostnames: Some(false),
            ..live_as_desired()
        };
        assert_eq!(
            want.changes(&edited),
            vec![Change {
                field: VpcField::EnableDnsHostnames,
                class: FieldClass::Enforced,
                live: "false".into(),
                desired: "true".into(),
            }]
        );
        let action = typed_diff(
            &desired[0],
            &owned_live(&desired[0], edited.clone(), edited.live_fields()),
        );
        let Action::Update { changes } = action else {
            panic!("expected an update, got {action:?}");
        };
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].field, VpcField::EnableDnsHostnames.name());
        // A different CIDR replaces the VPC.
        let moved = VpcState {
            cidr: Some("10.30.0.0/16".into()),
            ..live_as_desired()
        };
        let action = typed_diff(
            &desired[0],
            &owned_live(&desired[0], moved.clone(), moved.live_fields()),
        );
        assert!(matches!(action, Action::Replace { .. }), "{action:?}");
    }

    /// A VPC given by `id` checks nothing and reads as referenced.
    #[test]
    fn a_referenced_vpc_checks_nothing() {
        let mut bp = network_blueprint();
        if let Some(network) = bp.spec.network.as_mut() {
            network.vpc.id = Some("vpc-1".into());
        }
        let desired = Vpcs::desired(&bp, &Resolved::default());
        assert!(desired[0].fields.is_empty());
        let live = VpcState {
            referenced: Some(true),
            ..unread_state()
        };
        assert!(live.is_referenced());
        assert_eq!(
            live.live_fields().keys().collect::<Vec<_>>(),
            [VpcField::Referenced.name()]
        );
        let action = typed_diff(
            &desired[0],
            &owned_live(&desired[0], live.clone(), live.live_fields()),
        );
        assert_eq!(action, Action::NoChange);
    }
}
