use super::{DeletionPolicy, Management, Tags};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The blueprint queue a worker consumes when its grants name none (as `ballast-worker --queue`).
pub const DEFAULT_WORKER_QUEUE: &str = "transactions";
/// The accounts table of a worker's grants by default (as `ballast-worker --accounts-table`).
pub const DEFAULT_WORKER_ACCOUNTS_TABLE: &str = "accounts";
/// The transactions table of a worker's grants by default (as
/// `ballast-worker --transactions-table`).
pub const DEFAULT_WORKER_TRANSACTIONS_TABLE: &str = "transactions";

/// A customer managed IAM policy: its document derived from the blueprint (`grants`, scoped to
/// the exact ARNs of what the blueprint creates) or written out (`document`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ManagedPolicy {
    /// Blueprint name, used by references (`iamRoles[].policies: [worker]`).
    pub name: String,
    /// Physical policy name. Default: `<metadata.name>-<name>`.
    #[serde(default)]
    pub policy_name: Option<String>,
    /// What the policy allows, derived from the blueprint. Exactly one of `grants` and
    /// `document`.
    #[serde(default)]
    pub grants: Option<PolicyGrants>,
    /// The policy document written out (YAML or JSON): `Version` and `Statement`s of `Effect`,
    /// `Action`, `Resource` and optional `Condition`; compared semantically.
    #[serde(default)]
    pub document: Option<serde_json::Value>,
    #[serde(default)]
    pub deletion_policy: Option<DeletionPolicy>,
    /// Take over an existing policy of this name that does not carry Ballast's tags.
    #[serde(default)]
    pub adopt: bool,
    /// `observe`: plan, drift and `ballast run` report this resource's drift, but apply and
    /// `ballast run` never create, change, replace or delete it. Default: `manage`.
    #[serde(default)]
    pub management: Management,
    #[serde(default)]
    pub tags: Tags,
}

/// The least-privilege grants of a policy: exactly what `ballast iam-policy --for …` prints
/// for this blueprint, with the exact ARNs of its resources.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyGrants {
    /// Whose needs: `worker` is what `ballast-worker consume` and `serve` call against the
    /// blueprint (its queue and dead-letter queue, the ledger tables, their keys, metrics and
    /// the instance lifecycle of the blueprint's groups).
    #[serde(rename = "for")]
    pub grantee: Grantee,
    /// Blueprint name of the queue the worker consumes. Default: `transactions`.
    #[serde(default = "default_queue")]
    pub queue: String,
    /// Blueprint name of the accounts table. Default: `accounts`.
    #[serde(default = "default_accounts_table")]
    pub accounts_table: String,
    /// Blueprint name of the transactions table. Default: `transactions`.
    #[serde(default = "default_transactions_table")]
    pub transactions_table: String,
}

fn default_queue() -> String {
    DEFAULT_WORKER_QUEUE.into()
}

fn default_accounts_table() -> String {
    DEFAULT_WORKER_ACCOUNTS_TABLE.into()
}

fn default_transactions_table() -> String {
    DEFAULT_WORKER_TRANSACTIONS_TABLE.into()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Grantee {
    Worker,
}

/// An IAM role: who may assume it (its trust policy) and the managed policies attached to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IamRole {
    /// Blueprint name, used by references (`instanceProfiles[].role: worker`).
    pub name: String,
    /// Physical role name. Default: `<metadata.name>-<name>`.
    #[serde(default)]
    pub role_name: Option<String>,
    /// AWS service principals that may assume the role (`sts:AssumeRole`), e.g.
    /// `ec2.amazonaws.com`; compared as a set.
    pub assumed_by: Vec<String>,
    /// Managed policies attached to the role: blueprint policy names, or ARNs of policies
    /// outside the blueprint (`arn:…`, e.g. an AWS managed policy); compared as a set.
    #[serde(default)]
    pub policies: Vec<String>,
    #[serde(default)]
    pub deletion_policy: Option<DeletionPolicy>,
    /// Take over an existing role of this name that does not carry Ballast's tags.
    #[serde(default)]
    pub adopt: bool,
    /// `observe`: plan, drift and `ballast run` report this resource's drift, but apply and
    /// `ballast run` never create, change, replace or delete it. Default: `manage`.
    #[serde(default)]
    pub management: Management,
    #[serde(default)]
    pub tags: Tags,
}

