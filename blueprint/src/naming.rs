//! Physical names, ownership tags and the safety defaults a blueprint switches off.

use crate::graph::{ResourceId, ResourceKind};
use crate::model::*;

pub const OWNERSHIP_MANAGED_TAG: &str = "ballast.dev/managed";
pub const OWNERSHIP_BLUEPRINT_TAG: &str = "ballast.dev/blueprint";
/// The logical id of the resource (`kms-key/data`), set in the create call itself, so that a
/// resource whose name or alias was never set (an apply killed in between) is still found and
/// adopted, and an owned resource that no declaration claims is reported.
pub const OWNERSHIP_RESOURCE_TAG: &str = "ballast.dev/resource";
/// The prefix of Ballast's own tags; a blueprint may not set tags under it.
pub const OWNERSHIP_TAG_PREFIX: &str = "ballast.dev/";
/// How many tags [`Blueprint::ownership_tags_for`] adds to every resource (they count against
/// AWS's limit of 50 tags per resource).
pub const OWNERSHIP_TAG_COUNT: usize = 3;

impl Blueprint {
    fn default_name(&self, name: &str) -> String {
        format!("{}-{}", self.metadata.name, name)
    }

    pub fn key_alias(&self, key: &KmsKey) -> String {
        key.alias
            .clone()
            .unwrap_or_else(|| format!("alias/{}", self.default_name(&key.name)))
    }

    pub fn queue_name(&self, queue: &Queue) -> String {
        queue
            .queue_name
            .clone()
            .unwrap_or_else(|| self.default_name(&queue.name))
    }

    pub fn table_name(&self, table: &Table) -> String {
        table
            .table_name
            .clone()
            .unwrap_or_else(|| self.default_name(&table.name))
    }

    pub fn launch_template_name(&self, lt: &LaunchTemplate) -> String {
        lt.launch_template_name
            .clone()
            .unwrap_or_else(|| self.default_name(&lt.name))
    }

    pub fn group_name(&self, group: &AutoScalingGroup) -> String {
        group
            .group_name
            .clone()
            .unwrap_or_else(|| self.default_name(&group.name))
    }

    pub fn alarm_name(&self, alarm: &Alarm) -> String {
        alarm
            .alarm_name
            .clone()
            .unwrap_or_else(|| self.default_name(&alarm.name))
    }

    /// The step-scaling policy and the alarm of a scaling policy's dead-man's switch share
    /// this name (`<metadata.name>-<policy>-dead-mans-switch`): the policy is found by its
    /// group and this name, the alarm by this name.
    pub fn dead_mans_switch_name(&self, policy: &ScalingPolicy) -> String {
        self.default_name(&format!("{}-dead-mans-switch", policy.name))
    }

    pub fn topic_name(&self, topic: &Topic) -> String {
        topic
            .topic_name
            .clone()
            .unwrap_or_else(|| self.default_name(&topic.name))
    }

    pub fn dashboard_name(&self, dashboard: &Dashboard) -> String {
        dashboard
            .dashboard_name
            .clone()
            .unwrap_or_else(|| self.default_name(&dashboard.name))
    }

    /// A VPC's Name tag: its `id` when it names an existing VPC.
    pub fn vpc_name(&self, vpc: &Vpc) -> String {
        vpc.id
            .clone()
            .unwrap_or_else(|| self.default_name(&vpc.name))
    }

    /// A subnet's Name tag: its `id` when it names an existing subnet.
    pub fn subnet_name(&self, subnet: &Subnet) -> String {
        subnet
            .id
            .clone()
            .unwrap_or_else(|| self.default_name(&subnet.name))
    }

    /// A security group's name (also its Name tag).
    pub fn security_group_name(&self, group: &SecurityGroup) -> String {
        group
            .group_name
            .clone()
            .unwrap_or_else(|| self.default_name(&group.name))
    }

    pub fn managed_policy_name(&self, policy: &ManagedPolicy) -> String {
        policy
            .policy_name
            .clone()
            .unwrap_or_else(|| self.default_name(&policy.name))
    }

