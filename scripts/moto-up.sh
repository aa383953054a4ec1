#!/usr/bin/env bash
# Starts moto_server from .venv on a free 127.0.0.1 port; prints the endpoint.
# State lives in .moto/ (pid, endpoint, log); scripts/moto-down.sh stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .moto
if [[ -f .moto/pid ]] && kill -0 "$(cat .moto/pid)" 2>/dev/null; then
  cat .moto/endpoint
  exit 0
fi
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
scripts/setup-moto.sh
.venv/bin/ballast-moto-server -H 127.0.0.1 -p "$port" > .moto/server.log 2>&1 &
echo $! > .moto/pid
endpoint="http://127.0.0.1:$port"
for _ in $(seq 1 300); do
  if curl -fsS "$endpoint/moto-api/" > /dev/null 2>&1; then
    echo "$endpoint" > .moto/endpoint
    echo "$endpoint"
    exit 0
  fi
  kill -0 "$(cat .moto/pid)" 2>/dev/null || { echo "moto_server exited; see .moto/server.log" >&2; exit 1; }
  sleep 0.1
done
echo "moto_server did not answer on $endpoint within 30s; see .moto/server.log" >&2
exit 1
