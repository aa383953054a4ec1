#!/usr/bin/env bash
# Stops the moto_server started by moto-up.sh: SIGTERM, then SIGKILL if it lingers.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -f .moto/pid ]]; then
  pid=$(cat .moto/pid)
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -9 "$pid" 2>/dev/null || true
  rm -f .moto/pid .moto/endpoint
fi
