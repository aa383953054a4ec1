use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use clap::Parser;

use super::worker::{WORKER_METRICS_NAMESPACE, WorkerNames, WorkerPolicyError};
use super::*;
use crate::cli::{Cli, Command};

const ACCOUNT: &str = "123456789012";
/// Set to rewrite the golden files instead of comparing with them.
const UPDATE_ENV: &str = "BALLAST_UPDATE_IAM_POLICY";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn banking() -> Blueprint {
    ballast_blueprint::load(&workspace().join("blueprints/banking.yaml"))
        .unwrap()
        .blueprint
}

fn default_names() -> WorkerNames {
    let Command::IamPolicy(args) =
        Cli::try_parse_from(["ballast", "iam-policy", "x.yaml", "--for", "worker"])
            .unwrap()
            .command
    else {
        panic!("not iam-policy")
    };
    args.worker
}

fn banking_policy(who: PolicyFor) -> PolicyDocument {
    let bp = banking();
    let scope = ArnScope::new(&bp, None, Some(ACCOUNT));
    policy(
        &bp,
        who,
        &scope,
        &default_names(),
        crate::lease::DEFAULT_TABLE,
    )
    .unwrap()
}

/// `ballast iam-policy blueprints/banking.yaml --for … --account-id 123456789012` is the golden
/// file under `controller/tests/golden/`. Regenerate with
/// `BALLAST_UPDATE_IAM_POLICY=1 cargo test --workspace --lib -- iam_policy::`.
#[test]
fn banking_policies_match_the_golden_files() {
    for (who, name) in [
        ("controller", "iam-policy-banking-controller.json"),
        ("worker", "iam-policy-banking-worker.json"),
    ] {
        let cli = Cli::try_parse_from([
            "ballast",
            "iam-policy",
            workspace()
                .join("blueprints/banking.yaml")
                .to_str()
                .unwrap(),
            "--for",
            who,
            "--account-id",
            ACCOUNT,
        ])
        .unwrap();
        let Command::IamPolicy(args) = cli.command else {
            panic!("not iam-policy")
        };
        let (text, _) = crate::commands::iam_policy::render(&args).unwrap();
        let golden = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/golden")
            .join(name);
        if std::env::var_os(UPDATE_ENV).is_some() {
            std::fs::create_dir_all(golden.parent().unwrap()).unwrap();
            std::fs::write(&golden, &text).unwrap();
        }
        let expected = std::fs::read_to_string(&golden).unwrap_or_default();
        assert_eq!(
            text,
            expected,
            "{} differs from the generated policy; regenerate with \
             `{UPDATE_ENV}=1 cargo test --workspace --lib -- iam_policy::`",
            golden.display()
        );
        // One valid JSON document, and deterministic.
        let parsed = PolicyDocument::parse(&text).unwrap();
        assert_eq!(parsed.to_pretty_json(), text);
    }
}

/// The AWS calls made in `files`: every `"service:Operation"` label (the IAM action name the
/// code gives each call, `ballast_aws::label`), with the batch and transaction operations
/// mapped to the actions IAM authorizes them by.
fn called_actions(files: &[PathBuf]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(file).unwrap();
        // Test modules call AWS to set up fixtures; they are not what the program needs.
        let text = text.split("#[cfg(test)]").next().unwrap();
        // A ConditionCheck inside a TransactWriteItems is authorized by its own action.
        if text.contains("ConditionCheck::builder") {
            out.insert("dynamodb:ConditionCheckItem".to_owned());
        }
        for literal in text.split('"').skip(1).step_by(2) {
            let Some((service, operation)) = literal.split_once(':') else {
                continue;
            };
            let known = [
                "sqs",
                "dynamodb",
                "kms",
                "ec2",
                "autoscaling",
                "cloudwatch",
                "iam",
                "tag",
            ];
            let is_operation = operation.len() > 3
                && operation.starts_with(|c: char| c.is_ascii_uppercase())
                && operation.chars().all(|c| c.is_ascii_alphanumeric())
                && operation.chars().any(|c| c.is_ascii_lowercase());
            if !known.contains(&service) || !is_operation || literal == "tag:Name" {
                continue;
            }
            match (service, operation) {
                ("dynamodb", "TransactWriteItems") => {
                    out.insert("dynamodb:PutItem".to_owned());
                    out.insert("dynamodb:UpdateItem".to_owned());
                }
                ("sqs", op) if op.ends_with("Batch") => {
                    out.insert(format!("sqs:{}", op.trim_end_matches("Batch")));
                }
                _ => {
                    out.insert(literal.to_owned());
                }
            }
        }
    }
    out
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs")
            && !path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().contains("tests"))
        {
            out.push(path);
        }
    }
    out
}

#[test]
fn the_controller_policy_allows_every_call_the_controller_makes() {
    let src = workspace().join("controller/src");
    // This module's own literals are the policy, not calls; so are those of the resource
    // policies Ballast writes (`kinds/<kind>/policy.rs`): they name what others may call.
    let own = src.join("iam_policy");
    let files: Vec<PathBuf> = rust_files(&src)
        .into_iter()
        .filter(|f| !f.starts_with(&own) && !f.ends_with("policy.rs"))
        .collect();
    let calls = called_actions(&files);
    assert!(calls.len() > 60, "found only {calls:?}");
    let doc = banking_policy(PolicyFor::Controller);
    let missing: Vec<_> = calls.iter().filter(|a| !doc.allows_action(a)).collect();
    assert!(missing.is_empty(), "not granted: {missing:?}");
}

