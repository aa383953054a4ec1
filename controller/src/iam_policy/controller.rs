//! The controller's policy: what `plan`, `apply`, `drift`, `destroy`, `run` and `scale` call
//! for a blueprint's kinds (`provision/kinds/*`), the ownership-tag lookup (`provision/tagged.rs`),
//! the writer lease (`lease/dynamo.rs`) and the suspension beside it in the same table
//! (`lease/suspension.rs`: `ballast suspend`/`resume`, read by apply and `run`), and the
//! autoscaler (`autoscale/`).
//!
//! Every kind of the registry is matched without a catch-all arm, so a new kind does not
//! compile until it says what it needs here. Queues, tables, keys' aliases, groups, alarms and
//! dashboards are scoped to their exact ARNs; KMS key ids and EC2 ids are chosen by AWS, so
//! those are scoped to the account and region; actions without resource-level permissions
//! (EC2 and Auto Scaling describes, `tag:GetResources`, `kms:CreateKey`, listing) are `*`, in
//! statements whose Sid says so.

use ballast_blueprint::policy::PolicyDocument;
use ballast_blueprint::{Blueprint, ResourceKind, TableEncryptionKind, declared};

use super::{ANY, ArnScope, Statements};

/// The namespace of the autoscaler's metrics (`autoscale::publish::NAMESPACE`).
const AUTOSCALER_METRICS_NAMESPACE: &str = crate::autoscale::publish::NAMESPACE;

