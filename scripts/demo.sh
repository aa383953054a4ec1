#!/usr/bin/env bash
# The demo: the banking platform of blueprints/banking.yaml on a local moto, end to end.
# Provision it, check drift, open accounts, drive transactions through the ingest API, let the
# worker drain the queue, summarize the ledger, and check drift again. Stops by itself and
# leaves no process behind.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=target/debug
blueprint=blueprints/banking.yaml
work=target/demo
mkdir -p "$work"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  scripts/moto-down.sh
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
# Polls a command until it succeeds (at most $1 seconds).
until_ok() {
  local deadline=$((SECONDS + $1)); shift
  until "$@" > /dev/null 2>&1; do
    ((SECONDS < deadline)) || { echo "timed out waiting for: $*" >&2; return 1; }
    sleep 0.2
  done
}

step "Start the local AWS emulator (moto 5.2.5)"
scripts/moto-down.sh > /dev/null 2>&1 || true # a fresh, empty account every run
export AWS_ENDPOINT_URL=$(scripts/moto-up.sh)
export AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo AWS_REGION=us-east-1
export BALLAST_LOG=warn
echo "moto at $AWS_ENDPOINT_URL"

step "Validate $blueprint (no AWS calls) and list its resources in dependency order"
$bin/ballast validate --list $blueprint

step "Simulate the scaling policy on the month-end trace (Ballast vs AWS target tracking vs HPA)"
$bin/ballast simulate --blueprint $blueprint --trace blueprints/traces/month-end.csv \
  --plot $work/month-end.svg

step "Plan against the empty account"
$bin/ballast plan $blueprint

step "Apply (dependency order, independent resources in parallel)"
$bin/ballast apply $blueprint --auto-approve

step "Drift check, as CI runs it: exit 0 means in sync"
$bin/ballast drift $blueprint && echo "drift: exit $?"

step "Open 20 accounts with 1000.00 USD each"
$bin/ballast-worker seed-accounts --blueprint $blueprint --count 20 --balance 1000.00 \
  > $work/accounts.txt
head -3 $work/accounts.txt && echo "... ($(wc -l < $work/accounts.txt) accounts)"

step "Start the ingest API (ballast-worker serve) with a development token"
export BALLAST_JWT_HS256_SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
api_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
API=http://127.0.0.1:$api_port
$bin/ballast-worker serve --blueprint $blueprint --listen 127.0.0.1:$api_port \
  --rate-limit 0 2> $work/api.log &
pids+=($!)
until_ok 30 curl -fsS $API/readyz
TOKEN=$($bin/ballast-worker token --sub demo --ttl 1h)
echo "API at $API (OpenAPI: $API/openapi.json)"

step "Drive 300 transactions through POST /v1/transactions (8 clients in parallel)"
mapfile -t accounts < $work/accounts.txt
: > $work/requests.txt
for i in $(seq 1 300); do
  a=${accounts[RANDOM % ${#accounts[@]}]}
  b=${accounts[RANDOM % ${#accounts[@]}]}
  [[ $a == "$b" ]] && b=${accounts[(RANDOM + 1) % ${#accounts[@]}]}
  [[ $a == "$b" ]] && continue
  amount="$((RANDOM % 300 + 1)).$((RANDOM % 90 + 10))"
  case $((i % 10)) in
    0) body="{\"type\":\"DEPOSIT\",\"target_account\":\"$b\",\"amount\":\"$amount\",\"currency\":\"USD\"}" ;;
    1) body="{\"type\":\"WITHDRAWAL\",\"source_account\":\"$a\",\"amount\":\"$amount\",\"currency\":\"USD\"}" ;;
    2) body="{\"type\":\"PAYMENT\",\"source_account\":\"$a\",\"target_account\":\"$b\",\"amount\":\"$amount\",\"currency\":\"USD\"}" ;;
    *) body="{\"type\":\"TRANSFER\",\"source_account\":\"$a\",\"target_account\":\"$b\",\"amount\":\"$amount\",\"currency\":\"USD\"}" ;;
  esac
  echo "demo-$i $body" >> $work/requests.txt
done
post() {
  curl -sS -o /dev/null -w '%{http_code}\n' -X POST "$API/v1/transactions" \
    -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    -H "Idempotency-Key: $1" -d "$2"
}
export -f post
export API TOKEN
started=$SECONDS
xargs -P 8 -d '\n' -n 1 bash -c 'post "${0%% *}" "${0#* }"' < $work/requests.txt |
  sort | uniq -c | awk '{print "  HTTP " $2 ": " $1}'
echo "  in $((SECONDS - started)) s"

step "Start a worker (ballast-worker consume) and watch it drain the queue"
# A short breaker cooldown and long-poll wait keep the demo brisk; see --help for the defaults.
$bin/ballast-worker consume --blueprint $blueprint --no-fleet --metrics-addr 127.0.0.1:0 \
  --concurrency 8 --breaker-cooldown 2s --wait-time-seconds 1 2> $work/worker.log &
pids+=($!)
queue_depth() {
  $bin/ballast scale $blueprint --once --dry-run --output json 2>/dev/null |
    python3 -c 'import json,sys; r=json.loads(sys.stdin.readline()); print(r["visible"], r["in_flight"])'
}
deadline=$((SECONDS + 120))
while :; do
  read -r visible in_flight < <(queue_depth)
  printf '  queue: %4s visible, %3s in flight\n' "$visible" "$in_flight"
  [[ $visible == 0 && $in_flight == 0 ]] && break
  ((SECONDS < deadline)) || { echo "the worker did not drain the queue in time" >&2; exit 1; }
  sleep 2
done

step "Results: every transaction has one result, and money is conserved"
$bin/ballast-worker report --blueprint $blueprint

step "A transfer's status and the first account's history, through the API"
first=${accounts[0]}
curl -sS -H "Authorization: Bearer $TOKEN" "$API/v1/accounts/$first" && echo
curl -sS -H "Authorization: Bearer $TOKEN" "$API/v1/accounts/$first/transactions?limit=3" |
  python3 -c 'import json,sys; p=json.load(sys.stdin); [print("  ", e["posted_at"], e["type"], e["direction"], e["amount"], e["currency"]) for e in p["entries"]]'

step "Drift check after the run: still in sync"
$bin/ballast drift $blueprint && echo "drift: exit $?"
