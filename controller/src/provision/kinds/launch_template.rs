//! EC2 launch templates. The blueprint's settings are the template's `$Default` version; a
//! change makes a new version and marks it default, so the group (on `$Default`) picks it up.

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
use crate::provision::state::{Changes, DesiredState, LiveState, Ownership, Resolved};
use crate::provision::typed::{Desired, FieldValue, Live, TypedDesired, TypedLive, Want};

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

crate::provision::typed::typed_state! {
    /// A template's compared state: `desired` builds it from the blueprint, `observe` from its
    /// `$Default` version (see [`live_state`]).
    pub struct TemplateState for TemplateField {
        ImageId => image_id: String = Enforced,
        /// The first of the blueprint's instance types (empty when it lists none).
        InstanceType => instance_type: String = Enforced,
        /// Base64, as EC2 takes and returns it; `None`: no user data.
        UserData => user_data: Option<String> = Enforced,
        IamInstanceProfile => iam_instance_profile: Option<InstanceProfile> = Enforced,
        /// `required` or `optional`.
        MetadataHttpTokens => metadata_http_tokens: String = Enforced,
        /// Always `enabled`.
        MetadataHttpEndpoint => metadata_http_endpoint: String = Enforced,
        AssociatePublicIpAddress => associate_public_ip_address: bool = Enforced,
        /// Sorted, without duplicates.
        SecurityGroups => security_groups: Vec<String> = Enforced,
        /// Whether every EBS volume of the template is encrypted (and there is one).
        EncryptedVolumes => encrypted_volumes: bool = Enforced,
        /// GiB of the root volume; compared only when the blueprint sets it.
        RootVolumeSize => root_volume_size: Option<u64> = Enforced,
        /// Read for output only: the blueprint never sets it, so it is never compared.
        DefaultVersion => default_version: Option<i64> = Enforced,
    }
}

/// An instance profile: a blueprint profile by its name in IAM (known before it exists), one
/// outside the blueprint by the ARN the blueprint gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstanceProfile {
    Arn(String),
    Name(String),
}

impl InstanceProfile {
    fn of(bp: &Blueprint, lt: &ballast_blueprint::LaunchTemplate) -> Option<Self> {
        let value = lt.instance_profile.as_deref()?;
        let declared = lt
            .blueprint_instance_profile()
            .and_then(|name| bp.instance_profile(name));
        Some(match declared {
            Some(profile) => InstanceProfile::Name(bp.instance_profile_name(profile)),
            // Validation refuses a name the blueprint does not declare.
            None if value.starts_with("arn:") => InstanceProfile::Arn(value.to_string()),
            None => InstanceProfile::Name(value.to_string()),
        })
    }
}

impl FieldValue for InstanceProfile {
    fn to_value(&self) -> Value {
        match self {
            InstanceProfile::Arn(arn) => json!({ "arn": arn }),
            InstanceProfile::Name(name) => json!({ "name": name }),
        }
    }
}

fn sorted(mut values: Vec<String>) -> Vec<String> {
    values.sort();
    values.dedup();
    values
}

/// The template's typed desired state.
fn desired_state(
    bp: &Blueprint,
    resolved: &Resolved,
    lt: &ballast_blueprint::LaunchTemplate,
) -> TemplateState<Desired> {
    let tokens = match lt.metadata_http_tokens {
        HttpTokens::Required => "required",
        HttpTokens::Optional => "optional",
    };
    TemplateState {
        image_id: Want::Exact(lt.image_id.clone()),
        instance_type: Want::Exact(lt.instance_types.first().cloned().unwrap_or_default()),
        user_data: Want::Exact(lt.user_data.as_ref().map(aws_smithy_types::base64::encode)),
        iam_instance_profile: Want::Exact(InstanceProfile::of(bp, lt)),
        metadata_http_tokens: Want::Exact(tokens.to_string()),
        metadata_http_endpoint: Want::Exact("enabled".to_string()),
        associate_public_ip_address: Want::Exact(lt.associate_public_ip_address),
        // Blueprint groups by id; a group not created yet is known after apply.
        security_groups: Want::exact_or_later(super::security_group::group_ids(
            resolved,
            lt.security_groups.iter().chain(&lt.security_group_ids),
        )),
        encrypted_volumes: Want::Exact(lt.encrypted_volumes),
        root_volume_size: match lt.root_volume_size {
            Some(size) => Want::Exact(Some(u64::from(size))),
            None => Want::Unchecked,
        },
        default_version: Want::Unchecked,
    }
}

