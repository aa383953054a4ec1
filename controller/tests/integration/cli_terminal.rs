//! What users of a command line expect of `ballast`, checked by running the binary: the version
//! with its git revision, the environment help, completions and manual pages, colour only on a
//! terminal, a closed pipe ending quietly, an apply refused before it touches AWS, the destroy
//! confirmation listing what goes, and an AWS failure said once with its code and message.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a failed test (clippy.toml covers only #[test] fns, not helpers)"
)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use ballast_testbed::proxy::{ErrorKind, Fault, FaultProxy, Rule};
use ballast_testbed::{moto, unique_name};

const ESC: u8 = 0x1b;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ballast"));
    command
        .args(args)
        .current_dir(root())
        .envs(ballast_testbed::child_env())
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("NO_COLOR")
        .env_remove("BALLAST_LOG")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    command
}

fn ballast(args: &[&str]) -> Output {
    command(args).output().expect("ballast runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `args` with standard output on a pipe whose reader is already closed, as
/// `ballast … | head -1` once head has exited: every write fails with EPIPE.
fn with_closed_stdout(args: &[&str]) -> Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let child = command(args)
        .stdout(writer)
        .stderr(Stdio::piped())
        .spawn()
        .expect("ballast runs");
    child.wait_with_output().unwrap()
}

/// An endpoint nothing listens on: a port the OS handed out and that is closed again.
fn dead_endpoint() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

fn write_blueprint(name: &str, spec: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bp.yaml");
    std::fs::write(
        &file,
        format!(
            "apiVersion: ballast.dev/v1\nkind: Blueprint\nmetadata: {{ name: {name}, region: us-east-1 }}\nspec:\n{spec}"
        ),
    )
    .unwrap();
    file
}

#[test]
fn the_version_names_the_git_revision_of_the_build() {
    let out = ballast(&["--version"]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = text(&out.stdout);
    let revision = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(root())
        .output()
        .unwrap();
    let revision = text(&revision.stdout).trim().to_owned();
    assert!(!revision.is_empty(), "the tests run in a git checkout");
    // The build may predate the last commit in a long session; the format is exact.
    let prefix = format!("ballast {} (", env!("CARGO_PKG_VERSION"));
    let inner = stdout
        .strip_prefix(&prefix)
        .and_then(|rest| rest.strip_suffix(")\n"))
        .unwrap_or_else(|| panic!("unexpected version line {stdout:?}"));
    let commit = inner.strip_suffix("-dirty").unwrap_or(inner);
    assert!(
        commit.len() >= 7 && commit.chars().all(|c| c.is_ascii_hexdigit()),
        "{stdout:?}"
    );
    assert!(
        Command::new("git")
            .args(["cat-file", "-e", &format!("{commit}^{{commit}}")])
            .current_dir(root())
            .status()
            .unwrap()
            .success(),
        "{commit} is a commit of this repository (HEAD is {revision})"
    );
}

#[test]
fn the_help_documents_the_log_variables() {
    let out = ballast(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = text(&out.stdout);
    for needle in [
        "BALLAST_LOG ",
        "RUST_LOG",
        "BALLAST_LOG_FORMAT",
        "NO_COLOR",
        "warn,aws_config=error,ballast=info,ballast_controller=info",
    ] {
        assert!(help.contains(needle), "{needle} missing from\n{help}");
    }
}

#[test]
fn bash_loads_the_completions_and_zsh_and_fish_scripts_name_the_commands() {
    let out = ballast(&["completions", "bash"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let dir = std::env::temp_dir().join(unique_name("completions"));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("ballast.bash");
    std::fs::write(&script, &out.stdout).unwrap();
    // bash sources it and registers the completion function for `ballast`.
    let bash = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {} && complete -p ballast && declare -F _ballast",
            script.display()
        ))
        .output()
        .unwrap();
    assert_eq!(bash.status.code(), Some(0), "{}", text(&bash.stderr));
    let registered = text(&bash.stdout);
    assert!(registered.contains("-F _ballast"), "{registered}");
    assert!(text(&out.stdout).contains("force-unlock"));

    let zsh = ballast(&["completions", "zsh"]);
    assert!(text(&zsh.stdout).starts_with("#compdef ballast"));
    let fish = ballast(&["completions", "fish"]);
    assert!(text(&fish.stdout).contains("complete -c ballast"));
    assert!(text(&fish.stdout).contains("force-unlock"));
    assert_eq!(ballast(&["completions", "tcsh"]).status.code(), Some(2));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn man_pages_are_written_per_command_and_render_without_warnings() {
    let dir = std::env::temp_dir().join(unique_name("man"));
    let out = ballast(&["man", "--dir", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let listed = text(&out.stdout);
    for page in ["ballast.1", "ballast-plan.1", "ballast-fleet-local.1"] {
        assert!(dir.join(page).is_file(), "{page} in {listed}");
    }
    // groff renders the page of `plan` with its options and warns about nothing.
    let rendered = Command::new("groff")
        .args(["-man", "-Tascii", "-P-cbou", "-ww"])
        .arg(dir.join("ballast-plan.1"))
        .output()
        .unwrap();
    assert_eq!(rendered.status.code(), Some(0));
    assert_eq!(text(&rendered.stderr), "", "groff warnings");
    let page = text(&rendered.stdout);
    assert!(page.contains("ballast-plan"), "{page}");
    assert!(page.contains("--detailed-exitcode"), "{page}");
    // `ballast man` alone prints the top-level page.
    let top = ballast(&["man"]);
    assert!(text(&top.stdout).contains(".TH ballast 1"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_closed_pipe_ends_quietly_with_exit_zero() {
    for args in [
        &["schema"][..],
        &["completions", "bash"],
        &["validate", "--list", "blueprints/banking.yaml"],
    ] {
        let out = with_closed_stdout(args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert_eq!(stderr, "", "{args:?} says nothing on stderr");
    }
}

#[tokio::test]
async fn a_plan_into_a_closed_pipe_ends_quietly() {
    let name = unique_name("pipe");
    let file = write_blueprint(&name, "  queues:\n    - name: work\n");
    let endpoint = moto().await.endpoint();
    let out = with_closed_stdout(&[
        "plan",
        file.to_str().unwrap(),
        "--output",
        "json",
        "--endpoint-url",
        &endpoint,
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.to_lowercase().contains("broken pipe"), "{stderr}");
}

/// The logs of a failing plan against a dead endpoint, with debug logging on.
fn logs_of_a_failing_plan(extra_env: &[(&str, &str)], through_a_terminal: bool) -> Vec<u8> {
    let endpoint = dead_endpoint();
    let args = [
        env!("CARGO_BIN_EXE_ballast"),
        "plan",
        "blueprints/minimal.yaml",
        "--endpoint-url",
        &endpoint,
    ];
    let mut run = if through_a_terminal {
        // `script` runs the command on a pseudo-terminal and copies what it wrote to stdout.
        let mut script = Command::new("script");
        script.args(["-qec", &args.join(" "), "/dev/null"]);
        script
    } else {
        command(&args[1..])
    };
    run.current_dir(root())
        .envs(ballast_testbed::child_env())
        .env_remove("NO_COLOR")
        .env("BALLAST_LOG", "debug")
        .envs(extra_env.iter().copied());
    let out = run.output().unwrap();
    assert_ne!(out.status.code(), Some(0), "the plan fails");
    if through_a_terminal {
        out.stdout
    } else {
        out.stderr
    }
}

#[test]
fn logs_are_coloured_only_on_a_terminal_without_no_color() {
    let to_file = logs_of_a_failing_plan(&[], false);
    assert!(text(&to_file).contains("DEBUG"), "{}", text(&to_file));
    assert!(!to_file.contains(&ESC), "no escape codes in a file");

    let on_terminal = logs_of_a_failing_plan(&[], true);
    assert!(on_terminal.contains(&ESC), "{}", text(&on_terminal));

    let no_color = logs_of_a_failing_plan(&[("NO_COLOR", "1")], true);
    assert!(text(&no_color).contains("DEBUG"), "{}", text(&no_color));
    assert!(!no_color.contains(&ESC), "NO_COLOR: {}", text(&no_color));
}

#[test]
fn a_dead_endpoint_is_reported_once_with_its_cause() {
    let endpoint = dead_endpoint();
    let out = ballast(&[
        "plan",
        "blueprints/minimal.yaml",
        "--endpoint-url",
        &endpoint,
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.starts_with("Error: "), "{stderr}");
    assert_eq!(
        stderr.matches("Connection refused").count(),
        1,
        "the SDK failure once:\n{stderr}"
    );
    assert_eq!(stderr.matches("dispatch failure").count(), 1, "{stderr}");
    assert!(
        !stderr.contains("DispatchFailure"),
        "no Debug form:\n{stderr}"
    );
}

// Multi-threaded: the proxy answers on the runtime while this test waits for the child.
#[tokio::test(flavor = "multi_thread")]
async fn a_server_error_shows_the_operation_code_and_message() {
    let moto = moto().await;
    let proxy = FaultProxy::start(&moto.endpoint(), 16).await.unwrap();
    proxy.add(Rule::new(Fault::Error(ErrorKind::InternalServerError)));
    let name = unique_name("fault");
    let file = write_blueprint(&name, "  queues:\n    - name: work\n");
    let out = ballast(&[
        "plan",
        file.to_str().unwrap(),
        "--endpoint-url",
        &proxy.endpoint(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    // The first call of a plan reads the ownership tags (a Query-protocol service).
    let expected = "tag:GetResources failed: InternalFailure: injected by the Ballast fault proxy (InternalFailure)";
    assert_eq!(stderr.matches(expected).count(), 1, "{stderr}");
    assert!(!stderr.contains("unknown"), "{stderr}");
}

#[tokio::test]
async fn an_apply_refused_for_want_of_a_terminal_creates_nothing() {
    let name = unique_name("refused");
    let file = write_blueprint(&name, "  queues:\n    - name: work\n");
    let endpoint = moto().await.endpoint();
    let lease_table = unique_name("leases");
    for verb in ["apply", "destroy"] {
        let out = ballast(&[
            verb,
            file.to_str().unwrap(),
            "--lease-table",
            &lease_table,
            "--endpoint-url",
            &endpoint,
        ]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{verb}: {stderr}");
        assert!(stderr.contains("pass --auto-approve"), "{verb}: {stderr}");
    }
    let config = moto().await.sdk_config().await;
    let described = aws_sdk_dynamodb::Client::new(&config)
        .describe_table()
        .table_name(&lease_table)
        .send()
        .await;
    assert!(
        described
            .unwrap_err()
            .as_service_error()
            .is_some_and(|e| e.is_resource_not_found_exception()),
        "the lease table was not created"
    );
    let queue = aws_sdk_sqs::Client::new(&config)
        .get_queue_url()
        .queue_name(format!("{name}-work"))
        .send()
        .await;
    assert!(queue.is_err(), "no queue was created");
}

#[tokio::test]
async fn the_destroy_confirmation_lists_each_resource_and_marks_the_retained() {
    let name = unique_name("destroy-list");
    let file = write_blueprint(
        &name,
        "  queues:\n    - name: work\n      deletionPolicy: delete\n  tables:\n    - name: items\n      hashKey: { name: id, type: S }\n",
    );
    let file = file.to_str().unwrap();
    let endpoint = moto().await.endpoint();
    let lease_table = unique_name("leases");
    let common = [
        "--lease-table",
        &lease_table,
        "--endpoint-url",
        &endpoint,
        "--auto-approve",
    ];
    let apply = ballast(&[&["apply", file][..], &common].concat());
    assert_eq!(apply.status.code(), Some(0), "{}", text(&apply.stderr));

    let out = ballast(&[&["destroy", file][..], &common].concat());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let listing = stdout.split("Destroy complete").next().unwrap_or_default();
    assert!(
        listing.contains(&format!("  - queue/work ({name}-work) delete")),
        "{stdout}"
    );
    assert!(
        listing.contains(&format!(
            "  = table/items ({name}-items) retained (deletionPolicy: retain)"
        )),
        "{stdout}"
    );
    assert!(
        listing.contains("1 to delete, 1 retained, 0 skipped."),
        "{stdout}"
    );
}

#[test]
fn the_asset_script_lays_out_completions_and_man_pages_for_a_package() {
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_ballast")).parent().unwrap();
    assert!(
        bin_dir.join("ballast-worker").is_file(),
        "ballast-worker is built beside ballast by `cargo test --workspace`"
    );
    let out_dir = std::env::temp_dir().join(unique_name("cli-assets"));
    let out = Command::new(root().join("scripts/cli-assets.sh"))
        .arg(&out_dir)
        .env("BALLAST_BIN_DIR", bin_dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let share = out_dir.join("usr/share");
    for file in [
        "bash-completion/completions/ballast",
        "bash-completion/completions/ballast-worker",
        "zsh/vendor-completions/_ballast",
        "zsh/vendor-completions/_ballast-worker",
        "fish/vendor_completions.d/ballast.fish",
        "fish/vendor_completions.d/ballast-worker.fish",
        "man/man1/ballast.1.gz",
        "man/man1/ballast-apply.1.gz",
        "man/man1/ballast-worker.1.gz",
        "man/man1/ballast-worker-consume.1.gz",
    ] {
        assert!(share.join(file).is_file(), "{file} in {}", share.display());
    }
    std::fs::remove_dir_all(&out_dir).unwrap();
}
