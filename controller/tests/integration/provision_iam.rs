//! IAM roles, managed policies and instance profiles against moto: apply converges (the
//! worker policy is the document `ballast iam-policy --for worker` prints, the launch template
//! hands out the profile), changes made by hand are drift and are restored, a policy's versions
//! rotate within IAM's five, destroy removes everything in IAM's order, and a create interrupted
//! halfway is completed rather than repeated.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a failed test (clippy.toml covers only #[test] fns, not helpers)"
)]

use std::collections::BTreeSet;

use aws_sdk_iam::types::Tag;
use ballast_aws::CallRecorder;
use ballast_blueprint::policy::PolicyDocument;
use ballast_blueprint::{Blueprint, OWNERSHIP_RESOURCE_TAG, ResourceId, ResourceKind};
use ballast_controller::iam_policy::ArnScope;
use ballast_controller::iam_policy::worker::{self, WorkerNames};
use ballast_controller::provision::engine::LogProgress;
use ballast_controller::provision::kinds::Readiness;
use ballast_controller::provision::{self, Action, Clients, Plan};

/// moto's account.
const ACCOUNT: &str = "123456789012";

fn blueprint(name: &str, profiles: &str) -> Blueprint {
    let text = format!(
        r#"apiVersion: ballast.dev/v1
kind: Blueprint
metadata: {{ name: {name}, region: us-east-1 }}
spec:
  queues:
    - {{ name: transactions, deletionPolicy: delete }}
  tables:
    - {{ name: accounts, hashKey: {{ name: pk, type: S }}, deletionPolicy: delete }}
    - {{ name: transactions, hashKey: {{ name: pk, type: S }}, deletionPolicy: delete }}
  managedPolicies:
    - {{ name: worker, grants: {{ for: worker }} }}
  iamRoles:
    - name: worker
      assumedBy: [ec2.amazonaws.com]
      policies: [worker]
{profiles}
"#
    );
    ballast_blueprint::parse("t.yaml", &text)
        .unwrap_or_else(|d| panic!("{d}"))
        .blueprint
}

/// The instance profile and the launch template that names it.
const PROFILE_AND_TEMPLATE: &str = r#"  instanceProfiles:
    - { name: worker, role: worker }
  launchTemplates:
    - name: worker
      imageId: ami-0abcdef1234567890
      instanceTypes: [t3.micro]
      instanceProfile: worker
"#;

struct Env {
    sdk: aws_types::SdkConfig,
    bp: Blueprint,
}

async fn env() -> Env {
    let moto = ballast_testbed::moto().await;
    let name = ballast_testbed::unique_name("iam").to_lowercase();
    Env {
        sdk: moto.sdk_config().await,
        bp: blueprint(&name, PROFILE_AND_TEMPLATE),
    }
}

impl Env {
    fn clients(&self, recorder: &CallRecorder) -> Clients {
        Clients::read_write(&self.sdk, recorder)
    }

    async fn plan(&self) -> Plan {
        let clients = self.clients(&CallRecorder::default());
        let observation = provision::observe(&clients.observer(), &self.bp)
            .await
            .unwrap();
        provision::plan(&self.bp, &observation)
    }

    async fn apply(&self) -> CallRecorder {
        let recorder = CallRecorder::default();
        let clients = self.clients(&recorder);
        let observation = provision::observe(&clients.observer(), &self.bp)
            .await
            .unwrap();
        provision::apply(
            &clients,
            &self.bp,
            observation,
            Readiness::default(),
            &LogProgress,
        )
        .await
        .unwrap_or_else(|e| panic!("apply failed: {e}"));
        recorder
    }

    async fn destroy(&self) {
        let clients = self.clients(&CallRecorder::default());
        let observation = provision::observe(&clients.observer(), &self.bp)
            .await
            .unwrap();
        provision::destroy(
            &clients,
            &self.bp,
            observation,
            Readiness::default(),
            &LogProgress,
        )
        .await
        .unwrap_or_else(|e| panic!("destroy failed: {e}"));
    }

    fn name(&self, name: &str) -> String {
        format!("{}-{name}", self.bp.metadata.name)
    }

    fn iam(&self) -> aws_sdk_iam::Client {
        aws_sdk_iam::Client::new(&self.sdk)
    }

