//! `ballast iam-policy`: the least-privilege IAM policy the controller needs to manage a
//! blueprint ([`controller`]) and the one its workers need to run against it ([`worker`]).
//!
//! Both are derived from the AWS calls the code makes (each call's label is its IAM action,
//! `ballast_aws::label`); a test reads the labels in the sources and checks that the policy for
//! `blueprints/banking.yaml` grants every one. Resources are the exact ARNs of the blueprint's
//! physical names (`ballast_blueprint::naming`) wherever AWS can scope the action, and `*` only
//! where AWS requires it, in a statement whose Sid says so. The document is an
//! [`ballast_blueprint::policy::PolicyDocument`], so its rendering is sorted and deterministic.

pub mod controller;
pub mod worker;

use ballast_blueprint::Blueprint;
use ballast_blueprint::policy::{PolicyDocument, Statement};

/// Whose policy to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PolicyFor {
    /// `ballast plan`/`apply`/`drift`/`destroy`/`run`/`scale` for this blueprint.
    Controller,
    /// `ballast-worker consume` and `serve` against this blueprint.
    Worker,
}

/// Where the ARNs point: partition, region and account (`*` where unknown), and the stack's IAM
/// path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArnScope {
    partition: &'static str,
    region: String,
    account: String,
    /// [`Blueprint::iam_path`].
    iam_path: String,
}

/// The ARN's account or region when the caller did not give it: matches any.
pub const ANY: &str = "*";

impl ArnScope {
    /// `region` (else the blueprint's) and `account` (else [`ANY`]).
    pub fn new(bp: &Blueprint, region: Option<&str>, account: Option<&str>) -> ArnScope {
        let region = region.unwrap_or(&bp.metadata.region).to_owned();
        ArnScope {
            partition: partition_of(&region),
            region,
            account: account.unwrap_or(ANY).to_owned(),
            iam_path: bp.iam_path(),
        }
    }

    /// True when the account is a wildcard (the caller gave no `--account-id`).
    pub fn any_account(&self) -> bool {
        self.account == ANY
    }

    fn arn(&self, service: &str, resource: &str) -> String {
        let ArnScope {
            partition,
            region,
            account,
            ..
        } = self;
        format!("arn:{partition}:{service}:{region}:{account}:{resource}")
    }

    pub fn queue(&self, name: &str) -> String {
        self.arn("sqs", name)
    }

    pub fn table(&self, name: &str) -> String {
        self.arn("dynamodb", &format!("table/{name}"))
    }

    pub fn table_index(&self, table: &str, index: &str) -> String {
        self.arn("dynamodb", &format!("table/{table}/index/{index}"))
    }

    /// Every KMS key of the account and region: key ids are chosen by AWS, so a key the
    /// blueprint creates cannot be named before it exists (statements narrow it by alias or
    /// by the calling service).
    pub fn any_kms_key(&self) -> String {
        self.arn("kms", "key/*")
    }

    /// `alias` is the full alias name, `alias/…`.
    pub fn kms_alias(&self, alias: &str) -> String {
        self.arn("kms", alias)
    }

    pub fn auto_scaling_group(&self, name: &str) -> String {
        self.arn(
            "autoscaling",
            &format!("autoScalingGroup:*:autoScalingGroupName/{name}"),
        )
    }

    pub fn alarm(&self, name: &str) -> String {
        self.arn("cloudwatch", &format!("alarm:{name}"))
    }

    pub fn topic(&self, name: &str) -> String {
        self.arn("sns", name)
    }

    /// The subscriptions of a topic (`<topic ARN>:<subscription id>`, chosen by SNS).
    pub fn topic_subscriptions(&self, name: &str) -> String {
        self.arn("sns", &format!("{name}:*"))
    }

    /// Dashboards are global: no region in their ARN.
    pub fn dashboard(&self, name: &str) -> String {
        let ArnScope {
            partition, account, ..
        } = self;
        format!("arn:{partition}:cloudwatch::{account}:dashboard/{name}")
    }

