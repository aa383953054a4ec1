use super::{DeletionPolicy, Duration, Management, Tags};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// An EC2 launch template for the worker fleet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LaunchTemplate {
    pub name: String,
    /// Physical name. Default: `<metadata.name>-<name>`.
    #[serde(default)]
    pub launch_template_name: Option<String>,
    /// AMI id (`ami-…`).
    pub image_id: String,
    /// The first is the template's type; all of them are offered to the group's mixed
    /// instances policy.
    pub instance_types: Vec<String>,
    /// Cloud-init or shell script, sent base64-encoded.
    #[serde(default)]
    pub user_data: Option<String>,
    /// Blueprint instance profile name, or the ARN of an instance profile outside the
    /// blueprint (`arn:…`).
    #[serde(default)]
    pub instance_profile: Option<String>,
    /// Blueprint security group names or security group ids (`sg-…`).
    #[serde(default)]
    pub security_groups: Vec<String>,
    /// Security group ids of groups outside the blueprint.
    #[serde(default)]
    pub security_group_ids: Vec<String>,
    /// IMDSv2 session tokens. Default: `required`; `optional` switches a safety default off.
    #[serde(default)]
    pub metadata_http_tokens: HttpTokens,
    /// Public IPv4 address on the primary interface: a safety default switched off.
    #[serde(default)]
    pub associate_public_ip_address: bool,
    /// Encrypt the root volume. Default: on.
    #[serde(default = "super::kms::yes")]
    pub encrypted_volumes: bool,
    /// Root volume size in GiB (1 to 16384). Default: the AMI's snapshot size.
    #[serde(default)]
    pub root_volume_size: Option<u32>,
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

impl LaunchTemplate {
    /// The blueprint instance profile the template names (`None`: none, or one by ARN).
    pub fn blueprint_instance_profile(&self) -> Option<&str> {
        self.instance_profile
            .as_deref()
            .filter(|p| !crate::graph::is_literal_id(p, "arn:"))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum HttpTokens {
    #[default]
    Required,
    Optional,
}

/// The worker fleet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AutoScalingGroup {
    pub name: String,
    /// Physical name. Default: `<metadata.name>-<name>`.
    #[serde(default)]
    pub group_name: Option<String>,
    /// Blueprint name of the launch template.
    pub launch_template: String,
    /// Blueprint subnet names or subnet ids.
    pub subnets: Vec<String>,
    pub min_size: u32,
    pub max_size: u32,
    /// Initial capacity only; afterwards the autoscaler owns it. Default: `minSize`.
    #[serde(default)]
    pub desired_capacity: Option<u32>,
    /// On-demand base and spot share.
    #[serde(default)]
    pub instances_distribution: Option<InstancesDistribution>,
    #[serde(default)]
    pub health_check: HealthCheck,
    #[serde(default)]
    pub lifecycle_hooks: Vec<LifecycleHook>,
    /// Publish the group's metrics (GroupInServiceInstances, …) to CloudWatch. Default: on.
    #[serde(default = "super::kms::yes")]
    pub group_metrics: bool,
    #[serde(default)]
    pub deletion_policy: Option<DeletionPolicy>,
    #[serde(default)]
    pub adopt: bool,
    /// `observe`: plan, drift and `ballast run` report this resource's drift, but apply and
    /// `ballast run` never create, change, replace or delete it. Default: `manage`.
    #[serde(default)]
    pub management: Management,
    /// Tags, propagated to instances at launch.
    #[serde(default)]
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InstancesDistribution {
    /// Instances always on demand. Default: 0.
    #[serde(default)]
    pub on_demand_base_capacity: u32,
    /// Percentage of on-demand instances above the base, 0..100; the rest are spot.
    pub on_demand_percentage_above_base: u32,
    #[serde(default)]
    pub spot_allocation_strategy: SpotAllocationStrategy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SpotAllocationStrategy {
    #[default]
    PriceCapacityOptimized,
    CapacityOptimized,
    LowestPrice,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HealthCheck {
    #[serde(default, rename = "type")]
    pub kind: HealthCheckType,
    /// Default: 300s.
    #[serde(default = "default_grace")]
    pub grace_period: Duration,
}

impl Default for HealthCheck {
    fn default() -> Self {
        Self {
            kind: HealthCheckType::default(),
            grace_period: default_grace(),
        }
    }
}

fn default_grace() -> Duration {
    Duration::from_secs(300)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub enum HealthCheckType {
    #[default]
    #[serde(rename = "EC2")]
    Ec2,
    #[serde(rename = "ELB")]
    Elb,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LifecycleHook {
    pub name: String,
    pub transition: LifecycleTransition,
    /// Time an instance waits in the hook, 30s..2h. Default: 1h.
    #[serde(default = "default_heartbeat")]
    pub heartbeat_timeout: Duration,
    #[serde(default)]
    pub default_result: LifecycleResult,
}

fn default_heartbeat() -> Duration {
    Duration::from_secs(3600)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum LifecycleTransition {
    Launching,
    Terminating,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum LifecycleResult {
    #[default]
    Continue,
    Abandon,
}

impl crate::registry::Resource for LaunchTemplate {
    const REFERENCES: &'static [crate::ResourceKind] = &[
        crate::ResourceKind::SecurityGroup,
        crate::ResourceKind::InstanceProfile,
    ];

    fn in_spec(spec: &super::Spec) -> Vec<(&Self, String)> {
        let at = |(i, lt)| (lt, format!("spec.launchTemplates[{i}]"));
        spec.launch_templates.iter().enumerate().map(at).collect()
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn physical_name(&self, bp: &super::Blueprint) -> Option<String> {
        Some(bp.launch_template_name(self))
    }

    fn references(
        &self,
        me: &crate::ResourceId,
        path: &str,
        _spec: &super::Spec,
    ) -> Vec<crate::graph::Reference> {
        let mut out = super::network::security_group_references(
            me,
            &format!("{path}.securityGroups"),
            &self.security_groups,
        );
        if let Some(profile) = self.blueprint_instance_profile() {
            out.push(crate::graph::Reference::new(
                me,
                format!("{path}.instanceProfile"),
                crate::ResourceKind::InstanceProfile,
                profile,
                true,
            ));
        }
        out
    }
}

impl crate::registry::Resource for AutoScalingGroup {
    const REFERENCES: &'static [crate::ResourceKind] = &[
        crate::ResourceKind::Subnet,
        crate::ResourceKind::LaunchTemplate,
    ];

    fn in_spec(spec: &super::Spec) -> Vec<(&Self, String)> {
        let at = |(i, g)| (g, format!("spec.autoScalingGroups[{i}]"));
        spec.auto_scaling_groups
            .iter()
            .enumerate()
            .map(at)
            .collect()
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn physical_name(&self, bp: &super::Blueprint) -> Option<String> {
        Some(bp.group_name(self))
    }

    fn references(
        &self,
        me: &crate::ResourceId,
        path: &str,
        _spec: &super::Spec,
    ) -> Vec<crate::graph::Reference> {
        use crate::ResourceKind as K;
        use crate::graph::{Reference, is_literal_id};
        let lt = format!("{path}.launchTemplate");
        let mut out = vec![Reference::new(
            me,
            lt,
            K::LaunchTemplate,
            &self.launch_template,
            true,
        )];
        for (j, subnet) in self.subnets.iter().enumerate() {
            if !is_literal_id(subnet, "subnet-") {
                let at = format!("{path}.subnets[{j}]");
                out.push(Reference::new(me, at, K::Subnet, subnet, true));
            }
        }
        out
    }
}
