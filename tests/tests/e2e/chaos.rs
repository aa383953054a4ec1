//! Chaos: real `ballast-worker consume` processes behind the test bed's fault proxy.
//!
//! `chaos_money_is_conserved_and_the_dlq_holds_only_poison`: workers consume transactions
//! (with duplicates, invalid and poison messages) while the proxy injects AWS faults into a few
//! percent of the SQS and DynamoDB calls (5xx, throttling, answers dropped after the request
//! was applied, slow answers) and one worker is SIGKILLed and restarted every few seconds. It
//! asserts money conservation, one result per transaction id, nothing applied twice, and a DLQ
//! holding each poison message exactly once and nothing that was processed.
//!
//! Size and length come from the environment (`make chaos` runs the long version):
//! `BALLAST_CHAOS_MESSAGES` (default 300), `BALLAST_CHAOS_WORKERS` (2),
//! `BALLAST_CHAOS_KILL_EVERY_SECS` (10), `BALLAST_CHAOS_DEADLINE_SECS` (150),
//! `BALLAST_CHAOS_SEED` (the RNG seed of the faults and the messages; printed),
//! `BALLAST_CHAOS_DROP_RECEIVES` (default 1: also lose ReceiveMessage answers; 0 turns it
//! off). Lost receive answers let SQS's redrive move processable messages to the DLQ; the
//! workers' DLQ rescue pass (`consume --dlq-rescue-every`) settles them, so the assertions
//! are the same either way. The seed is printed at the start and in every assertion message.
//!
//! `breaker_opens_under_persistent_dynamodb_failure_and_recovers`: every DynamoDB call fails
//! for a while; the worker's circuit breaker must open (`/metrics`), stop receiving (the
//! proxy's ReceiveMessage count grows by probes only), and close again once DynamoDB answers.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a failed test (clippy.toml covers only #[test] fns, not helpers)"
)]

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use ballast_e2e::{WORKER_BIN, binary_path, moto};
use ballast_testbed::fixtures::{self, QueuePair};
use ballast_testbed::proxy::{ErrorKind, Fault, FaultProxy, Rule};
use ballast_worker::generate::{Mix, generate_messages, seed_accounts, send_messages};
use ballast_worker::ledger::{Direction, Ledger};
use ballast_worker::transaction::{AccountNumber, Currency, ParseError, parse_transaction};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rust_decimal::Decimal;
use time::OffsetDateTime;
use uuid::Uuid;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A stack on moto: queue with a redrive policy to its DLQ, two tables.
struct Stack {
    sqs: aws_sdk_sqs::Client,
    dynamodb: aws_sdk_dynamodb::Client,
    queue_url: String,
    dlq_url: String,
    accounts_table: String,
    transactions_table: String,
}

impl Stack {
    async fn create(visibility_secs: u32, max_receive_count: u32) -> Stack {
        let config = moto().await.sdk_config().await;
        let sqs = aws_sdk_sqs::Client::new(&config);
        let dynamodb = aws_sdk_dynamodb::Client::new(&config);
        let QueuePair {
            url: queue_url,
            dlq_url,
        } = fixtures::queue_with_dlq(&sqs, "chaos", visibility_secs, max_receive_count).await;
        let (accounts_table, transactions_table) =
            fixtures::ledger_tables(&dynamodb, "chaos").await;
        Stack {
            sqs,
            dynamodb,
            queue_url,
            dlq_url,
            accounts_table,
            transactions_table,
        }
    }

    fn ledger(&self) -> Ledger {
        Ledger::new(
            self.dynamodb.clone(),
            &self.accounts_table,
            &self.transactions_table,
        )
    }

    async fn depth(&self, url: &str) -> u64 {
        fixtures::queue_depth(&self.sqs, url).await
    }

    /// Every message of the DLQ (received with a long visibility timeout so none repeats).
    async fn drain_dlq(&self, expected: usize) -> Vec<aws_sdk_sqs::types::Message> {
        let mut seen = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = self
                .sqs
                .receive_message()
                .queue_url(&self.dlq_url)
                .max_number_of_messages(10)
                .visibility_timeout(600)
                .wait_time_seconds(if seen.len() >= expected { 1 } else { 2 })
                .send()
                .await
                .expect("receive dlq");
            let batch = out.messages.unwrap_or_default();
            if batch.is_empty() && (seen.len() >= expected || Instant::now() > deadline) {
                return seen;
            }
            seen.extend(batch);
        }
    }
}

