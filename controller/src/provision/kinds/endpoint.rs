//! The VPC's endpoints (gateway and interface).

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{Filter, ResourceType, VpcEndpointType};
use ballast_aws::SdkResultExt;
use ballast_blueprint::{Blueprint, EndpointType, ResourceId, ResourceKind, Tags};
use serde_json::{Value, json};
use tracing::instrument;

use super::ec2::*;
use super::route_tables::*;
use super::subnet::subnet_id;
use super::support::*;
use super::vpc::vpc_id;
use super::{ApplyContext, ObserveContext, Observed, ResourceOps};
use crate::provision::diff::FieldChange;
use crate::provision::error::ProvisionError;
use crate::provision::state::{
    Changes, DesiredState, Field, LiveFields, LiveState, Ownership, Resolved,
};
use crate::provision::typed::{TypedDesired, TypedLive};

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
        if let Some(rt) = live
            .fields
            .field(super::subnet::SubnetField::RouteTable)
            .and_then(Value::as_str)
        {
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
    type Field = EndpointField;

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
                    Field::create_only(EndpointField::VpcId, Value::Null)
                        .with_expect(exact_or_later(vpc.clone())),
                    Field::create_only(
                        EndpointField::Service,
                        service_name(&bp.metadata.region, &e.service),
                    ),
                    Field::create_only(EndpointField::Type, endpoint_type(e.kind)),
                ];
                match e.kind {
                    EndpointType::Gateway => {
                        let tables = if e.route_tables.is_empty() {
                            default_route_tables(bp, resolved)
                        } else {
                            Some(e.route_tables.clone())
                        };
                        fields.push(
                            Field::enforced(EndpointField::RouteTables, Value::Null)
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
                            Field::enforced(EndpointField::Subnets, Value::Null)
                                .with_expect(exact_or_later(subnets.map(sorted))),
                        );
                        if !e.security_groups.is_empty() || !e.security_group_ids.is_empty() {
                            let groups = super::security_group::group_ids(
                                resolved,
                                e.security_groups.iter().chain(&e.security_group_ids),
                            );
                            fields.push(
                                Field::enforced(EndpointField::SecurityGroups, Value::Null)
                                    .with_expect(exact_or_later(groups.map(sorted))),
                            );
                        }
                        fields.push(Field::enforced(EndpointField::PrivateDns, e.private_dns));
                    }
                }
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
                    fields,
                    adopt: e.adopt,
                    deletion_policy: Blueprint::effective_deletion_policy(
                        Self::KIND,
                        e.deletion_policy,
                    ),
                    typed: TypedDesired::untyped(),
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
        let Some(Value::String(vpc)) = desired.value(EndpointField::VpcId) else {
            let vpc_name = bp.spec.network.as_ref().map(|n| n.vpc.name.as_str());
            return Err(missing(desired, ResourceKind::Vpc, vpc_name.unwrap_or("?")));
        };
        let kind = desired
            .value(EndpointField::Type)
            .and_then(Value::as_str)
            .unwrap_or("Gateway");
        let mut request = ec2
            .create_vpc_endpoint()
            .vpc_id(vpc)
            .service_name(
                desired
                    .value(EndpointField::Service)
                    .and_then(Value::as_str)
                    .unwrap_or_default(),
            )
            .vpc_endpoint_type(VpcEndpointType::from(kind))
            .tag_specifications(tag_spec(ResourceType::VpcEndpoint, &desired.tags));
        if kind == "Gateway" {
            let Some(tables) = desired.value(EndpointField::RouteTables) else {
                return Err(missing(desired, ResourceKind::Vpc, "route table"));
            };
            request = request.set_route_table_ids(Some(strings(Some(tables))));
        } else {
            let Some(subnets) = desired.value(EndpointField::Subnets) else {
                return Err(missing(desired, ResourceKind::Subnet, "subnets"));
            };
            request = request
                .set_subnet_ids(Some(strings(Some(subnets))))
                .private_dns_enabled(
                    desired.value(EndpointField::PrivateDns) == Some(&Value::Bool(true)),
                );
            let groups = strings(desired.value(EndpointField::SecurityGroups));
            if !groups.is_empty() {
                request = request.set_security_group_ids(Some(groups));
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
        let ec2 = &ctx.clients.ec2;
        let delta = |field: EndpointField| {
            let want = strings(desired.value(field));
            let have = strings(live.fields.field(field));
            SetDelta::between(
                want.iter().map(String::as_str),
                have.iter().map(String::as_str),
            )
        };
        let mut request = ec2.modify_vpc_endpoint().vpc_endpoint_id(&live.physical_id);
        let mut any = false;
        if changes.has(EndpointField::RouteTables)
            && desired.value(EndpointField::RouteTables).is_some()
        {
            let d = delta(EndpointField::RouteTables);
            any |= !d.is_empty();
            request = request
                .set_add_route_table_ids(d.adds())
                .set_remove_route_table_ids(d.removes());
        }
        if changes.has(EndpointField::Subnets) && desired.value(EndpointField::Subnets).is_some() {
            let d = delta(EndpointField::Subnets);
            any |= !d.is_empty();
            request = request
                .set_add_subnet_ids(d.adds())
                .set_remove_subnet_ids(d.removes());
        }
        if changes.has(EndpointField::SecurityGroups)
            && desired.value(EndpointField::SecurityGroups).is_some()
        {
            let d = delta(EndpointField::SecurityGroups);
            any |= !d.is_empty();
            request = request
                .set_add_security_group_ids(d.adds())
                .set_remove_security_group_ids(d.removes());
        }
        if changes.has(EndpointField::PrivateDns) {
            any = true;
            request = request.private_dns_enabled(
                desired.value(EndpointField::PrivateDns) == Some(&Value::Bool(true)),
            );
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
    fields.put(EndpointField::VpcId, json!(e.vpc_id));
    fields.put(EndpointField::Service, json!(e.service_name));
    fields.put(
        EndpointField::RouteTables,
        sorted(e.route_table_ids().to_vec()),
    );
    fields.put(EndpointField::Subnets, sorted(e.subnet_ids().to_vec()));
    fields.put(
        EndpointField::SecurityGroups,
        sorted(e.groups().iter().filter_map(|g| g.group_id.clone())),
    );
    fields.put(
        EndpointField::PrivateDns,
        Value::Bool(e.private_dns_enabled.unwrap_or(false)),
    );
    if kind == "Gateway" {
        fields.drop_field(EndpointField::Subnets);
        fields.drop_field(EndpointField::SecurityGroups);
        fields.drop_field(EndpointField::PrivateDns);
    } else {
        fields.drop_field(EndpointField::RouteTables);
    }
    fields.put(EndpointField::Type, kind);
    LiveState {
        id,
        physical_name,
        physical_id,
        arn: None,
        ownership: Ownership::from_tags(&tags, &bp.metadata.name),
        tags,
        fields,
        typed: TypedLive::untyped(),
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
}