    /// The ARN of the blueprint's managed policy `name`, under the stack's IAM path.
    fn managed_policy_arn(&self, name: &str) -> String {
        format!(
            "arn:aws:iam::{ACCOUNT}:policy{}{}",
            self.bp.iam_path(),
            self.name(name)
        )
    }

    fn policy_arn(&self) -> String {
        self.managed_policy_arn("worker")
    }

    /// The worker's policy for this blueprint, as `ballast iam-policy --for worker` writes it.
    fn worker_policy(&self) -> PolicyDocument {
        let scope = ArnScope::new(&self.bp, None, Some(ACCOUNT));
        let names = WorkerNames {
            queue: "transactions".into(),
            accounts_table: "accounts".into(),
            transactions_table: "transactions".into(),
        };
        worker::policy(&self.bp, &scope, &names).unwrap()
    }

    async fn trust_policy(&self) -> PolicyDocument {
        let role = self
            .iam()
            .get_role()
            .role_name(self.name("worker"))
            .send()
            .await
            .unwrap()
            .role
            .unwrap();
        PolicyDocument::parse(role.assume_role_policy_document().unwrap()).unwrap()
    }

    async fn attached(&self) -> BTreeSet<String> {
        self.iam()
            .list_attached_role_policies()
            .role_name(self.name("worker"))
            .send()
            .await
            .unwrap()
            .attached_policies()
            .iter()
            .filter_map(|p| p.policy_arn().map(str::to_string))
            .collect()
    }

    /// (version id, is default, document) of every version of the worker policy.
    async fn versions(&self) -> Vec<(String, bool, PolicyDocument)> {
        let iam = self.iam();
        let mut out = Vec::new();
        let listed = iam
            .list_policy_versions()
            .policy_arn(self.policy_arn())
            .send()
            .await
            .unwrap();
        for v in listed.versions() {
            let id = v.version_id().unwrap().to_string();
            let document = iam
                .get_policy_version()
                .policy_arn(self.policy_arn())
                .version_id(&id)
                .send()
                .await
                .unwrap()
                .policy_version
                .unwrap()
                .document
                .unwrap();
            out.push((
                id,
                v.is_default_version(),
                PolicyDocument::parse(&document).unwrap(),
            ));
        }
        out
    }

    async fn default_document(&self) -> PolicyDocument {
        self.versions()
            .await
            .into_iter()
            .find(|(_, default, _)| *default)
            .map(|(_, _, doc)| doc)
            .expect("a default version")
    }

    async fn profile_roles(&self) -> Vec<String> {
        self.iam()
            .get_instance_profile()
            .instance_profile_name(self.name("worker"))
            .send()
            .await
            .unwrap()
            .instance_profile
            .unwrap()
            .roles()
            .iter()
            .map(|r| r.role_name().to_string())
            .collect()
    }

    /// A policy outside the blueprint (moto does not load AWS's managed policies), by ARN.
    async fn foreign_policy(&self) -> String {
        self.iam()
            .create_policy()
            .policy_name(ballast_testbed::unique_name("extra"))
            .policy_document(
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#,
            )
            .send()
            .await
            .unwrap()
            .policy
            .unwrap()
            .arn
            .unwrap()
    }

    /// A broader document than the blueprint's, written by hand as a new default version.
    async fn widen_policy_by_hand(&self) {
        self.iam()
            .create_policy_version()
            .policy_arn(self.policy_arn())
            .policy_document(
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sqs:*","Resource":"*"}]}"#,
            )
            .set_as_default(true)
            .send()
            .await
            .unwrap();
    }
}

fn action<'a>(plan: &'a Plan, kind: ResourceKind, name: &str) -> &'a Action {
    let id = ResourceId::new(kind, name);
    &plan
        .changes
        .iter()
        .find(|c| c.resource == id)
        .unwrap_or_else(|| panic!("{id} not in plan"))
        .action
}

fn changed_fields(plan: &Plan, kind: ResourceKind, name: &str) -> Vec<String> {
    match action(plan, kind, name) {
        Action::Update { changes } => changes.iter().map(|c| c.field.clone()).collect(),
        other => panic!("update of {kind}/{name} expected, got {other:?}"),
    }
}

fn assert_no_changes(plan: &Plan) {
    assert!(
        !plan.has_changes(),
        "unexpected changes: {}",
        serde_json::to_string_pretty(plan).unwrap()
    );
}

