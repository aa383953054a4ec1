//! Test support for Ballast: one [moto](https://github.com/getmoto/moto) server per test
//! binary, listening on a free loopback port, plus helpers to point AWS SDK clients at it.
//!
//! ```no_run
//! # async fn example() {
//! let moto = ballast_testbed::moto().await;
//! let config = moto.sdk_config().await; // e.g. aws_sdk_sqs::Client::new(&config)
//! let queue = ballast_testbed::unique_name("orders");
//! # let _ = (config, queue);
//! # }
//! ```
//!
//! [`IamEnforcingMoto`] is a moto server of its own that enforces IAM once told to, for the
//! tests that prove generated IAM policies by enforcement; the shared server never enforces.
//!
//! [`proxy::FaultProxy`] sits between SDK clients and moto and injects AWS faults (errors,
//! latency, resets, dropped answers, hangs) by rule; see its module documentation.
//! [`fixtures`] creates what several crates' tests need the same way (a queue with its
//! dead-letter queue, the ledger's tables) and polls conditions.
//!
//! The server is started lazily by the first caller and shared by every test in the
//! process (tests must therefore use [`unique_name`] for the resources they create).
//! It is started through a small `sh` watchdog whose stdin is a pipe held by the test
//! process: when the test process exits, for any reason, the pipe closes and the
//! watchdog kills moto, so no `moto_server` outlives `cargo test`.
//!
//! moto is located via `$BALLAST_MOTO_SERVER`, then `<workspace>/.venv/bin/ballast-moto-server`
//! (moto with DynamoDB requests serialized) or `.venv/bin/moto_server` (both installed by
//! `scripts/setup-moto.sh`), then `moto_server` on `PATH`. If none exists
//! the tests panic with installation instructions; they are never skipped.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test support, linked only into tests: failing to start moto must fail the test loudly"
)]

pub mod fixtures;
pub mod proxy;

use std::ffi::OsString;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region};
use aws_credential_types::Credentials;
use aws_types::SdkConfig;

/// Region every testbed client uses.
pub const REGION: &str = "us-east-1";
/// Static access key id / secret used against moto.
pub const TEST_CREDENTIAL: &str = "testing";
/// Environment for a child process (`ballast`, `ballast-worker`) that talks to the test bed:
/// its static credentials and region. Pass the endpoint with `--endpoint-url` or
/// `AWS_ENDPOINT_URL`.
pub fn child_env() -> [(&'static str, &'static str); 3] {
    [
        ("AWS_ACCESS_KEY_ID", TEST_CREDENTIAL),
        ("AWS_SECRET_ACCESS_KEY", TEST_CREDENTIAL),
        ("AWS_REGION", REGION),
    ]
}

/// Environment variable that overrides the moto_server executable.
pub const MOTO_ENV: &str = "BALLAST_MOTO_SERVER";

const STARTUP_DEADLINE: Duration = Duration::from_secs(30);
const POLL_INTERVAL: Duration = Duration::from_millis(50);
const START_ATTEMPTS: usize = 3;

/// The message used when moto cannot be found.
pub const MOTO_MISSING: &str = "moto_server not found: run `make moto` (scripts/setup-moto.sh) \
     to install moto 5.2.5 into .venv, or set BALLAST_MOTO_SERVER";

/// Watchdog: start moto (argv $1, port $2, log file $3) in the background with no access to our
/// stdin, then block on stdin from a second background job; EOF means the test process
/// is gone, so kill moto. The shell itself exits when moto does, which lets the test
/// process notice a crashed server. The log is removed at exit unless
/// `BALLAST_MOTO_KEEP_LOG` is set.
const WATCHDOG: &str = r#"
exec 3<&0
"$1" -H 127.0.0.1 -p "$2" </dev/null 3<&- &
moto=$!
( cat <&3 >/dev/null 2>&1; kill "$moto" 2>/dev/null; [ -n "$BALLAST_MOTO_KEEP_LOG" ] || rm -f "$3" ) &
exec 3<&-
wait "$moto"
"#;

/// A running moto server shared by all tests of one test binary.
pub struct MotoServer {
    port: u16,
    log_path: PathBuf,
    // Held only so the watchdog's stdin pipe stays open for the life of the process.
    _guard: Mutex<(Child, ChildStdin)>,
}

impl std::fmt::Debug for MotoServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MotoServer")
            .field("endpoint", &self.endpoint())
            .field("log", &self.log_path)
            .finish()
    }
}

/// The process-wide moto server, started on first use. Safe to call from any test,
/// sync or async; startup (a few seconds) runs on tokio's blocking pool.
pub async fn moto() -> &'static MotoServer {
    tokio::task::spawn_blocking(MotoServer::shared)
        .await
        .unwrap_or_else(|err| std::panic::resume_unwind(err.into_panic()))
}

