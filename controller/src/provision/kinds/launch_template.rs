//! EC2 launch templates. The blueprint's settings are the template's `$Default` version; a
//! change makes a new version and marks it default, so the group (on `$Default`) picks it up.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{
    InstanceType, LaunchTemplateBlockDeviceMappingRequest, LaunchTemplateEbsBlockDeviceRequest,
    LaunchTemplateHttpTokensState, LaunchTemplateIamInstanceProfileSpecificationRequest,
    LaunchTemplateInstanceMetadataEndpointState, LaunchTemplateInstanceMetadataOptionsRequest,
    LaunchTemplateInstanceNetworkInterfaceSpecificationRequest, RequestLaunchTemplateData,
    ResourceType, ResponseLaunchTemplateData,
};
use ballast_aws::SdkResultExt;
use ballast_blueprint::{Blueprint, HttpTokens, ResourceId, ResourceKind};
use futures::future::try_join_all;
use serde_json::{Value, json};
use tracing::instrument;

use super::ec2::{ec2_tags, filter, owner_filter, put_tags, tag_spec};
use super::{ApplyContext, ObserveContext, Observed, ResourceOps, declared};
use crate::provision::diff::FieldChange;
use crate::provision::error::ProvisionError;
use crate::provision::state::{
    Changes, DesiredState, Field, LiveFields, LiveState, Ownership, Resolved,
};
use crate::provision::typed::{TypedDesired, TypedLive};

pub struct LaunchTemplates;

crate::provision::state::field_names! {
    /// The fields of LaunchTemplates, as plan and drift output name them.
    pub enum TemplateField {
        ImageId = "imageId",
        InstanceType = "instanceType",
        UserData = "userData",
        IamInstanceProfile = "iamInstanceProfile",
        MetadataHttpTokens = "metadataHttpTokens",
        MetadataHttpEndpoint = "metadataHttpEndpoint",
        AssociatePublicIpAddress = "associatePublicIpAddress",
        SecurityGroups = "securityGroups",
        EncryptedVolumes = "encryptedVolumes",
        RootVolumeSize = "rootVolumeSize",
        DefaultVersion = "defaultVersion",
    }
}

/// Root device of the encrypted volume mapping (Amazon Linux and most Linux AMIs).
pub const ROOT_DEVICE: &str = "/dev/xvda";

fn profile(value: &str) -> Value {
    if value.starts_with("arn:") {
        json!({ "arn": value })
    } else {
        json!({ "name": value })
    }
}

fn sorted(mut values: Vec<String>) -> Value {
    values.sort();
    values.dedup();
    json!(values)
}

impl ResourceOps for LaunchTemplates {
    const KIND: ResourceKind = ResourceKind::LaunchTemplate;
    type Field = TemplateField;

    fn desired(bp: &Blueprint, _resolved: &Resolved) -> Vec<DesiredState> {
        bp.spec
            .launch_templates
            .iter()
            .map(|lt| {
                let user_data = lt
                    .user_data
                    .as_ref()
                    .map(|u| Value::String(aws_smithy_types::base64::encode(u)))
                    .unwrap_or(Value::Null);
                let tokens = match lt.metadata_http_tokens {
                    HttpTokens::Required => "required",
                    HttpTokens::Optional => "optional",
                };
                let mut fields = vec![
                    Field::enforced(TemplateField::ImageId, lt.image_id.clone()),
                    Field::enforced(
                        TemplateField::InstanceType,
                        lt.instance_types.first().cloned().unwrap_or_default(),
                    ),
                    Field::enforced(TemplateField::UserData, user_data),
                    Field::enforced(
                        TemplateField::IamInstanceProfile,
                        lt.instance_profile
                            .as_deref()
                            .map(profile)
                            .unwrap_or(Value::Null),
                    ),
                    Field::enforced(TemplateField::MetadataHttpTokens, tokens),
                    Field::enforced(TemplateField::MetadataHttpEndpoint, "enabled"),
                    Field::enforced(
                        TemplateField::AssociatePublicIpAddress,
                        lt.associate_public_ip_address,
                    ),
                    Field::enforced(
                        TemplateField::SecurityGroups,
                        sorted(lt.security_group_ids.clone()),
                    ),
                    Field::enforced(TemplateField::EncryptedVolumes, lt.encrypted_volumes),
                ];
                if let Some(size) = lt.root_volume_size {
                    fields.push(Field::enforced(TemplateField::RootVolumeSize, size));
                }
                let mut tags = bp.ownership_tags_for(&ResourceId::new(Self::KIND, &lt.name));
                tags.extend(lt.tags.clone());
                DesiredState {
                    id: ResourceId::new(Self::KIND, &lt.name),
                    physical_name: bp.launch_template_name(lt),
                    fields,
                    tags,
                    adopt: lt.adopt,
                    deletion_policy: Blueprint::effective_deletion_policy(
                        Self::KIND,
                        lt.deletion_policy,
                    ),
                    typed: TypedDesired::untyped(),
                }
            })
            .collect()
    }

