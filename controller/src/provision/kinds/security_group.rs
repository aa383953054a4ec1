//! Security groups of the blueprint's VPC.
//!
//! A group's rules compare as two sets (ingress, egress) of single rules: one protocol, one port
//! range, one peer. EC2 groups rules into `IpPermission`s by protocol and ports; `observe`
//! flattens them, so neither the grouping nor the order is drift. The blueprint's rules are the
//! whole truth: EC2 gives every new group an allow-all egress rule, which `create` revokes
//! unless the blueprint declares it, and a rule added behind Ballast's back is revoked.
//!
//! A rule naming another blueprint group waits for that group (the reference orders them); a
//! rule naming its own group gets the group's id once `CreateSecurityGroup` answers it.

use std::collections::BTreeSet;

use aws_sdk_ec2::types::{
    IpPermission, IpRange, Ipv6Range, PrefixListId, ResourceType, SecurityGroup as AwsGroup,
    UserIdGroupPair,
};
use ballast_aws::SdkResultExt;
use ballast_blueprint::{
    Blueprint, ResourceId, ResourceKind, RuleProtocol, SecurityGroupRule, graph::is_literal_id,
};
use serde_json::{Value, json};
use tracing::instrument;

use super::ec2::*;
use super::vpc::vpc_id;
use super::{ApplyContext, ObserveContext, Observed, ResourceOps};
use crate::provision::diff::FieldChange;
use crate::provision::error::ProvisionError;
use crate::provision::state::{Changes, DesiredState, LiveState, Ownership, Resolved};
use crate::provision::typed::{Desired, FieldValue, Live, TypedDesired, TypedLive, Want};

pub struct SecurityGroups;

crate::provision::state::field_names! {
    /// The fields of SecurityGroups, as plan and drift output name them.
    pub enum GroupRuleField {
        VpcId = "vpcId",
        Description = "description",
        Ingress = "ingress",
        Egress = "egress",
    }
}

crate::provision::typed::typed_state! {
    /// A group's compared state: `desired` builds it from the blueprint, `observe` from
    /// `DescribeSecurityGroups`.
    pub struct SecurityGroupState for GroupRuleField {
        VpcId => vpc_id: String = CreateOnly,
        /// EC2 cannot change a group's description.
        Description => description: String = CreateOnly,
        /// Sorted single rules.
        Ingress => ingress: Vec<Rule> = Enforced,
        Egress => egress: Vec<Rule> = Enforced,
    }
}

/// The peer of a rule.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Peer {
    Cidr(String),
    Ipv6Cidr(String),
    /// A security group by id.
    Group(String),
    /// A managed prefix list by id (never declared by a blueprint; shown when found).
    PrefixList(String),
}

/// One rule: protocol as EC2 names it (`tcp`, `udp`, `icmp`, `-1`), its ports (none for `-1`)
/// and one peer.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rule {
    pub protocol: String,
    pub ports: Option<(i32, i32)>,
    pub peer: Peer,
}

impl FieldValue for Rule {
    fn to_value(&self) -> Value {
        let mut v = serde_json::Map::new();
        v.insert("protocol".into(), json!(self.protocol));
        if let Some((from, to)) = self.ports {
            v.insert("fromPort".into(), json!(from));
            v.insert("toPort".into(), json!(to));
        }
        let (key, peer) = match &self.peer {
            Peer::Cidr(c) => ("cidr", c),
            Peer::Ipv6Cidr(c) => ("ipv6Cidr", c),
            Peer::Group(g) => ("group", g),
            Peer::PrefixList(p) => ("prefixList", p),
        };
        v.insert(key.into(), json!(peer));
        Value::Object(v)
    }
}

