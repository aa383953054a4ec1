use super::{DeletionPolicy, Tags, kms::yes};
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
    #[serde(default)]
    pub deletion_policy: Option<DeletionPolicy>,
    #[serde(default)]
    pub adopt: bool,
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
    /// Interface endpoints: security group ids.
    #[serde(default)]
    pub security_group_ids: Vec<String>,
    /// Interface endpoints: resolve the service's public name to the endpoint. Default: on.
    #[serde(default = "yes")]
    pub private_dns: bool,
    #[serde(default)]
    pub deletion_policy: Option<DeletionPolicy>,
    #[serde(default)]
    pub adopt: bool,
    #[serde(default)]
    pub tags: Tags,
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

impl crate::registry::Resource for VpcEndpoint {
    const REFERENCES: &'static [crate::ResourceKind] =
        &[crate::ResourceKind::Vpc, crate::ResourceKind::Subnet];

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