    /// One DescribeLaunchTemplates by the ownership tag (plus one by name only when a declared
    /// template is missing), then the `$Default` version of each template, concurrently.
    #[instrument(skip_all, fields(kind = "launch-template"))]
    async fn observe(ctx: &ObserveContext<'_>) -> Result<Observed, ProvisionError> {
        let ec2 = ctx.clients.ec2();
        let bp = ctx.blueprint;
        let any = ResourceId::new(Self::KIND, "*");
        let declared = declared(bp, Self::KIND);
        let describe = |f| async {
            ec2.describe_launch_templates()
                .filters(f)
                .into_paginator()
                .items()
                .send()
                .collect::<Result<Vec<_>, _>>()
                .await
                .classify("ec2:DescribeLaunchTemplates")
                .map_err(ProvisionError::aws(&any))
        };
        let mut templates = describe(owner_filter(bp)).await?;
        let missing: Vec<String> = declared
            .iter()
            .filter(|(_, n)| {
                !templates
                    .iter()
                    .any(|t| t.launch_template_name.as_deref() == Some(n))
            })
            .map(|(_, n)| n.clone())
            .collect();
        if !missing.is_empty() {
            templates.extend(describe(filter("launch-template-name", missing)).await?);
        }
        let prefix = format!("{}-", bp.metadata.name);
        let reads = templates.into_iter().map(|t| {
            let name = t.launch_template_name.clone().unwrap_or_default();
            let declared_id = declared
                .iter()
                .find(|(_, n)| *n == name)
                .map(|(id, _)| id.clone());
            let id = declared_id
                .clone()
                .unwrap_or_else(|| ResourceId::new(Self::KIND, name.trim_start_matches(&prefix)));
            async move {
                let template_id = t.launch_template_id.clone().unwrap_or_default();
                let data = ec2
                    .describe_launch_template_versions()
                    .launch_template_id(&template_id)
                    .versions("$Default")
                    .send()
                    .await
                    .classify("ec2:DescribeLaunchTemplateVersions")
                    .map_err(ProvisionError::aws(&id))?
                    .launch_template_versions
                    .unwrap_or_default()
                    .into_iter()
                    .next()
                    .and_then(|v| v.launch_template_data);
                let tags = ec2_tags(t.tags());
                let mut fields = data.as_ref().map(canonical).unwrap_or_default();
                fields.put(
                    TemplateField::DefaultVersion,
                    json!(t.default_version_number),
                );
                let live = LiveState {
                    id,
                    physical_name: name,
                    physical_id: template_id,
                    arn: None,
                    ownership: Ownership::from_tags(&tags, &bp.metadata.name),
                    tags,
                    fields,
                    typed: TypedLive::untyped(),
                };
                Ok::<_, ProvisionError>((declared_id.is_some(), live))
            }
        });
        let mut observed = Observed::default();
        for (is_declared, live) in try_join_all(reads).await? {
            observed.file(live, is_declared);
        }
        Ok(observed)
    }