impl Rule {
    /// The rule as the one-peer `IpPermission` that authorizes or revokes it.
    fn permission(&self) -> IpPermission {
        let mut p = IpPermission::builder().ip_protocol(&self.protocol);
        if let Some((from, to)) = self.ports {
            p = p.from_port(from).to_port(to);
        }
        match &self.peer {
            Peer::Cidr(c) => p.ip_ranges(IpRange::builder().cidr_ip(c).build()),
            Peer::Ipv6Cidr(c) => p.ipv6_ranges(Ipv6Range::builder().cidr_ipv6(c).build()),
            Peer::Group(g) => p.user_id_group_pairs(UserIdGroupPair::builder().group_id(g).build()),
            Peer::PrefixList(id) => {
                p.prefix_list_ids(PrefixListId::builder().prefix_list_id(id).build())
            }
        }
        .build()
    }
}

/// Ports in the canonical form: none for every protocol, otherwise as given (`-1` for icmp
/// means every type and code).
fn canonical_ports(protocol: &str, from: Option<i32>, to: Option<i32>) -> Option<(i32, i32)> {
    if protocol == "-1" {
        return None;
    }
    Some((from.unwrap_or(-1), to.unwrap_or(-1)))
}

/// The single rules of EC2's grouped permissions.
fn flatten(permissions: &[IpPermission]) -> Vec<Rule> {
    let mut rules = BTreeSet::new();
    for p in permissions {
        let protocol = p.ip_protocol().unwrap_or("-1").to_string();
        let ports = canonical_ports(&protocol, p.from_port(), p.to_port());
        let rule = |peer| Rule {
            protocol: protocol.clone(),
            ports,
            peer,
        };
        for r in p.ip_ranges() {
            rules.extend(r.cidr_ip().map(|c| rule(Peer::Cidr(c.to_string()))));
        }
        for r in p.ipv6_ranges() {
            rules.extend(r.cidr_ipv6().map(|c| rule(Peer::Ipv6Cidr(c.to_string()))));
        }
        for g in p.user_id_group_pairs() {
            rules.extend(g.group_id().map(|g| rule(Peer::Group(g.to_string()))));
        }
        for l in p.prefix_list_ids() {
            rules.extend(
                l.prefix_list_id()
                    .map(|l| rule(Peer::PrefixList(l.to_string()))),
            );
        }
    }
    rules.into_iter().collect()
}

/// The blueprint's rules with groups by id; `own_id` stands for a rule naming its own group.
/// `None` while a named group has no id yet.
fn rules(
    resolved: &Resolved,
    declared: &[SecurityGroupRule],
    own_name: &str,
    own_id: Option<&str>,
) -> Option<Vec<Rule>> {
    let mut out = BTreeSet::new();
    for r in declared {
        let protocol = r.protocol.ec2_name().to_string();
        let ports = match r.protocol {
            RuleProtocol::All => None,
            RuleProtocol::Icmp => Some((-1, -1)),
            RuleProtocol::Tcp | RuleProtocol::Udp => r
                .port_range()
                .map(|(from, to)| (i32::from(from), i32::from(to))),
        };
        let peer = match (&r.cidr, &r.group) {
            (Some(cidr), _) => Peer::Cidr(cidr.clone()),
            (None, Some(g)) if is_literal_id(g, "sg-") => Peer::Group(g.clone()),
            (None, Some(g)) if g == own_name => Peer::Group(own_id?.to_string()),
            (None, Some(g)) => Peer::Group(
                resolved
                    .physical_id(&ResourceId::new(ResourceKind::SecurityGroup, g))?
                    .to_string(),
            ),
            // Validation requires a peer; a rule without one has nothing to compare.
            (None, None) => continue,
        };
        out.insert(Rule {
            protocol,
            ports,
            peer,
        });
    }
    Some(out.into_iter().collect())
}

fn declared_groups(bp: &Blueprint) -> &[ballast_blueprint::SecurityGroup] {
    bp.spec
        .network
        .as_ref()
        .map(|n| n.vpc.security_groups.as_slice())
        .unwrap_or_default()
}