/// An EC2 instance profile: how instances of a launch template get a role.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InstanceProfile {
    /// Blueprint name, used by references (`launchTemplates[].instanceProfile: worker`).
    pub name: String,
    /// Physical instance profile name. Default: `<metadata.name>-<name>`.
    #[serde(default)]
    pub instance_profile_name: Option<String>,
    /// Blueprint name of the role the instances get.
    pub role: String,
    #[serde(default)]
    pub deletion_policy: Option<DeletionPolicy>,
    /// Take over an existing instance profile of this name that does not carry Ballast's tags.
    #[serde(default)]
    pub adopt: bool,
    /// `observe`: plan, drift and `ballast run` report this resource's drift, but apply and
    /// `ballast run` never create, change, replace or delete it. Default: `manage`.
    #[serde(default)]
    pub management: Management,
    #[serde(default)]
    pub tags: Tags,
}

/// Whether a role's `policies` entry names a policy outside the blueprint by ARN.
pub fn is_policy_arn(policy: &str) -> bool {
    crate::graph::is_literal_id(policy, "arn:")
}

impl crate::registry::Resource for ManagedPolicy {
    const REFERENCES: &'static [crate::ResourceKind] =
        &[crate::ResourceKind::Queue, crate::ResourceKind::Table];

    fn in_spec(spec: &super::Spec) -> Vec<(&Self, String)> {
        let at = |(i, p)| (p, format!("spec.managedPolicies[{i}]"));
        spec.managed_policies.iter().enumerate().map(at).collect()
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn physical_name(&self, bp: &super::Blueprint) -> Option<String> {
        Some(bp.managed_policy_name(self))
    }

    /// The granted queue and tables: ordering, because the document names their ARNs in the
    /// account AWS created them in.
    fn references(
        &self,
        me: &crate::ResourceId,
        path: &str,
        _spec: &super::Spec,
    ) -> Vec<crate::graph::Reference> {
        use crate::ResourceKind as K;
        use crate::graph::Reference;
        let Some(g) = &self.grants else {
            return Vec::new();
        };
        vec![
            Reference::new(me, format!("{path}.grants.queue"), K::Queue, &g.queue, true),
            Reference::new(
                me,
                format!("{path}.grants.accountsTable"),
                K::Table,
                &g.accounts_table,
                true,
            ),
            Reference::new(
                me,
                format!("{path}.grants.transactionsTable"),
                K::Table,
                &g.transactions_table,
                true,
            ),
        ]
    }
}

impl crate::registry::Resource for IamRole {
    const REFERENCES: &'static [crate::ResourceKind] = &[crate::ResourceKind::ManagedPolicy];

    fn in_spec(spec: &super::Spec) -> Vec<(&Self, String)> {
        let at = |(i, r)| (r, format!("spec.iamRoles[{i}]"));
        spec.iam_roles.iter().enumerate().map(at).collect()
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn physical_name(&self, bp: &super::Blueprint) -> Option<String> {
        Some(bp.role_name(self))
    }

    fn references(
        &self,
        me: &crate::ResourceId,
        path: &str,
        _spec: &super::Spec,
    ) -> Vec<crate::graph::Reference> {
        self.policies
            .iter()
            .enumerate()
            .filter(|(_, p)| !is_policy_arn(p))
            .map(|(j, p)| {
                let at = format!("{path}.policies[{j}]");
                crate::graph::Reference::new(me, at, crate::ResourceKind::ManagedPolicy, p, true)
            })
            .collect()
    }
}

impl crate::registry::Resource for InstanceProfile {
    const REFERENCES: &'static [crate::ResourceKind] = &[crate::ResourceKind::IamRole];

    fn in_spec(spec: &super::Spec) -> Vec<(&Self, String)> {
        let at = |(i, p)| (p, format!("spec.instanceProfiles[{i}]"));
        spec.instance_profiles.iter().enumerate().map(at).collect()
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn physical_name(&self, bp: &super::Blueprint) -> Option<String> {
        Some(bp.instance_profile_name(self))
    }

    fn references(
        &self,
        me: &crate::ResourceId,
        path: &str,
        _spec: &super::Spec,
    ) -> Vec<crate::graph::Reference> {
        let at = format!("{path}.role");
        vec![crate::graph::Reference::new(
            me,
            at,
            crate::ResourceKind::IamRole,
            &self.role,
            true,
        )]
    }
}
