//! What users of a command line expect of `ballast-worker`, checked by running the binary: the
//! version with its git revision, the environment help, completions and manual pages, colour
//! only on a terminal, a closed pipe ending quietly, and a dead endpoint reported once.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a failed test (clippy.toml covers only #[test] fns, not helpers)"
)]

use std::net::TcpListener;
use std::process::{Command, Output, Stdio};

const ESC: u8 = 0x1b;
const BIN: &str = env!("CARGO_BIN_EXE_ballast-worker");

fn command(args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .envs(ballast_testbed::child_env())
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("NO_COLOR")
        .env_remove("BALLAST_LOG")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    command
}

fn worker(args: &[&str]) -> Output {
    command(args).output().expect("ballast-worker runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn dead_endpoint() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

#[test]
fn the_version_names_the_git_revision_and_the_help_the_log_variables() {
    let out = worker(&["--version"]);
    assert_eq!(out.status.code(), Some(0));
    let version = text(&out.stdout);
    let prefix = format!("ballast-worker {} (", env!("CARGO_PKG_VERSION"));
    let revision = version
        .strip_prefix(&prefix)
        .and_then(|rest| rest.strip_suffix(")\n"))
        .unwrap_or_else(|| panic!("unexpected version line {version:?}"));
    let commit = revision.strip_suffix("-dirty").unwrap_or(revision);
    assert!(
        Command::new("git")
            .args(["cat-file", "-e", &format!("{commit}^{{commit}}")])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .unwrap()
            .success(),
        "{version:?} names a commit of this repository"
    );

    let help = text(&worker(&["--help"]).stdout);
    for needle in [
        "BALLAST_LOG ",
        "RUST_LOG",
        "BALLAST_LOG_FORMAT",
        "NO_COLOR",
        "default `info`",
    ] {
        assert!(help.contains(needle), "{needle} missing from\n{help}");
    }
}

#[test]
fn completions_load_in_bash_and_man_pages_render() {
    let dir = std::env::temp_dir().join(ballast_testbed::unique_name("worker-cli"));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("ballast-worker.bash");
    let out = worker(&["completions", "bash"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    std::fs::write(&script, &out.stdout).unwrap();
    let bash = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {} && complete -p ballast-worker",
            script.display()
        ))
        .output()
        .unwrap();
    assert_eq!(bash.status.code(), Some(0), "{}", text(&bash.stderr));
    assert!(text(&bash.stdout).contains("ballast-worker"));
    assert!(text(&out.stdout).contains("rescue-dlq"));
    assert!(text(&worker(&["completions", "zsh"]).stdout).starts_with("#compdef ballast-worker"));
    assert!(text(&worker(&["completions", "fish"]).stdout).contains("complete -c ballast-worker"));

    let man = dir.join("man");
    let out = worker(&["man", "--dir", man.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let rendered = Command::new("groff")
        .args(["-man", "-Tascii", "-P-cbou", "-ww"])
        .arg(man.join("ballast-worker-consume.1"))
        .output()
        .unwrap();
    assert_eq!(text(&rendered.stderr), "", "groff warnings");
    let page = text(&rendered.stdout);
    assert!(page.contains("ballast-worker-consume"), "{page}");
    assert!(page.contains("--queue-url"), "{page}");
    assert!(man.join("ballast-worker.1").is_file());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_closed_pipe_ends_quietly_with_exit_zero() {
    for args in [
        &["token", "--sub", "alice"][..],
        &["completions", "bash"],
        &["man"],
    ] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = command(args)
            .env(
                "BALLAST_JWT_HS256_SECRET",
                "a development secret of enough length",
            )
            .stdout(writer)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
            .wait_with_output()
            .unwrap();
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert_eq!(stderr, "", "{args:?} says nothing on stderr");
    }
}

/// What a failing `seed-accounts` against a dead endpoint writes on stderr, with debug logs:
/// through a file, or through a pseudo-terminal (`script`).
fn stderr_of_a_failing_seed(no_color: bool, through_a_terminal: bool) -> Vec<u8> {
    let endpoint = dead_endpoint();
    let args = [
        "seed-accounts",
        "--count",
        "1",
        "--accounts-table-name",
        "accounts",
        "--transactions-table-name",
        "transactions",
        "--endpoint-url",
        &endpoint,
    ];
    let mut run = if through_a_terminal {
        let mut script = Command::new("script");
        script.args(["-qec", &format!("{BIN} {}", args.join(" ")), "/dev/null"]);
        script
            .envs(ballast_testbed::child_env())
            .env_remove("NO_COLOR");
        script
    } else {
        command(&args)
    };
    run.env("BALLAST_LOG", "debug");
    if no_color {
        run.env("NO_COLOR", "1");
    }
    let out = run.output().unwrap();
    assert_ne!(out.status.code(), Some(0), "seeding a dead endpoint fails");
    if through_a_terminal {
        out.stdout
    } else {
        out.stderr
    }
}

#[test]
fn logs_are_coloured_only_on_a_terminal_without_no_color() {
    let to_file = stderr_of_a_failing_seed(false, false);
    assert!(text(&to_file).contains("DEBUG"), "{}", text(&to_file));
    assert!(!to_file.contains(&ESC), "no escape codes in a file");
    assert!(stderr_of_a_failing_seed(false, true).contains(&ESC));
    let no_color = stderr_of_a_failing_seed(true, true);
    assert!(text(&no_color).contains("DEBUG"));
    assert!(!no_color.contains(&ESC), "NO_COLOR: {}", text(&no_color));
}

#[test]
fn a_dead_endpoint_is_reported_once() {
    let out = worker(&[
        "seed-accounts",
        "--count",
        "1",
        "--accounts-table-name",
        "accounts",
        "--transactions-table-name",
        "transactions",
        "--endpoint-url",
        &dead_endpoint(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.starts_with("Error: "), "{stderr}");
    assert_eq!(stderr.matches("Connection refused").count(), 1, "{stderr}");
    assert!(
        !stderr.contains("DispatchFailure"),
        "no Debug form:\n{stderr}"
    );
}