/// The controller's policy for `bp`, with its writer lease in `lease_table`.
pub fn policy(bp: &Blueprint, scope: &ArnScope, lease_table: &str) -> PolicyDocument {
    let mut out = Statements::default();
    let any = || [ANY.to_owned()];
    out.allow(
        "FindOwnedResourcesHasNoResourceLevelPermissions",
        &["tag:GetResources"],
        any(),
    );
    out.allow(
        "WriterLeaseAndSuspension",
        &[
            "dynamodb:CreateTable",
            "dynamodb:DescribeTable",
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:DeleteItem",
        ],
        [scope.table(lease_table)],
    );

    const DESCRIBE: &str = "DescribeAndListHaveNoResourceLevelPermissions";
    for kind in ResourceKind::ALL {
        let names: Vec<String> = declared(bp, *kind).into_iter().map(|(_, n)| n).collect();
        if names.is_empty() && *kind != ResourceKind::ScalingPolicy {
            continue;
        }
        match kind {
            ResourceKind::KmsKey => {
                out.allow("CreateKeyHasNoResourceYet", &["kms:CreateKey"], any());
                out.allow(DESCRIBE, &["kms:ListAliases"], any());
                out.allow(
                    "BlueprintKeysIdsAssignedByAws",
                    &[
                        "kms:DescribeKey",
                        "kms:GetKeyRotationStatus",
                        "kms:GetKeyPolicy",
                        "kms:PutKeyPolicy",
                        "kms:EnableKeyRotation",
                        "kms:DisableKeyRotation",
                        "kms:EnableKey",
                        "kms:UpdateKeyDescription",
                        "kms:ScheduleKeyDeletion",
                        "kms:TagResource",
                        "kms:ListResourceTags",
                        "kms:CreateAlias",
                        "kms:DeleteAlias",
                    ],
                    [scope.any_kms_key()],
                );
                out.allow(
                    "BlueprintKeyAliases",
                    &["kms:CreateAlias", "kms:DeleteAlias"],
                    names.iter().map(|alias| scope.kms_alias(alias)),
                );
            }
            ResourceKind::Vpc | ResourceKind::Subnet | ResourceKind::VpcEndpoint => {
                out.allow(
                    DESCRIBE,
                    &[
                        "ec2:DescribeVpcs",
                        "ec2:DescribeVpcAttribute",
                        "ec2:DescribeSubnets",
                        "ec2:DescribeRouteTables",
                        "ec2:DescribeVpcEndpoints",
                    ],
                    any(),
                );
                let actions: &[&str] = match kind {
                    ResourceKind::Vpc => &[
                        "ec2:CreateVpc",
                        "ec2:ModifyVpcAttribute",
                        "ec2:DeleteVpc",
                        "ec2:CreateRouteTable",
                        "ec2:DeleteRouteTable",
                    ],
                    ResourceKind::Subnet => &[
                        "ec2:CreateSubnet",
                        "ec2:ModifySubnetAttribute",
                        "ec2:DeleteSubnet",
                        "ec2:AssociateRouteTable",
                        "ec2:DisassociateRouteTable",
                        "ec2:ReplaceRouteTableAssociation",
                    ],
                    _ => &[
                        "ec2:CreateVpcEndpoint",
                        "ec2:ModifyVpcEndpoint",
                        "ec2:DeleteVpcEndpoints",
                    ],
                };
                out.allow(
                    "NetworkIdsAssignedByAws",
                    actions,
                    [scope.any_ec2_resource()],
                );
                out.allow(
                    "NetworkIdsAssignedByAws",
                    &["ec2:CreateTags"],
                    [scope.any_ec2_resource()],
                );
            }
            ResourceKind::SecurityGroup => {
                out.allow(DESCRIBE, &["ec2:DescribeSecurityGroups"], any());
                out.allow(
                    "NetworkIdsAssignedByAws",
                    &[
                        "ec2:CreateSecurityGroup",
                        "ec2:DeleteSecurityGroup",
                        "ec2:AuthorizeSecurityGroupIngress",
                        "ec2:AuthorizeSecurityGroupEgress",
                        "ec2:RevokeSecurityGroupIngress",
                        "ec2:RevokeSecurityGroupEgress",
                        "ec2:CreateTags",
                    ],
                    [scope.any_ec2_resource()],
                );
            }
            ResourceKind::Topic => {
                out.allow(DESCRIBE, &["sns:ListTopics"], any());
                out.allow(
                    "BlueprintTopics",
                    &[
                        "sns:CreateTopic",
                        "sns:DeleteTopic",
                        "sns:GetTopicAttributes",
                        "sns:SetTopicAttributes",
                        "sns:TagResource",
                        "sns:ListTagsForResource",
                        "sns:ListSubscriptionsByTopic",
                        "sns:Subscribe",
                    ],
                    names.iter().map(|n| scope.topic(n)),
                );
                out.allow(
                    "BlueprintTopicSubscriptionsIdsAssignedBySns",
                    &["sns:Unsubscribe"],
                    names.iter().map(|n| scope.topic_subscriptions(n)),
                );
            }
            ResourceKind::Queue => {
                out.allow(DESCRIBE, &["sqs:ListQueues"], any());
                out.allow(
                    "BlueprintQueues",
                    &[
                        "sqs:CreateQueue",
                        "sqs:GetQueueUrl",
                        "sqs:GetQueueAttributes",
                        "sqs:SetQueueAttributes",
                        "sqs:TagQueue",
                        "sqs:ListQueueTags",
                        "sqs:DeleteQueue",
                    ],
                    names.iter().map(|n| scope.queue(n)),
                );
            }
            ResourceKind::Table => {
                out.allow(
                    "BlueprintTables",
                    &[
                        "dynamodb:CreateTable",
                        "dynamodb:DescribeTable",
                        "dynamodb:UpdateTable",
                        "dynamodb:DeleteTable",
                        "dynamodb:DescribeContinuousBackups",
                        "dynamodb:UpdateContinuousBackups",
                        "dynamodb:DescribeTimeToLive",
                        "dynamodb:UpdateTimeToLive",
                        "dynamodb:TagResource",
                        "dynamodb:ListTagsOfResource",
                    ],
                    names.iter().map(|n| scope.table(n)),
                );
                table_keys(bp, scope, &mut out);
            }
            ResourceKind::LaunchTemplate => {
                out.allow(
                    DESCRIBE,
                    &[
                        "ec2:DescribeLaunchTemplates",
                        "ec2:DescribeLaunchTemplateVersions",
                    ],
                    any(),
                );
                out.allow(
                    "LaunchTemplateIdsAssignedByAws",
                    &[
                        "ec2:CreateLaunchTemplate",
                        "ec2:CreateLaunchTemplateVersion",
                        "ec2:ModifyLaunchTemplate",
                        "ec2:DeleteLaunchTemplate",
                        "ec2:CreateTags",
                    ],
                    [scope.any_ec2_resource()],
                );
                let roles = launched_roles(bp, scope);
                if !roles.is_empty() {
                    let sid = "PassInstanceProfileRoleToEc2Only";
                    out.allow(sid, &["iam:PassRole"], roles);
                    out.condition(
                        sid,
                        "StringEquals",
                        "iam:PassedToService",
                        &["ec2.amazonaws.com".to_owned()],
                    );
                }
            }
            ResourceKind::ManagedPolicy => {
                out.allow(DESCRIBE, &["iam:ListPolicies"], any());
                out.allow(
                    "BlueprintManagedPolicies",
                    &[
                        "iam:CreatePolicy",
                        "iam:GetPolicy",
                        "iam:GetPolicyVersion",
                        "iam:ListPolicyVersions",
                        "iam:CreatePolicyVersion",
                        "iam:DeletePolicyVersion",
                        "iam:DeletePolicy",
                        "iam:TagPolicy",
                        "iam:ListEntitiesForPolicy",
                    ],
                    names.iter().flat_map(|n| scope.managed_policy(n)),
                );
            }
            ResourceKind::IamRole => {
                out.allow(DESCRIBE, &["iam:ListRoles"], any());
                out.allow(
                    "BlueprintRoles",
                    &[
                        "iam:CreateRole",
                        "iam:GetRole",
                        "iam:DeleteRole",
                        "iam:UpdateAssumeRolePolicy",
                        "iam:TagRole",
                        "iam:ListAttachedRolePolicies",
                        "iam:DetachRolePolicy",
                        "iam:ListInstanceProfilesForRole",
                        "iam:ListRolePolicies",
                        "iam:DeleteRolePolicy",
                    ],
                    names.iter().flat_map(|n| scope.role(n)),
                );
                // Attaching is where a role gains permissions: only the policies the
                // blueprint names.
                let attachable = attachable_policies(bp, scope);
                if !attachable.is_empty() {
                    let sid = "BlueprintRolesAttachOnlyTheirBlueprintPolicies";
                    out.allow(
                        sid,
                        &["iam:AttachRolePolicy"],
                        names.iter().flat_map(|n| scope.role(n)),
                    );
                    out.condition(sid, "ArnEquals", "iam:PolicyARN", &attachable);
                }
            }
            ResourceKind::InstanceProfile => {
                out.allow(DESCRIBE, &["iam:ListInstanceProfiles"], any());
                out.allow(
                    "BlueprintInstanceProfiles",
                    &[
                        "iam:CreateInstanceProfile",
                        "iam:GetInstanceProfile",
                        "iam:DeleteInstanceProfile",
                        "iam:AddRoleToInstanceProfile",
                        "iam:RemoveRoleFromInstanceProfile",
                        "iam:TagInstanceProfile",
                    ],
                    names.iter().flat_map(|n| scope.instance_profile(n)),
                );
                // AddRoleToInstanceProfile passes the role: only the blueprint's profiles' roles.
                out.allow(
                    "PassBlueprintRolesToTheirInstanceProfiles",
                    &["iam:PassRole"],
                    bp.spec
                        .instance_profiles
                        .iter()
                        .filter_map(|p| bp.iam_role(&p.role))
                        .flat_map(|r| scope.role(&bp.role_name(r))),
                );
            }
            ResourceKind::AutoScalingGroup => {
                out.allow(
                    DESCRIBE,
                    &[
                        "autoscaling:DescribeAutoScalingGroups",
                        "autoscaling:DescribeLifecycleHooks",
                        "autoscaling:DescribeScalingActivities",
                    ],
                    any(),
                );
                out.allow(
                    "BlueprintAutoScalingGroups",
                    &[
                        "autoscaling:CreateAutoScalingGroup",
                        "autoscaling:UpdateAutoScalingGroup",
                        "autoscaling:DeleteAutoScalingGroup",
                        "autoscaling:PutLifecycleHook",
                        "autoscaling:DeleteLifecycleHook",
                        "autoscaling:EnableMetricsCollection",
                        "autoscaling:DisableMetricsCollection",
                        "autoscaling:CreateOrUpdateTags",
                        "autoscaling:SetDesiredCapacity",
                    ],
                    names.iter().map(|n| scope.auto_scaling_group(n)),
                );
                // AWS checks the caller's ec2:RunInstances against the launch template when a
                // group is created or updated with one.
                out.allow(
                    "GroupsLaunchWithTheCallersRunInstances",
                    &["ec2:RunInstances"],
                    [scope.any_ec2_resource(), scope.any_image()],
                );
            }
            ResourceKind::Alarm => {
                out.allow(DESCRIBE, &["cloudwatch:DescribeAlarms"], any());
                out.allow(
                    "BlueprintAlarms",
                    &[
                        "cloudwatch:PutMetricAlarm",
                        "cloudwatch:DeleteAlarms",
                        "cloudwatch:TagResource",
                        "cloudwatch:ListTagsForResource",
                    ],
                    names.iter().map(|n| scope.alarm(n)),
                );
            }
            ResourceKind::Dashboard => {
                out.allow(DESCRIBE, &["cloudwatch:ListDashboards"], any());
                out.allow(
                    "BlueprintDashboards",
                    &[
                        "cloudwatch:PutDashboard",
                        "cloudwatch:GetDashboard",
                        "cloudwatch:DeleteDashboards",
                    ],
                    names.iter().map(|n| scope.dashboard(n)),
                );
            }
            ResourceKind::ScalingPolicy => {
                // The autoscaler reads queue attributes and sets desired capacity through the
                // queue and group statements; here what has no resource.
                if bp.spec.scaling_policies.is_empty() {
                    continue;
                }
                out.allow(
                    DESCRIBE,
                    &[
                        "autoscaling:DescribeAutoScalingGroups",
                        "autoscaling:DescribeScalingActivities",
                        "cloudwatch:GetMetricStatistics",
                        // Measured arrival and service rates (`mode: queueing`).
                        "cloudwatch:GetMetricData",
                    ],
                    any(),
                );
                // Dead-man's switches: a step policy on the group and an alarm, one name each.
                if !names.is_empty() {
                    out.allow(
                        DESCRIBE,
                        &["autoscaling:DescribePolicies", "cloudwatch:DescribeAlarms"],
                        any(),
                    );
                    let groups = bp.spec.scaling_policies.iter().filter_map(|p| {
                        p.dead_mans_switch.as_ref()?;
                        let group = bp.auto_scaling_group(p.fleet.as_deref()?)?;
                        Some(scope.auto_scaling_group(&bp.group_name(group)))
                    });
                    out.allow(
                        "DeadMansSwitchStepPoliciesOnTheirGroups",
                        &["autoscaling:PutScalingPolicy", "autoscaling:DeletePolicy"],
                        groups,
                    );
                    out.allow(
                        "BlueprintAlarms",
                        &[
                            "cloudwatch:PutMetricAlarm",
                            "cloudwatch:DeleteAlarms",
                            "cloudwatch:TagResource",
                            "cloudwatch:ListTagsForResource",
                        ],
                        names.iter().map(|n| scope.alarm(n)),
                    );
                }
                let sid = "AutoscalerMetricsHaveNoResourceSoNamespaceOnly";
                out.allow(sid, &["cloudwatch:PutMetricData"], any());
                out.condition(
                    sid,
                    "StringEquals",
                    "cloudwatch:namespace",
                    &[AUTOSCALER_METRICS_NAMESPACE.to_owned()],
                );
            }
        }
    }
    out.into_document()
}

