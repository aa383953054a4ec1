#!/usr/bin/env bash
# Install the pinned moto server into the project-local virtualenv (.venv).
#
# Idempotent: does nothing when .venv/bin/moto_server exists and the installed
# moto is exactly $MOTO_VERSION (and waitress $WAITRESS_VERSION). Quiet on success, loud (non-zero exit with a
# message on stderr) on failure.
set -euo pipefail

MOTO_VERSION="5.2.5"
MOTO_EXTRAS="server,ec2,autoscaling,sqs,dynamodb,kms,cloudwatch"
# The HTTP server of the wrapper: keeps connections alive, as AWS's endpoints do.
WAITRESS_VERSION="3.0.2"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${ROOT}/.venv"

die() {
    echo "setup-moto: error: $*" >&2
    exit 1
}

SERVER="${VENV}/bin/ballast-moto-server"

# The wrapper (scripts/ballast-moto-server.py) is copied with the venv's interpreter as its
# shebang, so tests and the demo can exec it directly.
install_wrapper() {
    { echo "#!${VENV}/bin/python"; cat "${ROOT}/scripts/ballast-moto-server.py"; } > "${SERVER}.tmp" &&
        chmod +x "${SERVER}.tmp" && mv "${SERVER}.tmp" "${SERVER}"
}

installed() {
    [[ -x "${VENV}/bin/moto_server" ]] &&
        "${VENV}/bin/python" -c "import moto, importlib.metadata as m; assert moto.__version__ == '${MOTO_VERSION}'; assert m.version('waitress') == '${WAITRESS_VERSION}'" >/dev/null 2>&1
}

if installed; then
    cmp -s <(echo "#!${VENV}/bin/python"; cat "${ROOT}/scripts/ballast-moto-server.py") "${SERVER}" ||
        install_wrapper || die "cannot write ${SERVER}"
    exit 0
fi

command -v python3 >/dev/null 2>&1 || die "python3 not found on PATH (need python3 with the venv module)"

if [[ ! -x "${VENV}/bin/python" ]]; then
    python3 -m venv "${VENV}" || die "python3 -m venv ${VENV} failed (on Debian/Ubuntu: apt-get install python3-venv)"
fi

"${VENV}/bin/python" -m pip install --quiet --disable-pip-version-check \
    "moto[${MOTO_EXTRAS}]==${MOTO_VERSION}" "waitress==${WAITRESS_VERSION}" ||
    die "pip install moto[${MOTO_EXTRAS}]==${MOTO_VERSION} waitress==${WAITRESS_VERSION} failed"

installed || die "moto ${MOTO_VERSION} (with waitress ${WAITRESS_VERSION}) still not usable from ${VENV} after install"
install_wrapper || die "cannot write ${SERVER}"