fn desired_state(
    bp: &Blueprint,
    resolved: &Resolved,
    g: &ballast_blueprint::SecurityGroup,
) -> SecurityGroupState<Desired> {
    let own_id = resolved.physical_id(&ResourceId::new(ResourceKind::SecurityGroup, &g.name));
    SecurityGroupState {
        vpc_id: Want::exact_or_later(vpc_id(bp, resolved)),
        description: Want::Exact(g.description.clone()),
        ingress: Want::exact_or_later(rules(resolved, &g.ingress, &g.name, own_id)),
        egress: Want::exact_or_later(rules(resolved, &g.egress, &g.name, own_id)),
    }
}

fn live_state(g: &AwsGroup) -> SecurityGroupState<Live> {
    SecurityGroupState {
        vpc_id: g.vpc_id().map(str::to_string),
        description: g.description().map(str::to_string),
        ingress: Some(flatten(g.ip_permissions())),
        egress: Some(flatten(g.ip_permissions_egress())),
    }
}

fn live(id: ResourceId, bp: &Blueprint, g: &AwsGroup) -> LiveState {
    let tags = ec2_tags(g.tags());
    let state = live_state(g);
    LiveState {
        ownership: Ownership::from_tags(&tags, &bp.metadata.name),
        id,
        physical_name: g.group_name().unwrap_or_default().to_string(),
        physical_id: g.group_id().unwrap_or_default().to_string(),
        arn: g.security_group_arn().map(str::to_string),
        tags,
        fields: state.live_fields(),
        typed: TypedLive::new(state),
    }
}

#[instrument(skip_all, fields(group = %group_id))]
async fn describe_one(
    ec2: &aws_sdk_ec2::Client,
    id: &ResourceId,
    group_id: &str,
) -> Result<AwsGroup, ProvisionError> {
    ec2.describe_security_groups()
        .group_ids(group_id)
        .send()
        .await
        .classify("ec2:DescribeSecurityGroups")
        .map_err(ProvisionError::aws(id))?
        .security_groups
        .unwrap_or_default()
        .into_iter()
        .next()
        .ok_or_else(|| ProvisionError::Unexpected {
            resource: id.clone(),
            operation: "ec2:DescribeSecurityGroups",
            detail: format!("group {group_id} is not visible after it was created"),
        })
}

/// Which way a rule points.
#[derive(Debug, Clone, Copy)]
enum Direction {
    Ingress,
    Egress,
}

/// Authorizes `add` and revokes `remove` on one side of the group.
#[instrument(skip_all, fields(group = %group_id, ?direction, add = add.len(), remove = remove.len()))]
async fn change_rules(
    ec2: &aws_sdk_ec2::Client,
    id: &ResourceId,
    group_id: &str,
    direction: Direction,
    add: &[&Rule],
    remove: &[&Rule],
) -> Result<(), ProvisionError> {
    let err = || ProvisionError::aws(id);
    let permissions = |rules: &[&Rule]| Some(rules.iter().map(|r| r.permission()).collect());
    // Revoke first: a rule replaced by a wider one must not be refused as a duplicate.
    if !remove.is_empty() {
        match direction {
            Direction::Ingress => ec2
                .revoke_security_group_ingress()
                .group_id(group_id)
                .set_ip_permissions(permissions(remove))
                .send()
                .await
                .classify("ec2:RevokeSecurityGroupIngress")
                .map(|_| ()),
            Direction::Egress => ec2
                .revoke_security_group_egress()
                .group_id(group_id)
                .set_ip_permissions(permissions(remove))
                .send()
                .await
                .classify("ec2:RevokeSecurityGroupEgress")
                .map(|_| ()),
        }
        .map_err(err())?;
    }
    if !add.is_empty() {
        match direction {
            Direction::Ingress => ec2
                .authorize_security_group_ingress()
                .group_id(group_id)
                .set_ip_permissions(permissions(add))
                .send()
                .await
                .classify("ec2:AuthorizeSecurityGroupIngress")
                .map(|_| ()),
            Direction::Egress => ec2
                .authorize_security_group_egress()
                .group_id(group_id)
                .set_ip_permissions(permissions(add))
                .send()
                .await
                .classify("ec2:AuthorizeSecurityGroupEgress")
                .map(|_| ()),
        }
        .map_err(err())?;
    }
    Ok(())
}