    #[instrument(skip_all, fields(launch_template = %desired.physical_name))]
    async fn create(
        ctx: &ApplyContext<'_>,
        desired: &DesiredState,
    ) -> Result<LiveState, ProvisionError> {
        let template = ctx
            .clients
            .ec2
            .create_launch_template()
            .launch_template_name(&desired.physical_name)
            .launch_template_data(request_data(desired))
            .tag_specifications(tag_spec(ResourceType::LaunchTemplate, &desired.tags))
            .send()
            .await
            .classify("ec2:CreateLaunchTemplate")
            .map_err(ProvisionError::aws(&desired.id))?
            .launch_template
            .ok_or_else(|| ProvisionError::Unexpected {
                resource: desired.id.clone(),
                operation: "ec2:CreateLaunchTemplate",
                detail: "no launch template".into(),
            })?;
        let mut fields: BTreeMap<String, Value> = desired
            .fields
            .iter()
            .filter_map(|f| Some((f.name.to_string(), f.exact()?.clone())))
            .collect();
        fields.put(
            TemplateField::DefaultVersion,
            json!(template.default_version_number),
        );
        Ok(LiveState {
            id: desired.id.clone(),
            physical_name: desired.physical_name.clone(),
            physical_id: template.launch_template_id.unwrap_or_default(),
            arn: None,
            ownership: Ownership::Owned,
            tags: desired.tags.clone(),
            fields,
            typed: TypedLive::untyped(),
        })
    }

    /// Any field change: a new version with the whole desired data, made the default.
    #[instrument(skip_all, fields(launch_template = %desired.physical_name))]
    async fn update(
        ctx: &ApplyContext<'_>,
        desired: &DesiredState,
        live: &LiveState,
        changes: &[FieldChange],
    ) -> Result<(), ProvisionError> {
        let changes = Changes::<TemplateField>::of(changes);
        let ec2 = &ctx.clients.ec2;
        let err = || ProvisionError::aws(&desired.id);
        if changes.fields().next().is_some() {
            let version = ec2
                .create_launch_template_version()
                .launch_template_id(&live.physical_id)
                .launch_template_data(request_data(desired))
                .send()
                .await
                .classify("ec2:CreateLaunchTemplateVersion")
                .map_err(err())?
                .launch_template_version
                .and_then(|v| v.version_number)
                .ok_or_else(|| ProvisionError::Unexpected {
                    resource: desired.id.clone(),
                    operation: "ec2:CreateLaunchTemplateVersion",
                    detail: "no version number".into(),
                })?;
            ec2.modify_launch_template()
                .launch_template_id(&live.physical_id)
                .default_version(version.to_string())
                .send()
                .await
                .classify("ec2:ModifyLaunchTemplate")
                .map_err(err())?;
        }
        if changes.tags() {
            put_tags(ec2, &desired.id, &live.physical_id, &desired.tags).await?;
        }
        Ok(())
    }

    #[instrument(skip_all, fields(launch_template = %live.physical_name))]
    async fn delete(ctx: &ApplyContext<'_>, live: &LiveState) -> Result<(), ProvisionError> {
        ProvisionError::unless_gone(
            &live.id,
            ctx.clients
                .ec2
                .delete_launch_template()
                .launch_template_id(&live.physical_id)
                .send()
                .await
                .classify("ec2:DeleteLaunchTemplate"),
        )
    }
}

fn text(desired: &DesiredState, field: TemplateField) -> Option<&str> {
    desired.value(field).and_then(Value::as_str)
}

