//! The worker's policy: what `ballast-worker consume` and `serve` call against a blueprint.
//!
//! - the transactions queue: receive, delete, change visibility, read its attributes and URL
//!   (consume), send (serve's ingest API and its sweeper);
//! - its dead-letter queue (the blueprint's `deadLetter`): malformed messages are sent there,
//!   and the rescue pass receives, re-hides and deletes there;
//! - the accounts and transactions tables: the ledger's items (`GetItem`, `PutItem`,
//!   `UpdateItem`, `Query`; `TransactWriteItems` is authorized by its items' `PutItem`,
//!   `UpdateItem` and `ConditionCheckItem`, the last for a conversion's check of its exchange
//!   rate), `Query` on their indexes (the sweeper's and the audit's), `DescribeTable`
//!   on the transactions table (the readiness probe);
//! - `kms:Decrypt`/`kms:GenerateDataKey` on the keys of SSE-KMS queues, only through SQS
//!   (DynamoDB uses a table's key through its own grant: the caller needs no KMS permission);
//! - `cloudwatch:PutMetricData`, which has no resource: limited to the worker's namespace;
//! - the lifecycle (`worker/src/lifecycle`): scale-in protection and completing the
//!   termination hook on the blueprint's groups; `DescribeAutoScalingInstances` has no
//!   resource-level permissions, so it is `*`.

use ballast_blueprint::policy::PolicyDocument;
use ballast_blueprint::{Blueprint, Queue, QueueEncryptionKind};

use super::{ANY, ArnScope, Statements};

/// The namespace of the worker's CloudWatch metrics (`ballast_worker::observability::NAMESPACE`;
/// a test keeps the two equal).
pub const WORKER_METRICS_NAMESPACE: &str = "Ballast/Worker";

/// The blueprint names the worker resolves (its `--queue`, `--accounts-table` and
/// `--transactions-table`, with the same defaults; a test keeps them equal).
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct WorkerNames {
    /// Blueprint name of the queue the worker consumes (as `ballast-worker --queue`).
    #[arg(long, default_value = ballast_blueprint::DEFAULT_WORKER_QUEUE)]
    pub queue: String,
    /// Blueprint name of the accounts table (as `ballast-worker --accounts-table`).
    #[arg(long, default_value = ballast_blueprint::DEFAULT_WORKER_ACCOUNTS_TABLE)]
    pub accounts_table: String,
    /// Blueprint name of the transactions table (as `ballast-worker --transactions-table`).
    #[arg(long, default_value = ballast_blueprint::DEFAULT_WORKER_TRANSACTIONS_TABLE)]
    pub transactions_table: String,
}

/// Why the worker's policy cannot be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkerPolicyError {
    #[error(
        "the blueprint has no {kind} named `{name}` for the worker's {flag}; it has: {available}; \
         hint: pass {flag} NAME"
    )]
    Unknown {
        kind: &'static str,
        name: String,
        flag: &'static str,
        available: String,
    },
}

const CONSUME: &[&str] = &[
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:GetQueueAttributes",
    "sqs:GetQueueUrl",
];
const INGEST: &[&str] = &["sqs:SendMessage"];
const DEAD_LETTER: &[&str] = &[
    "sqs:GetQueueUrl",
    "sqs:SendMessage",
    "sqs:ReceiveMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:DeleteMessage",
];
const LEDGER_ITEMS: &[&str] = &[
    "dynamodb:ConditionCheckItem",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:Query",
];

