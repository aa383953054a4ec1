//! OpenAPI conformance: schemathesis drives the real `ballast-worker serve` (on 127.0.0.1,
//! backed by moto) from the document the server publishes, for about a minute, and every
//! response must match the document: no server error, no undocumented status, body, header or
//! content type, and invalid input rejected with a 4xx.
//!
//! schemathesis is installed pinned into `.venv` by `scripts/setup-schemathesis.sh` (`make moto`
//! runs it); without it this test fails with that instruction, it is never skipped.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a failed test (clippy.toml covers only #[test] fns, not helpers)"
)]

use crate::common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ballast_worker::api::auth::ALL_SCOPES;
use ballast_worker::api::mint_hs256;

const SECRET: &str = "schemathesis-secret-schemathesis-secret";
/// The budget schemathesis gets; the run as a whole is bounded by [`HARD_LIMIT`].
const MAX_TIME_SECS: u64 = 60;
const HARD_LIMIT: Duration = Duration::from_secs(180);
const SCHEMATHESIS_MISSING: &str = "schemathesis not found in .venv: run `make moto` \
     (scripts/setup-schemathesis.sh installs the pinned version), or set BALLAST_SCHEMATHESIS";

/// Kills (and reaps) a child process when the test ends, however it ends.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn schemathesis() -> PathBuf {
    if let Some(path) = std::env::var_os("BALLAST_SCHEMATHESIS").filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    let path = ballast_testbed::workspace_root().join(".venv/bin/schemathesis");
    assert!(path.is_file(), "{SCHEMATHESIS_MISSING}");
    path
}

/// One plain HTTP/1.1 GET; the status code, or `None` while the server is not up.
fn get_status(port: u16, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_conforms_to_its_openapi_document() {
    let schemathesis = schemathesis();
    let moto = ballast_testbed::moto().await;
    let sdk = moto.sdk_config().await;
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let (accounts, transactions) = common::tables(&ddb).await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let queue_url = sqs
        .create_queue()
        .queue_name(ballast_testbed::unique_name("conformance"))
        .send()
        .await
        .expect("create queue")
        .queue_url
        .expect("queue url");

    let port = common::free_port();
    let server = Command::new(env!("CARGO_BIN_EXE_ballast-worker"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--queue-url",
            &queue_url,
            "--accounts-table-name",
            &accounts,
            "--transactions-table-name",
            &transactions,
            "--endpoint-url",
            &moto.endpoint(),
            // Rate limiting is tested elsewhere; here it would only hide the other answers.
            "--rate-limit",
            "0",
        ])
        .envs(ballast_testbed::child_env())
        .env("BALLAST_JWT_HS256_SECRET", SECRET)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("ballast-worker serve starts");
    let mut server = Reaped(server);

    let started = Instant::now();
    while get_status(port, "/healthz") != Some(200) {
        if let Ok(Some(status)) = server.0.try_wait() {
            panic!("ballast-worker serve exited with {status}");
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the server did not answer /healthz within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let token = mint_hs256(
        SECRET.as_bytes(),
        "schemathesis",
        ALL_SCOPES,
        Duration::from_secs(3600),
        None,
    )
    .expect("token");
    let scratch = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let report = scratch.join("schemathesis-junit.xml");
    // Files, not pipes: a pipe nobody reads would block a talkative run.
    let out_path = scratch.join("schemathesis.out");
    let err_path = scratch.join("schemathesis.err");
    let run = Command::new(&schemathesis)
        .args([
            "run",
            &format!("http://127.0.0.1:{port}/openapi.json"),
            "--header",
            &format!("Authorization: Bearer {token}"),
            "--checks",
            "all",
            // Valid-looking data can still be refused for what no schema can say (an account
            // that does not exist, an amount with too many decimals for its currency).
            // DELETE /v1/accounts/{id} closes an account; a bank keeps a closed account (and
            // its history) readable, so GET after DELETE answering 200 with status CLOSED is
            // the documented behaviour, not a resource left behind.
            "--exclude-checks",
            "positive_data_acceptance,use_after_free",
            "--max-time",
            &MAX_TIME_SECS.to_string(),
            "--max-examples",
            "40",
            "--workers",
            "1",
            "--request-timeout",
            "10",
            "--no-color",
            "--report",
            "junit",
            "--report-junit-path",
            &report.display().to_string(),
        ])
        .env("SCHEMATHESIS_TELEMETRY", "false")
        .env("SCHEMATHESIS_HOOKS", "")
        .stdout(std::fs::File::create(&out_path).expect("stdout file"))
        .stderr(std::fs::File::create(&err_path).expect("stderr file"))
        .spawn()
        .unwrap_or_else(|e| panic!("{SCHEMATHESIS_MISSING}: {e}"));
    let mut run = Reaped(run);
    let deadline = Instant::now() + HARD_LIMIT;
    let status = loop {
        if let Some(status) = run.0.try_wait().expect("schemathesis status") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "schemathesis ran past {HARD_LIMIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    assert!(
        status.success(),
        "schemathesis found non-conformances ({status}):\n{stdout}\n{stderr}"
    );
    assert!(
        server.0.try_wait().ok().flatten().is_none(),
        "the server died during the run:\n{stdout}"
    );
    // It really exercised the API: every operation of the document was tested.
    assert!(
        !stdout.contains("No operations") && stdout.contains("/v1/transactions"),
        "{stdout}"
    );
    println!("{stdout}");
}
