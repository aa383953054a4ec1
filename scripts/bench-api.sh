#!/usr/bin/env bash
# Benchmark of POST /v1/transactions (ballast-worker serve) against a private moto server on
# loopback, with wrk (Debian package `wrk`). Bounded: DURATION seconds, CONNECTIONS connections.
# Everything it starts (moto, the server) is stopped on exit; only 127.0.0.1 is used.
#
#   scripts/bench-api.sh                  # debug build, 20 s, 4 connections, 2 threads
#   PROFILE=release scripts/bench-api.sh  # release build
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-20}
CONNECTIONS=${CONNECTIONS:-4}
THREADS=${THREADS:-2}
PROFILE=${PROFILE:-dev}
command -v wrk >/dev/null || { echo "wrk not found: apt-get install -y wrk" >&2; exit 1; }

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

# 1. A private moto server.
moto_port=$(free_port)
.venv/bin/moto_server -H 127.0.0.1 -p "$moto_port" > "$work/moto.log" 2>&1 &
pids+=($!)
endpoint="http://127.0.0.1:$moto_port"
for _ in $(seq 1 300); do curl -fsS "$endpoint/moto-api/" >/dev/null 2>&1 && break; sleep 0.1; done

# 2. Queue and tables (the banking blueprint's shapes).
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1
queue_url=$(.venv/bin/python - "$endpoint" <<'PY'
import sys, boto3
ep = sys.argv[1]
ddb = boto3.client("dynamodb", endpoint_url=ep, region_name="us-east-1")
ddb.create_table(TableName="bench-accounts", BillingMode="PAY_PER_REQUEST",
    AttributeDefinitions=[{"AttributeName": k, "AttributeType": "S"} for k in ("pk", "sk")],
    KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}])
# The sweeper's and the audit trail's indexes, as in blueprints/banking.yaml.
gsis = (("pending", "pending_shard", "pending_due"), ("audit-by-time", "audit_day", "audit_sk"),
        ("audit-by-principal", "audit_principal", "audit_sk"))
ddb.create_table(TableName="bench-transactions", BillingMode="PAY_PER_REQUEST",
    AttributeDefinitions=[{"AttributeName": k, "AttributeType": "S"} for k in
        ("pk", "pending_shard", "pending_due", "audit_day", "audit_principal", "audit_sk")],
    KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
    GlobalSecondaryIndexes=[{"IndexName": n, "Projection": {"ProjectionType": "ALL"},
        "KeySchema": [{"AttributeName": h, "KeyType": "HASH"}, {"AttributeName": r, "KeyType": "RANGE"}]}
        for n, h, r in gsis])
sqs = boto3.client("sqs", endpoint_url=ep, region_name="us-east-1")
print(sqs.create_queue(QueueName="bench-transactions")["QueueUrl"])
PY
)

# 3. The API server.
cargo build --profile "$PROFILE" -p ballast-worker --bin ballast-worker
bin=target/$([[ $PROFILE == dev ]] && echo debug || echo "$PROFILE")/ballast-worker
export BALLAST_JWT_HS256_SECRET
BALLAST_JWT_HS256_SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
api_port=$(free_port)
RUST_LOG=warn "$bin" serve --listen "127.0.0.1:$api_port" --endpoint-url "$endpoint" \
  --queue-url "$queue_url" --accounts-table-name bench-accounts \
  --transactions-table-name bench-transactions --rate-limit 0 > "$work/serve.log" 2>&1 &
pids+=($!)
api="http://127.0.0.1:$api_port"
for _ in $(seq 1 300); do curl -fsS "$api/healthz" >/dev/null 2>&1 && break; sleep 0.1; done

# 4. A token and a target account.
TOKEN=$("$bin" token --sub bench --ttl 10m)
ACCOUNT=$(curl -fsS -X POST "$api/v1/accounts" -H "Authorization: Bearer $TOKEN" \
  -H 'Content-Type: application/json' -d '{"currency":"USD","type":"checking"}' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["account_id"])')
export TOKEN ACCOUNT

# 5. Load.
wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency -s scripts/bench-api.lua "$api"
depth=$(.venv/bin/python - "$endpoint" "$queue_url" <<'PY'
import sys, boto3
sqs = boto3.client("sqs", endpoint_url=sys.argv[1], region_name="us-east-1")
print(sqs.get_queue_attributes(QueueUrl=sys.argv[2], AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]["ApproximateNumberOfMessages"])
PY
)
echo "messages in queue after the run: $depth"