#[tokio::test]
async fn a_worker_role_with_its_derived_policy_and_profile_converges() {
    let env = env().await;
    env.apply().await;

    // The policy is exactly the worker's least-privilege document, in moto's account.
    let document = env.default_document().await;
    assert!(document.same_as(&env.worker_policy()), "{document:?}");
    let text = document.to_json().to_string();
    assert!(
        text.contains(&format!(
            "arn:aws:sqs:us-east-1:{ACCOUNT}:{}",
            env.name("transactions")
        )),
        "{text}"
    );
    // The role trusts EC2 only and has the policy attached.
    let trust = env.trust_policy().await.to_json().to_string();
    assert!(trust.contains("ec2.amazonaws.com") && trust.contains("sts:AssumeRole"));
    assert_eq!(env.attached().await, BTreeSet::from([env.policy_arn()]));
    // The profile holds the role, and every resource carries its logical id.
    assert_eq!(env.profile_roles().await, vec![env.name("worker")]);
    let role_tags = env
        .iam()
        .list_role_tags()
        .role_name(env.name("worker"))
        .send()
        .await
        .unwrap();
    assert!(
        role_tags
            .tags()
            .iter()
            .any(|t| t.key() == OWNERSHIP_RESOURCE_TAG && t.value() == "iam-role/worker")
    );
    let policy_tags = env
        .iam()
        .list_policy_tags()
        .policy_arn(env.policy_arn())
        .send()
        .await
        .unwrap();
    assert!(
        policy_tags
            .tags()
            .iter()
            .any(|t| t.key() == OWNERSHIP_RESOURCE_TAG && t.value() == "managed-policy/worker")
    );

    // The launch template hands the profile to its instances by name.
    let ec2 = aws_sdk_ec2::Client::new(&env.sdk);
    let data = ec2
        .describe_launch_template_versions()
        .launch_template_name(env.name("worker"))
        .versions("$Default")
        .send()
        .await
        .unwrap()
        .launch_template_versions
        .unwrap()
        .remove(0)
        .launch_template_data
        .unwrap();
    assert_eq!(
        data.iam_instance_profile.and_then(|p| p.name),
        Some(env.name("worker"))
    );

    assert_no_changes(&env.plan().await);
    let second = env.apply().await;
    assert_eq!(second.mutating(), 0, "{:?}", second.snapshot());
}

#[tokio::test]
async fn trust_attachments_profile_role_and_document_changed_by_hand_are_restored() {
    let env = env().await;
    env.apply().await;
    let iam = env.iam();
    let role = env.name("worker");
    iam.update_assume_role_policy()
        .role_name(&role)
        .policy_document(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#,
        )
        .send()
        .await
        .unwrap();
    iam.detach_role_policy()
        .role_name(&role)
        .policy_arn(env.policy_arn())
        .send()
        .await
        .unwrap();
    let extra = env.foreign_policy().await;
    iam.attach_role_policy()
        .role_name(&role)
        .policy_arn(&extra)
        .send()
        .await
        .unwrap();
    iam.remove_role_from_instance_profile()
        .instance_profile_name(env.name("worker"))
        .role_name(&role)
        .send()
        .await
        .unwrap();
    env.widen_policy_by_hand().await;

    let plan = env.plan().await;
    assert_eq!(
        changed_fields(&plan, ResourceKind::IamRole, "worker"),
        ["assumeRolePolicy", "policies"]
    );
    assert_eq!(
        changed_fields(&plan, ResourceKind::InstanceProfile, "worker"),
        ["role"]
    );
    assert_eq!(
        changed_fields(&plan, ResourceKind::ManagedPolicy, "worker"),
        ["document"]
    );
    assert_eq!(plan.summary.update, 3, "nothing else changes");

    env.apply().await;
    let trust = env.trust_policy().await.to_json().to_string();
    assert!(
        trust.contains("ec2.amazonaws.com") && !trust.contains("lambda"),
        "{trust}"
    );
    assert_eq!(env.attached().await, BTreeSet::from([env.policy_arn()]));
    assert_eq!(env.profile_roles().await, vec![role]);
    assert!(env.default_document().await.same_as(&env.worker_policy()));
    assert_no_changes(&env.plan().await);
}