/// The launch template data for the desired fields.
fn request_data(desired: &DesiredState) -> RequestLaunchTemplateData {
    let mut data = RequestLaunchTemplateData::builder();
    if let Some(image) = text(desired, TemplateField::ImageId) {
        data = data.image_id(image);
    }
    if let Some(t) = text(desired, TemplateField::InstanceType).filter(|t| !t.is_empty()) {
        data = data.instance_type(InstanceType::from(t));
    }
    if let Some(user_data) = text(desired, TemplateField::UserData) {
        data = data.user_data(user_data);
    }
    if let Some(p) = desired
        .value(TemplateField::IamInstanceProfile)
        .filter(|p| !p.is_null())
    {
        let spec = LaunchTemplateIamInstanceProfileSpecificationRequest::builder()
            .set_arn(p["arn"].as_str().map(str::to_string))
            .set_name(p["name"].as_str().map(str::to_string))
            .build();
        data = data.iam_instance_profile(spec);
    }
    let tokens = match text(desired, TemplateField::MetadataHttpTokens) {
        Some("optional") => LaunchTemplateHttpTokensState::Optional,
        _ => LaunchTemplateHttpTokensState::Required,
    };
    data = data.metadata_options(
        LaunchTemplateInstanceMetadataOptionsRequest::builder()
            .http_tokens(tokens)
            .http_endpoint(LaunchTemplateInstanceMetadataEndpointState::Enabled)
            .build(),
    );
    let groups: Vec<String> = desired
        .value(TemplateField::SecurityGroups)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    data = data.network_interfaces(
        LaunchTemplateInstanceNetworkInterfaceSpecificationRequest::builder()
            .device_index(0)
            .associate_public_ip_address(
                desired.value(TemplateField::AssociatePublicIpAddress) == Some(&Value::Bool(true)),
            )
            .set_groups(Some(groups).filter(|g| !g.is_empty()))
            .build(),
    );
    let encrypted = desired.value(TemplateField::EncryptedVolumes) == Some(&Value::Bool(true));
    let size = desired
        .value(TemplateField::RootVolumeSize)
        .and_then(Value::as_i64)
        .and_then(|s| i32::try_from(s).ok());
    if encrypted || size.is_some() {
        data = data.block_device_mappings(
            LaunchTemplateBlockDeviceMappingRequest::builder()
                .device_name(ROOT_DEVICE)
                .ebs(
                    LaunchTemplateEbsBlockDeviceRequest::builder()
                        .set_encrypted(encrypted.then_some(true))
                        .set_volume_size(size)
                        .build(),
                )
                .build(),
        );
    }
    data.build()
}

/// A `$Default` version's data in the shape `desired` uses.
fn canonical(data: &ResponseLaunchTemplateData) -> BTreeMap<String, Value> {
    let mut fields = BTreeMap::new();
    fields.put(TemplateField::ImageId, json!(data.image_id));
    fields.put(
        TemplateField::InstanceType,
        json!(data.instance_type.as_ref().map(|t| t.as_str())),
    );
    fields.put(TemplateField::UserData, json!(data.user_data));
    let profile = data
        .iam_instance_profile
        .as_ref()
        .and_then(|p| match (&p.arn, &p.name) {
            (Some(arn), _) => Some(json!({ "arn": arn })),
            (None, Some(name)) => Some(json!({ "name": name })),
            _ => None,
        })
        .unwrap_or(Value::Null);
    fields.put(TemplateField::IamInstanceProfile, profile);
    let metadata = data.metadata_options.as_ref();
    fields.put(
        TemplateField::MetadataHttpTokens,
        json!(
            metadata
                .and_then(|m| m.http_tokens.as_ref())
                .map(|t| t.as_str())
        ),
    );
    fields.put(
        TemplateField::MetadataHttpEndpoint,
        json!(
            metadata
                .and_then(|m| m.http_endpoint.as_ref())
                .map(|t| t.as_str())
        ),
    );
    let primary = data
        .network_interfaces()
        .iter()
        .find(|n| n.device_index.unwrap_or(0) == 0);
    fields.put(
        TemplateField::AssociatePublicIpAddress,
        Value::Bool(
            primary
                .and_then(|n| n.associate_public_ip_address)
                .unwrap_or(false),
        ),
    );
    let mut groups: Vec<String> = primary.map(|n| n.groups().to_vec()).unwrap_or_default();
    groups.extend(data.security_group_ids().iter().cloned());
    fields.put(TemplateField::SecurityGroups, sorted(groups));
    let volumes: Vec<bool> = data
        .block_device_mappings()
        .iter()
        .filter_map(|m| m.ebs.as_ref())
        .map(|ebs| ebs.encrypted.unwrap_or(false))
        .collect();
    fields.put(
        TemplateField::EncryptedVolumes,
        Value::Bool(!volumes.is_empty() && volumes.iter().all(|e| *e)),
    );
    let root_size = data
        .block_device_mappings()
        .iter()
        .find(|m| m.device_name.as_deref() == Some(ROOT_DEVICE))
        .and_then(|m| m.ebs.as_ref())
        .and_then(|ebs| ebs.volume_size);
    fields.put(TemplateField::RootVolumeSize, json!(root_size));
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_profiles_canonicalize_by_form() {
        assert_eq!(profile("worker"), json!({"name": "worker"}));
        assert_eq!(
            profile("arn:aws:iam::1:instance-profile/w"),
            json!({"arn": "arn:aws:iam::1:instance-profile/w"})
        );
    }
}