impl MotoServer {
    /// The process-wide moto server, started on first use (blocking).
    ///
    /// # Panics
    /// If moto_server cannot be found or does not become ready within 30 seconds.
    pub fn shared() -> &'static MotoServer {
        static SERVER: OnceLock<MotoServer> = OnceLock::new();
        SERVER.get_or_init(MotoServer::start)
    }

    /// Base URL of the server, e.g. `http://127.0.0.1:54321`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// TCP port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// File receiving moto's stdout/stderr (request log). Deleted when the test process
    /// exits unless `BALLAST_MOTO_KEEP_LOG` is set.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// SDK config pointing at this server: region `us-east-1`, static `testing`
    /// credentials, endpoint URL set. Host environment variables are ignored so a
    /// developer's `AWS_*` settings cannot redirect tests to real AWS.
    pub async fn sdk_config(&self) -> SdkConfig {
        sdk_config_for(&self.endpoint()).await
    }

    fn start() -> MotoServer {
        MotoServer::start_with(&[])
    }

    /// A new server of its own (not the shared one) with `env` added to moto's environment;
    /// it stops when the value is dropped or the test process exits.
    fn start_with(env: &[(&str, &str)]) -> MotoServer {
        let binary = locate_moto();
        let mut last_failure = String::new();
        for attempt in 1..=START_ATTEMPTS {
            match try_start(&binary, env) {
                Ok(server) => return server,
                Err(failure) => {
                    last_failure = format!("attempt {attempt}: {failure}");
                }
            }
        }
        panic!(
            "moto_server ({}) failed to start after {START_ATTEMPTS} attempts; last {last_failure}",
            binary.display()
        );
    }
}

/// moto's environment variable: the number of requests served before IAM is enforced.
const INITIAL_NO_AUTH_ACTION_COUNT: &str = "INITIAL_NO_AUTH_ACTION_COUNT";

/// A moto server of its own that enforces IAM once told to, for the tests that prove a
/// generated policy by enforcement. The shared server ([`moto`]) never enforces.
///
/// It starts with `INITIAL_NO_AUTH_ACTION_COUNT` unlimited, so a test sets up with the test
/// bed's credentials (create resources, an IAM user, its policy and access keys);
/// [`IamEnforcingMoto::enforce_iam`] then resets moto's count to 0 (`POST
/// /moto-api/reset-auth`), after which every request must be signed with an IAM user's access
/// key and is authorized against that user's policies.
///
/// What moto 5.2.5 checks (moto/core/authorization.py, moto/iam/access_control.py): the
/// signature, then the request's *API operation* as `service:Operation` against the `Action`s
/// of the caller's policies (so `dynamodb:TransactWriteItems` and `sqs:DeleteMessageBatch`
/// are checked by those names, where AWS checks the items' and the batch's base actions). The
/// `Resource` is the queue's ARN for SQS (and the role for IAM/STS); every other service is
/// checked against `*`, so an ARN-scoped statement of DynamoDB, KMS, CloudWatch or Auto
/// Scaling matches nothing there. `Condition` keys other than `sts:ExternalId` are never set,
/// so a statement with a condition is a *deny* for its actions.
pub struct IamEnforcingMoto {
    server: MotoServer,
}

impl std::fmt::Debug for IamEnforcingMoto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IamEnforcingMoto")
            .field("server", &self.server)
            .finish()
    }
}

impl IamEnforcingMoto {
    /// Starts a new server (a few seconds, on tokio's blocking pool), not yet enforcing.
    pub async fn start() -> IamEnforcingMoto {
        let server = tokio::task::spawn_blocking(|| {
            MotoServer::start_with(&[(INITIAL_NO_AUTH_ACTION_COUNT, "inf")])
        })
        .await
        .unwrap_or_else(|err| std::panic::resume_unwind(err.into_panic()));
        IamEnforcingMoto { server }
    }

    /// Base URL of the server.
    pub fn endpoint(&self) -> String {
        self.server.endpoint()
    }

    /// The test bed's SDK config for this server (its static credentials work only until
    /// [`IamEnforcingMoto::enforce_iam`]).
    pub async fn sdk_config(&self) -> SdkConfig {
        self.server.sdk_config().await
    }

    /// An SDK config for this server signing with an IAM user's access key.
    pub async fn sdk_config_as(&self, access_key_id: &str, secret: &str) -> SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .empty_test_environment()
            .region(Region::new(REGION))
            .credentials_provider(Credentials::new(
                access_key_id,
                secret,
                None,
                None,
                "ballast-testbed-iam-user",
            ))
            .endpoint_url(self.endpoint())
            .load()
            .await
    }

    /// From now on every request is authenticated and authorized.
    pub fn enforce_iam(&self) {
        let port = self.server.port();
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let mut stream = TcpStream::connect(addr).expect("connect to moto");
        let body = "0";
        let request = format!(
            "POST /moto-api/reset-auth HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        stream
            .write_all(request.as_bytes())
            .expect("send reset-auth");
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        assert!(
            answer.starts_with("HTTP/1.") && answer.contains(" 200 "),
            "moto refused to enforce IAM: {answer}"
        );
    }
}