/// IAM keeps five versions of a policy: each restore deletes the oldest version that is not
/// the default before writing the new default, however many times the document is changed.
#[tokio::test]
async fn policy_versions_rotate_within_five() {
    let env = env().await;
    env.apply().await;
    // Four changes by hand: five versions, the default a hand-written one.
    for _ in 0..4 {
        env.widen_policy_by_hand().await;
    }
    assert_eq!(env.versions().await.len(), 5);
    for round in 0..3 {
        let plan = env.plan().await;
        assert_eq!(
            changed_fields(&plan, ResourceKind::ManagedPolicy, "worker"),
            ["document"],
            "round {round}"
        );
        let recorder = env.apply().await;
        let calls = recorder.snapshot();
        let count = |op: &str| {
            calls
                .iter()
                .filter(|(k, _)| k.operation == op)
                .map(|(_, n)| *n)
                .sum::<u64>()
        };
        assert_eq!(count("DeletePolicyVersion"), 1, "round {round}: {calls:?}");
        assert_eq!(count("CreatePolicyVersion"), 1, "round {round}");
        assert_eq!(env.versions().await.len(), 5, "round {round}");
        assert!(env.default_document().await.same_as(&env.worker_policy()));
        assert_no_changes(&env.plan().await);
        // The next round's drift: a hand-written version made the default again (IAM refuses
        // a sixth version, so it is not a new one).
        let hand = env
            .versions()
            .await
            .into_iter()
            .find(|(_, default, doc)| !default && !doc.same_as(&env.worker_policy()))
            .map(|(id, _, _)| id)
            .expect("a hand-written version is left");
        env.iam()
            .set_default_policy_version()
            .policy_arn(env.policy_arn())
            .version_id(hand)
            .send()
            .await
            .unwrap();
    }
    // The first version, written at create, was retired long ago.
    let ids: Vec<String> = env.versions().await.into_iter().map(|v| v.0).collect();
    assert!(!ids.contains(&"v1".to_string()), "{ids:?}");
}

#[tokio::test]
async fn destroy_detaches_empties_and_deletes_every_iam_resource() {
    let env = env().await;
    env.apply().await;
    let iam = env.iam();
    let role = env.name("worker");
    // An inline policy added by hand and an extra attachment would block DeleteRole.
    iam.put_role_policy()
        .role_name(&role)
        .policy_name("by-hand")
        .policy_document(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#,
        )
        .send()
        .await
        .unwrap();
    iam.attach_role_policy()
        .role_name(&role)
        .policy_arn(env.foreign_policy().await)
        .send()
        .await
        .unwrap();
    env.widen_policy_by_hand().await;

    env.destroy().await;

    let err = iam.get_role().role_name(&role).send().await.unwrap_err();
    assert!(err.into_service_error().is_no_such_entity_exception());
    let err = iam
        .get_instance_profile()
        .instance_profile_name(env.name("worker"))
        .send()
        .await
        .unwrap_err();
    assert!(err.into_service_error().is_no_such_entity_exception());
    let err = iam
        .get_policy()
        .policy_arn(env.policy_arn())
        .send()
        .await
        .unwrap_err();
    assert!(err.into_service_error().is_no_such_entity_exception());
    let plan = env.plan().await;
    assert_eq!(plan.summary.create, plan.changes.len(), "{plan:?}");
}

/// A create interrupted after `CreateRole` and `CreateInstanceProfile` (both tagged in the
/// create call) leaves a role without its policy and a profile without its role: the next
/// apply finds both by name, completes them with updates and creates nothing twice.
#[tokio::test]
async fn an_interrupted_create_is_completed_not_repeated() {
    let env = env().await;
    let iam = env.iam();
    // The tags the creates carry.
    let tags = |kind: ResourceKind| -> Vec<Tag> {
        env.bp
            .ownership_tags_for(&ResourceId::new(kind, "worker"))
            .into_iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build().unwrap())
            .collect()
    };
    iam.create_role()
        .role_name(env.name("worker"))
        .assume_role_policy_document(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#,
        )
        .set_tags(Some(tags(ResourceKind::IamRole)))
        .send()
        .await
        .unwrap();
    iam.create_instance_profile()
        .instance_profile_name(env.name("worker"))
        .set_tags(Some(tags(ResourceKind::InstanceProfile)))
        .send()
        .await
        .unwrap();

    let plan = env.plan().await;
    assert_eq!(
        action(&plan, ResourceKind::ManagedPolicy, "worker"),
        &Action::Create
    );
    assert_eq!(
        changed_fields(&plan, ResourceKind::IamRole, "worker"),
        ["policies"]
    );
    assert_eq!(
        changed_fields(&plan, ResourceKind::InstanceProfile, "worker"),
        ["role"]
    );

    let recorder = env.apply().await;
    let calls = recorder.snapshot();
    for op in ["CreateRole", "CreateInstanceProfile"] {
        assert!(
            !calls.keys().any(|k| k.operation == op),
            "{op} called again: {calls:?}"
        );
    }
    assert_eq!(env.attached().await, BTreeSet::from([env.policy_arn()]));
    assert_eq!(env.profile_roles().await, vec![env.name("worker")]);
    assert_no_changes(&env.plan().await);
}

