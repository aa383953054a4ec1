use super::{DeletionPolicy, Management, Tags, kms::yes};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The VPC the fleet runs in and its endpoints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Network {
    pub vpc: Vpc,
    #[serde(default)]
    pub endpoints: Vec<VpcEndpoint>,
}

/// Either an existing VPC (`id`) or a new one (`cidr` and `subnets`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Vpc {
    pub name: String,
    /// Id of an existing VPC (`vpc-…`); Ballast then only reads it.
    #[serde(default)]
    pub id: Option<String>,
    /// IPv4 CIDR of a new VPC, /16../28.
    #[serde(default)]
    pub cidr: Option<String>,
    /// Private subnets of a new VPC, or existing subnets (`id`) of an existing one.
    #[serde(default)]
    pub subnets: Vec<Subnet>,
    /// Security groups in this VPC; endpoints and launch templates name them in
    /// `securityGroups`.
    #[serde(default)]
    pub security_groups: Vec<SecurityGroup>,
    #[serde(default)]
    pub deletion_policy: Option<DeletionPolicy>,
    #[serde(default)]
    pub adopt: bool,
    /// `observe`: plan, drift and `ballast run` report this resource's drift, but apply and
    /// `ballast run` never create, change, replace or delete it. Default: `manage`.
    #[serde(default)]
    pub management: Management,
    #[serde(default)]
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Subnet {
    pub name: String,
    /// Id of an existing subnet (`subnet-…`).
    #[serde(default)]
    pub id: Option<String>,
    /// CIDR of a new subnet, inside the VPC's CIDR.
    #[serde(default)]
    pub cidr: Option<String>,
    /// e.g. `eu-west-1a`.
    #[serde(default)]
    pub availability_zone: Option<String>,
    /// Give instances public IPs on launch: a safety default switched off.
    #[serde(default)]
    pub map_public_ip_on_launch: bool,
    #[serde(default)]
    pub deletion_policy: Option<DeletionPolicy>,
    #[serde(default)]
    pub adopt: bool,
    /// `observe`: plan, drift and `ballast run` report this resource's drift, but apply and
    /// `ballast run` never create, change, replace or delete it. Default: `manage`.
    #[serde(default)]
    pub management: Management,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VpcEndpoint {
    pub name: String,
    /// Short service name (`sqs`, `dynamodb`, `monitoring`, `kms`, …) or a full
    /// `com.amazonaws.<region>.<service>` name.
    pub service: String,
    #[serde(rename = "type")]
    pub kind: EndpointType,
    /// Gateway endpoints: route table ids. Default: the route table of the blueprint's subnets.
    #[serde(default)]
    pub route_tables: Vec<String>,
    /// Interface endpoints: blueprint subnet names or subnet ids.
    #[serde(default)]
    pub subnets: Vec<String>,
    /// Interface endpoints: blueprint security group names or security group ids (`sg-…`).
    #[serde(default)]
    pub security_groups: Vec<String>,
    /// Interface endpoints: security group ids of groups outside the blueprint.
    #[serde(default)]
    pub security_group_ids: Vec<String>,
    /// Interface endpoints: resolve the service's public name to the endpoint. Default: on.
    #[serde(default = "yes")]
    pub private_dns: bool,
    #[serde(default)]
    pub deletion_policy: Option<DeletionPolicy>,
    #[serde(default)]
    pub adopt: bool,
    /// `observe`: plan, drift and `ballast run` report this resource's drift, but apply and
    /// `ballast run` never create, change, replace or delete it. Default: `manage`.
    #[serde(default)]
    pub management: Management,
    #[serde(default)]
    pub tags: Tags,
}

/// A security group of the VPC. Its rules are the whole truth: AWS's default rule that allows
/// all outbound traffic is removed unless `egress` declares it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecurityGroup {
    pub name: String,
    /// Group name. Default: `<metadata.name>-<name>`.
    #[serde(default)]
    pub group_name: Option<String>,
    /// What the group is for; AWS cannot change it after creation.
    pub description: String,
    /// Inbound rules. Default: none.
    #[serde(default)]
    pub ingress: Vec<SecurityGroupRule>,
    /// Outbound rules. Default: none (AWS's allow-all default is removed); write
    /// `{protocol: all, cidr: 0.0.0.0/0}` to allow everything.
    #[serde(default)]
    pub egress: Vec<SecurityGroupRule>,
    #[serde(default)]
    pub deletion_policy: Option<DeletionPolicy>,
    #[serde(default)]
    pub adopt: bool,
    /// `observe`: plan, drift and `ballast run` report this resource's drift, but apply and
    /// `ballast run` never create, change, replace or delete it. Default: `manage`.
    #[serde(default)]
    pub management: Management,
    #[serde(default)]
    pub tags: Tags,
}

