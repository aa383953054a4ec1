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
        stdout.contains("blueprints/banking.yaml: valid (20 resources)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("blueprints/minimal.yaml: valid (4 resources)"),
        "{stdout}"
    );
    let key = stdout.find("kms-key/data").unwrap();
    let queue = stdout.find("queue/transactions\n").unwrap();
    assert!(key < queue);
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
fn a_missing_file_is_an_error() {
    let out = ballast(&["validate", "blueprints/does-not-exist.yaml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot read blueprints/does-not-exist.yaml")
    );
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
