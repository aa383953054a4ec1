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

step "Simulate the peak trace: its 22 msg/s plateau asks for 4.4 instances, and mode queueing spends the latency budget on it"
$bin/ballast simulate --blueprint $blueprint --trace blueprints/traces/peak.csv

step "Plan against the empty account"
$bin/ballast plan $blueprint

step "Apply (dependency order, independent resources in parallel)"
$bin/ballast apply $blueprint --auto-approve

step "Drift check, as CI runs it: exit 0 means in sync"
$bin/ballast drift $blueprint && echo "drift: exit $?"

step "Open 20 accounts with 1000.00 USD each, owned by the demo's API client"
# The API lets a client debit and read only the accounts it owns (`sub` of its token).
$bin/ballast-worker seed-accounts --blueprint $blueprint --count 20 --balance 1000.00 \
  --owner demo > $work/accounts.txt
head -3 $work/accounts.txt && echo "... ($(wc -l < $work/accounts.txt) accounts)"

step "Load exchange rates (all or nothing) and open 5 EUR accounts for cross-currency transfers"
# A rates file: each rate exact, with its source and validity window (docs/currency.md).
cat > $work/rates.yaml <<RATES
rates:
  - base: USD
    quote: EUR
    rate: "0.9215"
    source: demo FX desk
    valid_from: $(date -u -d '-1 hour' +%Y-%m-%dT%H:00:00Z)
    valid_until: $(date -u -d '+1 day' +%Y-%m-%dT%H:00:00Z)
  - base: EUR
    quote: USD
    rate: "1.0851"
    source: demo FX desk
    valid_from: $(date -u -d '-1 hour' +%Y-%m-%dT%H:00:00Z)
    valid_until: $(date -u -d '+1 day' +%Y-%m-%dT%H:00:00Z)
RATES
$bin/ballast-worker rates load --blueprint $blueprint $work/rates.yaml
$bin/ballast-worker rates list --blueprint $blueprint
$bin/ballast-worker seed-accounts --blueprint $blueprint --count 5 --balance 1000.00 \
  --currency EUR --owner demo > $work/accounts-eur.txt

step "Start the ingest API (ballast-worker serve) with a development token"
export BALLAST_JWT_HS256_SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
api_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
API=http://127.0.0.1:$api_port
# The bill runner inside serve passes every 5 s here (default: every minute).
$bin/ballast-worker serve --blueprint $blueprint --listen 127.0.0.1:$api_port \
  --rate-limit 0 --bills-interval 5s 2> $work/api.log &
pids+=($!)
until_ok 30 curl -fsS $API/readyz
TOKEN=$($bin/ballast-worker token --sub demo --ttl 1h)
echo "API at $API (OpenAPI: $API/openapi.json)"

step "Start the controller (ballast run) and the local fleet (ballast fleet local)"
# Time is compressed for the demo: the controller runs banking.yaml with its scaling policy at
# a target of 20 messages per instance, 2 s evaluations and a 20 s scale-in cooldown and
# stabilization window (the AWS resources are the same, so drift stays clean).
sed -e 's/targetBacklogPerInstance: 100/targetBacklogPerInstance: 20/' \
    -e 's/scaleInCooldown: 300s/scaleInCooldown: 20s/' \
    -e 's/stabilizationWindow: 300s/stabilizationWindow: 20s/' \
    -e 's/evaluationInterval: 10s/evaluationInterval: 2s/' $blueprint > $work/banking-compressed.yaml
ctl_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
BALLAST_LOG=info $bin/ballast run $work/banking-compressed.yaml --resync 15s \
  --metrics-addr 127.0.0.1:$ctl_port 2> $work/controller.log &
pids+=($!)
# Workers drop scale-in protection after 1 s idle, so scale-in is not held up by moto (which
# never comes back for an instance that was protected when the capacity dropped).
# The workers score every movement with the risk rules (docs/risk.md). The demo's copy raises
# the velocity and new-account limits above what its compressed day does to 20 accounts, so that
# the one transaction held is the large transfer of the next step.
sed -e 's/maxCount: 60/maxCount: 5000/' -e 's/maxAmount: 250/maxAmount: 900/' \
  packaging/risk-rules.yaml > $work/risk-rules.yaml
BALLAST_LOG=info $bin/ballast fleet local --blueprint $blueprint -- --concurrency 8 \
  --breaker-cooldown 2s --wait-time-seconds 1 --idle-debounce 1s \
  --risk-rules $work/risk-rules.yaml > $work/fleet.out 2> $work/fleet.log &
pids+=($!)
until_ok 60 curl -fsS 127.0.0.1:$ctl_port/readyz
echo "controller metrics at http://127.0.0.1:$ctl_port/metrics; fleet log in $work/fleet.log"

