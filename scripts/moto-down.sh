#!/usr/bin/env bash
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -f .moto/pid ]]; then
  kill "$(cat .moto/pid)" 2>/dev/null || true
  rm -f .moto/pid .moto/endpoint
fi
