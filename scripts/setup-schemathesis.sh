#!/usr/bin/env bash
# Install the pinned schemathesis (the OpenAPI conformance checker run by
# worker/tests/integration/api_schemathesis.rs) into the project-local virtualenv (.venv).
#
# Runs after scripts/setup-moto.sh (which creates the venv). Idempotent: does nothing when
# .venv/bin/schemathesis is exactly $SCHEMATHESIS_VERSION. Quiet on success, loud on failure.
set -euo pipefail

SCHEMATHESIS_VERSION="4.32.5"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${ROOT}/.venv"

die() {
    echo "setup-schemathesis: error: $*" >&2
    exit 1
}

installed() {
    [[ -x "${VENV}/bin/schemathesis" ]] &&
        "${VENV}/bin/python" -c "import importlib.metadata as m; assert m.version('schemathesis') == '${SCHEMATHESIS_VERSION}'" >/dev/null 2>&1
}

installed && exit 0

[[ -x "${VENV}/bin/python" ]] || die "${VENV} has no python; run scripts/setup-moto.sh first (make moto does both)"

"${VENV}/bin/python" -m pip install --quiet --disable-pip-version-check \
    "schemathesis==${SCHEMATHESIS_VERSION}" ||
    die "pip install schemathesis==${SCHEMATHESIS_VERSION} failed"

installed || die "schemathesis ${SCHEMATHESIS_VERSION} still not usable from ${VENV} after install"
# moto must still import after schemathesis brought its own dependencies.
"${VENV}/bin/python" -c "import moto" >/dev/null 2>&1 ||
    die "moto no longer imports after installing schemathesis; the pins conflict"
