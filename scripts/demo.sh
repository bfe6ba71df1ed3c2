#!/usr/bin/env bash
# The Manager on the embedded default, one real daemon (with its Agent) and a small simulated
# fleet, so the API and the dashboard show live nodes at once. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
DATA=${OPS_DATA_DIR:-./data}
GRPC=${DEMO_GRPC:-127.0.0.1:9090}
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

OPS_DATA_DIR="$DATA" "$BIN/ops-manager" serve &
pids+=($!)
for _ in $(seq 1 120); do
  [ -s "$DATA/secrets/enrollment_token" ] && curl -sf localhost:8080/livez >/dev/null 2>&1 && break
  sleep 0.5
done
token=$(cat "$DATA/secrets/enrollment_token")

"$BIN/ops-daemon" run --manager "$GRPC" --enrollment-token "$token" \
  --state-dir "$DATA/demo-daemon" --port 9101 --labels role=demo,env=dev &
pids+=($!)
"$BIN/ops-fleet" run --manager "$GRPC" --enrollment-token "$token" --nodes "${DEMO_NODES:-25}" \
  --heartbeat-interval 10 --metric-interval 15 --churn 0.05 --state-file "$DATA/demo-fleet.json" >/dev/null &
pids+=($!)
echo "demo running: API on http://localhost:8080/api/v1, $((${DEMO_NODES:-25} + 1)) nodes reporting. Ctrl-C stops it."
wait "${pids[0]}"