/// A profile removed from the blueprint is found by its tags under the stack prefix and
/// deleted (its role removed first); one under the prefix that is not ours is left alone.
#[tokio::test]
async fn a_removed_profile_is_deleted_and_a_foreign_one_is_left_alone() {
    let env = env().await;
    env.apply().await;
    let iam = env.iam();
    iam.create_instance_profile()
        .instance_profile_name(env.name("foreign"))
        .send()
        .await
        .unwrap();

    let without = Env {
        sdk: env.sdk.clone(),
        bp: blueprint(&env.bp.metadata.name, ""),
    };
    let plan = without.plan().await;
    assert_eq!(
        action(&plan, ResourceKind::InstanceProfile, "worker"),
        &Action::Delete
    );
    assert!(
        !plan.changes.iter().any(|c| c.resource.name == "foreign"),
        "{plan:?}"
    );
    without.apply().await;
    let err = iam
        .get_instance_profile()
        .instance_profile_name(env.name("worker"))
        .send()
        .await
        .unwrap_err();
    assert!(err.into_service_error().is_no_such_entity_exception());
    // The role survives (it is still declared); the foreign profile too.
    assert_eq!(env.attached().await, BTreeSet::from([env.policy_arn()]));
    iam.get_instance_profile()
        .instance_profile_name(env.name("foreign"))
        .send()
        .await
        .unwrap();
    assert_no_changes(&without.plan().await);
}

