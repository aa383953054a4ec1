//! Puts the git revision of the build into `BALLAST_GIT_REVISION`, which `--version` of both
//! binaries shows (`ballast_runtime::cli::VERSION`).
//!
//! The revision is `BALLAST_GIT_REVISION` from the build environment when set (an image or
//! package build whose sources carry no `.git`), else `git rev-parse --short HEAD` with a
//! `-dirty` suffix when tracked files differ from it, else `unknown` (no git, or not a
//! checkout). The script runs again when HEAD moves (a commit, a checkout) or the index changes
//! (`git add`); an edit that was never staged is noticed at the next of those.

use std::path::Path;
use std::process::Command;

const OVERRIDE: &str = "BALLAST_GIT_REVISION";

fn main() {
    println!("cargo::rerun-if-env-changed={OVERRIDE}");
    let revision = match std::env::var(OVERRIDE) {
        Ok(revision) if !revision.trim().is_empty() => revision.trim().to_owned(),
        _ => git_revision().unwrap_or_else(|| "unknown".to_owned()),
    };
    println!("cargo::rustc-env={OVERRIDE}={revision}");
}

fn git_revision() -> Option<String> {
    let commit = git(&["rev-parse", "--short", "HEAD"])?;
    watch_git_state();
    // `--no-optional-locks`: `status` would otherwise refresh the index, changing the file this
    // script watches, so every build would run it again.
    let dirty = git(&[
        "--no-optional-locks",
        "status",
        "--porcelain",
        "--untracked-files=no",
    ])
    .is_some();
    Some(if dirty {
        format!("{commit}-dirty")
    } else {
        commit
    })
}

/// Reruns this script when HEAD, the branch it points at or the index change. Only existing
/// files are named: cargo reruns a script on every build while a watched file is missing (a
/// packed ref has no file of its own; `packed-refs` is watched instead).
fn watch_git_state() {
    let mut paths = vec![
        "HEAD".to_owned(),
        "index".to_owned(),
        "packed-refs".to_owned(),
    ];
    if let Some(reference) = git(&["symbolic-ref", "-q", "HEAD"]) {
        paths.push(reference);
    }
    for path in paths {
        if let Some(file) = git(&["rev-parse", "--git-path", &path])
            && Path::new(&file).exists()
        {
            println!("cargo::rerun-if-changed={file}");
        }
    }
}

/// A git command's trimmed standard output; `None` when git is missing, fails or prints nothing.
fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git").args(args).output().ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8(output.stdout).ok()?.trim().to_owned();
    (!text.is_empty()).then_some(text)
}
