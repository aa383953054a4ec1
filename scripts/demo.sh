#!/usr/bin/env bash
# The demo: the banking platform's blueprint on a local moto, step by step.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=target/debug
trap 'scripts/moto-down.sh' EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "Start the local AWS emulator (moto 5.2.5)"
export AWS_ENDPOINT_URL=$(scripts/moto-up.sh)
export AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo AWS_REGION=us-east-1
echo "moto at $AWS_ENDPOINT_URL"

step "Validate blueprints/banking.yaml (no AWS calls) and list its resources in dependency order"
$bin/ballast validate --list blueprints/banking.yaml

step "Simulate the scaling policy on the month-end trace (Ballast vs AWS target tracking vs HPA)"
mkdir -p target/demo
$bin/ballast simulate --blueprint blueprints/banking.yaml --trace blueprints/traces/month-end.csv \
  --plot target/demo/month-end.svg