step "Risk: a large transfer is held for review, then approved by an operator"
mapfile -t accounts < $work/accounts.txt
held=$(curl -fsS -X POST "$API/v1/transactions" -H "Authorization: Bearer $TOKEN" \
  -H 'Content-Type: application/json' -H "Idempotency-Key: demo-large-1" \
  -d "{\"type\":\"TRANSFER\",\"source_account\":\"${accounts[0]}\",\"target_account\":\"${accounts[1]}\",\"amount\":\"750.00\",\"currency\":\"USD\"}" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["transaction_id"])')
tx_status() {
  curl -fsS -H "Authorization: Bearer $TOKEN" "$API/v1/transactions/$held" |
    python3 -c 'import json,sys; t=json.load(sys.stdin); print(t["status"], t.get("reason_code") or "")'
}
until_ok 60 bash -c "curl -fsS -H 'Authorization: Bearer $TOKEN' $API/v1/transactions/$held | grep -q HELD"
echo "750.00 USD ${accounts[0]} -> ${accounts[1]}: $(tx_status)"
# An operator (scope accounts:admin, and not the owner of either account: four eyes).
OPS=$($bin/ballast-worker token --sub ops --scope "accounts:admin accounts:read transactions:read" --ttl 1h)
echo "pending reviews:"
curl -fsS -H "Authorization: Bearer $OPS" "$API/v1/reviews" |
  python3 -c 'import json,sys; [print("  ", r["transaction_id"], r["amount"], r["currency"], "score", r["risk_score"], r["rules"]) for r in json.load(sys.stdin)["reviews"]]'
echo "approve: $(curl -fsS -X POST -H "Authorization: Bearer $OPS" "$API/v1/reviews/$held/approve")"
echo "again:   $(curl -sS -X POST -H "Authorization: Bearer $OPS" "$API/v1/reviews/$held/approve" |
  python3 -c 'import json,sys; p=json.load(sys.stdin); print(p["status"], p["code"])') (applied once)"
echo "750.00 USD ${accounts[0]} -> ${accounts[1]}: $(tx_status)"

