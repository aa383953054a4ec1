//! The VPC's endpoints (gateway and interface).

use aws_sdk_ec2::types::{Filter, ResourceType, VpcEndpointType};
use ballast_aws::SdkResultExt;
use ballast_blueprint::{Blueprint, EndpointType, ResourceId, ResourceKind, Tags};
use serde_json::Value;
use tracing::instrument;

use super::ec2::*;
use super::route_tables::*;
use super::subnet::{SubnetState, subnet_id};
use super::support::*;
use super::vpc::vpc_id;
use super::{ApplyContext, ObserveContext, Observed, ResourceOps};
use crate::provision::diff::FieldChange;
use crate::provision::error::ProvisionError;
use crate::provision::state::{Changes, DesiredState, LiveState, Ownership, Resolved};
use crate::provision::typed::{Desired, FieldValue, Live, TypedDesired, TypedLive, Want};

pub struct VpcEndpoints;

crate::provision::state::field_names! {
    /// The fields of VpcEndpoints, as plan and drift output name them.
    pub enum EndpointField {
        VpcId = "vpcId",
        Service = "service",
        Type = "type",
        RouteTables = "routeTables",
        Subnets = "subnets",
        SecurityGroups = "securityGroups",
        PrivateDns = "privateDns",
    }
}

crate::provision::typed::typed_state! {
    /// An endpoint's compared state: `desired` builds it from the blueprint, `observe` from
    /// DescribeVpcEndpoints ([`live_state`]). A gateway endpoint has route tables, an
    /// interface endpoint subnets, security groups and private DNS; the other kind's fields are
    /// neither checked nor reported. Lists are sorted and deduplicated ([`sorted`]), so the
    /// order AWS returns them in is not drift.
    pub struct EndpointState for EndpointField {
        VpcId => vpc_id: String = CreateOnly,
        /// The full service name (see [`service_name`]).
        Service => service: String = CreateOnly,
        Type => kind: EndpointKind = CreateOnly,
        RouteTables => route_tables: Vec<String> = Enforced,
        Subnets => subnets: Vec<String> = Enforced,
        /// Checked only when the blueprint lists some.
        SecurityGroups => security_groups: Vec<String> = Enforced,
        PrivateDns => private_dns: bool = Enforced,
    }
}

/// The type of a VPC endpoint, as AWS spells it (`Gateway`, `Interface`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndpointKind {
    Gateway,
    Interface,
    /// A type Ballast does not create (e.g. `GatewayLoadBalancer`), as AWS reported it.
    Other(String),
}

impl EndpointKind {
    fn as_str(&self) -> &str {
        match self {
            EndpointKind::Gateway => "Gateway",
            EndpointKind::Interface => "Interface",
            EndpointKind::Other(other) => other,
        }
    }
}

impl From<EndpointType> for EndpointKind {
    fn from(kind: EndpointType) -> Self {
        match kind {
            EndpointType::Gateway => EndpointKind::Gateway,
            EndpointType::Interface => EndpointKind::Interface,
        }
    }
}

impl FieldValue for EndpointKind {
    fn to_value(&self) -> Value {
        Value::from(self.as_str())
    }
}

/// `com.amazonaws.<region>.<service>` unless already a full name.
pub fn service_name(region: &str, service: &str) -> String {
    if service.contains('.') {
        service.to_string()
    } else {
        format!("com.amazonaws.{region}.{service}")
    }
}

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
        if let Some(Some(rt)) = &live.state::<SubnetState<Live>>().ok()?.route_table {
            out.push(rt.clone());
        }
    }
    Some(out)
}

/// The endpoint's typed desired state; references resolve through `resolved`.
fn desired_state(
    bp: &Blueprint,
    resolved: &Resolved,
    e: &ballast_blueprint::VpcEndpoint,
) -> EndpointState<Desired> {
    let mut state = EndpointState {
        vpc_id: Want::exact_or_later(vpc_id(bp, resolved)),
        service: Want::Exact(service_name(&bp.metadata.region, &e.service)),
        kind: Want::Exact(EndpointKind::from(e.kind)),
        route_tables: Want::Unchecked,
        subnets: Want::Unchecked,
        security_groups: Want::Unchecked,
        private_dns: Want::Unchecked,
    };
    match e.kind {
        EndpointType::Gateway => {
            let tables = if e.route_tables.is_empty() {
                default_route_tables(bp, resolved)
            } else {
                Some(e.route_tables.clone())
            };
            state.route_tables = Want::exact_or_later(tables.map(sorted));
        }
        EndpointType::Interface => {
            let subnets: Option<Vec<String>> = e
                .subnets
                .iter()
                .map(|s| subnet_id(bp, resolved, s))
                .collect();
            state.subnets = Want::exact_or_later(subnets.map(sorted));
            if !e.security_groups.is_empty() || !e.security_group_ids.is_empty() {
                // Named groups resolve to the ids this apply created (or will create).
                let groups = super::security_group::group_ids(
                    resolved,
                    e.security_groups.iter().chain(&e.security_group_ids),
                );
                state.security_groups = Want::exact_or_later(groups.map(sorted));
            }
            state.private_dns = Want::Exact(e.private_dns);
        }
    }
    state
}