/// Custom-named IAM resources (`roleName:` and the like, outside the stack's `<name>-` prefix)
/// are created under the stack's IAM path. Once the blueprint no longer declares them, that path
/// is how observe finds them: they are planned for deletion under their logical ids and deleted,
/// while a custom-named role of someone else is left alone. A role Ballast created before it
/// set paths (at `/`) is still the declared one.
#[tokio::test]
async fn custom_named_iam_resources_removed_from_the_blueprint_are_found_by_their_path() {
    let moto = ballast_testbed::moto().await;
    let stack = ballast_testbed::unique_name("iampath").to_lowercase();
    let custom = format!("team-{stack}-reporter");
    let declared = format!(
        r#"apiVersion: ballast.dev/v1
kind: Blueprint
metadata: {{ name: {stack}, region: us-east-1 }}
spec:
  queues:
    - {{ name: reports, deletionPolicy: delete }}
  managedPolicies:
    - name: reporter
      policyName: {custom}
      document:
        Version: "2012-10-17"
        Statement:
          - {{ Sid: ReadTheReports, Effect: Allow, Action: [s3:GetObject], Resource: "arn:aws:s3:::reports/*" }}
  iamRoles:
    - {{ name: reporter, roleName: {custom}, assumedBy: [ec2.amazonaws.com], policies: [reporter] }}
  instanceProfiles:
    - {{ name: reporter, instanceProfileName: {custom}, role: reporter }}
"#
    );
    let parse = |text: &str| {
        ballast_blueprint::parse("t.yaml", text)
            .unwrap_or_else(|d| panic!("{d}"))
            .blueprint
    };
    let env = Env {
        sdk: moto.sdk_config().await,
        bp: parse(&declared),
    };
    env.apply().await;
    let iam = env.iam();
    let path = format!("/ballast/{stack}/");
    let role = iam
        .get_role()
        .role_name(&custom)
        .send()
        .await
        .unwrap()
        .role
        .unwrap();
    assert_eq!(role.path(), path);
    assert_eq!(
        role.arn(),
        format!("arn:aws:iam::{ACCOUNT}:role/ballast/{stack}/{custom}")
    );
    let profile = iam
        .get_instance_profile()
        .instance_profile_name(&custom)
        .send()
        .await
        .unwrap()
        .instance_profile
        .unwrap();
    assert_eq!(profile.path(), path);
    let policy_arn = format!("arn:aws:iam::{ACCOUNT}:policy/ballast/{stack}/{custom}");
    assert_eq!(
        iam.get_policy()
            .policy_arn(&policy_arn)
            .send()
            .await
            .unwrap()
            .policy
            .unwrap()
            .path(),
        Some(path.as_str())
    );
    assert_no_changes(&env.plan().await);

    // Someone else's role with a custom name, at the root path.
    let foreign = format!("team-{stack}-foreign");
    iam.create_role()
        .role_name(&foreign)
        .assume_role_policy_document(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#,
        )
        .send()
        .await
        .unwrap();

    // Removed from the blueprint: found by the path, under their logical ids, and deleted.
    let emptied = Env {
        sdk: env.sdk.clone(),
        bp: parse(&format!(
            "apiVersion: ballast.dev/v1\nkind: Blueprint\nmetadata: {{ name: {stack}, region: us-east-1 }}\nspec:\n  queues: [{{ name: reports, deletionPolicy: delete }}]\n"
        )),
    };
    let plan = emptied.plan().await;
    for kind in [
        ResourceKind::ManagedPolicy,
        ResourceKind::IamRole,
        ResourceKind::InstanceProfile,
    ] {
        assert_eq!(action(&plan, kind, "reporter"), &Action::Delete, "{kind}");
    }
    assert_eq!(plan.summary.delete, 3, "{plan:?}");
    emptied.apply().await;
    let gone = iam.get_role().role_name(&custom).send().await.unwrap_err();
    assert!(gone.into_service_error().is_no_such_entity_exception());
    let gone = iam
        .get_instance_profile()
        .instance_profile_name(&custom)
        .send()
        .await
        .unwrap_err();
    assert!(gone.into_service_error().is_no_such_entity_exception());
    let gone = iam
        .get_policy()
        .policy_arn(&policy_arn)
        .send()
        .await
        .unwrap_err();
    assert!(gone.into_service_error().is_no_such_entity_exception());
    iam.get_role().role_name(&foreign).send().await.unwrap();
    assert_no_changes(&emptied.plan().await);
}

/// A role whose `roleName` changes is a new role: the one under the old name (found by the
/// stack's path, its tag naming the same logical id) is deleted, the new one created, in one
/// apply, and the next plan is clean.
#[tokio::test]
async fn a_renamed_custom_role_replaces_the_old_one() {
    let moto = ballast_testbed::moto().await;
    let stack = ballast_testbed::unique_name("iamrename").to_lowercase();
    let text = |role_name: &str| {
        format!(
            r#"apiVersion: ballast.dev/v1
kind: Blueprint
metadata: {{ name: {stack}, region: us-east-1 }}
spec:
  iamRoles:
    - {{ name: reporter, roleName: {role_name}, assumedBy: [ec2.amazonaws.com] }}
"#
        )
    };
    let sdk = moto.sdk_config().await;
    let env = |role_name: &str| Env {
        sdk: sdk.clone(),
        bp: ballast_blueprint::parse("t.yaml", &text(role_name))
            .unwrap_or_else(|d| panic!("{d}"))
            .blueprint,
    };
    let old = format!("team-{stack}-a");
    let new = format!("team-{stack}-b");
    let before = env(&old);
    before.apply().await;
    let after = env(&new);
    let plan = after.plan().await;
    assert_eq!(plan.summary.create, 1, "{plan:?}");
    assert_eq!(plan.summary.delete, 1, "{plan:?}");
    after.apply().await;
    let iam = after.iam();
    let gone = iam.get_role().role_name(&old).send().await.unwrap_err();
    assert!(gone.into_service_error().is_no_such_entity_exception());
    iam.get_role().role_name(&new).send().await.unwrap();
    assert_no_changes(&after.plan().await);
}