/// A `ballast-worker consume` process; killed (SIGKILL) when dropped.
struct Worker {
    child: Child,
    metrics: SocketAddr,
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
}

fn log_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ballast-chaos-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("log dir");
    dir
}

fn spawn_worker(stack: &Stack, endpoint: &str, extra: &[&str], log_name: &str) -> Worker {
    let metrics = free_addr();
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_dir().join(log_name))
        .expect("worker log");
    let child = Command::new(binary_path(WORKER_BIN))
        .envs(ballast_testbed::child_env())
        .env("AWS_ENDPOINT_URL", endpoint)
        // The rescue's decisions (one line per DLQ message) and which transaction each
        // processed message carried (debug), so a lost id can be followed through the logs.
        .env(
            "RUST_LOG",
            "ballast_worker=warn,ballast_worker::consumer::rescue=info,\
             ballast_worker::consumer=debug,aws=warn",
        )
        .args(["consume", "--no-fleet", "--no-cloudwatch"])
        .args(["--queue-url", &stack.queue_url])
        .args(["--accounts-table-name", &stack.accounts_table])
        .args(["--transactions-table-name", &stack.transactions_table])
        .args(["--metrics-addr", &metrics.to_string()])
        .args(["--wait-time-seconds", "1"])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn ballast-worker");
    Worker { child, metrics }
}

/// One plain HTTP GET of `/metrics`; `None` while the worker is not listening yet.
fn scrape(addr: SocketAddr) -> Option<String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    text.starts_with("HTTP/1.1 200").then_some(text)
}

/// The value of the first sample of `metric` (any labels).
fn metric(text: &str, metric: &str) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find(|line| {
            line.split(['{', ' '])
                .next()
                .is_some_and(|name| name.ends_with(metric))
        })
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// What was sent for transaction `id`: its kind, idempotency key and how many copies.
fn describe_sent(id: Uuid, bodies: &[String]) -> String {
    let mut copies = 0usize;
    let mut what = String::from("not among the sent bodies");
    for body in bodies {
        match parse_transaction(body.as_bytes()) {
            Ok(tx) if tx.transaction_id == id => {
                copies += 1;
                what = format!(
                    "{:?}, idempotency key {}",
                    tx.kind,
                    tx.idempotency_key.as_str()
                );
            }
            Err(ParseError::Invalid {
                transaction_id,
                idempotency_key,
                error,
            }) if transaction_id == id => {
                copies += 1;
                what = format!(
                    "invalid ({}), idempotency key {:?}",
                    error.code(),
                    idempotency_key.as_ref().map(|k| k.as_str().to_owned())
                );
            }
            _ => {}
        }
    }
    format!("{id}: {what}, sent {copies} time(s)")
}

