//! The shortened demo, end to end against one moto: `ballast apply` a banking blueprint with
//! short scaling timings, seed accounts, run the controller (`ballast run`) and a local fleet
//! (`ballast fleet local`: one `ballast-worker consume` per InService instance), enqueue a
//! burst of transactions, and check that the fleet scaled out and back in, that every
//! transaction reached exactly one result, and that money was conserved.
//!
//! The binaries come from the test's own target directory (`cargo test --workspace` builds
//! them; with `-p ballast-e2e` run `cargo build --workspace --bins` first). Their logs go to
//! files in the test's temporary directory, named in every failure message (kept after a pass
//! when `BALLAST_E2E_KEEP` is set).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a failed test (clippy.toml covers only #[test] fns, not helpers)"
)]
#![cfg(target_os = "linux")]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sqs::types::QueueAttributeName;
use ballast_e2e::{controller_binary, moto, unique_name, worker_binary};
use ballast_worker::generate::{Mix, generate_messages, send_messages};
use ballast_worker::ledger::{
    Account, Direction, LedgerEntry, META, OPENING_BALANCE, ResultStatus, TransactionResult,
};
use ballast_worker::transaction::{AccountNumber, Currency, TransactionType, parse_transaction};
use rust_decimal::Decimal;
use uuid::Uuid;

const ACCOUNTS: usize = 20;
const OPENING_BALANCE_TEXT: &str = "1000.00";
const MESSAGES: usize = 200;
const MIN_SIZE: i32 = 1;
const MAX_SIZE: i32 = 4;
/// Passed through to every worker: a short idle time before scale-in protection is cleared (the
/// scale-in below comes seconds after the queue empties, and moto never terminates a protected
/// instance later: it skips protected instances when the desired capacity drops, and does not
/// come back to them), short long polls (a worker stopped during one leaves it pending in moto),
/// and little concurrency, so that the visible backlog the autoscaler reads is the real one.
const WORKER_ARGS: [&str; 6] = [
    "--concurrency",
    "2",
    "--idle-debounce",
    "1s",
    "--wait-time-seconds",
    "2",
];

fn blueprint_text(name: &str) -> String {
    format!(
        r#"apiVersion: ballast.dev/v1
kind: Blueprint
metadata: {{ name: {name}, region: us-east-1 }}
spec:
  kmsKeys:
    - name: data
      deletionWindow: 7d
      deletionPolicy: delete
  queues:
    - name: transactions
      visibilityTimeout: 20s
      receiveWaitTime: 2s
      encryption: {{ type: kms, kmsKey: data }}
      deadLetter: {{ queue: transactions-dlq, maxReceiveCount: 10 }}
      deletionPolicy: delete
    - name: transactions-dlq
      encryption: {{ type: kms, kmsKey: data }}
      deletionPolicy: delete
  tables:
    - name: accounts
      hashKey: {{ name: pk, type: S }}
      rangeKey: {{ name: sk, type: S }}
      billingMode: payPerRequest
      encryption: {{ type: kms, kmsKey: data }}
      deletionPolicy: delete
    - name: transactions
      hashKey: {{ name: pk, type: S }}
      billingMode: payPerRequest
      encryption: {{ type: kms, kmsKey: data }}
      ttlAttribute: expires_at
      deletionPolicy: delete
  network:
    vpc:
      name: main
      cidr: 10.20.0.0/16
      subnets:
        - {{ name: private-a, cidr: 10.20.1.0/24, availabilityZone: us-east-1a }}
  launchTemplates:
    - name: worker
      imageId: ami-0abcdef1234567890
      instanceTypes: [m6i.large]
      rootVolumeSize: 20
  autoScalingGroups:
    - name: workers
      launchTemplate: worker
      subnets: [private-a]
      minSize: {MIN_SIZE}
      maxSize: {MAX_SIZE}
      lifecycleHooks:
        - {{ name: drain, transition: terminating, heartbeatTimeout: 30s }}
  scalingPolicies:
    - name: backlog
      queue: transactions
      fleet: workers
      targetBacklogPerInstance: 20
      scaleInCooldown: 5s
      stabilizationWindow: 10s
      evaluationInterval: 1s
"#
    )
}