    /// Every EC2 resource of the account and region (EC2 assigns the ids).
    pub fn any_ec2_resource(&self) -> String {
        self.arn("ec2", "*")
    }

    /// Public and shared AMIs belong to other accounts: no account in their ARN.
    pub fn any_image(&self) -> String {
        let ArnScope {
            partition, region, ..
        } = self;
        format!("arn:{partition}:ec2:{region}::image/*")
    }

    /// IAM is global: no region.
    fn iam(&self, resource: &str) -> String {
        let ArnScope {
            partition, account, ..
        } = self;
        format!("arn:{partition}:iam::{account}:{resource}")
    }

    pub fn any_role(&self) -> String {
        self.iam("role/*")
    }

    /// The two ARNs a blueprint's IAM resource `<resource_type>/…/<name>` can have: under the
    /// stack's IAM path, where Ballast creates it, and at `/`, where Ballast created it before
    /// it set paths (IAM cannot move a resource to another path).
    fn iam_both(&self, resource_type: &str, name: &str) -> [String; 2] {
        [
            self.iam(&format!("{resource_type}{}{name}", self.iam_path)),
            self.iam(&format!("{resource_type}/{name}")),
        ]
    }

    /// A role of the blueprint, at both of its possible paths.
    pub fn role(&self, name: &str) -> [String; 2] {
        self.iam_both("role", name)
    }

    /// A customer managed policy of the blueprint, at both of its possible paths.
    pub fn managed_policy(&self, name: &str) -> [String; 2] {
        self.iam_both("policy", name)
    }

    /// An instance profile of the blueprint, at both of its possible paths.
    pub fn instance_profile(&self, name: &str) -> [String; 2] {
        self.iam_both("instance-profile", name)
    }

    /// The endpoint host of a service in this region, the value of `kms:ViaService`.
    pub fn via_service(&self, service: &str) -> String {
        format!("{service}.{}.amazonaws.com", self.region)
    }
}

fn partition_of(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// Statements keyed by Sid; adding to a Sid twice merges the actions and resources (several
/// resources of one kind share one statement).
#[derive(Debug, Default)]
struct Statements(Vec<Statement>);

impl Statements {
    fn allow(&mut self, sid: &str, actions: &[&str], resources: impl IntoIterator<Item = String>) {
        if let Some(statement) = self.entry(sid) {
            statement
                .actions
                .extend(actions.iter().map(|a| (*a).to_owned()));
            statement.resources.extend(resources);
        }
    }

    /// Adds `operator: {key: values}` to the statement `sid`.
    fn condition(&mut self, sid: &str, operator: &str, key: &str, values: &[String]) {
        if let Some(statement) = self.entry(sid) {
            statement
                .conditions
                .entry(operator.to_owned())
                .or_default()
                .entry(key.to_owned())
                .or_default()
                .extend(values.iter().cloned());
        }
    }

    fn entry(&mut self, sid: &str) -> Option<&mut Statement> {
        match self.0.iter().position(|s| s.sid.as_deref() == Some(sid)) {
            Some(index) => self.0.get_mut(index),
            None => {
                self.0.push(Statement::allow(
                    sid,
                    Vec::<String>::new(),
                    Vec::<String>::new(),
                ));
                self.0.last_mut()
            }
        }
    }

    fn into_document(self) -> PolicyDocument {
        PolicyDocument::new(
            self.0
                .into_iter()
                .filter(|s| !s.resources.is_empty())
                .collect(),
        )
        .sorted()
    }
}

/// The policy for `who`.
pub fn policy(
    bp: &Blueprint,
    who: PolicyFor,
    scope: &ArnScope,
    names: &worker::WorkerNames,
    lease_table: &str,
) -> Result<PolicyDocument, worker::WorkerPolicyError> {
    match who {
        PolicyFor::Controller => Ok(controller::policy(bp, scope, lease_table)),
        PolicyFor::Worker => worker::policy(bp, scope, names),
    }
}

#[cfg(test)]
mod tests;