/// The rules to add and to remove to bring `have` to `want`.
fn delta<'a>(want: &'a [Rule], have: &'a [Rule]) -> (Vec<&'a Rule>, Vec<&'a Rule>) {
    let want_set: BTreeSet<&Rule> = want.iter().collect();
    let have_set: BTreeSet<&Rule> = have.iter().collect();
    (
        want_set.difference(&have_set).copied().collect(),
        have_set.difference(&want_set).copied().collect(),
    )
}

impl ResourceOps for SecurityGroups {
    const KIND: ResourceKind = ResourceKind::SecurityGroup;
    type Field = GroupRuleField;

    fn desired(bp: &Blueprint, resolved: &Resolved) -> Vec<DesiredState> {
        declared_groups(bp)
            .iter()
            .map(|g| {
                let state = desired_state(bp, resolved, g);
                let physical_name = bp.security_group_name(g);
                let id = ResourceId::new(Self::KIND, &g.name);
                DesiredState {
                    tags: with_name(bp, &id, &g.tags, &physical_name),
                    id,
                    physical_name,
                    fields: state.expected_fields(),
                    adopt: g.adopt,
                    deletion_policy: Blueprint::effective_deletion_policy(
                        Self::KIND,
                        g.deletion_policy,
                    ),
                    typed: TypedDesired::new(state),
                }
            })
            .collect()
    }

    /// The groups of the blueprint's VPC, in one paginated `DescribeSecurityGroups`; the VPC's
    /// `default` group is EC2's and never reported.
    #[instrument(skip_all, fields(kind = "security-group"))]
    async fn observe(ctx: &ObserveContext<'_>) -> Result<Observed, ProvisionError> {
        let bp = ctx.blueprint;
        let Some(vpc) = vpc_id(bp, ctx.resolved) else {
            // No VPC yet: no group either.
            return Ok(Observed::default());
        };
        let groups = ctx
            .clients
            .ec2()
            .describe_security_groups()
            .filters(filter("vpc-id", [vpc]))
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .classify("ec2:DescribeSecurityGroups")
            .map_err(ProvisionError::aws(&ResourceId::new(Self::KIND, "*")))?;
        let declared = declared_groups(bp);
        let prefix = format!("{}-", bp.metadata.name);
        let mut observed = Observed::default();
        for g in groups.iter().filter(|g| g.group_name() != Some("default")) {
            let name = g.group_name().unwrap_or_default();
            let decl = declared.iter().find(|d| bp.security_group_name(d) == name);
            let id = match decl {
                Some(d) => ResourceId::new(Self::KIND, &d.name),
                None => ResourceId::new(Self::KIND, name.strip_prefix(&prefix).unwrap_or(name)),
            };
            observed.file(live(id, bp, g), decl.is_some());
        }
        Ok(observed)
    }