/// A role that an earlier Ballast created at `/` (before it set paths), with its ownership tags,
/// is the declared role: observed by its name, no change planned, nothing re-created.
#[tokio::test]
async fn a_role_created_at_the_root_path_before_paths_stays_the_declared_one() {
    let env = env().await;
    let iam = env.iam();
    let tags = env
        .bp
        .ownership_tags_for(&ResourceId::new(ResourceKind::IamRole, "worker"));
    iam.create_role()
        .role_name(env.name("worker"))
        .assume_role_policy_document(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#,
        )
        .set_tags(Some(
            tags.iter()
                .map(|(k, v)| Tag::builder().key(k).value(v).build().unwrap())
                .collect(),
        ))
        .send()
        .await
        .unwrap();
    let plan = env.plan().await;
    assert!(
        !matches!(
            action(&plan, ResourceKind::IamRole, "worker"),
            Action::Create | Action::Replace { .. }
        ),
        "{plan:?}"
    );
    env.apply().await;
    let role = iam
        .get_role()
        .role_name(env.name("worker"))
        .send()
        .await
        .unwrap()
        .role
        .unwrap();
    assert_eq!(role.path(), "/", "kept where it was");
    assert_eq!(env.attached().await, BTreeSet::from([env.policy_arn()]));
    assert_no_changes(&env.plan().await);
}

/// A policy written out in the blueprint (here beside the derived one) is created as written,
/// attached with it, compared semantically (moto hands it back reformatted) and restored.
#[tokio::test]
async fn a_document_written_in_the_blueprint_is_attached_beside_the_derived_one() {
    let moto = ballast_testbed::moto().await;
    let name = ballast_testbed::unique_name("iamdoc").to_lowercase();
    let text = format!(
        r#"apiVersion: ballast.dev/v1
kind: Blueprint
metadata: {{ name: {name}, region: us-east-1 }}
spec:
  queues:
    - {{ name: transactions, deletionPolicy: delete }}
  tables:
    - {{ name: accounts, hashKey: {{ name: pk, type: S }}, deletionPolicy: delete }}
    - {{ name: transactions, hashKey: {{ name: pk, type: S }}, deletionPolicy: delete }}
  managedPolicies:
    - {{ name: worker, grants: {{ for: worker }} }}
    - name: artifacts
      document:
        Version: "2012-10-17"
        Statement:
          - Sid: ReadTheReleases
            Effect: Allow
            Action: [s3:GetObject]
            Resource: "arn:aws:s3:::banking-artifacts/ballast/*"
  iamRoles:
    - name: worker
      assumedBy: [ec2.amazonaws.com]
      policies: [worker, artifacts]
"#
    );
    let env = Env {
        sdk: moto.sdk_config().await,
        bp: ballast_blueprint::parse("t.yaml", &text)
            .unwrap_or_else(|d| panic!("{d}"))
            .blueprint,
    };
    env.apply().await;
    let artifacts = env.managed_policy_arn("artifacts");
    assert_eq!(
        env.attached().await,
        BTreeSet::from([env.policy_arn(), artifacts.clone()])
    );
    let written = PolicyDocument::parse(
        r#"{"Version":"2012-10-17","Statement":[{"Sid":"ReadTheReleases","Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::banking-artifacts/ballast/*"}]}"#,
    )
    .unwrap();
    let iam = env.iam();
    let default_version = iam
        .get_policy()
        .policy_arn(&artifacts)
        .send()
        .await
        .unwrap()
        .policy
        .unwrap()
        .default_version_id
        .unwrap();
    let stored = iam
        .get_policy_version()
        .policy_arn(&artifacts)
        .version_id(default_version)
        .send()
        .await
        .unwrap()
        .policy_version
        .unwrap()
        .document
        .unwrap();
    assert!(PolicyDocument::parse(&stored).unwrap().same_as(&written));
    assert_no_changes(&env.plan().await);

    // Widened by hand: drift on that policy only, restored by apply.
    iam.create_policy_version()
        .policy_arn(&artifacts)
        .policy_document(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#,
        )
        .set_as_default(true)
        .send()
        .await
        .unwrap();
    let plan = env.plan().await;
    assert_eq!(
        changed_fields(&plan, ResourceKind::ManagedPolicy, "artifacts"),
        ["document"]
    );
    assert_eq!(plan.summary.update, 1, "only that policy changes");
    env.apply().await;
    assert_no_changes(&env.plan().await);
}
