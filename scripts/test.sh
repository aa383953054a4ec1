#!/usr/bin/env bash
# `make test`, what CI runs on a fresh clone: format, lint, supply-chain checks and every test,
# arranged so that the slow parts overlap and the dependency tree is compiled once.
#
#   1. In the background: the emulator (scripts/setup-moto.sh, setup-schemathesis.sh) and the
#      pinned cargo-deny (scripts/cargo-deny.sh install): downloads and a small build that fill
#      the idle time of the main build's serial stretches.
#   2. rustfmt --check.
#   3. One build of every target with clippy as the workspace's compiler wrapper
#      (RUSTC_WORKSPACE_WRAPPER, which is how `cargo clippy` itself runs): workspace crates are
#      linted with `-D warnings` while they are compiled, dependencies are compiled once for
#      the tests. A separate `cargo clippy` would compile the whole AWS SDK a second time in
#      check mode, about a third of a fresh run on two cores.
#   4. The tests, with the same wrapper so nothing is rebuilt, in two lanes at once: the
#      worker's test binary (`worker_integration`, the longest) in one, everything else (unit
#      tests, the other crates' `integration` binaries, e2e, doc tests) in the other. Most test
#      time is spent waiting on the emulator, not computing, and cargo runs test binaries one
#      after another, so two lanes overlap them on the same two cores. The globs `worker_*` and
#      `[!w]*` split the test targets between the lanes without naming the rest, so a new test
#      target runs in one of them. Each binary keeps cargo's default thread count: its tests
#      share one emulator and some measure time under load.
#   5. cargo-deny's bans, licenses and sources.
#
# `make lint` and `make unit` still run the two halves on their own.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${ROOT}"
CARGO="${CARGO:-cargo}"
LOGS="$(mktemp -d "${TMPDIR:-/tmp}/ballast-test.XXXXXX")"
trap 'rm -rf "${LOGS}"' EXIT

die() {
    echo "make test: error: $*" >&2
    exit 1
}

step() {
    printf '== %s (%s)\n' "$1" "$(date -u +%H:%M:%S)"
}

# Waits for a background set-up job; on failure prints its log and stops.
await() {
    local pid="$1" name="$2"
    if ! wait "${pid}"; then
        cat "${LOGS}/${name}.log" >&2
        die "${name} failed"
    fi
}

step "background: emulator and cargo-deny set-up"
(scripts/setup-moto.sh && scripts/setup-schemathesis.sh) >"${LOGS}/emulator.log" 2>&1 &
emulator=$!
scripts/cargo-deny.sh install >"${LOGS}/cargo-deny.log" 2>&1 &
deny=$!

step "rustfmt"
"${CARGO}" fmt --all -- --check

CLIPPY_DRIVER="$(command -v clippy-driver || true)"
[[ -n "${CLIPPY_DRIVER}" ]] || die "clippy-driver not found on PATH (rustup component add clippy)"
# cargo-clippy's own encoding of its arguments for clippy-driver.
export RUSTC_WORKSPACE_WRAPPER="${CLIPPY_DRIVER}"
export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"

step "build every target, linted by clippy -D warnings"
"${CARGO}" test --workspace --all-targets --no-run --quiet

await "${emulator}" emulator
step "tests, two lanes"
"${CARGO}" test --workspace --no-fail-fast --test 'worker_*' >"${LOGS}/lane-worker.log" 2>&1 &
worker=$!
lane_rest=0
{
    "${CARGO}" test --workspace --no-fail-fast --lib --bins --test '[!w]*' &&
        "${CARGO}" test --workspace --no-fail-fast --doc
} >"${LOGS}/lane-rest.log" 2>&1 || lane_rest=$?
lane_worker=0
wait "${worker}" || lane_worker=$?
for lane in rest worker; do
    printf '\n== lane: %s\n' "${lane}"
    cat "${LOGS}/lane-${lane}.log"
done
((lane_rest == 0 && lane_worker == 0)) ||
    die "tests failed (lane rest: exit ${lane_rest}, lane worker: exit ${lane_worker})"

await "${deny}" cargo-deny
step "cargo-deny"
scripts/cargo-deny.sh
step "done"