    /// The IAM path under which Ballast creates this stack's managed policies, roles and
    /// instance profiles: `/ballast/<stack>/`. IAM's list calls return no tags, so the path is
    /// how observe finds the stack's IAM resources whatever their names, a custom-named one the
    /// blueprint no longer declares included. It is part of their ARNs
    /// (`arn:aws:iam::<account>:role/ballast/<stack>/<name>`); names stay unique per account.
    pub fn iam_path(&self) -> String {
        format!("/ballast/{}/", self.metadata.name)
    }

    pub fn role_name(&self, role: &IamRole) -> String {
        role.role_name
            .clone()
            .unwrap_or_else(|| self.default_name(&role.name))
    }

    pub fn instance_profile_name(&self, profile: &InstanceProfile) -> String {
        profile
            .instance_profile_name
            .clone()
            .unwrap_or_else(|| self.default_name(&profile.name))
    }

    /// A VPC endpoint's Name tag.
    pub fn endpoint_name(&self, endpoint: &VpcEndpoint) -> String {
        self.default_name(&endpoint.name)
    }

    pub fn queue(&self, name: &str) -> Option<&Queue> {
        self.spec.queues.iter().find(|q| q.name == name)
    }

    pub fn table(&self, name: &str) -> Option<&Table> {
        self.spec.tables.iter().find(|t| t.name == name)
    }

    pub fn kms_key(&self, name: &str) -> Option<&KmsKey> {
        self.spec.kms_keys.iter().find(|k| k.name == name)
    }

    pub fn managed_policy(&self, name: &str) -> Option<&ManagedPolicy> {
        self.spec.managed_policies.iter().find(|p| p.name == name)
    }

    pub fn iam_role(&self, name: &str) -> Option<&IamRole> {
        self.spec.iam_roles.iter().find(|r| r.name == name)
    }

    pub fn instance_profile(&self, name: &str) -> Option<&InstanceProfile> {
        self.spec.instance_profiles.iter().find(|p| p.name == name)
    }

    pub fn topic(&self, name: &str) -> Option<&Topic> {
        self.spec.topics.iter().find(|t| t.name == name)
    }

    pub fn auto_scaling_group(&self, name: &str) -> Option<&AutoScalingGroup> {
        self.spec
            .auto_scaling_groups
            .iter()
            .find(|g| g.name == name)
    }

    /// Ballast's ownership tags of the resource `id` (managed, blueprint, logical id) plus the
    /// blueprint's own.
    pub fn ownership_tags_for(&self, id: &ResourceId) -> Tags {
        let mut tags = self.metadata.tags.clone();
        tags.insert(OWNERSHIP_MANAGED_TAG.into(), "true".into());
        tags.insert(OWNERSHIP_BLUEPRINT_TAG.into(), self.metadata.name.clone());
        tags.insert(OWNERSHIP_RESOURCE_TAG.into(), id.to_string());
        tags
    }

    /// The deletion policy in force: stateful kinds retain unless told otherwise.
    pub fn effective_deletion_policy(
        kind: ResourceKind,
        declared: Option<DeletionPolicy>,
    ) -> DeletionPolicy {
        declared.unwrap_or(if kind.is_stateful() {
            DeletionPolicy::Retain
        } else {
            DeletionPolicy::Delete
        })
    }
}

/// The logical id a resource's [`OWNERSHIP_RESOURCE_TAG`] names, if it carries a well-formed one
/// (`<kind>/<name>` with a known kind).
pub fn tagged_resource_id(tags: &Tags) -> Option<ResourceId> {
    let (kind, name) = tags.get(OWNERSHIP_RESOURCE_TAG)?.split_once('/')?;
    let kind = ResourceKind::ALL
        .iter()
        .copied()
        .find(|k| k.as_str() == kind)?;
    (!name.is_empty()).then(|| ResourceId::new(kind, name))
}

/// Blueprint resources of `kind` with their physical names (none for a resource that has nothing
/// in AWS, such as a scaling policy without a dead-man's switch).
pub fn declared(bp: &Blueprint, kind: ResourceKind) -> Vec<(ResourceId, String)> {
    crate::registry::declared_of_kind(bp, kind)
}

