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
