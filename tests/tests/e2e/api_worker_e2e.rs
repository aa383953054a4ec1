//! The producer and consumer sides together: `ballast apply` provisions a stack on moto,
//! transactions posted to `ballast-worker serve` are processed by a running
//! `ballast-worker consume`, and their status becomes COMPLETED (or DECLINED) with balances to
//! match.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a failed test (clippy.toml covers only #[test] fns, not helpers)"
)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ballast_e2e::{CONTROLLER_BIN, WORKER_BIN, binary_path, moto, unique_name};
use serde_json::{Value, json};

const SECRET: &str = "an-e2e-test-secret-of-at-least-32-bytes!";

fn blueprint(name: &str) -> String {
    format!(
        r#"apiVersion: ballast.dev/v1
kind: Blueprint
metadata: {{ name: {name}, region: us-east-1 }}
spec:
  kmsKeys:
    - name: data
  queues:
    - name: transactions
      visibilityTimeout: 30s
      encryption: {{ type: kms, kmsKey: data }}
      deadLetter: {{ queue: transactions-dlq, maxReceiveCount: 3 }}
    - name: transactions-dlq
      encryption: {{ type: kms, kmsKey: data }}
  tables:
    - name: accounts
      hashKey: {{ name: pk, type: S }}
      rangeKey: {{ name: sk, type: S }}
    - name: transactions
      hashKey: {{ name: pk, type: S }}
      ttlAttribute: expires_at
"#
    )
}

/// A child process stopped with SIGTERM (and killed if the test fails first).
struct Process(Child);

impl Process {
    fn terminate(mut self) -> Option<i32> {
        let pid = self.0.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                return status.code();
            }
            assert!(Instant::now() < deadline, "process {pid} did not stop");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn command(bin: &str, endpoint: &str) -> Command {
    let mut command = Command::new(binary_path(bin));
    command
        .envs(ballast_testbed::child_env())
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("BALLAST_JWT_HS256_SECRET", SECRET);
    command
}

fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// One HTTP/1.1 exchange (Connection: close): status and JSON body.
fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> (u16, Value) {
    let body = body.map(Value::to_string).unwrap_or_default();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !body.is_empty() {
        request.push_str("Content-Type: application/json\r\n");
    }
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(&body);
    let mut stream = TcpStream::connect(addr).expect("API reachable");
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad response: {response}"));
    let json = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| serde_json::from_str(b).unwrap_or(Value::Null))
        .unwrap_or(Value::Null);
    (status, json)
}

fn ready(addr: SocketAddr) -> bool {
    TcpStream::connect(addr).is_ok_and(|mut s| {
        s.write_all(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .is_ok()
            && {
                let mut r = String::new();
                s.read_to_string(&mut r).is_ok() && r.starts_with("HTTP/1.1 200")
            }
    })
}

fn poll<T>(secs: u64, what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_posted_to_the_api_are_processed_by_the_worker() {
    let endpoint = moto().await.endpoint();
    let name = unique_name("e2e-api");
    let dir = std::env::temp_dir().join(&name);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("blueprint.yaml");
    std::fs::write(&file, blueprint(&name)).unwrap();
    let file = file.to_str().unwrap();

    let applied = command(CONTROLLER_BIN, &endpoint)
        .args(["apply", file, "--auto-approve"])
        .output()
        .unwrap();
    assert!(
        applied.status.success(),
        "{}",
        String::from_utf8_lossy(&applied.stderr)
    );

    let api = free_port();
    let server = Process(
        command(WORKER_BIN, &endpoint)
            .args(["serve", "--blueprint", file, "--listen", &api.to_string()])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let worker = Process(
        command(WORKER_BIN, &endpoint)
            .args([
                "consume",
                "--blueprint",
                file,
                "--no-fleet",
                "--no-cloudwatch",
            ])
            .args(["--metrics-addr", "127.0.0.1:0", "--wait-time-seconds", "1"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    poll(60, "the API to be ready", || ready(api).then_some(()));
    let token = command(WORKER_BIN, &endpoint)
        .args(["token", "--sub", "e2e", "--ttl", "1h"])
        .output()
        .unwrap();
    assert!(token.status.success());
    let token = String::from_utf8(token.stdout).unwrap().trim().to_string();

    let open = |kind: &str| {
        let (status, account) = http(
            api,
            "POST",
            "/v1/accounts",
            &token,
            &[],
            Some(&json!({"currency": "USD", "type": kind})),
        );
        assert_eq!(status, 201, "{account}");
        account["account_id"].as_str().unwrap().to_string()
    };
    let (a, b) = (open("checking"), open("savings"));

    let submit = |key: &str, body: Value| {
        let (status, answer) = http(
            api,
            "POST",
            "/v1/transactions",
            &token,
            &[("Idempotency-Key", key)],
            Some(&body),
        );
        assert_eq!(status, 202, "{answer}");
        answer["transaction_id"].as_str().unwrap().to_string()
    };
    let settled = |id: &str| {
        poll(90, &format!("a result for {id}"), || {
            let (status, tx) = http(
                api,
                "GET",
                &format!("/v1/transactions/{id}"),
                &token,
                &[],
                None,
            );
            assert_eq!(status, 200, "{tx}");
            (tx["status"] != "PENDING").then_some(tx)
        })
    };
    let balance = |id: &str| {
        let (status, account) = http(api, "GET", &format!("/v1/accounts/{id}"), &token, &[], None);
        assert_eq!(status, 200, "{account}");
        account["balance"].as_str().unwrap().to_string()
    };

    let deposit = submit(
        "dep-1",
        json!({"type": "DEPOSIT", "target_account": a, "amount": "100.00", "currency": "USD"}),
    );
    assert_eq!(settled(&deposit)["status"], "COMPLETED");
    let transfer_body = json!({"type": "TRANSFER", "source_account": a, "target_account": b, "amount": "40.50", "currency": "USD"});
    let transfer = submit("xfer-1", transfer_body.clone());
    let overdraft = submit(
        "xfer-2",
        json!({"type": "TRANSFER", "source_account": b, "target_account": a, "amount": "1000", "currency": "USD"}),
    );
    // A replay with the same key and body is the same transaction, not a second one.
    assert_eq!(submit("xfer-1", transfer_body), transfer);

    assert_eq!(settled(&transfer)["status"], "COMPLETED");
    let overdraft = settled(&overdraft);
    assert_eq!(overdraft["status"], "DECLINED", "{overdraft}");
    assert_eq!(balance(&a), "59.50");
    assert_eq!(balance(&b), "40.50");

    assert_eq!(worker.terminate(), Some(0));
    assert_eq!(server.terminate(), Some(0));
}