/// Where everything of this test lives: the blueprint, the logs, the AWS clients.
struct Stack {
    name: String,
    dir: PathBuf,
    file: PathBuf,
    endpoint: String,
    asg: aws_sdk_autoscaling::Client,
    sqs: aws_sdk_sqs::Client,
    dynamodb: aws_sdk_dynamodb::Client,
}

impl Stack {
    fn command(&self, program: PathBuf) -> Command {
        let mut command = Command::new(program);
        command
            .envs(ballast_testbed::child_env())
            .env_remove("AWS_ENDPOINT_URL")
            .env_remove("AWS_PROFILE")
            .env_remove("RUST_LOG")
            .env_remove("BALLAST_LOG")
            .stdin(Stdio::null());
        command
    }

    fn log(&self, name: &str) -> (PathBuf, File) {
        let path = self.dir.join(format!("{name}.log"));
        let file = File::create(&path).unwrap();
        (path, file)
    }

    /// Runs a command to completion; panics with its output when it fails. Returns stdout.
    fn run(&self, program: PathBuf, args: &[&str]) -> String {
        let output = self
            .command(program.clone())
            .args(args)
            .output()
            .expect("the command runs");
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

    fn queue_name(&self) -> String {
        format!("{}-transactions", self.name)
    }

    fn group_name(&self) -> String {
        format!("{}-workers", self.name)
    }

    async fn queue_url(&self) -> String {
        self.sqs
            .get_queue_url()
            .queue_name(self.queue_name())
            .send()
            .await
            .unwrap()
            .queue_url
            .unwrap()
    }

    /// Visible + in flight + delayed.
    async fn queue_depth(&self, url: &str) -> u64 {
        let out = self
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
            .send()
            .await
            .unwrap();
        out.attributes
            .unwrap_or_default()
            .values()
            .map(|v| v.parse::<u64>().unwrap())
            .sum()
    }

    async fn group(&self) -> Group {
        let group = self
            .asg
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(self.group_name())
            .send()
            .await
            .unwrap()
            .auto_scaling_groups
            .unwrap_or_default()
            .into_iter()
            .next()
            .expect("the group exists");
        let instances = group.instances();
        Group {
            desired: group.desired_capacity.unwrap_or_default(),
            in_service: instances
                .iter()
                .filter(|i| {
                    i.lifecycle_state()
                        == Some(&aws_sdk_autoscaling::types::LifecycleState::InService)
                })
                .filter_map(|i| i.instance_id().map(str::to_owned))
                .collect(),
            protected: instances
                .iter()
                .filter(|i| i.protected_from_scale_in() == Some(true))
                .filter_map(|i| i.instance_id().map(str::to_owned))
                .collect(),
        }
    }

    async fn scan(&self, table: &str) -> Vec<HashMap<String, AttributeValue>> {
        self.dynamodb
            .scan()
            .table_name(format!("{}-{table}", self.name))
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .unwrap()
    }

    /// Every `TXN#` result except the opening balances, by transaction id.
    async fn results(&self) -> BTreeMap<Uuid, TransactionResult> {
        self.scan("transactions")
            .await
            .iter()
            .filter(|item| {
                item.get("pk")
                    .and_then(|v| v.as_s().ok())
                    .is_some_and(|pk| pk.starts_with("TXN#"))
            })
            .map(|item| TransactionResult::from_item(item).unwrap())
            .filter(|r| r.kind.as_deref() != Some(OPENING_BALANCE))
            .map(|r| (r.transaction_id, r))
            .collect()
    }

    /// The workers of this test's blueprint: `ballast-worker consume --blueprint <file>`
    /// processes, found in /proc.
    fn worker_pids(&self) -> Vec<u32> {
        let file = self.file.to_string_lossy().into_owned();
        let mut pids = Vec::new();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
                continue;
            };
            let args: Vec<String> = cmdline
                .split(|b| *b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            if args.iter().any(|a| a == "consume") && args.contains(&file) {
                pids.push(pid);
            }
        }
        pids
    }
}

struct Group {
    desired: i32,
    in_service: BTreeSet<String>,
    protected: BTreeSet<String>,
}

impl std::fmt::Debug for Group {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "group: desired {}, InService {:?}, protected from scale-in {:?}",
            self.desired, self.in_service, self.protected
        )
    }
}