/// A poison message: no transaction id can be read from it.
fn poison_body(i: usize) -> String {
    match i % 4 {
        0 => format!("poison {i}: not json"),
        1 => format!("[{i}, \"an array\"]"),
        2 => format!("{{\"poison\": {i}}}"),
        _ => format!("{{\"transactionId\": \"not-a-uuid-{i}\""),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_money_is_conserved_and_the_dlq_holds_only_poison() {
    let messages: usize = env_or("BALLAST_CHAOS_MESSAGES", 300);
    let workers: usize = env_or("BALLAST_CHAOS_WORKERS", 2).max(1);
    let kill_every = Duration::from_secs(env_or("BALLAST_CHAOS_KILL_EVERY_SECS", 10));
    let deadline = Duration::from_secs(env_or("BALLAST_CHAOS_DEADLINE_SECS", 150));
    let seed: u64 = env_or("BALLAST_CHAOS_SEED", rand::random());
    println!("chaos: seed {seed}, {messages} messages, {workers} workers");
    // Every assertion message ends with this, so a CI failure can be replayed.
    let replay = format!("(replay with BALLAST_CHAOS_SEED={seed})");

    // A short visibility timeout, so killed workers' messages come back quickly.
    let stack = Stack::create(4, 5).await;
    let ledger = stack.ledger();
    let usd = Currency::from_code("USD").expect("USD");
    let accounts: Vec<AccountNumber> =
        seed_accounts(&ledger, 20, Decimal::new(100_000, 2), usd, &seed_owner())
            .await
            .expect("seed accounts");
    let mut rng = StdRng::seed_from_u64(seed);
    let mut bodies = generate_messages(
        &mut rng,
        &accounts,
        messages,
        Mix {
            duplicates: 0.1,
            invalid: 0.05,
            ..Mix::default()
        },
        usd,
    )
    .expect("generate");
    let poison: Vec<String> = (0..(messages / 20).max(4)).map(poison_body).collect();
    for (i, body) in poison.iter().enumerate() {
        let at = (i * 7919) % bodies.len();
        bodies.insert(at, body.clone());
    }
    // The transaction ids the ledger must settle, each exactly once.
    let mut ids: HashSet<Uuid> = HashSet::new();
    for body in &bodies {
        match parse_transaction(body.as_bytes()) {
            Ok(tx) => {
                ids.insert(tx.transaction_id);
            }
            Err(ParseError::Invalid { transaction_id, .. }) => {
                ids.insert(transaction_id);
            }
            Err(ParseError::Malformed(_)) => {}
        }
    }
    let sent = send_messages(&stack.sqs, &stack.queue_url, &bodies, 100_000.0)
        .await
        .expect("send");
    // A body SQS refused would otherwise look like a message lost later.
    assert_eq!(sent, bodies.len(), "not every message was sent {replay}");

    let proxy = FaultProxy::start(&moto().await.endpoint(), seed)
        .await
        .expect("proxy");
    let rules = [
        Rule::new(Fault::Error(ErrorKind::InternalServerError))
            .service("dynamodb")
            .probability(0.02),
        Rule::new(Fault::Error(ErrorKind::ProvisionedThroughputExceeded))
            .service("dynamodb")
            .probability(0.015),
        Rule::new(Fault::DropResponse)
            .service("dynamodb")
            .probability(0.015),
        Rule::new(Fault::Latency(Duration::from_millis(300)))
            .service("dynamodb")
            .probability(0.02),
        Rule::new(Fault::Error(ErrorKind::InternalServerError))
            .service("sqs")
            .probability(0.02),
        Rule::new(Fault::Error(ErrorKind::Throttling))
            .service("sqs")
            .probability(0.01),
        Rule::new(Fault::Error(ErrorKind::ServiceUnavailable))
            .service("sqs")
            .probability(0.01),
        // Answers lost after SQS applied the request: deletes and visibility changes (and,
        // below, receives).
        Rule::new(Fault::DropResponse)
            .service("sqs")
            .operation("DeleteMessageBatch")
            .probability(0.03),
        Rule::new(Fault::DropResponse)
            .service("sqs")
            .operation("DeleteMessage")
            .probability(0.03),
        Rule::new(Fault::DropResponse)
            .service("sqs")
            .operation("ChangeMessageVisibility")
            .probability(0.03),
        Rule::new(Fault::Latency(Duration::from_millis(300)))
            .service("sqs")
            .probability(0.02),
    ];
    // A lost ReceiveMessage answer burns a receive of up to ten messages the worker never
    // sees; after maxReceiveCount such losses SQS's redrive moves even a settled message to
    // the DLQ. The workers' rescue pass must settle those (docs/dead-letters.md).
    let drop_receives = env_or("BALLAST_CHAOS_DROP_RECEIVES", 1u8) == 1;
    let receive_drops = drop_receives.then(|| {
        Rule::new(Fault::DropResponse)
            .service("sqs")
            .operation("ReceiveMessage")
            .probability(0.015)
    });
    for rule in rules.into_iter().chain(receive_drops) {
        proxy.add(rule);
    }

    let endpoint = proxy.endpoint();
    // The rescue pass every 2 s, poison held only 1 s, so the DLQ settles inside the test.
    let extra = [
        "--concurrency",
        "8",
        "--dlq-rescue-every",
        "2s",
        "--dlq-poison-hold",
        "1s",
    ];
    let mut fleet: Vec<Worker> = (0..workers)
        .map(|i| spawn_worker(&stack, &endpoint, &extra, &format!("worker-{i}.log")))
        .collect();
    let started = Instant::now();
    let mut next_kill = started + kill_every;
    let mut kills = 0usize;
    let mut victim = 0usize;
    loop {
        // Drained: nothing on the queue, and the DLQ down to the poison messages (the
        // rescue pass settled whatever lost receives made SQS move there).
        let pending = stack.depth(&stack.queue_url).await;
        let dead = stack.depth(&stack.dlq_url).await;
        if pending == 0 && dead <= poison.len() as u64 {
            break;
        }
        assert!(
            started.elapsed() < deadline,
            "{pending} messages still on the queue and {dead} in the DLQ ({} poison) after \
             {deadline:?} (logs in {}) {replay}",
            poison.len(),
            log_dir().display()
        );
        if Instant::now() >= next_kill {
            // SIGKILL: no drain, no flush of pending deletes.
            let worker = &mut fleet[victim % workers];
            worker.child.kill().expect("SIGKILL");
            worker.child.wait().expect("reap");
            *worker = spawn_worker(
                &stack,
                &endpoint,
                &extra,
                &format!("worker-{}.log", victim % workers),
            );
            kills += 1;
            victim += 1;
            next_kill = Instant::now() + kill_every;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let elapsed = started.elapsed();
    drop(fleet);
    let counts = proxy.request_counts();
    let requests: u64 = counts.values().sum();
    let injected = proxy.injected_by_fault();
    proxy.clear();
    println!(
        "chaos: drained in {:.1}s, {kills} SIGKILLs, {requests} AWS requests, injected {injected:?}",
        elapsed.as_secs_f64()
    );
    assert!(proxy.injected_total() > 0, "no fault was injected {replay}");

    // Money: every balance explained by opening balances, deposits and withdrawals.
    let report = ballast_worker::report::report(
        &stack.dynamodb,
        &stack.accounts_table,
        &stack.transactions_table,
    )
    .await
    .expect("report");
    assert!(
        report.money_conserved(),
        "money not conserved: {report:?} {replay}"
    );
    // One terminal result per transaction id. On a shortfall, name the ids without a result
    // first (with what was sent for them), so they can be followed through the workers' logs.
    let mut missing = Vec::new();
    for id in &ids {
        if ledger.get_result(*id).await.expect("get result").is_none() {
            missing.push(*id);
        }
    }
    if !missing.is_empty() {
        println!(
            "chaos: {} of {} transaction ids have no result (logs in {}) {replay}:",
            missing.len(),
            ids.len(),
            log_dir().display()
        );
        for id in &missing {
            println!("  {}", describe_sent(*id, &bodies));
        }
    }
    let results: u64 = report.results.values().sum();
    assert_eq!(
        results,
        ids.len() as u64,
        "results {:?} for {} transaction ids {replay}",
        report.results,
        ids.len()
    );
    assert!(missing.is_empty(), "no result for {missing:?} {replay}");
    // Nothing applied twice: at most one debit and one credit per transaction, and the
    // entries of every account add up to its balance.
    let mut posted: HashMap<(Uuid, bool), u32> = HashMap::new();
    for account in &accounts {
        let mut cursor = None;
        let mut sum = Decimal::ZERO;
        loop {
            let page = ledger
                .history(
                    account,
                    OffsetDateTime::UNIX_EPOCH,
                    OffsetDateTime::now_utc() + time::Duration::hours(1),
                    1000,
                    cursor.as_deref(),
                )
                .await
                .expect("history");
            for entry in &page.entries {
                let debit = entry.direction == Direction::Debit;
                *posted.entry((entry.transaction_id, debit)).or_default() += 1;
                sum += if debit { -entry.amount } else { entry.amount };
            }
            cursor = page.next_cursor;
            if cursor.is_none() {
                break;
            }
        }
        let balance = ledger
            .get_account(account)
            .await
            .expect("account")
            .expect("exists")
            .balance;
        assert_eq!(sum, balance, "entries of {account} do not add up {replay}");
    }
    for ((id, debit), n) in &posted {
        assert_eq!(
            *n,
            1,
            "{id} posted {n} {} entries {replay}",
            if *debit { "debit" } else { "credit" }
        );
    }

    // The DLQ: each poison message exactly once (moved by the redrive, reason recorded),
    // nothing that was processed.
    let dlq = stack.drain_dlq(poison.len()).await;
    let mut dlq_bodies: HashMap<String, usize> = HashMap::new();
    for message in &dlq {
        let body = message.body().unwrap_or_default().to_owned();
        assert!(
            matches!(
                parse_transaction(body.as_bytes()),
                Err(ParseError::Malformed(_))
            ),
            "a processable message is in the DLQ: {body} {replay}"
        );
        let record = stack
            .dynamodb
            .get_item()
            .table_name(&stack.transactions_table)
            .key(
                "pk",
                AttributeValue::S(format!(
                    "POISON#{}",
                    message.message_id().unwrap_or_default()
                )),
            )
            .send()
            .await
            .expect("poison record")
            .item;
        assert!(
            record.is_some_and(|item| item.contains_key("reason_code")),
            "no poison record for DLQ message {:?} {replay}",
            message.message_id()
        );
        *dlq_bodies.entry(body).or_default() += 1;
    }
    let copies: Vec<_> = dlq_bodies.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        copies.is_empty(),
        "dead-lettered more than once: {copies:?} {replay}"
    );
    let expected: HashSet<String> = poison.iter().cloned().collect();
    let found: HashSet<String> = dlq_bodies.keys().cloned().collect();
    assert_eq!(
        found, expected,
        "the DLQ must hold exactly the poison messages {replay}"
    );
    println!(
        "chaos: {} results {:?}, {} DLQ entries, {} ledger entries",
        results,
        report.results,
        dlq.len(),
        posted.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn breaker_opens_under_persistent_dynamodb_failure_and_recovers() {
    let stack = Stack::create(10, 50).await;
    let ledger = stack.ledger();
    let usd = Currency::from_code("USD").expect("USD");
    let accounts = seed_accounts(&ledger, 5, Decimal::new(100_000, 2), usd, &seed_owner())
        .await
        .expect("seed");
    let mut rng = StdRng::seed_from_u64(1);
    let bodies = generate_messages(
        &mut rng,
        &accounts,
        60,
        Mix {
            duplicates: 0.0,
            invalid: 0.0,
            ..Mix::default()
        },
        usd,
    )
    .expect("generate");
    let ids: Vec<Uuid> = bodies
        .iter()
        .filter_map(|b| parse_transaction(b.as_bytes()).ok())
        .map(|tx| tx.transaction_id)
        .collect();

    let proxy = FaultProxy::start(&moto().await.endpoint(), 1)
        .await
        .expect("proxy");
    let cooldown = Duration::from_secs(3);
    let outage =
        proxy.add(Rule::new(Fault::Error(ErrorKind::InternalServerError)).service("dynamodb"));
    let worker = spawn_worker(
        &stack,
        &proxy.endpoint(),
        &[
            "--concurrency",
            "4",
            "--breaker-threshold",
            "3",
            "--breaker-cooldown",
            "3s",
        ],
        "breaker.log",
    );
    send_messages(&stack.sqs, &stack.queue_url, &bodies, 100_000.0)
        .await
        .expect("send");

    // The breaker opens.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let state = scrape(worker.metrics).and_then(|m| metric(&m, "breaker_state"));
        if state == Some(1.0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "breaker never opened ({state:?})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // While it is open (DynamoDB still failing), receiving is paused: over four cooldowns
    // ReceiveMessage is called about once per cooldown (the half-open probe), where a closed
    // consumer long-polling for 1 s calls it several times a second.
    let opened = Instant::now();
    let receives_at_open = proxy.requests("sqs", "ReceiveMessage");
    let window = cooldown * 4;
    let mut open_samples = 0;
    while opened.elapsed() < window {
        if scrape(worker.metrics).and_then(|m| metric(&m, "breaker_state")) != Some(0.0) {
            open_samples += 1;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let receives_while_open = proxy.requests("sqs", "ReceiveMessage") - receives_at_open;
    println!(
        "breaker: {receives_while_open} ReceiveMessage calls in {window:?} open, {} DynamoDB faults",
        proxy.injected(outage)
    );
    assert!(open_samples > 0);
    assert!(
        receives_while_open <= 4 + 2,
        "{receives_while_open} receives while the breaker was open"
    );

    // DynamoDB recovers: everything is processed and the breaker closes.
    proxy.remove(outage);
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let pending = stack.depth(&stack.queue_url).await;
        let state = scrape(worker.metrics).and_then(|m| metric(&m, "breaker_state"));
        if pending == 0 && state == Some(0.0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no recovery: {pending} messages pending, breaker {state:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for id in ids {
        assert!(
            ledger.get_result(id).await.expect("get").is_some(),
            "{id} not processed"
        );
    }
    assert_eq!(
        stack.depth(&stack.dlq_url).await,
        0,
        "nothing dead-lettered"
    );
    drop(worker);
}

/// The owner of the seeded accounts: the chaos producers are trusted (no principal on their
/// messages), as `ballast-worker send` is.
fn seed_owner() -> ballast_worker::transaction::Subject {
    ballast_worker::transaction::Subject::parse("ballast-seed").unwrap()
}