impl ResourceOps for VpcEndpoints {
    const KIND: ResourceKind = ResourceKind::VpcEndpoint;
    type Field = EndpointField;

    fn desired(bp: &Blueprint, resolved: &Resolved) -> Vec<DesiredState> {
        let Some(network) = &bp.spec.network else {
            return Vec::new();
        };
        network
            .endpoints
            .iter()
            .map(|e| {
                let state = desired_state(bp, resolved, e);
                let physical_name = bp.endpoint_name(e);
                DesiredState {
                    id: ResourceId::new(Self::KIND, &e.name),
                    tags: with_name(
                        bp,
                        &ResourceId::new(Self::KIND, &e.name),
                        &e.tags,
                        &physical_name,
                    ),
                    physical_name,
                    fields: state.expected_fields(),
                    adopt: e.adopt,
                    deletion_policy: Blueprint::effective_deletion_policy(
                        Self::KIND,
                        e.deletion_policy,
                    ),
                    typed: TypedDesired::new(state),
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
                .classify("ec2:DescribeVpcEndpoints")
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
            .map(|d| bp.endpoint_name(d))
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
                .find(|d| name_tag(&tags) == Some(bp.endpoint_name(d).as_str()));
            let live = endpoint_live(bp, decl.copied(), &e, tags);
            observed.file(live, decl.is_some());
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
        let want = desired.state::<EndpointState<Desired>>()?;
        let Some(vpc) = want.vpc_id.exact() else {
            let vpc_name = bp.spec.network.as_ref().map(|n| n.vpc.name.as_str());
            return Err(missing(desired, ResourceKind::Vpc, vpc_name.unwrap_or("?")));
        };
        let kind = want.kind.exact().unwrap_or(&EndpointKind::Gateway);
        let mut request = ec2
            .create_vpc_endpoint()
            .vpc_id(vpc)
            .service_name(want.service.exact().cloned().unwrap_or_default())
            .vpc_endpoint_type(VpcEndpointType::from(kind.as_str()))
            .tag_specifications(tag_spec(ResourceType::VpcEndpoint, &desired.tags));
        if *kind == EndpointKind::Gateway {
            let Some(tables) = want.route_tables.exact() else {
                return Err(missing(desired, ResourceKind::Vpc, "route table"));
            };
            request = request.set_route_table_ids(Some(tables.clone()));
        } else {
            let Some(subnets) = want.subnets.exact() else {
                return Err(missing(desired, ResourceKind::Subnet, "subnets"));
            };
            request = request
                .set_subnet_ids(Some(subnets.clone()))
                .private_dns_enabled(want.private_dns.exact() == Some(&true));
            if matches!(want.security_groups, Want::KnownAfterApply) {
                return Err(missing(
                    desired,
                    ResourceKind::SecurityGroup,
                    "security groups",
                ));
            }
            if let Some(groups) = want.security_groups.exact().filter(|g| !g.is_empty()) {
                request = request.set_security_group_ids(Some(groups.clone()));
            }
        }
        let endpoint = request
            .send()
            .await
            .classify("ec2:CreateVpcEndpoint")
            .map_err(ProvisionError::aws(&desired.id))?
            .vpc_endpoint
            .ok_or_else(|| ProvisionError::Unexpected {
                resource: desired.id.clone(),
                operation: "ec2:CreateVpcEndpoint",
                detail: "no endpoint".into(),
            })?;
        let endpoint_id = endpoint.vpc_endpoint_id.clone().unwrap_or_default();
        // The create answer is the first check; later checks describe the endpoint again.
        let mut first = Some(endpoint);
        let last = poll_until(
            &ctx.readiness,
            &desired.id,
            "VPC endpoint available",
            || {
                let answer = first.take();
                let endpoint_id = &endpoint_id;
                async move {
                    let Some(e) = (match answer {
                        Some(e) => Some(e),
                        None => describe_endpoint(ec2, &desired.id, endpoint_id).await?,
                    }) else {
                        return Ok(Poll::Pending);
                    };
                    let state = e.state.as_ref().map(|s| s.as_str().to_ascii_lowercase());
                    match state.as_deref() {
                        Some("available") => Ok(Poll::Ready(e)),
                        Some(bad @ ("failed" | "rejected")) => Err(ProvisionError::Unexpected {
                            resource: desired.id.clone(),
                            operation: "ec2:DescribeVpcEndpoints",
                            detail: format!("endpoint {endpoint_id} is {bad}"),
                        }),
                        _ => Ok(Poll::Pending),
                    }
                }
            },
        )
        .await?;
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
        let changes = Changes::<EndpointField>::of(changes);
        let want = desired.state::<EndpointState<Desired>>()?;
        let have = live.state::<EndpointState<Live>>()?;
        let ec2 = &ctx.clients.ec2;
        // The lists to change: those with a change and an exact desired value.
        let delta = |field: EndpointField, want: &Want<Vec<String>>, have: &Option<Vec<String>>| {
            let want = want.exact().filter(|_| changes.has(field))?;
            let have = have.as_deref().unwrap_or_default();
            Some(SetDelta::between(
                want.iter().map(String::as_str),
                have.iter().map(String::as_str),
            ))
        };
        let mut request = ec2.modify_vpc_endpoint().vpc_endpoint_id(&live.physical_id);
        let mut any = false;
        if let Some(d) = delta(
            EndpointField::RouteTables,
            &want.route_tables,
            &have.route_tables,
        ) {
            any |= !d.is_empty();
            request = request
                .set_add_route_table_ids(d.adds())
                .set_remove_route_table_ids(d.removes());
        }
        if let Some(d) = delta(EndpointField::Subnets, &want.subnets, &have.subnets) {
            any |= !d.is_empty();
            request = request
                .set_add_subnet_ids(d.adds())
                .set_remove_subnet_ids(d.removes());
        }
        if let Some(d) = delta(
            EndpointField::SecurityGroups,
            &want.security_groups,
            &have.security_groups,
        ) {
            any |= !d.is_empty();
            request = request
                .set_add_security_group_ids(d.adds())
                .set_remove_security_group_ids(d.removes());
        }
        if changes.has(EndpointField::PrivateDns) {
            any = true;
            request = request.private_dns_enabled(want.private_dns.exact() == Some(&true));
        }
        if any {
            request
                .send()
                .await
                .classify("ec2:ModifyVpcEndpoint")
                .map_err(ProvisionError::aws(&desired.id))?;
        }
        if changes.tags() {
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
            .classify("ec2:DeleteVpcEndpoints")
        {
            Ok(_) => {}
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) => return Err(ProvisionError::aws(&live.id)(e)),
        }
        poll_until(&ctx.readiness, &live.id, "VPC endpoint deleted", || async {
            let found = describe_endpoint(ec2, &live.id, &live.physical_id).await?;
            let gone = found.is_none_or(|e| {
                e.state
                    .as_ref()
                    .is_some_and(|s| s.as_str().eq_ignore_ascii_case("deleted"))
            });
            Ok(if gone { Poll::Ready(()) } else { Poll::Pending })
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
        .classify("ec2:DescribeVpcEndpoints")
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
            bp.endpoint_name(d),
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
    let state = live_state(e);
    LiveState {
        id,
        physical_name,
        physical_id,
        arn: None,
        ownership: Ownership::from_tags(&tags, &bp.metadata.name),
        tags,
        fields: state.live_fields(),
        typed: TypedLive::new(state),
    }
}

/// The endpoint's typed live state: a gateway's route tables, or an interface's subnets,
/// security groups and private DNS.
fn live_state(e: &aws_sdk_ec2::types::VpcEndpoint) -> EndpointState<Live> {
    // moto answers `gateway`/`interface`; AWS `Gateway`/`Interface`.
    let kind =
        e.vpc_endpoint_type
            .as_ref()
            .map(|t| match t.as_str().to_ascii_lowercase().as_str() {
                "gateway" => EndpointKind::Gateway,
                "interface" => EndpointKind::Interface,
                _ => EndpointKind::Other(t.as_str().to_ascii_lowercase()),
            });
    let gateway = kind == Some(EndpointKind::Gateway);
    EndpointState {
        vpc_id: e.vpc_id.clone(),
        service: e.service_name.clone(),
        route_tables: gateway.then(|| sorted(e.route_table_ids().to_vec())),
        subnets: (!gateway).then(|| sorted(e.subnet_ids().to_vec())),
        security_groups: (!gateway)
            .then(|| sorted(e.groups().iter().filter_map(|g| g.group_id.clone()))),
        private_dns: (!gateway).then(|| e.private_dns_enabled.unwrap_or(false)),
        kind,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provision::diff::Action;
    use crate::provision::kinds::ec2::tests::{network_blueprint, network_resolved};
    use crate::provision::state::{FieldClass, FieldName};
    use crate::provision::typed::Change;
    use crate::provision::typed::testing::{owned_live, typed_diff};

    /// The interface endpoint as moto describes it: lower-case type, lists in any order.
    fn described_interface(private_dns: bool) -> aws_sdk_ec2::types::VpcEndpoint {
        let group = |id: &str| {
            aws_sdk_ec2::types::SecurityGroupIdentifier::builder()
                .group_id(id)
                .build()
        };
        aws_sdk_ec2::types::VpcEndpoint::builder()
            .vpc_endpoint_id("vpce-1")
            .vpc_endpoint_type(VpcEndpointType::from("interface"))
            .vpc_id("vpc-1")
            .service_name("com.amazonaws.us-east-1.sqs")
            .subnet_ids("subnet-b")
            .subnet_ids("subnet-a")
            .groups(group("sg-2"))
            .groups(group("sg-1"))
            .private_dns_enabled(private_dns)
            .build()
    }

    /// Private DNS turned off by hand is exactly one change, `privateDns`; list order and the
    /// type's spelling are not drift.
    #[test]
    fn one_differing_field_is_exactly_one_change() {
        let bp = network_blueprint();
        let desired = VpcEndpoints::desired(&bp, &network_resolved());
        let interface = desired
            .iter()
            .find(|d| d.id.name == "sqs")
            .expect("the sqs endpoint");
        let want = interface.state::<EndpointState<Desired>>().unwrap();
        assert_eq!(
            want.subnets,
            Want::Exact(vec!["subnet-a".to_string(), "subnet-b".to_string()])
        );
        assert_eq!(
            want.changes(&live_state(&described_interface(true))),
            vec![]
        );
        let edited = live_state(&described_interface(false));
        assert_eq!(edited.kind, Some(EndpointKind::Interface));
        assert_eq!(edited.route_tables, None);
        assert_eq!(
            want.changes(&edited),
            vec![Change {
                field: EndpointField::PrivateDns,
                class: FieldClass::Enforced,
                live: "false".into(),
                desired: "true".into(),
            }]
        );
        let action = typed_diff(
            interface,
            &owned_live(interface, edited.clone(), edited.live_fields()),
        );
        let Action::Update { changes } = action else {
            panic!("expected an update, got {action:?}");
        };
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].field, EndpointField::PrivateDns.name());
    }

    /// A gateway endpoint defaults to the new VPC's private route table (read from the VPC's
    /// typed live state); one more route table is exactly one change, `routeTables`.
    #[test]
    fn a_gateway_compares_its_route_tables() {
        let bp = network_blueprint();
        let desired = VpcEndpoints::desired(&bp, &network_resolved());
        let gateway = desired
            .iter()
            .find(|d| d.id.name == "dynamodb")
            .expect("the dynamodb endpoint");
        let want = gateway.state::<EndpointState<Desired>>().unwrap();
        assert_eq!(want.route_tables, Want::Exact(vec!["rtb-1".to_string()]));
        let described = aws_sdk_ec2::types::VpcEndpoint::builder()
            .vpc_endpoint_type(VpcEndpointType::Gateway)
            .vpc_id("vpc-1")
            .service_name("com.amazonaws.us-east-1.dynamodb")
            .route_table_ids("rtb-1")
            .route_table_ids("rtb-2")
            .build();
        let live = live_state(&described);
        assert_eq!(live.subnets, None);
        assert_eq!(live.private_dns, None);
        let action = typed_diff(
            gateway,
            &owned_live(gateway, live.clone(), live.live_fields()),
        );
        let Action::Update { changes } = action else {
            panic!("expected an update, got {action:?}");
        };
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].field, EndpointField::RouteTables.name());
        assert_eq!(changes[0].live, r#"["rtb-1","rtb-2"]"#);
    }

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
}
