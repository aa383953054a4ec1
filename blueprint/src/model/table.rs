use super::{DeletionPolicy, Management, Tags, kms::yes};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A DynamoDB table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Table {
    pub name: String,
    /// Physical table name. Default: `<metadata.name>-<name>`.
    #[serde(default)]
    pub table_name: Option<String>,
    pub hash_key: KeyAttribute,
    #[serde(default)]
    pub range_key: Option<KeyAttribute>,
    #[serde(default)]
    pub global_secondary_indexes: Vec<GlobalSecondaryIndex>,
    #[serde(default)]
    pub billing_mode: BillingMode,
    /// Read capacity units (with `billingMode: provisioned`).
    #[serde(default)]
    pub read_capacity: Option<u64>,
    /// Write capacity units (with `billingMode: provisioned`).
    #[serde(default)]
    pub write_capacity: Option<u64>,
    /// Encryption at rest. Default: an AWS owned key.
    #[serde(default)]
    pub encryption: TableEncryption,
    /// Continuous backups. Default: on.
    #[serde(default = "yes")]
    pub point_in_time_recovery: bool,
    /// Attribute holding an epoch-seconds expiry time.
    #[serde(default)]
    pub ttl_attribute: Option<String>,
    #[serde(default)]
    pub deletion_protection: bool,
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
pub struct KeyAttribute {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: AttributeType,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum AttributeType {
    S,
    N,
    B,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GlobalSecondaryIndex {
    pub name: String,
    pub hash_key: KeyAttribute,
    #[serde(default)]
    pub range_key: Option<KeyAttribute>,
    #[serde(default)]
    pub projection: Projection,
    #[serde(default)]
    pub non_key_attributes: Vec<String>,
    #[serde(default)]
    pub read_capacity: Option<u64>,
    #[serde(default)]
    pub write_capacity: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Projection {
    #[default]
    All,
    KeysOnly,
    Include,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum BillingMode {
    #[default]
    PayPerRequest,
    Provisioned,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TableEncryption {
    #[serde(default, rename = "type")]
    pub kind: TableEncryptionKind,
    /// Blueprint name of a KMS key (with `type: kms`).
    #[serde(default)]
    pub kms_key: Option<String>,
    /// ARN of an existing KMS key (with `type: kms`).
    #[serde(default)]
    pub kms_key_arn: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum TableEncryptionKind {
    /// Encrypted with a key AWS owns (DynamoDB's default).
    #[default]
    AwsOwned,
    /// Encrypted with the AWS managed key `aws/dynamodb`.
    AwsManaged,
    /// Encrypted with a customer managed key: `kmsKey` or `kmsKeyArn`.
    Kms,
}

impl crate::registry::Resource for Table {
    const REFERENCES: &'static [crate::ResourceKind] = &[crate::ResourceKind::KmsKey];

    fn in_spec(spec: &super::Spec) -> Vec<(&Self, String)> {
        let at = |(i, t)| (t, format!("spec.tables[{i}]"));
        spec.tables.iter().enumerate().map(at).collect()
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn physical_name(&self, bp: &super::Blueprint) -> Option<String> {
        Some(bp.table_name(self))
    }

    fn references(
        &self,
        me: &crate::ResourceId,
        path: &str,
        _spec: &super::Spec,
    ) -> Vec<crate::graph::Reference> {
        use crate::graph::Reference;
        let mut out = Vec::new();
        if self.encryption.kind == TableEncryptionKind::Kms
            && let Some(key) = &self.encryption.kms_key
        {
            let at = format!("{path}.encryption.kmsKey");
            out.push(Reference::new(
                me,
                at,
                crate::ResourceKind::KmsKey,
                key,
                true,
            ));
        }
        out
    }
}
