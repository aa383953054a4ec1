//! `ballast validate` and `ballast schema` as a user runs them.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a failed test (clippy.toml covers only #[test] fns, not helpers)"
)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn ballast(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ballast"))
        .args(args)
        .current_dir(root())
        .env_remove("AWS_ENDPOINT_URL")
        .output()
        .expect("ballast runs")
}

#[test]
fn valid_blueprints_exit_zero_and_list_resources_in_dependency_order() {
    let out = ballast(&[
        "validate",
        "--list",
        "blueprints/banking.yaml",
        "blueprints/minimal.yaml",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains("blueprints/banking.yaml: valid (29 resources)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("blueprints/minimal.yaml: valid (4 resources)"),
        "{stdout}"
    );
    let key = stdout.find("kms-key/data").unwrap();
    let queue = stdout.find("queue/transactions\n").unwrap();
    assert!(key < queue);
    // The worker's policy names the queue's ARN; the role attaches the policy, the profile
    // holds the role, the launch template names the profile.
    let policy = stdout.find("managed-policy/worker").unwrap();
    let role = stdout.find("iam-role/worker").unwrap();
    let profile = stdout.find("instance-profile/worker").unwrap();
    let template = stdout.find("launch-template/worker").unwrap();
    assert!(queue < policy && policy < role && role < profile && profile < template);
}

#[test]
fn every_invalid_fixture_exits_one_with_file_line_column_messages() {
    let dir = root().join("blueprint/tests/fixtures/invalid");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| p.strip_prefix(root()).unwrap().display().to_string())
        .collect();
    files.sort();
    for file in &files {
        let out = ballast(&["validate", file]);
        assert_eq!(out.status.code(), Some(1), "{file}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        let source = std::fs::read_to_string(root().join(file)).unwrap();
        for expected in source.lines().filter_map(|l| l.strip_prefix("# expect: ")) {
            let (position, message) = expected.split_at(expected.find(": ").unwrap());
            let line = format!("{file}:{position}: error: {}", &message[2..]);
            assert!(
                stderr.contains(&line),
                "{file}: missing `{line}` in\n{stderr}"
            );
        }
    }
}

#[test]
fn several_files_are_all_checked_and_one_bad_file_fails_the_run() {
    let out = ballast(&[
        "validate",
        "blueprints/banking.yaml",
        "blueprint/tests/fixtures/invalid/queue-unknown-dlq.yaml",
        "blueprints/minimal.yaml",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("banking.yaml: valid") && stdout.contains("minimal.yaml: valid"));
}

#[test]
fn json_output_is_machine_readable() {
    let out = ballast(&[
        "validate",
        "--output",
        "json",
        "blueprint/tests/fixtures/invalid/many-problems.yaml",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let reports: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let diagnostics = reports[0]["diagnostics"].as_array().unwrap();
    assert_eq!(diagnostics.len(), 8);
    assert_eq!(diagnostics[0]["position"]["line"], 4);
    assert_eq!(diagnostics[0]["path"], "metadata.name");
}

#[test]
fn ci_outputs_annotate_each_problem_and_summarise_in_markdown() {
    let file = "blueprint/tests/fixtures/invalid/many-problems.yaml";
    let out = ballast(&[
        "validate",
        "--output",
        "github",
        file,
        "blueprints/missing.yaml",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let annotations: Vec<&str> = stdout.lines().collect();
    assert_eq!(annotations.len(), 9, "{stdout}");
    assert!(
        annotations[0].starts_with(&format!("::error file={file},line=4,")),
        "{stdout}"
    );
    assert!(
        annotations[8].starts_with(
            "::error file=blueprints/missing.yaml,title=ballast validate::cannot read"
        ),
        "{stdout}"
    );
    let out = ballast(&[
        "validate",
        "--output",
        "markdown",
        file,
        "blueprints/banking.yaml",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(&format!("- `{file}`: invalid")), "{stdout}");
    assert!(stdout.contains(&format!("| `{file}:4:")), "{stdout}");
    assert!(
        stdout.contains("- `blueprints/banking.yaml`: valid ("),
        "{stdout}"
    );
}

#[test]
fn a_missing_file_is_an_error_that_says_so() {
    let out = ballast(&["validate", "blueprints/does-not-exist.yaml"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "blueprints/does-not-exist.yaml: error: cannot read blueprints/does-not-exist.yaml: No such file or directory"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("hint: check the path"), "{stderr}");
    assert!(!stderr.contains("invalid (0 errors)"), "{stderr}");

    let out = ballast(&[
        "validate",
        "--output",
        "json",
        "blueprints/does-not-exist.yaml",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let reports: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        reports[0]["error"]
            .as_str()
            .unwrap()
            .contains("No such file or directory"),
        "{reports}"
    );
}

/// A file of this test's own in the target directory's scratch space.
fn scratch(name: &str, bytes: &[u8]) -> String {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::write(&path, bytes).unwrap();
    path.display().to_string()
}

#[test]
fn non_utf8_input_names_the_file_and_the_byte_offset() {
    let mut bytes = b"apiVersion: ballast.dev/v1\nkind: Blue".to_vec();
    bytes.push(0xff);
    bytes.extend_from_slice(b"print\n");
    let file = scratch("not-utf8.yaml", &bytes);
    let out = ballast(&["validate", &file]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{file}:2:11: error: the file is not UTF-8 text: invalid byte 0xff at byte offset 37"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("hint: save the blueprint as UTF-8"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{file}: invalid (1 error)")),
        "{stderr}"
    );
}

#[test]
fn billion_laughs_is_refused_quickly_with_a_position() {
    let file = "blueprint/tests/fixtures/invalid/billion-laughs.yaml";
    let started = std::time::Instant::now();
    let out = ballast(&["validate", file]);
    let elapsed = started.elapsed();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{file}:6:8: error: the document expands to more than 100000 nodes"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("hint: a blueprint needs far less"),
        "{stderr}"
    );
    // Unbounded, this file expands to 9^9 nodes (gigabytes, minutes); the budget stops it after
    // about 10^5, which takes milliseconds even in a debug build on a busy machine.
    assert!(
        elapsed < std::time::Duration::from_millis(900),
        "took {elapsed:?}"
    );
}

#[test]
fn a_too_large_document_is_refused_before_parsing() {
    // Valid YAML (one long comment), just too big: the limit is on the file, not its meaning.
    let mut bytes = b"# ".to_vec();
    bytes.resize(ballast_blueprint::MAX_SOURCE_BYTES + 10, b'x');
    let file = scratch("too-large.yaml", &bytes);
    let started = std::time::Instant::now();
    let out = ballast(&["validate", &file]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{file}:1:1: error: the file is 1048577 bytes or more, over the 1048576-byte limit"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("hint: a blueprint describes one stack"),
        "{stderr}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
}

#[test]
fn every_command_loads_through_the_same_guard() {
    let file = "blueprint/tests/fixtures/invalid/billion-laughs.yaml";
    for args in [
        vec!["plan", file],
        vec!["run", "--dry-run", file],
        vec!["scale", "--once", "--dry-run", file],
    ] {
        let out = ballast(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("the document expands to more than 100000 nodes"),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn committed_schema_is_what_the_code_generates() {
    let committed = std::fs::read_to_string(root().join("blueprints/schema.json")).unwrap();
    let generated = ballast_controller::commands::schema::render().unwrap();
    assert!(
        committed == generated,
        "blueprints/schema.json is stale: run `cargo run -p ballast-controller --bin ballast -- schema > blueprints/schema.json`"
    );
    let out = ballast(&["schema"]);
    assert_eq!(String::from_utf8(out.stdout).unwrap(), generated);
}

#[test]
fn the_documented_ci_workflow_parses_and_runs_validate_and_drift_with_annotations() {
    let text = std::fs::read_to_string(root().join("docs/ci/ballast.yml")).unwrap();
    let workflow: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    let runs: Vec<String> = workflow["jobs"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|job| job["steps"].as_array().unwrap().iter())
        .filter_map(|step| step["run"].as_str().map(str::to_string))
        .collect();
    for command in [
        "ballast validate --output github blueprints/*.yaml",
        "ballast drift --output github blueprints/banking.yaml",
        "ballast drift --output markdown blueprints/banking.yaml",
    ] {
        assert!(
            runs.iter().any(|r| r.contains(command)),
            "{command} not in {runs:?}"
        );
    }
    // The drift job holds no write permission on the repository and gets AWS credentials only
    // through OIDC.
    assert_eq!(workflow["permissions"]["contents"], "read");
    assert_eq!(workflow["permissions"]["id-token"], "write");
}
