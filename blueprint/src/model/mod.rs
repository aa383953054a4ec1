//! The blueprint language v1: one YAML document describes one stack.

mod common;
mod compute;
mod iam;
mod kms;
mod monitoring;
mod network;
mod queue;
mod scaling;
mod table;
mod topic;

pub use common::*;
pub use compute::*;
pub use iam::*;
pub use kms::*;
pub use monitoring::*;
pub use network::*;
pub use queue::*;
pub use scaling::*;
pub use table::*;
pub use topic::*;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub const API_VERSION: &str = "ballast.dev/v1";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(
    title = "Ballast blueprint",
    description = "One stack of the queue-driven platform."
)]
pub struct Blueprint {
    /// Always `ballast.dev/v1`.
    pub api_version: ApiVersion,
    /// Always `Blueprint`.
    pub kind: BlueprintKind,
    pub metadata: Metadata,
    #[serde(default)]
    pub spec: Spec,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ApiVersion {
    #[serde(rename = "ballast.dev/v1")]
    V1,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum BlueprintKind {
    Blueprint,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Metadata {
    /// Stack name; prefixes physical names and is the value of the `ballast.dev/blueprint` tag.
    pub name: String,
    /// AWS region of the stack, e.g. `eu-west-1`.
    pub region: String,
    /// Tags added to every resource, besides Ballast's ownership tags.
    #[serde(default)]
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Spec {
    #[serde(default)]
    pub kms_keys: Vec<KmsKey>,
    #[serde(default)]
    pub queues: Vec<Queue>,
    #[serde(default)]
    pub tables: Vec<Table>,
    #[serde(default)]
    pub network: Option<Network>,
    /// Customer managed IAM policies, their documents derived from the blueprint.
    #[serde(default)]
    pub managed_policies: Vec<ManagedPolicy>,
    #[serde(default)]
    pub iam_roles: Vec<IamRole>,
    /// Instance profiles that launch templates give their instances.
    #[serde(default)]
    pub instance_profiles: Vec<InstanceProfile>,
    #[serde(default)]
    pub launch_templates: Vec<LaunchTemplate>,
    #[serde(default)]
    pub auto_scaling_groups: Vec<AutoScalingGroup>,
    /// SNS topics that alarms notify.
    #[serde(default)]
    pub topics: Vec<Topic>,
    #[serde(default)]
    pub alarms: Vec<Alarm>,
    #[serde(default)]
    pub dashboards: Vec<Dashboard>,
    #[serde(default)]
    pub scaling_policies: Vec<ScalingPolicy>,
}

/// Implements [`Lifecycle`] for resource structs that carry `deletionPolicy`, `adopt` and
/// `management`.
macro_rules! lifecycle {
    ($($ty:ty),* $(,)?) => {$(
        impl Lifecycle for $ty {
            fn deletion_policy(&self) -> Option<DeletionPolicy> { self.deletion_policy }
            fn adopt(&self) -> bool { self.adopt }
            fn management(&self) -> Management { self.management }
        }
    )*};
}
lifecycle!(
    KmsKey,
    Queue,
    Table,
    Vpc,
    Subnet,
    VpcEndpoint,
    LaunchTemplate,
    AutoScalingGroup,
    Alarm,
    Dashboard,
    Topic,
    SecurityGroup,
    ManagedPolicy,
    IamRole,
    InstanceProfile,
);

/// A scaling policy's only part in AWS is its dead-man's switch, which Ballast creates and
/// deletes with it: there is nothing to retain or adopt; only `management` applies to it.
impl Lifecycle for ScalingPolicy {
    fn deletion_policy(&self) -> Option<DeletionPolicy> {
        None
    }
    fn adopt(&self) -> bool {
        false
    }
    fn management(&self) -> Management {
        self.management
    }
}