#[test]
fn the_worker_policy_allows_every_call_of_consume_and_serve() {
    let src = workspace().join("worker/src");
    let mut files = Vec::new();
    for dir in [
        "consumer",
        "ledger",
        "store",
        "lifecycle",
        "observability",
        "api",
    ] {
        files.extend(rust_files(&src.join(dir)));
    }
    for file in ["config.rs", "commands/consume.rs", "commands/serve.rs"] {
        files.push(src.join(file));
    }
    let calls = called_actions(&files);
    assert!(calls.len() > 12, "found only {calls:?}");
    let doc = banking_policy(PolicyFor::Worker);
    let missing: Vec<_> = calls.iter().filter(|a| !doc.allows_action(a)).collect();
    assert!(missing.is_empty(), "not granted: {missing:?}");
    // And nothing the worker never does.
    for outside in [
        "dynamodb:DeleteTable",
        "dynamodb:Scan",
        "dynamodb:DeleteItem",
        "sqs:DeleteQueue",
        "sqs:PurgeQueue",
        "sqs:SetQueueAttributes",
        "kms:ScheduleKeyDeletion",
        "autoscaling:SetDesiredCapacity",
    ] {
        assert!(!doc.allows_action(outside), "{outside} is granted");
    }
}

#[test]
fn the_worker_policy_names_the_exact_queues_tables_indexes_and_group() {
    let doc = banking_policy(PolicyFor::Worker);
    let resources: BTreeSet<&str> = doc
        .statements
        .iter()
        .flat_map(|s| s.resources.iter().map(String::as_str))
        .collect();
    let arn = |rest: &str| format!("arn:aws:{rest}");
    for expected in [
        arn("sqs:us-east-1:123456789012:banking-transactions"),
        arn("sqs:us-east-1:123456789012:banking-transactions-dlq"),
        arn("dynamodb:us-east-1:123456789012:table/banking-accounts"),
        arn("dynamodb:us-east-1:123456789012:table/banking-transactions"),
        arn("dynamodb:us-east-1:123456789012:table/banking-transactions/index/pending"),
        arn(
            "autoscaling:us-east-1:123456789012:autoScalingGroup:*:autoScalingGroupName/banking-workers",
        ),
    ] {
        assert!(
            resources.contains(expected.as_str()),
            "{expected} missing: {resources:?}"
        );
    }
    // `*` only for the two actions that have no resource.
    let wildcard: BTreeSet<&str> = doc
        .statements
        .iter()
        .filter(|s| s.resources.iter().any(|r| r == "*"))
        .flat_map(|s| s.actions.iter().map(String::as_str))
        .collect();
    assert_eq!(
        wildcard,
        BTreeSet::from([
            "autoscaling:DescribeAutoScalingInstances",
            "cloudwatch:PutMetricData"
        ])
    );
    let metrics = doc
        .statements
        .iter()
        .find(|s| s.actions.iter().any(|a| a == "cloudwatch:PutMetricData"))
        .unwrap();
    assert_eq!(
        metrics.conditions["StringEquals"]["cloudwatch:namespace"],
        [WORKER_METRICS_NAMESPACE]
    );
    let keys = doc
        .statements
        .iter()
        .find(|s| s.actions.iter().any(|a| a == "kms:Decrypt"))
        .unwrap();
    assert_eq!(
        keys.conditions["ForAnyValue:StringEquals"]["kms:ResourceAliases"],
        ["alias/banking-data"]
    );
    assert_eq!(
        keys.conditions["StringEquals"]["kms:ViaService"],
        ["sqs.us-east-1.amazonaws.com"]
    );
}

#[test]
fn the_worker_defaults_are_the_workers_own() {
    assert_eq!(
        WORKER_METRICS_NAMESPACE,
        ballast_worker::observability::NAMESPACE
    );
    let worker = ballast_worker::cli::Cli::try_parse_from(["ballast-worker", "consume"]).unwrap();
    let ballast_worker::cli::Command::Consume(consume) = worker.command else {
        panic!("not consume")
    };
    let names = default_names();
    assert_eq!(names.queue, consume.target.queue);
    assert_eq!(names.accounts_table, consume.target.accounts_table);
    assert_eq!(names.transactions_table, consume.target.transactions_table);
}

#[test]
fn without_an_account_the_arns_match_any_account_and_the_region_is_the_blueprints() {
    let bp = banking();
    let scope = ArnScope::new(&bp, None, None);
    assert!(scope.any_account());
    assert_eq!(
        scope.queue("q"),
        "arn:aws:sqs:us-east-1:*:q",
        "a wildcard account is written as `*`"
    );
    let scope = ArnScope::new(&bp, Some("cn-north-1"), Some(ACCOUNT));
    assert_eq!(
        scope.table("t"),
        "arn:aws-cn:dynamodb:cn-north-1:123456789012:table/t"
    );
    assert_eq!(
        scope.dashboard("d"),
        "arn:aws-cn:cloudwatch::123456789012:dashboard/d"
    );
}

#[test]
fn an_unknown_worker_queue_is_refused_with_the_flag_and_the_choices() {
    let bp = banking();
    let scope = ArnScope::new(&bp, None, None);
    let names = WorkerNames {
        queue: "orders".into(),
        ..default_names()
    };
    let err = worker::policy(&bp, &scope, &names).unwrap_err();
    assert!(matches!(
        err,
        WorkerPolicyError::Unknown { kind: "queue", .. }
    ));
    let text = err.to_string();
    assert!(text.contains("`orders`"), "{text}");
    assert!(text.contains("transactions, transactions-dlq"), "{text}");
    assert!(text.contains("hint: pass --queue NAME"), "{text}");
}