/// The test bed's SDK config (region `us-east-1`, static `testing` credentials, host `AWS_*`
/// settings ignored) pointing at `endpoint`, e.g. a [`proxy::FaultProxy`].
pub async fn sdk_config_for(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .empty_test_environment()
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new(
            TEST_CREDENTIAL,
            TEST_CREDENTIAL,
            None,
            None,
            "ballast-testbed",
        ))
        .endpoint_url(endpoint)
        .load()
        .await
}

fn try_start(binary: &Path, env: &[(&str, &str)]) -> Result<MotoServer, String> {
    let port = free_port();
    let log_path =
        std::env::temp_dir().join(format!("ballast-moto-{}-{port}.log", std::process::id()));
    let log = File::create(&log_path)
        .map_err(|e| format!("cannot create moto log {}: {e}", log_path.display()))?;
    let log_err = log
        .try_clone()
        .map_err(|e| format!("cannot clone log handle: {e}"))?;

    let mut child = Command::new("sh")
        .arg("-c")
        .arg(WATCHDOG)
        .arg("ballast-moto-watchdog")
        .arg(binary)
        .arg(port.to_string())
        .arg(&log_path)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(log)
        .stderr(log_err)
        .spawn()
        .map_err(|e| format!("cannot spawn sh for moto_server: {e}"))?;
    let stdin = child.stdin.take().expect("piped stdin");

    let deadline = Instant::now() + STARTUP_DEADLINE;
    loop {
        if answers_http(port) {
            return Ok(MotoServer {
                port,
                log_path,
                _guard: Mutex::new((child, stdin)),
            });
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "moto_server exited with {status} before answering on port {port}; log {}:\n{}",
                log_path.display(),
                log_tail(&log_path)
            ));
        }
        if Instant::now() >= deadline {
            let failure = format!(
                "moto_server did not answer on port {port} within {STARTUP_DEADLINE:?}; log {}:\n{}",
                log_path.display(),
                log_tail(&log_path)
            );
            // Closing stdin makes the watchdog kill moto (and remove its log).
            drop(stdin);
            let _ = child.wait();
            return Err(failure);
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// One `GET /moto-api/` over plain HTTP/1.0; true when any HTTP status line comes back.
fn answers_http(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(250)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET /moto-api/ HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    let mut read = 0;
    while read < head.len() {
        match stream.read(&mut head[read..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => read += n,
        }
    }
    head[..read].starts_with(b"HTTP/1.")
}

fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local_addr").port()
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// Finds the moto_server executable.
///
/// # Panics
/// With installation instructions when it cannot be found.
pub fn locate_moto() -> PathBuf {
    if let Some(path) = std::env::var_os(MOTO_ENV).filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        if is_executable(&path) {
            return path;
        }
        if let Some(found) = search_path(path.as_os_str()) {
            return found;
        }
        panic!(
            "{MOTO_MISSING} ({MOTO_ENV}={} is not an executable)",
            path.display()
        );
    }
    // Prefer the wrapper that serializes DynamoDB (moto's DynamoDB is not thread-safe).
    for name in ["ballast-moto-server", "moto_server"] {
        let venv = workspace_root().join(".venv/bin").join(name);
        if is_executable(&venv) {
            return venv;
        }
    }
    search_path(&OsString::from("moto_server")).unwrap_or_else(|| panic!("{MOTO_MISSING}"))
}

/// The workspace root (parent of this crate's manifest directory).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

fn search_path(name: &std::ffi::OsStr) -> Option<PathBuf> {
    if Path::new(name).components().count() > 1 {
        return None;
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// `prefix` plus a short random suffix, e.g. `orders-3f9c2a1b`, so tests sharing one
/// moto server never collide. Only `[A-Za-z0-9-]` is added, which every service accepts.
pub fn unique_name(prefix: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}-{}", &id[..12])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_names_differ_and_keep_prefix() {
        let a = unique_name("q");
        let b = unique_name("q");
        assert_ne!(a, b);
        assert!(a.starts_with("q-"));
        assert_eq!(a.len(), "q-".len() + 12);
    }

    #[test]
    fn shared_server_answers() {
        let server = MotoServer::shared();
        assert!(answers_http(server.port()));
        assert!(std::ptr::eq(server, MotoServer::shared()));
    }

    #[tokio::test]
    async fn sdk_config_points_at_moto() {
        let server = moto().await;
        let config = server.sdk_config().await;
        assert_eq!(config.region().map(|r| r.as_ref()), Some(REGION));
        assert_eq!(config.endpoint_url(), Some(server.endpoint().as_str()));
    }
}