step "Bill payments: a payee and a monthly schedule due today, paid once by the runner in serve"
json_field() { python3 -c "import json,sys; print(json.load(sys.stdin)[\"$1\"])"; }
auth=(-H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json')
payee=$(curl -fsS -X POST "${auth[@]}" "$API/v1/payees" \
  -d "{\"biller_id\":\"UTILITYCO\",\"account\":\"${accounts[2]}\",\"name\":\"Electricity\"}" | json_field payee_id)
today=$(date -u +%Y-%m-%d)
schedule=$(curl -fsS -X POST "${auth[@]}" "$API/v1/payees/$payee/schedules" \
  -d "{\"source_account\":\"${accounts[3]}\",\"amount\":\"42.50\",\"currency\":\"USD\",\"first_due\":\"$today\",\"recurrence\":\"MONTHLY\",\"count\":3}" |
  json_field schedule_id)
echo "schedule $schedule: 42.50 USD ${accounts[3]} -> UTILITYCO (${accounts[2]}), monthly from $today, 3 times"
schedule_view() { curl -fsS -H "Authorization: Bearer $TOKEN" "$API/v1/schedules/$schedule"; }
until_ok 60 bash -c "curl -fsS -H 'Authorization: Bearer $TOKEN' $API/v1/schedules/$schedule | grep -q transaction_id"
paid=$(schedule_view | python3 -c 'import json,sys; s=json.load(sys.stdin); print(s["past"][0]["transaction_id"])')
until_ok 60 bash -c "curl -fsS -H 'Authorization: Bearer $TOKEN' $API/v1/transactions/$paid | grep -q COMPLETED"
schedule_view | python3 -c 'import json,sys; s=json.load(sys.stdin); print("  status", s["status"], "next_due", s["next_due"], "paid", [(p["date"], p["transaction_id"]) for p in s["past"]])'
echo "  payment $paid: $(curl -fsS -H "Authorization: Bearer $TOKEN" "$API/v1/transactions/$paid" | json_field status) (key bill:$schedule:$today: a second pass or a restart cannot pay it twice)"

step "Drive a compressed business day through POST /v1/transactions, with a live view"
echo "normal 3/s for 15 s, peak 8/s for 15 s, month-end 12/s for 20 s, off-peak 2/s for 15 s;"
echo "at month-end a batch producer also puts 1500 payroll-run transactions on the queue directly,"
echo "one in ten of them a conversion between the USD and the EUR accounts"
mapfile -t accounts < $work/accounts.txt
post() {
  curl -sS -o /dev/null -w '%{http_code}\n' -X POST "$API/v1/transactions" \
    -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    -H "Idempotency-Key: $1" -d "$2" >> $work/sent.txt 2>/dev/null || echo failed >> $work/sent.txt
}
body() {
  local a=${accounts[RANDOM % ${#accounts[@]}]} b=${accounts[RANDOM % ${#accounts[@]}]}
  while [[ $a == "$b" ]]; do b=${accounts[RANDOM % ${#accounts[@]}]}; done
  local amount="$((RANDOM % 300 + 1)).$((RANDOM % 90 + 10))"
  case $((RANDOM % 10)) in
    0) echo "{\"type\":\"DEPOSIT\",\"target_account\":\"$b\",\"amount\":\"$amount\",\"currency\":\"USD\"}" ;;
    1) echo "{\"type\":\"WITHDRAWAL\",\"source_account\":\"$a\",\"amount\":\"$amount\",\"currency\":\"USD\"}" ;;
    2) echo "{\"type\":\"PAYMENT\",\"source_account\":\"$a\",\"target_account\":\"$b\",\"amount\":\"$amount\",\"currency\":\"USD\"}" ;;
    *) echo "{\"type\":\"TRANSFER\",\"source_account\":\"$a\",\"target_account\":\"$b\",\"amount\":\"$amount\",\"currency\":\"USD\"}" ;;
  esac
}
status() { .venv/bin/python scripts/demo-status.py $work/sent.txt $demo_start; }
: > $work/sent.txt
rm -f $work/status.prev
demo_start=$(date +%s)
( while :; do status || true; sleep 3; done ) &
view=$!
n=0
posts=()
# First, one cross-currency transfer through the API: 100.00 USD credited in EUR.
eur_first=$(head -1 $work/accounts-eur.txt)
fx_id=$(curl -sS -X POST "$API/v1/transactions" -H "Authorization: Bearer $TOKEN" \
  -H 'Content-Type: application/json' -H "Idempotency-Key: demo-fx-1" \
  -d "{\"type\":\"TRANSFER\",\"source_account\":\"${accounts[0]}\",\"target_account\":\"$eur_first\",\"amount\":\"100.00\",\"currency\":\"USD\",\"target_currency\":\"EUR\"}" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["transaction_id"])')
for phase in "3 15" "8 15" "12 20" "2 15"; do
  read -r rate secs <<< "$phase"
  if [[ $rate == 12 ]]; then
    # Producer → SQS without the API: the month-end batch (seed message format, 2% invalid).
    # Sent in chunks of 100 so that the live view's count follows the queue.
    ( for _ in $(seq 1 15); do
        $bin/ballast-worker send --blueprint $blueprint --count 100 --rate 1000 --invalid 0.02 \
          --accounts-file $work/accounts.txt --fx-accounts-file $work/accounts-eur.txt \
          --fx-currency EUR --conversions 0.1 > /dev/null 2>> $work/batch.log &&
          echo "queued 100" >> $work/sent.txt
      done ) &
    posts+=($!)
  fi
  for _ in $(seq 1 "$secs"); do
    for _ in $(seq 1 "$rate"); do
      n=$((n + 1))
      post "day-$n" "$(body)" &
      posts+=($!)
    done
    sleep 1
  done
done
for pid in "${posts[@]}"; do wait "$pid" 2>/dev/null || true; done
echo "load done: $(grep -c '^202$' $work/sent.txt) of $n accepted by the API, $(awk '$1 == "queued" {n += $2} END {print n + 0}' $work/sent.txt) queued by the batch producer"

# Drained, then back at the minimum of 2 after the cooldown.
# Scoring reads the velocity and account items of every debit: on a busy moto the drain takes
# longer than without risk rules, and scale-in then steps down one instance per cooldown.
deadline=$((SECONDS + 360))
until [[ $(status | awk '{print $5, $8, $15}') == "0 0 2" ]]; do
  ((SECONDS < deadline)) || { kill $view; echo "the fleet did not drain and scale in in time" >&2; exit 1; }
  sleep 2
done
kill $view 2>/dev/null; wait $view 2>/dev/null || true
status

step "Scaling actions taken by the controller"
curl -fsS 127.0.0.1:$ctl_port/metrics | grep -E '^ballast_(scaling_actions_total|fleet_|leader)' || true
echo "the local fleet, one line per change:"
sed 's/^/  /; s/ (.*//' $work/fleet.out

step "Results: every transaction has one result, and money is conserved in each currency"
# Conversions move money between currencies only through the bank's FX positions: the report
# shows them and checks both (docs/currency.md).
$bin/ballast-worker report --blueprint $blueprint

step "The cross-currency transfer through the API: both legs, the rate and the rounding"
curl -sS -H "Authorization: Bearer $TOKEN" "$API/v1/transactions/$fx_id" | python3 -m json.tool

step "A transfer's status and the first account's history, through the API"
first=${accounts[0]}
curl -sS -H "Authorization: Bearer $TOKEN" "$API/v1/accounts/$first" && echo
curl -sS -H "Authorization: Bearer $TOKEN" "$API/v1/accounts/$first/transactions?limit=3" |
  python3 -c 'import json,sys; p=json.load(sys.stdin); [print("  ", e["posted_at"], e["type"], e["direction"], e["amount"], e["currency"]) for e in p["entries"]]'

step "Drift check after the run: still in sync"
$bin/ballast drift $blueprint && echo "drift: exit $?"