/// The worker's policy for `bp`.
pub fn policy(
    bp: &Blueprint,
    scope: &ArnScope,
    names: &WorkerNames,
) -> Result<PolicyDocument, WorkerPolicyError> {
    let queue = find_queue(bp, &names.queue)?;
    let accounts = find_table(bp, &names.accounts_table, "--accounts-table")?;
    let transactions = find_table(bp, &names.transactions_table, "--transactions-table")?;

    let mut out = Statements::default();
    let queue_arn = scope.queue(&bp.queue_name(queue));
    out.allow("ConsumeTransactionsQueue", CONSUME, [queue_arn.clone()]);
    out.allow("IngestToTransactionsQueue", INGEST, [queue_arn]);
    let mut queues = vec![queue];
    if let Some(dlq) = queue
        .dead_letter
        .as_ref()
        .and_then(|dl| bp.queue(&dl.queue))
    {
        out.allow(
            "DeadLetterQueue",
            DEAD_LETTER,
            [scope.queue(&bp.queue_name(dlq))],
        );
        queues.push(dlq);
    }

    let tables = [accounts, transactions];
    out.allow(
        "LedgerItems",
        LEDGER_ITEMS,
        tables.iter().map(|t| scope.table(&bp.table_name(t))),
    );
    out.allow(
        "LedgerIndexes",
        &["dynamodb:Query"],
        tables.iter().flat_map(|t| {
            let table = bp.table_name(t);
            t.global_secondary_indexes
                .iter()
                .map(move |index| scope.table_index(&table, &index.name))
        }),
    );
    out.allow(
        "ReadinessProbe",
        &["dynamodb:DescribeTable"],
        [scope.table(&bp.table_name(transactions))],
    );

    queue_keys(bp, scope, &queues, &mut out);

    out.allow(
        "WorkerMetricsHaveNoResourceSoNamespaceOnly",
        &["cloudwatch:PutMetricData"],
        [ANY.to_owned()],
    );
    out.condition(
        "WorkerMetricsHaveNoResourceSoNamespaceOnly",
        "StringEquals",
        "cloudwatch:namespace",
        &[WORKER_METRICS_NAMESPACE.to_owned()],
    );

    let groups: Vec<String> = bp
        .spec
        .auto_scaling_groups
        .iter()
        .map(|g| scope.auto_scaling_group(&bp.group_name(g)))
        .collect();
    if !groups.is_empty() {
        out.allow(
            "InstanceLifecycle",
            &[
                "autoscaling:SetInstanceProtection",
                "autoscaling:CompleteLifecycleAction",
            ],
            groups,
        );
        out.allow(
            "FindOwnInstanceHasNoResourceLevelPermissions",
            &["autoscaling:DescribeAutoScalingInstances"],
            [ANY.to_owned()],
        );
    }
    Ok(out.into_document())
}

/// SSE-KMS queues: SQS decrypts on receive and generates data keys on send with the caller's
/// permission. A blueprint key is named by its alias (its id is AWS's), an existing key by ARN;
/// either only through SQS in this region.
fn queue_keys(bp: &Blueprint, scope: &ArnScope, queues: &[&Queue], out: &mut Statements) {
    const USE_KEY: &[&str] = &["kms:Decrypt", "kms:GenerateDataKey"];
    let via_sqs = [scope.via_service("sqs")];
    let mut aliases = Vec::new();
    let mut arns = Vec::new();
    for queue in queues {
        if queue.encryption.kind != QueueEncryptionKind::Kms {
            continue;
        }
        if let Some(key) = queue
            .encryption
            .kms_key
            .as_deref()
            .and_then(|k| bp.kms_key(k))
        {
            aliases.push(bp.key_alias(key));
        }
        if let Some(arn) = &queue.encryption.kms_key_arn {
            arns.push(arn.clone());
        }
    }
    if !aliases.is_empty() {
        let sid = "QueueKeysByAliasThroughSqs";
        out.allow(sid, USE_KEY, [scope.any_kms_key()]);
        out.condition(
            sid,
            "ForAnyValue:StringEquals",
            "kms:ResourceAliases",
            &aliases,
        );
        out.condition(sid, "StringEquals", "kms:ViaService", &via_sqs);
    }
    if !arns.is_empty() {
        let sid = "QueueKeysByArnThroughSqs";
        out.allow(sid, USE_KEY, arns);
        out.condition(sid, "StringEquals", "kms:ViaService", &via_sqs);
    }
}

fn find_queue<'a>(bp: &'a Blueprint, name: &str) -> Result<&'a Queue, WorkerPolicyError> {
    bp.queue(name).ok_or_else(|| WorkerPolicyError::Unknown {
        kind: "queue",
        name: name.to_owned(),
        flag: "--queue",
        available: list(bp.spec.queues.iter().map(|q| q.name.as_str())),
    })
}

fn find_table<'a>(
    bp: &'a Blueprint,
    name: &str,
    flag: &'static str,
) -> Result<&'a ballast_blueprint::Table, WorkerPolicyError> {
    bp.table(name).ok_or_else(|| WorkerPolicyError::Unknown {
        kind: "table",
        name: name.to_owned(),
        flag,
        available: list(bp.spec.tables.iter().map(|t| t.name.as_str())),
    })
}

fn list<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let names: Vec<&str> = names.collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}
