//! The generated IAM policies (`ballast iam-policy`), proven by enforcement: an IAM user whose
//! only grant is the generated policy runs the real binaries against a moto that enforces IAM
//! ([`IamEnforcingMoto`]), and is denied what the policy does not grant.
//!
//! What this proves, and what it cannot (moto 5.2.5; see [`IamEnforcingMoto`] for the source):
//!
//! - **Actions: proven.** Every request is authorized by its operation name against the
//!   user's policy; the binaries run end to end (no `AccessDenied` in their logs) and an action
//!   outside the policy is refused.
//! - **SQS resources: proven.** moto checks SQS requests against the queue's ARN, so the
//!   worker's exact queue ARNs are enforced: the same user is refused on a queue not in its
//!   policy.
//! - **Other resources and conditions: not enforced by moto.** moto checks DynamoDB, KMS,
//!   CloudWatch, EC2 and Auto Scaling requests against the resource `*` and sets no condition
//!   keys, so [`as_moto_enforces`] widens those statements to `*` and drops their conditions
//!   before attaching the policy (it also names the batch and transaction operations moto
//!   checks, e.g. `dynamodb:TransactWriteItems`, which AWS authorizes by the items' `PutItem` /
//!   `UpdateItem`; and by the signing name where that differs from the IAM prefix,
//!   `monitoring:` for `cloudwatch:`, `tagging:` for `tag:`), and it allows `sqs:GetQueueUrl` on `*` (moto checks that call, which
//!   names a queue rather than its URL, against `*`). The exact ARNs and conditions of those statements are checked by the
//!   controller's unit tests (`iam_policy::tests`) and the golden files, not here.
//! - **KMS through SQS: not exercised.** moto's SQS never calls KMS for an SSE-KMS queue.
//! - **Queue policies: not evaluated by moto.** Its enforcement (`moto/iam/access_control.py`)
//!   collects the caller's identity policies only (a resource policy is read just for a role's
//!   trust on `sts:AssumeRole`) and sets no `aws:SecureTransport` key, so the TLS-only policy
//!   every banking queue carries neither refuses these plain-HTTP calls to moto nor is proven
//!   here; the controller's `provision_queue_policy` tests check what it says.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a failed test (clippy.toml covers only #[test] fns, not helpers)"
)]

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sqs::error::ProvideErrorMetadata;
use ballast_blueprint::policy::{PolicyDocument, Statement};
use ballast_e2e::{controller_binary, worker_binary};
use ballast_testbed::IamEnforcingMoto;
use ballast_testbed::fixtures::poll_until;
use denial::{AnyError, access_denied};

/// moto's account: the ARNs of what the tests create.
const ACCOUNT: &str = "123456789012";
const TRANSACTIONS: u32 = 40;
const ACCOUNTS: u32 = 8;
const OPENING_BALANCE: &str = "1000.00";

fn banking_yaml() -> PathBuf {
    ballast_testbed::workspace_root().join("blueprints/banking.yaml")
}

/// A command with no AWS settings from the host: credentials and region come from `env`.
fn command(program: PathBuf, env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(program);
    command
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("RUST_LOG")
        .env_remove("BALLAST_LOG")
        .envs(env.iter().copied())
        .stdin(Stdio::null());
    command
}

fn run(program: PathBuf, args: &[&str], env: &[(&str, &str)]) -> Output {
    command(program, env)
        .args(args)
        .output()
        .expect("the command runs")
}