/// One rule: a protocol, its ports, and one peer (`cidr` or `group`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecurityGroupRule {
    pub protocol: RuleProtocol,
    /// One port (`tcp`/`udp`), e.g. 443.
    #[serde(default)]
    pub port: Option<u16>,
    /// The first port of a range (`tcp`/`udp`), with `toPort`.
    #[serde(default)]
    pub from_port: Option<u16>,
    /// The last port of a range (`tcp`/`udp`), with `fromPort`.
    #[serde(default)]
    pub to_port: Option<u16>,
    /// IPv4 CIDR of the peer, e.g. `10.20.0.0/16`.
    #[serde(default)]
    pub cidr: Option<String>,
    /// Blueprint name of a security group of this VPC (itself included), or a group id (`sg-…`).
    #[serde(default)]
    pub group: Option<String>,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub enum RuleProtocol {
    Tcp,
    Udp,
    Icmp,
    /// Every protocol and port.
    All,
}

impl RuleProtocol {
    /// The protocol as EC2 names it in `IpProtocol`.
    pub fn ec2_name(&self) -> &'static str {
        match self {
            RuleProtocol::Tcp => "tcp",
            RuleProtocol::Udp => "udp",
            RuleProtocol::Icmp => "icmp",
            RuleProtocol::All => "-1",
        }
    }
}

impl SecurityGroupRule {
    /// The port range `(from, to)`: one `port`, or `fromPort`..`toPort`; `None` for `all` and
    /// `icmp`, or when the rule gives none (which validation rejects for tcp and udp).
    pub fn port_range(&self) -> Option<(u16, u16)> {
        match (self.port, self.from_port, self.to_port) {
            (Some(p), _, _) => Some((p, p)),
            (None, Some(from), Some(to)) => Some((from, to)),
            (None, Some(from), None) => Some((from, from)),
            _ => None,
        }
    }