    #[instrument(skip_all, fields(group = %desired.physical_name))]
    async fn create(
        ctx: &ApplyContext<'_>,
        desired: &DesiredState,
    ) -> Result<LiveState, ProvisionError> {
        let ec2 = &ctx.clients.ec2;
        let bp = ctx.blueprint;
        let want = desired.state::<SecurityGroupState<Desired>>()?;
        let Some(vpc) = want.vpc_id.exact() else {
            let vpc_name = bp.spec.network.as_ref().map(|n| n.vpc.name.as_str());
            return Err(missing(desired, ResourceKind::Vpc, vpc_name.unwrap_or("?")));
        };
        let decl = declared_groups(bp)
            .iter()
            .find(|g| g.name == desired.id.name)
            .ok_or_else(|| ProvisionError::NotDeclared {
                resource: desired.id.clone(),
            })?;
        let group_id = ec2
            .create_security_group()
            .group_name(&desired.physical_name)
            .description(want.description.exact().cloned().unwrap_or_default())
            .vpc_id(vpc)
            .tag_specifications(tag_spec(ResourceType::SecurityGroup, &desired.tags))
            .send()
            .await
            .classify("ec2:CreateSecurityGroup")
            .map_err(ProvisionError::aws(&desired.id))?
            .group_id
            .ok_or_else(|| ProvisionError::Unexpected {
                resource: desired.id.clone(),
                operation: "ec2:CreateSecurityGroup",
                detail: "no group id in the answer".into(),
            })?;
        // Now that the group has an id, rules naming it resolve; other groups came first.
        let unresolved = |side: &str| ProvisionError::Unexpected {
            resource: desired.id.clone(),
            operation: "ec2:AuthorizeSecurityGroupIngress",
            detail: format!("a group named by the {side} rules has no id"),
        };
        let ingress = rules(ctx.resolved, &decl.ingress, &decl.name, Some(&group_id))
            .ok_or_else(|| unresolved("ingress"))?;
        let egress = rules(ctx.resolved, &decl.egress, &decl.name, Some(&group_id))
            .ok_or_else(|| unresolved("egress"))?;
        let created = describe_one(ec2, &desired.id, &group_id).await?;
        let defaults = flatten(created.ip_permissions_egress());
        let (add, remove) = delta(&egress, &defaults);
        change_rules(
            ec2,
            &desired.id,
            &group_id,
            Direction::Egress,
            &add,
            &remove,
        )
        .await?;
        let added: Vec<&Rule> = ingress.iter().collect();
        change_rules(ec2, &desired.id, &group_id, Direction::Ingress, &added, &[]).await?;
        let group = describe_one(ec2, &desired.id, &group_id).await?;
        Ok(live(desired.id.clone(), bp, &group))
    }

    #[instrument(skip_all, fields(group = %desired.physical_name))]
    async fn update(
        ctx: &ApplyContext<'_>,
        desired: &DesiredState,
        live: &LiveState,
        changes: &[FieldChange],
    ) -> Result<(), ProvisionError> {
        let ec2 = &ctx.clients.ec2;
        let want = desired.state::<SecurityGroupState<Desired>>()?;
        let have = live.state::<SecurityGroupState<Live>>()?;
        let changes = Changes::<GroupRuleField>::of(changes);
        let sides = [
            (
                GroupRuleField::Ingress,
                Direction::Ingress,
                &want.ingress,
                &have.ingress,
            ),
            (
                GroupRuleField::Egress,
                Direction::Egress,
                &want.egress,
                &have.egress,
            ),
        ];
        for (field, direction, want, have) in sides {
            if let (true, Some(want)) = (changes.has(field), want.exact()) {
                let have = have.as_deref().unwrap_or_default();
                let (add, remove) = delta(want, have);
                change_rules(
                    ec2,
                    &desired.id,
                    &live.physical_id,
                    direction,
                    &add,
                    &remove,
                )
                .await?;
            }
        }
        if changes.tags() {
            put_tags(ec2, &desired.id, &live.physical_id, &desired.tags).await?;
        }
        Ok(())
    }

    #[instrument(skip_all, fields(group = %live.physical_name))]
    async fn delete(ctx: &ApplyContext<'_>, live: &LiveState) -> Result<(), ProvisionError> {
        ProvisionError::unless_gone(
            &live.id,
            ctx.clients
                .ec2
                .delete_security_group()
                .group_id(&live.physical_id)
                .send()
                .await
                .classify("ec2:DeleteSecurityGroup"),
        )
    }
}