fn run_ok(program: PathBuf, args: &[&str], env: &[(&str, &str)]) -> String {
    let output = run(program.clone(), args, env);
    assert!(
        output.status.success(),
        "{} {args:?} failed ({}):\n{}\n{}",
        program.display(),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// `ballast iam-policy blueprints/banking.yaml --for WHO --account-id <moto's>`.
fn generated_policy(who: &str) -> PolicyDocument {
    let text = run_ok(
        controller_binary(),
        &[
            "iam-policy",
            banking_yaml().to_str().unwrap(),
            "--for",
            who,
            "--account-id",
            ACCOUNT,
        ],
        &[],
    );
    PolicyDocument::parse(&text).unwrap()
}

/// IAM action prefixes whose requests are signed with another service name: moto builds the
/// action it checks from the signature's credential scope (`monitoring:PutMetricData`,
/// `tagging:GetResources`).
const SIGNING_NAMES: &[(&str, &str)] = &[("cloudwatch", "monitoring"), ("tag", "tagging")];

/// The policy as moto 5.2.5 can enforce it (see the module docs): SQS statements keep their
/// ARNs; every other statement's resources become `*` and its conditions are dropped; the
/// operations moto checks by their own names are added beside the IAM actions that authorize
/// them on AWS. No action is added that the policy does not already grant on AWS.
fn as_moto_enforces(policy: &PolicyDocument) -> PolicyDocument {
    let aliases: &[(&str, &str)] = &[
        ("sqs:SendMessage", "sqs:SendMessageBatch"),
        ("sqs:DeleteMessage", "sqs:DeleteMessageBatch"),
        (
            "sqs:ChangeMessageVisibility",
            "sqs:ChangeMessageVisibilityBatch",
        ),
        ("dynamodb:PutItem", "dynamodb:TransactWriteItems"),
        ("dynamodb:UpdateItem", "dynamodb:TransactWriteItems"),
    ];
    let statements = policy
        .statements
        .iter()
        .map(|s| {
            let mut s: Statement = s.clone();
            let sqs_only = s.resources.iter().all(|r| r.starts_with("arn:aws:sqs:"));
            if !sqs_only {
                s.resources = vec!["*".into()];
            }
            s.conditions.clear();
            for (action, operation) in aliases {
                if s.actions.iter().any(|a| a == action) {
                    s.actions.push((*operation).into());
                }
            }
            // moto names the action by the request's signing name, not the IAM prefix.
            let signed_as: Vec<String> = s
                .actions
                .iter()
                .filter_map(|a| {
                    let (prefix, operation) = a.split_once(':')?;
                    let signing = SIGNING_NAMES.iter().find(|(iam, _)| *iam == prefix)?.1;
                    Some(format!("{signing}:{operation}"))
                })
                .collect();
            s.actions.extend(signed_as);
            s
        })
        .collect::<Vec<_>>();
    // GetQueueUrl names a queue by name, not URL: moto does not resolve it and checks `*`.
    let mut statements = statements;
    if policy.allows_action("sqs:GetQueueUrl") {
        statements.push(Statement::allow(
            "MotoChecksGetQueueUrlAgainstAnyResource",
            ["sqs:GetQueueUrl"],
            ["*"],
        ));
    }
    PolicyDocument::new(statements)
}

/// Creates an IAM user whose only policy is `policy` and returns its access key.
async fn user_with_only(
    iam: &aws_sdk_iam::Client,
    name: &str,
    policy: &PolicyDocument,
) -> (String, String) {
    iam.create_user().user_name(name).send().await.unwrap();
    iam.put_user_policy()
        .user_name(name)
        .policy_name("generated")
        .policy_document(policy.to_json().to_string())
        .send()
        .await
        .unwrap();
    let key = iam
        .create_access_key()
        .user_name(name)
        .send()
        .await
        .unwrap()
        .access_key
        .unwrap();
    (key.access_key_id, key.secret_access_key)
}

fn key_env(key: &(String, String)) -> [(&'static str, &str); 3] {
    [
        ("AWS_ACCESS_KEY_ID", key.0.as_str()),
        ("AWS_SECRET_ACCESS_KEY", key.1.as_str()),
        ("AWS_REGION", ballast_testbed::REGION),
    ]
}

mod denial {
    //! Whether an SDK error is moto's (or AWS's) access denial.
    use aws_sdk_sqs::error::ProvideErrorMetadata;

    /// An SDK error with its metadata and HTTP answer.
    pub trait AnyError: std::fmt::Debug {
        fn error_code(&self) -> Option<&str>;
        fn http_status(&self) -> Option<u16>;
        fn body_text(&self) -> String;
    }

    impl<E: ProvideErrorMetadata + std::fmt::Debug> AnyError
        for aws_sdk_sqs::error::SdkError<E, aws_sdk_sqs::config::http::HttpResponse>
    {
        fn error_code(&self) -> Option<&str> {
            ProvideErrorMetadata::code(self)
        }
        fn http_status(&self) -> Option<u16> {
            self.raw_response().map(|r| r.status().as_u16())
        }
        fn body_text(&self) -> String {
            self.raw_response()
                .and_then(|r| r.body().bytes())
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default()
        }
    }

    /// True for an `AccessDenied`/`AccessDeniedException` answer (HTTP 403). moto answers a
    /// denial in XML whatever the protocol, so for the JSON services (DynamoDB, SQS) the SDK
    /// cannot parse the code and it is read from the body.
    pub fn access_denied(err: &dyn AnyError) -> bool {
        let code = err.error_code().map(str::to_owned).or_else(|| {
            let body = err.body_text();
            let start = body.find("<Code>")? + "<Code>".len();
            let end = body[start..].find("</Code>")? + start;
            Some(body[start..end].to_owned())
        });
        err.http_status() == Some(403)
            && code.is_some_and(|c| c == "AccessDenied" || c == "AccessDeniedException")
    }
}

fn assert_denied<T: std::fmt::Debug>(what: &str, result: Result<T, impl AnyError>) {
    match result {
        Ok(ok) => panic!("{what} was allowed: {ok:?}"),
        Err(err) => assert!(access_denied(&err), "{what}: not an access denial: {err:?}"),
    }
}

fn assert_no_denials(log: &str, what: &str) {
    let lower = log.to_ascii_lowercase();
    assert!(
        !lower.contains("accessdenied") && !lower.contains("access denied"),
        "{what} was denied something its generated policy should grant:\n{log}"
    );
}

/// The worker's generated policy is enough for `ballast-worker consume` to settle every
/// transaction, and refuses what the worker never does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_with_only_its_generated_policy_settles_transactions_and_is_denied_the_rest() {
    let moto = IamEnforcingMoto::start().await;
    let endpoint = moto.endpoint();
    let setup = moto.sdk_config().await;
    let bp = banking_yaml();
    let bp = bp.to_str().unwrap();
    let env = ballast_testbed::child_env();
    let dir = std::env::temp_dir().join(ballast_testbed::unique_name("iam-worker"));
    std::fs::create_dir_all(&dir).unwrap();

    // Before enforcement: the stack, opened accounts and a batch of transactions on the queue.
    run_ok(
        controller_binary(),
        &["apply", bp, "--auto-approve", "--endpoint-url", &endpoint],
        &env,
    );
    let accounts = run_ok(
        worker_binary(),
        &[
            "seed-accounts",
            "--blueprint",
            bp,
            "--count",
            &ACCOUNTS.to_string(),
            "--balance",
            OPENING_BALANCE,
            "--endpoint-url",
            &endpoint,
        ],
        &env,
    );
    let accounts_file = dir.join("accounts.txt");
    std::fs::write(&accounts_file, &accounts).unwrap();
    run_ok(
        worker_binary(),
        &[
            "send",
            "--blueprint",
            bp,
            "--count",
            &TRANSACTIONS.to_string(),
            "--rate",
            "1000",
            "--accounts-file",
            accounts_file.to_str().unwrap(),
            "--endpoint-url",
            &endpoint,
        ],
        &env,
    );
    let sqs = aws_sdk_sqs::Client::new(&setup);
    let outside_queue = sqs
        .create_queue()
        .queue_name("not-the-workers")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();

    let iam = aws_sdk_iam::Client::new(&setup);
    let worker_policy = generated_policy("worker");
    let worker_key =
        user_with_only(&iam, "banking-worker", &as_moto_enforces(&worker_policy)).await;
    // Reads for checking the outcome; nothing the worker's policy is measured by.
    let auditor = PolicyDocument::new(vec![Statement::allow(
        "Audit",
        [
            "dynamodb:Scan",
            "dynamodb:GetItem",
            "dynamodb:DescribeTable",
            "sqs:GetQueueAttributes",
            "sqs:GetQueueUrl",
        ],
        ["*"],
    )]);
    let auditor_key = user_with_only(&iam, "auditor", &auditor).await;

    moto.enforce_iam();
    let anonymous = sqs.list_queues().send().await;
    assert!(
        anonymous.is_err(),
        "moto still serves the unsigned test credentials: {anonymous:?}"
    );

    // The worker, as the IAM user.
    let log_path = dir.join("worker.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut worker = command(worker_binary(), &key_env(&worker_key))
        .args(["consume", "--blueprint", bp, "--endpoint-url", &endpoint])
        .args(["--no-fleet", "--metrics-addr", "127.0.0.1:0"])
        .args(["--dlq-rescue-every", "1s"])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();

    let audit = moto.sdk_config_as(&auditor_key.0, &auditor_key.1).await;
    let audit_sqs = aws_sdk_sqs::Client::new(&audit);
    let audit_dynamodb = aws_sdk_dynamodb::Client::new(&audit);
    let queue_url = audit_sqs
        .get_queue_url()
        .queue_name("banking-transactions")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let report_args = [
        "report",
        "--blueprint",
        bp,
        "--json",
        "--endpoint-url",
        endpoint.as_str(),
    ];
    poll_until(
        "every transaction to have a result and the queue to drain",
        Duration::from_secs(90),
        Duration::from_millis(250),
        || {
            let audit_sqs = audit_sqs.clone();
            let queue_url = queue_url.clone();
            let auditor_key = auditor_key.clone();
            async move {
                let report = run(worker_binary(), &report_args, &key_env(&auditor_key));
                let report: serde_json::Value =
                    serde_json::from_slice(&report.stdout).unwrap_or_default();
                let settled: u64 = report["results"]
                    .as_object()
                    .map(|m| m.values().filter_map(|v| v.as_u64()).sum())
                    .unwrap_or(0);
                settled == u64::from(TRANSACTIONS)
                    && ballast_testbed::fixtures::queue_depth(&audit_sqs, &queue_url).await == 0
            }
        },
    )
    .await;

    // Money moved: balances are no longer all the opening balance, and the report (exit 0)
    // says it was conserved.
    let report = run_ok(worker_binary(), &report_args, &key_env(&auditor_key));
    let report: serde_json::Value = serde_json::from_str(&report).unwrap();
    let completed = report["results"]["COMPLETED"].as_u64().unwrap_or(0);
    assert!(completed > 0, "no transaction completed: {report}");
    let balances: Vec<String> = audit_dynamodb
        .scan()
        .table_name("banking-accounts")
        .send()
        .await
        .unwrap()
        .items()
        .iter()
        .filter(|item| item.get("sk") == Some(&AttributeValue::S("META".into())))
        .filter_map(|item| item.get("balance")?.as_n().ok().cloned())
        .collect();
    assert_eq!(balances.len(), ACCOUNTS as usize, "{balances:?}");
    assert!(
        balances
            .iter()
            .any(|b| b.parse::<rust_decimal::Decimal>().unwrap()
                != OPENING_BALANCE.parse::<rust_decimal::Decimal>().unwrap()),
        "no balance changed: {balances:?}"
    );

    // SIGTERM: the worker drains and exits 0, having been denied nothing.
    let status = Command::new("kill")
        .args(["-TERM", &worker.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::task::spawn_blocking(move || worker.wait().unwrap())
        .await
        .unwrap();
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(exit.success(), "the worker exited with {exit}:\n{log}");
    assert_no_denials(&log, "ballast-worker consume");

    // The same user, outside its grants.
    let as_worker = moto.sdk_config_as(&worker_key.0, &worker_key.1).await;
    let worker_sqs = aws_sdk_sqs::Client::new(&as_worker);
    let worker_dynamodb = aws_sdk_dynamodb::Client::new(&as_worker);
    assert_denied(
        "dynamodb:DeleteTable",
        worker_dynamodb
            .delete_table()
            .table_name("banking-accounts")
            .send()
            .await,
    );
    assert_denied(
        "dynamodb:Scan",
        worker_dynamodb
            .scan()
            .table_name("banking-accounts")
            .send()
            .await,
    );
    assert_denied(
        "sqs:DeleteQueue",
        worker_sqs.delete_queue().queue_url(&queue_url).send().await,
    );
    // Resource scoping: ReceiveMessage is granted, but only on the worker's queues.
    assert_denied(
        "sqs:ReceiveMessage on a queue outside the blueprint",
        worker_sqs
            .receive_message()
            .queue_url(&outside_queue)
            .send()
            .await,
    );
    let own = worker_sqs
        .receive_message()
        .queue_url(&queue_url)
        .send()
        .await;
    assert!(
        own.is_ok(),
        "ReceiveMessage on its own queue: {:?}",
        own.map_err(|e| e.code().map(str::to_owned))
    );
}

/// The controller's generated policy is enough for `ballast drift` to find a key policy edited
/// by hand and for `ballast apply` to write it back (the writer lease and its table, then
/// `kms:PutKeyPolicy`); `plan` and `drift` then report the stack in sync; and it refuses what
/// the controller never does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_with_only_its_generated_policy_plans_and_checks_drift_and_is_denied_the_rest()
{
    let moto = IamEnforcingMoto::start().await;
    let endpoint = moto.endpoint();
    let setup = moto.sdk_config().await;
    let bp = banking_yaml();
    let bp = bp.to_str().unwrap();
    let env = ballast_testbed::child_env();

    run_ok(
        controller_binary(),
        &["apply", bp, "--auto-approve", "--endpoint-url", &endpoint],
        &env,
    );
    let iam = aws_sdk_iam::Client::new(&setup);
    let controller_policy = generated_policy("controller");
    let key = user_with_only(
        &iam,
        "ballast-controller",
        &as_moto_enforces(&controller_policy),
    )
    .await;
    // Drift for the controller to find and repair under its own policy: the data key's policy
    // put back to AWS's default, without the statement that lets CloudWatch alarms notify the
    // encrypted on-call topic.
    let kms = aws_sdk_kms::Client::new(&setup);
    let key_id = kms
        .describe_key()
        .key_id("alias/banking-data")
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap()
        .key_id;
    let default_policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCOUNT}:root"}},"Action":"kms:*","Resource":"*"}}]}}"#
    );
    kms.put_key_policy()
        .key_id(&key_id)
        .policy_name("default")
        .policy(&default_policy)
        .send()
        .await
        .unwrap();
    moto.enforce_iam();

    // As the controller's IAM user: `args`' exit code is `code` and nothing was denied;
    // returns standard output.
    let controller = |args: &[&str], code: i32| {
        let mut argv = args.to_vec();
        argv.extend([bp, "--endpoint-url", &endpoint]);
        let output = run(controller_binary(), &argv, &key_env(&key));
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert_eq!(
            output.status.code(),
            Some(code),
            "ballast {args:?} as the controller's IAM user:\n{stdout}\n{stderr}"
        );
        assert_no_denials(&stderr, &format!("ballast {args:?}"));
        stdout
    };
    // `drift` reads the key policy (kms:GetKeyPolicy) and reports it; `apply` writes it back
    // (kms:PutKeyPolicy), both with nothing but the generated policy.
    let drift = controller(&["drift"], 2);
    assert!(
        drift.contains("kms-key/data") && drift.contains("policy"),
        "{drift}"
    );
    controller(&["apply", "--auto-approve"], 0);
    // Now in sync (`drift` exits 2 on any drift; `plan` does with --detailed-exitcode)…
    controller(&["plan", "--detailed-exitcode"], 0);
    controller(&["drift"], 0);
    // …and an apply of the stack in sync takes and releases the writer lease, changing nothing.
    controller(&["apply", "--auto-approve"], 0);

    let as_controller = moto.sdk_config_as(&key.0, &key.1).await;
    let sqs = aws_sdk_sqs::Client::new(&as_controller);
    let dynamodb = aws_sdk_dynamodb::Client::new(&as_controller);
    let iam_as_controller = aws_sdk_iam::Client::new(&as_controller);
    let queue_url = sqs
        .get_queue_url()
        .queue_name("banking-transactions")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    // The controller manages the queue but never reads or writes its messages…
    assert_denied(
        "sqs:ReceiveMessage",
        sqs.receive_message().queue_url(&queue_url).send().await,
    );
    assert_denied(
        "sqs:SendMessage",
        sqs.send_message()
            .queue_url(&queue_url)
            .message_body("{}")
            .send()
            .await,
    );
    // …nor reads the ledger…
    assert_denied(
        "dynamodb:Scan",
        dynamodb.scan().table_name("banking-accounts").send().await,
    );
    // …nor grants itself more.
    let escalation = iam_as_controller
        .create_user()
        .user_name("escalation")
        .send()
        .await;
    assert_denied("iam:CreateUser", escalation);
}
