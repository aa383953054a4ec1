#!/usr/bin/env bash
# cargo-deny for `make deny` / `make advisories`: installs the pinned version into the
# project-local .tools/ when it is missing, then checks the tree against deny.toml.
#
#   scripts/cargo-deny.sh          bans, licenses and sources, offline (what `make test` runs);
#                                  advisories too when a local advisory database exists
#   scripts/cargo-deny.sh install  only the install, and the download of every locked package
#   scripts/cargo-deny.sh advisories
#                                  fetches the RustSec database and checks advisories (needs
#                                  the network, so it is not part of `make test`)
#
# A cargo-deny of the pinned version already on PATH is used as it is. The install builds from
# crates.io with the lockfile cargo-deny ships (--locked), unoptimized (--debug): on two cores
# that build takes 72 s instead of 189 s for the release profile, and the check it runs still
# takes under 3 s (0.9 s optimized). Quiet on success, loud on failure.
set -euo pipefail

CARGO_DENY_VERSION="0.20.2"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="${ROOT}/.tools"
CARGO="${CARGO:-cargo}"

die() {
    echo "cargo-deny: error: $*" >&2
    exit 1
}

version_of() {
    "$1" deny --version 2>/dev/null | awk '{print $2}'
}

find_deny() {
    local candidate
    for candidate in "${TOOLS}/bin/cargo-deny" "$(command -v cargo-deny 2>/dev/null || true)"; do
        if [[ -n "${candidate}" && -x "${candidate}" && "$(version_of "${candidate}")" == "${CARGO_DENY_VERSION}" ]]; then
            echo "${candidate}"
            return 0
        fi
    done
    return 1
}

install() {
    find_deny >/dev/null && return 0
    "${CARGO}" install --quiet --debug --locked --root "${TOOLS}" "cargo-deny@${CARGO_DENY_VERSION}" ||
        die "cargo install --locked cargo-deny@${CARGO_DENY_VERSION} failed"
    find_deny >/dev/null || die "cargo-deny ${CARGO_DENY_VERSION} still not usable from ${TOOLS}/bin"
}

# `deny --offline` reads every package of the lockfile, for every platform, from cargo's local
# cache; a build downloads only the host's (a fresh machine lacks e.g. the Windows-only crates).
fetch() {
    "${CARGO}" fetch --locked --quiet || die "cargo fetch --locked failed (crates.io unreachable?)"
}

install
DENY="$(find_deny)"
cd "${ROOT}"

case "${1:-check}" in
install) fetch ;;
check)
    fetch
    checks=(bans licenses sources)
    # The advisory database is read only when a copy exists: CI has no network to fetch one.
    if [[ -d "${CARGO_HOME:-${HOME}/.cargo}/advisory-db" ]]; then
        checks+=(advisories)
    fi
    "${DENY}" deny --offline --log-level error check "${checks[@]}"
    ;;
advisories)
    "${DENY}" deny --log-level error check advisories
    ;;
*) die "unknown command '$1' (check | install | advisories)" ;;
esac