/// Security group references (blueprint names or `sg-…` ids) as group ids, sorted; `None` while
/// a named group has no id yet. For the endpoints and launch templates that name groups.
pub fn group_ids<'a>(
    resolved: &Resolved,
    references: impl IntoIterator<Item = &'a String>,
) -> Option<Vec<String>> {
    let ids: Option<BTreeSet<String>> = references
        .into_iter()
        .map(|g| {
            if is_literal_id(g, "sg-") {
                Some(g.clone())
            } else {
                resolved
                    .physical_id(&ResourceId::new(ResourceKind::SecurityGroup, g))
                    .map(str::to_string)
            }
        })
        .collect();
    ids.map(|set| set.into_iter().collect())
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::provision::typed::testing::shop_blueprint;

    /// EC2's allow-all egress rule of a new group.
    fn default_egress() -> Rule {
        Rule {
            protocol: "-1".into(),
            ports: None,
            peer: Peer::Cidr("0.0.0.0/0".into()),
        }
    }

    #[test]
    fn grouped_permissions_flatten_into_single_rules() {
        let grouped = IpPermission::builder()
            .ip_protocol("tcp")
            .from_port(443)
            .to_port(443)
            .ip_ranges(IpRange::builder().cidr_ip("10.0.0.0/16").build())
            .ip_ranges(IpRange::builder().cidr_ip("10.1.0.0/16").build())
            .user_id_group_pairs(UserIdGroupPair::builder().group_id("sg-1").build())
            .build();
        let all = IpPermission::builder()
            .ip_protocol("-1")
            .from_port(-1)
            .to_port(-1)
            .ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build())
            .build();
        let rules = flatten(&[grouped, all]);
        assert_eq!(rules.len(), 4);
        assert!(rules.contains(&default_egress()), "{rules:?}");
        assert!(rules.contains(&Rule {
            protocol: "tcp".into(),
            ports: Some((443, 443)),
            peer: Peer::Group("sg-1".into()),
        }));
        // Each flattened rule is its own one-peer permission again.
        let p = rules[0].permission();
        assert_eq!(
            p.ip_ranges().len() + p.user_id_group_pairs().len() + p.ipv6_ranges().len(),
            1
        );
    }

    #[test]
    fn desired_rules_resolve_groups_and_wait_for_unknown_ones() {
        let bp = shop_blueprint(
            r#"  network:
    vpc:
      name: main
      cidr: 10.0.0.0/16
      securityGroups:
        - name: lb
          description: Load balancer
        - name: app
          description: App
          ingress:
            - { protocol: tcp, port: 8080, group: lb }
            - { protocol: all, group: app }
            - { protocol: icmp, cidr: 10.0.0.0/16 }
            - { protocol: tcp, fromPort: 1024, toPort: 2048, group: sg-0external }
"#,
        );
        let app = &declared_groups(&bp)[1];
        let resolved = Resolved::default();
        assert_eq!(rules(&resolved, &app.ingress, "app", Some("sg-app")), None);
        let mut resolved = Resolved::default();
        resolved.insert(LiveState::referenced(
            ResourceKind::SecurityGroup,
            "lb",
            "shop-lb",
            "sg-lb",
            None,
        ));
        assert_eq!(rules(&resolved, &app.ingress, "app", None), None);
        let got = rules(&resolved, &app.ingress, "app", Some("sg-app")).unwrap();
        let rule = |protocol: &str, ports, peer| Rule {
            protocol: protocol.into(),
            ports,
            peer,
        };
        assert_eq!(
            got,
            vec![
                rule("-1", None, Peer::Group("sg-app".into())),
                rule("icmp", Some((-1, -1)), Peer::Cidr("10.0.0.0/16".into())),
                rule(
                    "tcp",
                    Some((1024, 2048)),
                    Peer::Group("sg-0external".into())
                ),
                rule("tcp", Some((8080, 8080)), Peer::Group("sg-lb".into())),
            ]
        );
        // No egress declared: none wanted, so EC2's default is revoked.
        assert_eq!(
            rules(&resolved, &app.egress, "app", Some("sg-app")),
            Some(vec![])
        );
        let defaults = [default_egress()];
        let (add, remove) = delta(&[], &defaults);
        assert!(add.is_empty());
        assert_eq!(remove, vec![&default_egress()]);
    }

    #[test]
    fn group_references_become_sorted_ids() {
        let resolved = Resolved::default();
        assert_eq!(
            group_ids(&resolved, &["sg-b".to_string(), "sg-a".to_string()]),
            Some(vec!["sg-a".to_string(), "sg-b".to_string()])
        );
        assert_eq!(group_ids(&resolved, &["workers".to_string()]), None);
    }
}
