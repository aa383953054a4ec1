//! Helpers for Ballast's end-to-end tests (see `tests/`).
//!
//! The e2e tests drive the real `ballast` and `ballast-worker` executables against a
//! moto server from [`ballast_testbed`]. The binaries are expected in the same cargo
//! target profile directory as the running test executable.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test support for the e2e tests: a missing binary must fail the test loudly"
)]

use std::path::PathBuf;

pub use ballast_testbed::{MotoServer, moto, unique_name};

/// The controller binary name.
pub const CONTROLLER_BIN: &str = "ballast";
/// The worker binary name.
pub const WORKER_BIN: &str = "ballast-worker";

/// Path of a workspace binary built into the same profile directory as the running test
/// executable (`target/<profile>/deps/<test>` → `target/<profile>/<name>`).
///
/// # Panics
/// If the binary has not been built, with the command that builds it.
pub fn binary_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .unwrap_or_else(|| panic!("unexpected test executable location {}", exe.display()));
    let path = profile_dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.is_file(),
        "binary `{name}` not found at {}: build it first with `cargo build --bin {name}` \
         (same profile as the tests)",
        path.display()
    );
    path
}

/// Path of the `ballast` controller binary.
pub fn controller_binary() -> PathBuf {
    binary_path(CONTROLLER_BIN)
}

/// Path of the `ballast-worker` binary.
pub fn worker_binary() -> PathBuf {
    binary_path(WORKER_BIN)
}
