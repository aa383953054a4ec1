#!/usr/bin/env bash
# The controller's idle footprint: `ballast run` on an applied blueprint with nothing to do,
# against a private moto. Prints its resident memory (current and peak) and CPU time after
# SETTLE seconds, read from /proc/<pid>.
#
#   scripts/bench-controller-idle.sh [BIN_DIR] [BLUEPRINT]
#       BIN_DIR    where `ballast` is (default target/release)
#       BLUEPRINT  default blueprints/banking.yaml
#   SETTLE=120 (seconds of idle service, default 60)
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:-target/release}"
blueprint="${2:-blueprints/banking.yaml}"
settle="${SETTLE:-60}"
[[ -x "${bin}/ballast" ]] || {
    echo "bench-controller-idle: no ${bin}/ballast (cargo build --release --workspace --bins)" >&2
    exit 1
}
scripts/setup-moto.sh
work="$(mktemp -d)"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
.venv/bin/ballast-moto-server -H 127.0.0.1 -p "${port}" >"${work}/moto.log" 2>&1 &
moto=$!
controller=""
cleanup() {
    [[ -n "${controller}" ]] && kill "${controller}" 2>/dev/null || true
    kill "${moto}" 2>/dev/null || true
    rm -rf "${work}"
}
trap cleanup EXIT
export AWS_ENDPOINT_URL="http://127.0.0.1:${port}" AWS_ACCESS_KEY_ID=testing \
    AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1
until curl -fsS "${AWS_ENDPOINT_URL}/moto-api/" >/dev/null 2>&1; do
    kill -0 "${moto}" || { cat "${work}/moto.log" >&2; exit 1; }
    sleep 0.1
done
"${bin}/ballast" apply "${blueprint}" --auto-approve >/dev/null
metrics=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
"${bin}/ballast" run "${blueprint}" --metrics-addr "127.0.0.1:${metrics}" 2>"${work}/controller.log" &
controller=$!
sleep "${settle}" # the measured quantity is the idle state after this long, not a wait for a condition
kill -0 "${controller}" || { cat "${work}/controller.log" >&2; exit 1; }
status="/proc/${controller}/status"
rss=$(awk '/^VmRSS:/ {print $2}' "${status}")
hwm=$(awk '/^VmHWM:/ {print $2}' "${status}")
ticks=$(awk '{print $14 + $15}' "/proc/${controller}/stat")
anon=$(awk '/^RssAnon:/ {print $2}' "${status}")
file=$(awk '/^RssFile:/ {print $2}' "${status}")
threads=$(awk '/^Threads:/ {print $2}' "${status}")
mib() { echo "$1/1024" | bc -l; }
printf '| ballast run, idle %ss (%s) | RSS %.1f MiB (anonymous %.1f, file-backed %.1f) | peak %.1f MiB | CPU %.2f s | %s threads |\n' \
    "${settle}" "${blueprint}" "$(mib "${rss}")" "$(mib "${anon}")" "$(mib "${file}")" \
    "$(mib "${hwm}")" "$(echo "${ticks}/100" | bc -l)" "${threads}"
