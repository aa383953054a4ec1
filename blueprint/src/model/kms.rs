use super::{DeletionPolicy, Duration, Management, Tags};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A customer managed KMS key and its alias.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KmsKey {
    /// Blueprint name, used by references.
    pub name: String,
    /// Alias, starting with `alias/`. Default: `alias/<metadata.name>-<name>`.
    #[serde(default)]
    pub alias: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// Automatic yearly rotation of the key material. Default: on.
    #[serde(default = "yes")]
    pub rotation: bool,
    /// Rotation period, 90d..2560d. Default: 365d.
    #[serde(default)]
    pub rotation_period: Option<Duration>,
    /// Waiting period when the key is scheduled for deletion, 7d..30d. Default: 30d.
    #[serde(default = "default_deletion_window")]
    pub deletion_window: Duration,
    /// Statements added to the key policy, in IAM's form (`Sid`, `Effect`, `Principal`,
    /// `Action`, `Resource: "*"`, optional `Condition`). The policy always also has the
    /// account's own administration statement (AWS's default, so the key can never be locked
    /// out and IAM policies keep deciding who uses it) and the statements the blueprint itself
    /// needs: CloudWatch may use a key that encrypts a topic the blueprint's alarms notify.
    /// Anything else in the live policy, such as a grant added by hand, is drift.
    #[serde(default)]
    pub policy_statements: Vec<serde_json::Value>,
    /// Keys default to `retain`: deleting a key destroys every piece of data it encrypts.
    #[serde(default)]
    pub deletion_policy: Option<DeletionPolicy>,
    /// Take over an existing key that carries this alias but not Ballast's tags.
    #[serde(default)]
    pub adopt: bool,
    /// `observe`: plan, drift and `ballast run` report this resource's drift, but apply and
    /// `ballast run` never create, change, replace or delete it. Default: `manage`.
    #[serde(default)]
    pub management: Management,
    #[serde(default)]
    pub tags: Tags,
}

pub(crate) fn yes() -> bool {
    true
}

fn default_deletion_window() -> Duration {
    Duration::from_secs(30 * 86_400)
}

impl crate::registry::Resource for KmsKey {
    const REFERENCES: &'static [crate::ResourceKind] = &[];

    fn in_spec(spec: &super::Spec) -> Vec<(&Self, String)> {
        let at = |(i, k)| (k, format!("spec.kmsKeys[{i}]"));
        spec.kms_keys.iter().enumerate().map(at).collect()
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn physical_name(&self, bp: &super::Blueprint) -> Option<String> {
        Some(bp.key_alias(self))
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