    /// The blueprint group a rule names, unless it gives a group id.
    pub fn group_reference(&self) -> Option<&str> {
        self.group
            .as_deref()
            .filter(|g| !crate::graph::is_literal_id(g, "sg-"))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum EndpointType {
    Gateway,
    Interface,
}

impl crate::registry::Resource for Vpc {
    const REFERENCES: &'static [crate::ResourceKind] = &[];

    fn in_spec(spec: &super::Spec) -> Vec<(&Self, String)> {
        let at = "spec.network.vpc";
        spec.network.iter().map(|n| (&n.vpc, at.into())).collect()
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn physical_name(&self, bp: &super::Blueprint) -> Option<String> {
        Some(bp.vpc_name(self))
    }

    fn references(
        &self,
        _me: &crate::ResourceId,
        _path: &str,
        _spec: &super::Spec,
    ) -> Vec<crate::graph::Reference> {
        Vec::new()
    }
}

impl crate::registry::Resource for Subnet {
    const REFERENCES: &'static [crate::ResourceKind] = &[crate::ResourceKind::Vpc];

    fn in_spec(spec: &super::Spec) -> Vec<(&Self, String)> {
        let Some(network) = &spec.network else {
            return Vec::new();
        };
        let at = |(i, s)| (s, format!("spec.network.vpc.subnets[{i}]"));
        network.vpc.subnets.iter().enumerate().map(at).collect()
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn physical_name(&self, bp: &super::Blueprint) -> Option<String> {
        Some(bp.subnet_name(self))
    }

    fn references(
        &self,
        me: &crate::ResourceId,
        _path: &str,
        spec: &super::Spec,
    ) -> Vec<crate::graph::Reference> {
        use crate::graph::Reference;
        // A subnet's VPC is the one it is declared in; the reference points at the VPC.
        spec.network
            .iter()
            .map(|n| {
                let vpc = &n.vpc.name;
                Reference::new(me, "spec.network.vpc", crate::ResourceKind::Vpc, vpc, true)
            })
            .collect()
    }
}

/// References from a `securityGroups` list (`path`) of blueprint group names and group ids.
pub(crate) fn security_group_references(
    me: &crate::ResourceId,
    path: &str,
    groups: &[String],
) -> Vec<crate::graph::Reference> {
    groups
        .iter()
        .enumerate()
        .filter(|(_, g)| !crate::graph::is_literal_id(g, "sg-"))
        .map(|(j, g)| {
            let at = format!("{path}[{j}]");
            crate::graph::Reference::new(me, at, crate::ResourceKind::SecurityGroup, g, true)
        })
        .collect()
}

impl crate::registry::Resource for SecurityGroup {
    const REFERENCES: &'static [crate::ResourceKind] =
        &[crate::ResourceKind::Vpc, crate::ResourceKind::SecurityGroup];

    fn in_spec(spec: &super::Spec) -> Vec<(&Self, String)> {
        let Some(network) = &spec.network else {
            return Vec::new();
        };
        let at = |(i, g)| (g, format!("spec.network.vpc.securityGroups[{i}]"));
        network
            .vpc
            .security_groups
            .iter()
            .enumerate()
            .map(at)
            .collect()
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn physical_name(&self, bp: &super::Blueprint) -> Option<String> {
        Some(bp.security_group_name(self))
    }

    fn references(
        &self,
        me: &crate::ResourceId,
        path: &str,
        spec: &super::Spec,
    ) -> Vec<crate::graph::Reference> {
        use crate::ResourceKind as K;
        use crate::graph::Reference;
        let Some(network) = &spec.network else {
            return Vec::new();
        };
        let mut out = vec![Reference::new(me, path, K::Vpc, &network.vpc.name, true)];
        for (direction, rules) in [("ingress", &self.ingress), ("egress", &self.egress)] {
            for (j, rule) in rules.iter().enumerate() {
                if let Some(group) = rule.group_reference() {
                    let at = format!("{path}.{direction}[{j}].group");
                    // A rule naming its own group needs only the group itself.
                    let ordering = group != self.name;
                    out.push(Reference::new(me, at, K::SecurityGroup, group, ordering));
                }
            }
        }
        out
    }
}

impl crate::registry::Resource for VpcEndpoint {
    const REFERENCES: &'static [crate::ResourceKind] = &[
        crate::ResourceKind::Vpc,
        crate::ResourceKind::Subnet,
        crate::ResourceKind::SecurityGroup,
    ];

    fn in_spec(spec: &super::Spec) -> Vec<(&Self, String)> {
        let Some(network) = &spec.network else {
            return Vec::new();
        };
        let at = |(i, e)| (e, format!("spec.network.endpoints[{i}]"));
        network.endpoints.iter().enumerate().map(at).collect()
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn physical_name(&self, bp: &super::Blueprint) -> Option<String> {
        Some(bp.endpoint_name(self))
    }

    fn references(
        &self,
        me: &crate::ResourceId,
        path: &str,
        spec: &super::Spec,
    ) -> Vec<crate::graph::Reference> {
        use crate::ResourceKind as K;
        use crate::graph::{Reference, is_literal_id};
        let Some(network) = &spec.network else {
            return Vec::new();
        };
        let mut out = vec![Reference::new(me, path, K::Vpc, &network.vpc.name, true)];
        out.extend(security_group_references(
            me,
            &format!("{path}.securityGroups"),
            &self.security_groups,
        ));
        for (j, subnet) in self.subnets.iter().enumerate() {
            if !is_literal_id(subnet, "subnet-") {
                let at = format!("{path}.subnets[{j}]");
                out.push(Reference::new(me, at, K::Subnet, subnet, true));
            }
        }
        if self.route_tables.is_empty() {
            // Without explicit route tables the endpoint uses every subnet's route table.
            for s in &network.vpc.subnets {
                out.push(Reference::new(me, path, K::Subnet, &s.name, true));
            }
        }
        out
    }
}