/// A long-running binary; SIGTERMed (then killed) if the test fails before stopping it.
struct Daemon {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Daemon {
    fn sigterm(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -TERM {}", self.child.id());
    }

    /// SIGTERM, then the exit status (within `limit`).
    async fn terminate(mut self, limit: Duration) -> ExitStatus {
        self.sigterm();
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit within {limit:?} of SIGTERM; log: {}",
                self.name,
                self.log.display()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.sigterm();
            let deadline = Instant::now() + Duration::from_secs(10);
            while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Kills any worker left behind when the test fails.
struct WorkerReaper<'a>(&'a Stack);

impl Drop for WorkerReaper<'_> {
    fn drop(&mut self) {
        for pid in self.0.worker_pids() {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }
}

/// Polls `probe` every 200 ms until it returns `Ok`; panics after `limit` with the last state.
async fn eventually<T>(
    limit: Duration,
    what: &str,
    mut probe: impl AsyncFnMut() -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + limit;
    loop {
        match probe().await {
            Ok(value) => return value,
            Err(state) if Instant::now() >= deadline => {
                panic!("timed out after {limit:?} waiting for {what}; last state: {state}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// What a sent message must lead to.
#[derive(Debug)]
struct Sent {
    /// `None`: an invalid message, which must be REJECTED.
    kind: Option<TransactionType>,
    amount: Option<Decimal>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleet_scales_out_and_in_every_transaction_has_a_result_and_money_is_conserved() {
    let started = Instant::now();
    let server = moto().await;
    let sdk = server.sdk_config().await;
    let name = unique_name("fleet");
    let dir = std::env::temp_dir().join(&name);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("blueprint.yaml");
    std::fs::write(&file, blueprint_text(&name)).unwrap();
    let stack = Stack {
        name,
        dir,
        file,
        endpoint: server.endpoint(),
        asg: aws_sdk_autoscaling::Client::new(&sdk),
        sqs: aws_sdk_sqs::Client::new(&sdk),
        dynamodb: aws_sdk_dynamodb::Client::new(&sdk),
    };
    let bp = stack.file.to_str().unwrap();
    let endpoint = stack.endpoint.as_str();
    let _reaper = WorkerReaper(&stack);

    // Provision, then open the accounts.
    stack.run(
        controller_binary(),
        &["apply", bp, "--auto-approve", "--endpoint-url", endpoint],
    );
    let seeded = stack.run(
        worker_binary(),
        &[
            "seed-accounts",
            "--blueprint",
            bp,
            "--count",
            &ACCOUNTS.to_string(),
            "--balance",
            OPENING_BALANCE_TEXT,
            "--endpoint-url",
            endpoint,
        ],
    );
    let accounts: Vec<AccountNumber> = seeded
        .lines()
        .map(|l| AccountNumber::parse(l.trim()).unwrap())
        .collect();
    assert_eq!(accounts.len(), ACCOUNTS);

    // The controller and the local fleet.
    let (controller_log, log) = stack.log("controller");
    let controller = Daemon {
        name: "ballast run",
        child: stack
            .command(controller_binary())
            .args(["run", bp, "--endpoint-url", endpoint])
            .args(["--resync", "5s", "--scale-interval", "1s"])
            .args(["--metrics-addr", "127.0.0.1:0"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
        log: controller_log.clone(),
    };
    let (fleet_log, log) = stack.log("fleet");
    let mut fleet = Daemon {
        name: "ballast fleet local",
        child: stack
            .command(controller_binary())
            .args([
                "fleet",
                "local",
                "--blueprint",
                bp,
                "--endpoint-url",
                endpoint,
            ])
            .arg("--")
            .args(WORKER_ARGS)
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap(),
        log: fleet_log.clone(),
    };
    let status_lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let stdout = fleet.child.stdout.take().unwrap();
    let reader = {
        let lines = status_lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        })
    };
    let last_line = || status_lines.lock().unwrap().last().cloned();
    let logs = format!(
        "logs: {} and {}",
        controller_log.display(),
        fleet_log.display()
    );

    eventually(Duration::from_secs(20), "the first worker", async || {
        let group = stack.group().await;
        let pids = stack.worker_pids();
        match (last_line(), group.in_service.len(), pids.len()) {
            (Some(line), 1, 1) if line.starts_with("fleet: 1 worker (i-") => Ok(()),
            state => Err(format!("{state:?}, {logs}")),
        }
    })
    .await;

    // The burst, generated here so that every transaction id is known.
    let usd = Currency::from_code("USD").unwrap();
    let mix = Mix {
        duplicates: 0.05,
        invalid: 0.05,
        ..Mix::default()
    };
    let bodies = generate_messages(&mut rand::rng(), &accounts, MESSAGES, mix, usd).unwrap();
    let mut sent: BTreeMap<Uuid, Sent> = BTreeMap::new();
    for body in &bodies {
        let id = serde_json::from_str::<serde_json::Value>(body).unwrap()["transaction_id"]
            .as_str()
            .and_then(|id| Uuid::parse_str(id).ok())
            .expect("every generated message has a transaction id");
        let expected = match parse_transaction(body.as_bytes()) {
            Ok(tx) => Sent {
                kind: Some(tx.kind),
                amount: tx.amount,
            },
            Err(_) => Sent {
                kind: None,
                amount: None,
            },
        };
        sent.insert(id, expected);
    }
    let queue_url = stack.queue_url().await;
    let accepted = send_messages(&stack.sqs, &queue_url, &bodies, 1000.0)
        .await
        .unwrap();
    assert_eq!(accepted, MESSAGES);
    let sent_at = Instant::now();

    // Scale-out: the controller raises the desired capacity, moto launches instances, the fleet
    // starts a worker for each.
    let peak = eventually(Duration::from_secs(20), "the scale-out", async || {
        let group = stack.group().await;
        if group.desired > MIN_SIZE {
            Ok(group.desired)
        } else {
            Err(format!("{group:?}, {logs}"))
        }
    })
    .await;
    let scaled_out_after = sent_at.elapsed();

    // Every transaction reaches a result, and the queue empties.
    let results = eventually(Duration::from_secs(60), "every result", async || {
        let results = stack.results().await;
        let missing = sent.keys().filter(|id| !results.contains_key(id)).count();
        let depth = stack.queue_depth(&queue_url).await;
        if missing == 0 && depth == 0 {
            Ok(results)
        } else {
            Err(format!(
                "{missing} of {} transactions without a result, {depth} messages in the queue, {logs}",
                sent.len()
            ))
        }
    })
    .await;
    let processed_after = sent_at.elapsed();

    // Scale-in: back to the minimum; the fleet stopped the workers of the removed instances.
    let remaining = eventually(Duration::from_secs(40), "the scale-in", async || {
        let group = stack.group().await;
        let pids = stack.worker_pids();
        let line = last_line();
        match &group.in_service.iter().collect::<Vec<_>>()[..] {
            [only]
                if group.desired == MIN_SIZE
                    && pids.len() == 1
                    && line.as_deref() == Some(format!("fleet: 1 worker ({only})").as_str()) =>
            {
                Ok((*only).clone())
            }
            _ => Err(format!(
                "{group:?}, worker pids {pids:?}, status {line:?}, {logs}"
            )),
        }
    })
    .await;
    let scaled_in_after = sent_at.elapsed();

    let lines = status_lines.lock().unwrap().clone();
    let most_workers = lines
        .iter()
        .filter_map(|l| {
            l.strip_prefix("fleet: ")?
                .split(' ')
                .next()?
                .parse::<usize>()
                .ok()
        })
        .max()
        .unwrap_or(0);
    assert!(
        most_workers > 1,
        "the fleet ran more than one worker at the peak: {lines:#?}"
    );
    assert!(peak > MIN_SIZE && peak <= MAX_SIZE);

    // Exactly one result per transaction (results are keyed by transaction id), no result for
    // anything that was not sent, and the right kind of result.
    let unexpected: Vec<&Uuid> = results.keys().filter(|id| !sent.contains_key(id)).collect();
    assert!(
        unexpected.is_empty(),
        "results for unsent transactions: {unexpected:?}"
    );
    let mut by_status: BTreeMap<&str, usize> = BTreeMap::new();
    let mut external = Decimal::ZERO;
    for (id, expected) in &sent {
        let result = &results[id];
        *by_status.entry(result.status.as_str()).or_default() += 1;
        match expected.kind {
            None => assert_eq!(result.status, ResultStatus::Rejected, "{id}: {result:?}"),
            Some(kind) => {
                assert!(
                    matches!(
                        result.status,
                        ResultStatus::Completed | ResultStatus::Declined
                    ),
                    "{id}: {result:?}"
                );
                if result.status == ResultStatus::Completed {
                    let amount = expected.amount.unwrap_or_default();
                    match kind {
                        TransactionType::Deposit => external += amount,
                        TransactionType::Withdrawal => external -= amount,
                        _ => {}
                    }
                }
            }
        }
    }

    // Money is conserved: the balances add up to the opening balances plus the completed
    // deposits minus the completed withdrawals (transfers and payments move money between
    // accounts), and every balance equals its account's ledger entries.
    let items = stack.scan("accounts").await;
    let balances: Vec<Account> = items
        .iter()
        .filter(|i| i.get("sk").and_then(|v| v.as_s().ok()).map(String::as_str) == Some(META))
        .map(|i| Account::from_item(i).unwrap())
        .collect();
    assert_eq!(balances.len(), ACCOUNTS);
    let opening: Decimal = OPENING_BALANCE_TEXT.parse().unwrap();
    let total: Decimal = balances.iter().map(|a| a.balance).sum();
    assert_eq!(
        total,
        opening * Decimal::from(ACCOUNTS) + external,
        "money was not conserved"
    );
    let entries: Vec<LedgerEntry> = items
        .iter()
        .filter(|i| {
            i.get("sk")
                .and_then(|v| v.as_s().ok())
                .is_some_and(|sk| sk.starts_with("ENTRY#"))
        })
        .map(|i| LedgerEntry::from_item(i).unwrap())
        .collect();
    for account in &balances {
        let sum: Decimal = entries
            .iter()
            .filter(|e| e.account_id == account.account_id)
            .map(|e| match e.direction {
                Direction::Credit => e.amount,
                Direction::Debit => -e.amount,
            })
            .sum();
        assert_eq!(
            sum, account.balance,
            "{} vs its entries",
            account.account_id
        );
    }
    // Applied exactly once: two entries per completed transfer or payment, one per completed
    // deposit or withdrawal, none otherwise.
    let mut entry_count: HashMap<Uuid, usize> = HashMap::new();
    for entry in entries.iter().filter(|e| e.kind != OPENING_BALANCE) {
        *entry_count.entry(entry.transaction_id).or_default() += 1;
    }
    for (id, expected) in &sent {
        let want = match (results[id].status, expected.kind) {
            (
                ResultStatus::Completed,
                Some(TransactionType::Transfer | TransactionType::Payment),
            ) => 2,
            (
                ResultStatus::Completed,
                Some(TransactionType::Deposit | TransactionType::Withdrawal),
            ) => 1,
            _ => 0,
        };
        assert_eq!(
            entry_count.get(id).copied().unwrap_or(0),
            want,
            "{id} ({expected:?}, {:?})",
            results[id].status
        );
    }

    // Stop both; the fleet drains its last worker and leaves nothing behind.
    let status = controller.terminate(Duration::from_secs(30)).await;
    assert!(status.success(), "ballast run exited with {status}; {logs}");
    let status = fleet.terminate(Duration::from_secs(60)).await;
    assert!(
        status.success(),
        "ballast fleet local exited with {status}; {logs}"
    );
    reader.join().unwrap();
    assert_eq!(stack.worker_pids(), Vec::<u32>::new(), "no worker left");
    assert_eq!(last_line().as_deref(), Some("fleet: 0 workers"));

    eprintln!(
        "fleet e2e: {} transactions ({by_status:?}), scaled out to {peak} after {:.1}s, all \
         processed after {:.1}s, back to {MIN_SIZE} ({remaining}) after {:.1}s; total {:.1}s",
        sent.len(),
        scaled_out_after.as_secs_f64(),
        processed_after.as_secs_f64(),
        scaled_in_after.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    if std::env::var_os("BALLAST_E2E_KEEP").is_none() {
        std::fs::remove_dir_all(&stack.dir).ok();
    }
}