/// The resources declared with `management: observe`: plan, drift and the controller report
/// them, apply and the controller never write them.
pub fn observed(bp: &Blueprint) -> std::collections::BTreeSet<ResourceId> {
    crate::registry::all_settings(bp)
        .into_iter()
        .filter(|s| s.management == Management::Observe)
        .map(|s| s.id)
        .collect()
}

/// A secure default that the blueprint explicitly switched off; plan output names each one.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SafetyOverride {
    pub resource: ResourceId,
    pub field: &'static str,
    pub what: &'static str,
}

pub fn safety_overrides(bp: &Blueprint) -> Vec<SafetyOverride> {
    let mut out = Vec::new();
    let mut push = |kind, name: &str, field, what| {
        out.push(SafetyOverride {
            resource: ResourceId::new(kind, name),
            field,
            what,
        })
    };
    for q in &bp.spec.queues {
        if q.encryption.kind == QueueEncryptionKind::None {
            push(
                ResourceKind::Queue,
                &q.name,
                "encryption.type",
                "queue is not encrypted at rest",
            );
        }
        if !q.tls_only {
            push(
                ResourceKind::Queue,
                &q.name,
                "tlsOnly",
                "queue accepts requests over plain HTTP (no TLS-only queue policy)",
            );
        }
    }
    for t in &bp.spec.tables {
        if !t.point_in_time_recovery {
            push(
                ResourceKind::Table,
                &t.name,
                "pointInTimeRecovery",
                "table has no point-in-time recovery",
            );
        }
    }
    for lt in &bp.spec.launch_templates {
        if lt.metadata_http_tokens == HttpTokens::Optional {
            push(
                ResourceKind::LaunchTemplate,
                &lt.name,
                "metadataHttpTokens",
                "IMDSv1 allowed (IMDSv2 not required)",
            );
        }
        if lt.associate_public_ip_address {
            push(
                ResourceKind::LaunchTemplate,
                &lt.name,
                "associatePublicIpAddress",
                "instances get public IP addresses",
            );
        }
        if !lt.encrypted_volumes {
            push(
                ResourceKind::LaunchTemplate,
                &lt.name,
                "encryptedVolumes",
                "instance volumes are not encrypted",
            );
        }
    }
    if let Some(network) = &bp.spec.network {
        for s in &network.vpc.subnets {
            if s.map_public_ip_on_launch {
                push(
                    ResourceKind::Subnet,
                    &s.name,
                    "mapPublicIpOnLaunch",
                    "subnet assigns public IP addresses",
                );
            }
        }
    }
    for k in &bp.spec.kms_keys {
        if !k.rotation {
            push(
                ResourceKind::KmsKey,
                &k.name,
                "rotation",
                "key material is never rotated",
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observed_lists_the_resources_declared_with_management_observe() {
        let text = r#"
apiVersion: ballast.dev/v1
kind: Blueprint
metadata: { name: bp, region: us-east-1 }
spec:
  queues:
    - { name: work, management: observe }
    - { name: dlq }
    - { name: other, management: manage }
  launchTemplates:
    - { name: worker, imageId: ami-0abcdef1234567890, instanceTypes: [t3.micro] }
  autoScalingGroups:
    - name: workers
      launchTemplate: worker
      subnets: [subnet-0123456789abcdef0]
      minSize: 1
      maxSize: 4
      management: observe
  scalingPolicies:
    - { name: p, queue: work, fleet: workers, targetBacklogPerInstance: 10, management: observe }
"#;
        let bp = match crate::parse("t.yaml", text) {
            Ok(loaded) => loaded.blueprint,
            Err(e) => panic!("{e}"),
        };
        let ids: Vec<String> = observed(&bp).iter().map(ToString::to_string).collect();
        assert_eq!(
            ids,
            [
                "queue/work",
                "auto-scaling-group/workers",
                "scaling-policy/p"
            ]
        );
    }
}
