//! A `ballast run` process for the tests that run the long-lived controller (`service_run`,
//! `pause`): started against the test bed's moto, read through its HTTP endpoint, stopped with
//! SIGTERM, killed if a test fails first.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a failed test (clippy.toml covers only #[test] fns, not helpers)"
)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ballast_testbed::moto;

/// A running `ballast run`, killed if the test fails before stopping it.
pub struct Controller {
    child: Child,
    addr: SocketAddr,
}

impl Controller {
    /// `ballast run FILE` with a 1 s resync and a 3 s lease, plus `extra` arguments.
    pub async fn start(file: &Path, extra: &[&str]) -> Self {
        let addr = free_port();
        let endpoint = moto().await.endpoint();
        let child = Command::new(env!("CARGO_BIN_EXE_ballast"))
            .arg("run")
            .arg(file)
            .args(["--endpoint-url", &endpoint])
            .args(["--metrics-addr", &addr.to_string()])
            .args(["--resync", "1s", "--lease-duration", "3s"])
            .args(extra)
            .envs(ballast_testbed::child_env())
            .env("RUST_LOG", "ballast=info")
            .env_remove("AWS_ENDPOINT_URL")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("ballast runs");
        Controller { child, addr }
    }

    pub fn get(&self, path: &str) -> Option<(u16, String)> {
        let mut stream = TcpStream::connect(self.addr).ok()?;
        stream
            .write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes())
            .ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).ok()?;
        let status = response.split(' ').nth(1)?.parse().ok()?;
        let body = response.split_once("\r\n\r\n")?.1.to_string();
        Some((status, body))
    }

    pub fn metrics(&self) -> String {
        self.get("/metrics")
            .map(|(_, body)| body)
            .unwrap_or_default()
    }

    pub fn ready(&self) -> bool {
        self.get("/readyz").is_some_and(|(status, _)| status == 200)
    }

    /// SIGTERM, then the exit code.
    pub fn terminate(mut self) -> Option<i32> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(Instant::now() < deadline, "controller did not stop");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// Polls `condition` every 100 ms until it holds, or fails after `secs`.
pub async fn eventually<F, Fut>(secs: u64, what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !condition().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