impl ResourceOps for LaunchTemplates {
    const KIND: ResourceKind = ResourceKind::LaunchTemplate;
    type Field = TemplateField;

    fn desired(bp: &Blueprint, resolved: &Resolved) -> Vec<DesiredState> {
        bp.spec
            .launch_templates
            .iter()
            .map(|lt| {
                let state = desired_state(bp, resolved, lt);
                let mut tags = bp.ownership_tags_for(&ResourceId::new(Self::KIND, &lt.name));
                tags.extend(lt.tags.clone());
                DesiredState {
                    id: ResourceId::new(Self::KIND, &lt.name),
                    physical_name: bp.launch_template_name(lt),
                    fields: state.expected_fields(),
                    tags,
                    adopt: lt.adopt,
                    deletion_policy: Blueprint::effective_deletion_policy(
                        Self::KIND,
                        lt.deletion_policy,
                    ),
                    typed: TypedDesired::new(state),
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
                let state = live_state(data.as_ref(), t.default_version_number);
                let live = LiveState {
                    id,
                    physical_name: name,
                    physical_id: template_id,
                    arn: None,
                    ownership: Ownership::from_tags(&tags, &bp.metadata.name),
                    tags,
                    fields: state.live_fields(),
                    typed: TypedLive::new(state),
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
        let want = desired.state::<TemplateState<Desired>>()?;
        let template = ctx
            .clients
            .ec2
            .create_launch_template()
            .launch_template_name(&desired.physical_name)
            .launch_template_data(request_data(want))
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
        // Not read back: the new template holds exactly the data just sent.
        let state = TemplateState {
            default_version: Some(template.default_version_number),
            ..want.assumed_live()
        };
        Ok(LiveState {
            id: desired.id.clone(),
            physical_name: desired.physical_name.clone(),
            physical_id: template.launch_template_id.unwrap_or_default(),
            arn: None,
            ownership: Ownership::Owned,
            tags: desired.tags.clone(),
            fields: state.live_fields(),
            typed: TypedLive::new(state),
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
        let want = desired.state::<TemplateState<Desired>>()?;
        let changes = Changes::<TemplateField>::of(changes);
        let ec2 = &ctx.clients.ec2;
        let err = || ProvisionError::aws(&desired.id);
        if changes.fields().next().is_some() {
            let version = ec2
                .create_launch_template_version()
                .launch_template_id(&live.physical_id)
                .launch_template_data(request_data(want))
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

/// The launch template data for the desired state.
fn request_data(want: &TemplateState<Desired>) -> RequestLaunchTemplateData {
    let mut data = RequestLaunchTemplateData::builder();
    if let Some(image) = want.image_id.exact() {
        data = data.image_id(image);
    }
    if let Some(t) = want.instance_type.exact().filter(|t| !t.is_empty()) {
        data = data.instance_type(InstanceType::from(t.as_str()));
    }
    if let Some(Some(user_data)) = want.user_data.exact() {
        data = data.user_data(user_data);
    }
    if let Some(Some(profile)) = want.iam_instance_profile.exact() {
        let spec = LaunchTemplateIamInstanceProfileSpecificationRequest::builder();
        let spec = match profile {
            InstanceProfile::Arn(arn) => spec.arn(arn),
            InstanceProfile::Name(name) => spec.name(name),
        };
        data = data.iam_instance_profile(spec.build());
    }
    let tokens = match want.metadata_http_tokens.exact().map(String::as_str) {
        Some("optional") => LaunchTemplateHttpTokensState::Optional,
        _ => LaunchTemplateHttpTokensState::Required,
    };
    data = data.metadata_options(
        LaunchTemplateInstanceMetadataOptionsRequest::builder()
            .http_tokens(tokens)
            .http_endpoint(LaunchTemplateInstanceMetadataEndpointState::Enabled)
            .build(),
    );
    let groups = want.security_groups.exact().cloned().unwrap_or_default();
    data = data.network_interfaces(
        LaunchTemplateInstanceNetworkInterfaceSpecificationRequest::builder()
            .device_index(0)
            .associate_public_ip_address(want.associate_public_ip_address.exact() == Some(&true))
            .set_groups(Some(groups).filter(|g| !g.is_empty()))
            .build(),
    );
    let encrypted = want.encrypted_volumes.exact() == Some(&true);
    let size = want
        .root_volume_size
        .exact()
        .copied()
        .flatten()
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

/// A template's typed live state from its `$Default` version's data (`None`: no version
/// read, every field unreported) and its default version number.
fn live_state(
    data: Option<&ResponseLaunchTemplateData>,
    default_version: Option<i64>,
) -> TemplateState<Live> {
    let Some(data) = data else {
        return TemplateState {
            image_id: None,
            instance_type: None,
            user_data: None,
            iam_instance_profile: None,
            metadata_http_tokens: None,
            metadata_http_endpoint: None,
            associate_public_ip_address: None,
            security_groups: None,
            encrypted_volumes: None,
            root_volume_size: None,
            default_version: Some(default_version),
        };
    };
    let profile = data
        .iam_instance_profile
        .as_ref()
        .and_then(|p| match (&p.arn, &p.name) {
            (Some(arn), _) => Some(InstanceProfile::Arn(arn.clone())),
            (None, Some(name)) => Some(InstanceProfile::Name(name.clone())),
            _ => None,
        });
    let metadata = data.metadata_options.as_ref();
    let primary = data
        .network_interfaces()
        .iter()
        .find(|n| n.device_index.unwrap_or(0) == 0);
    let mut groups: Vec<String> = primary.map(|n| n.groups().to_vec()).unwrap_or_default();
    groups.extend(data.security_group_ids().iter().cloned());
    let volumes: Vec<bool> = data
        .block_device_mappings()
        .iter()
        .filter_map(|m| m.ebs.as_ref())
        .map(|ebs| ebs.encrypted.unwrap_or(false))
        .collect();
    let root_size = data
        .block_device_mappings()
        .iter()
        .find(|m| m.device_name.as_deref() == Some(ROOT_DEVICE))
        .and_then(|m| m.ebs.as_ref())
        .and_then(|ebs| ebs.volume_size);
    TemplateState {
        image_id: data.image_id.clone(),
        instance_type: data.instance_type.as_ref().map(|t| t.as_str().to_string()),
        user_data: Some(data.user_data.clone()),
        iam_instance_profile: Some(profile),
        metadata_http_tokens: metadata
            .and_then(|m| m.http_tokens.as_ref())
            .map(|t| t.as_str().to_string()),
        metadata_http_endpoint: metadata
            .and_then(|m| m.http_endpoint.as_ref())
            .map(|t| t.as_str().to_string()),
        associate_public_ip_address: Some(
            primary
                .and_then(|n| n.associate_public_ip_address)
                .unwrap_or(false),
        ),
        security_groups: Some(sorted(groups)),
        encrypted_volumes: Some(!volumes.is_empty() && volumes.iter().all(|e| *e)),
        // A negative size (never reported) reads as no size.
        root_volume_size: Some(root_size.and_then(|s| u64::try_from(s).ok())),
        default_version: Some(default_version),
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    use crate::provision::diff::Action;
    use crate::provision::state::FieldName;
    use crate::provision::typed::testing::{changed_fields, owned_live, typed_diff};

    #[test]
    fn instance_profiles_canonicalize_by_form() {
        let bp = ballast_blueprint::parse(
            "t",
            "apiVersion: ballast.dev/v1\nkind: Blueprint\nmetadata: {name: t, region: us-east-1}\nspec:\n  iamRoles: [{name: worker, assumedBy: [ec2.amazonaws.com]}]\n  instanceProfiles: [{name: worker, role: worker}]\n  launchTemplates:\n    - {name: a, imageId: ami-0abcdef1234567890, instanceTypes: [m6i.large], instanceProfile: worker}\n    - {name: b, imageId: ami-0abcdef1234567890, instanceTypes: [m6i.large], instanceProfile: \"arn:aws:iam::1:instance-profile/w\"}\n",
        )
        .unwrap()
        .blueprint;
        let [a, b] = &bp.spec.launch_templates[..] else {
            panic!("two templates")
        };
        // A blueprint profile by its name in IAM, one outside the blueprint by its ARN.
        assert_eq!(
            InstanceProfile::of(&bp, a).unwrap().to_value(),
            json!({"name": "t-worker"})
        );
        assert_eq!(
            InstanceProfile::of(&bp, b).unwrap().to_value(),
            json!({"arn": "arn:aws:iam::1:instance-profile/w"})
        );
    }

    fn desired() -> Vec<DesiredState> {
        let bp = ballast_blueprint::parse(
            "t",
            "apiVersion: ballast.dev/v1\nkind: Blueprint\nmetadata: {name: t, region: us-east-1}\nspec:\n  launchTemplates:\n    - name: worker\n      imageId: ami-0abcdef1234567890\n      instanceTypes: [m6i.large, m5.large]\n      instanceProfile: \"arn:aws:iam::123456789012:instance-profile/worker-profile\"\n      securityGroupIds: [sg-0123456789abcdef1, sg-0123456789abcdef0]\n      userData: echo hi\n      rootVolumeSize: 30\n",
        )
        .unwrap()
        .blueprint;
        LaunchTemplates::desired(&bp, &Resolved::default())
    }

    #[test]
    fn a_template_differing_in_one_field_yields_exactly_that_change() {
        let desired = desired();
        let want = desired[0].state::<TemplateState<Desired>>().unwrap();
        let same = TemplateState {
            default_version: Some(Some(3)),
            ..want.assumed_live()
        };
        let live = owned_live(&desired[0], same.clone(), same.live_fields());
        assert_eq!(typed_diff(&desired[0], &live), Action::NoChange);

        let mut drifted = same.clone();
        drifted.image_id = Some("ami-0fedcba9876543210".into());
        let live = owned_live(&desired[0], drifted.clone(), drifted.live_fields());
        let action = typed_diff(&desired[0], &live);
        assert!(matches!(action, Action::Update { .. }), "{action:?}");
        assert_eq!(changed_fields(&action), vec![TemplateField::ImageId.name()]);

        let mut drifted = same;
        drifted.iam_instance_profile = Some(None);
        let live = owned_live(&desired[0], drifted.clone(), drifted.live_fields());
        assert_eq!(
            changed_fields(&typed_diff(&desired[0], &live)),
            vec![TemplateField::IamInstanceProfile.name()]
        );
    }

    /// The rendered fields keep the shape the untyped state had (plan JSON is unchanged).
    #[test]
    fn rendered_fields_keep_their_shape() {
        let desired = desired();
        let want = desired[0].state::<TemplateState<Desired>>().unwrap();
        let fields = want.assumed_live().live_fields();
        assert_eq!(
            fields[TemplateField::SecurityGroups.name()],
            json!(["sg-0123456789abcdef0", "sg-0123456789abcdef1"])
        );
        assert_eq!(
            fields[TemplateField::UserData.name()],
            json!(aws_smithy_types::base64::encode("echo hi"))
        );
        assert_eq!(fields[TemplateField::RootVolumeSize.name()], json!(30));
        assert_eq!(
            fields[TemplateField::InstanceType.name()],
            json!("m6i.large")
        );
        assert!(!fields.contains_key(TemplateField::DefaultVersion.name()));
        let unread = live_state(None, Some(4)).live_fields();
        assert_eq!(
            unread,
            BTreeMap::from([(TemplateField::DefaultVersion.name().to_string(), json!(4))])
        );
    }
}