/// The roles a launch template hands its instances through its instance profile: a blueprint
/// profile's role by its exact ARNs (at both of its possible paths), any role for a profile
/// outside the blueprint (its role is not known).
fn launched_roles(bp: &Blueprint, scope: &ArnScope) -> Vec<String> {
    let mut out = Vec::new();
    for lt in &bp.spec.launch_templates {
        if lt.instance_profile.is_none() {
            continue;
        }
        let role = lt
            .blueprint_instance_profile()
            .and_then(|name| bp.instance_profile(name))
            .and_then(|profile| bp.iam_role(&profile.role));
        match role {
            Some(role) => out.extend(scope.role(&bp.role_name(role))),
            None => out.push(scope.any_role()),
        }
    }
    out
}

/// The ARNs of the policies the blueprint's roles attach: its own managed policies and the ARNs
/// written in `policies`.
fn attachable_policies(bp: &Blueprint, scope: &ArnScope) -> Vec<String> {
    let mut out: Vec<String> = bp
        .spec
        .iam_roles
        .iter()
        .flat_map(|r| &r.policies)
        .flat_map(|p| match bp.managed_policy(p) {
            Some(policy) => scope
                .managed_policy(&bp.managed_policy_name(policy))
                .to_vec(),
            None => vec![p.clone()],
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// A table with a customer managed key: DynamoDB creates a grant on the key with the caller's
/// permission when the table is created or its key changes, only through DynamoDB.
fn table_keys(bp: &Blueprint, scope: &ArnScope, out: &mut Statements) {
    let mut keys = Vec::new();
    for table in &bp.spec.tables {
        let encryption = &table.encryption;
        if encryption.kind != TableEncryptionKind::Kms {
            continue;
        }
        if encryption.kms_key.is_some() {
            keys.push(scope.any_kms_key());
        }
        if let Some(arn) = &encryption.kms_key_arn {
            keys.push(arn.clone());
        }
    }
    if keys.is_empty() {
        return;
    }
    let sid = "TableKeysGrantedThroughDynamoDbOnly";
    out.allow(sid, &["kms:CreateGrant", "kms:DescribeKey"], keys);
    out.condition(
        sid,
        "StringEquals",
        "kms:ViaService",
        &[scope.via_service("dynamodb")],
    );
}
