#!/usr/bin/env bash
# Webhook events received to delivered, release binaries on this machine: wrk posts WhatsGate-shaped events (unique
# ids) to POST /hooks/<token> for DURATION seconds (default 10) with CONNECTIONS connections (default 32); one
# wgate-worker delivers them to a Node endpoint on loopback. Prints the rate the API stored and acknowledged events
# at, the rate the worker delivered them at (until every acknowledged event arrived), and the idle latency from the
# worker's wgate_webhook_lag_seconds histogram. Build first: cargo build --release -p wgate -p wgate-api-proxy
# -p wgate-worker -p wgate-upstream-sim.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${CARGO_TARGET_DIR:-target}/release
duration=${DURATION:-10}
connections=${CONNECTIONS:-32}
# shellcheck source=stack.sh
source benches/load/stack.sh
# The endpoint is on loopback: the API's check of the callback and the worker's egress guard must allow it.
export WGATE_EGRESS_ALLOW_NETS=127.0.0.0/8
start_stack warn

receiver_port=$(free_port)
node benches/load/webhook_receiver.js "$receiver_port" &
pids+=($!)
worker_admin=$(free_port)
env "${common[@]}" WGATE_WORKER_ADMIN_LISTEN="127.0.0.1:$worker_admin" WGATE_EGRESS_ALLOW_NETS=127.0.0.0/8 \
  WGATE_WEBHOOK_CONCURRENCY=128 WGATE_WEBHOOK_ENDPOINT_CONCURRENCY=128 "$bin/wgate-worker" >/dev/null &
pids+=($!)
wait_until_up "http://127.0.0.1:$worker_admin/readyz" "http://127.0.0.1:$receiver_port/count"

job=$(curl -s -i -X POST "http://127.0.0.1:$api_port/api/v1/session-create" -H "Authorization: Bearer $TOKEN" \
  -H 'Content-Type: application/json' -H 'Prefer: respond-async' \
  -d "{\"name\":\"webhooks\",\"callback\":\"http://127.0.0.1:$receiver_port/hook\"}" |
  awk 'tolower($1)=="x-job-id:"{print $2}' | tr -d '\r')
[ -n "$job" ] || { echo "the hooked session was not accepted" >&2; exit 1; }
hook=$(redis-cli -p "$redis_port" HGET "{bench}:job:$job" hook_token)
url="http://127.0.0.1:$api_port/hooks/$hook"

# Idle latency first: 200 events one at a time.
for i in $(seq 1 200); do
  curl -s -o /dev/null -X POST "$url" -H 'Content-Type: application/json' \
    -d "{\"id\":$i,\"whatsapp_id\":\"1\",\"event_action\":\"message\",\"event_date\":\"2026-01-01 00:00:00\",\"status_code\":200,\"event_data\":{}}"
  sleep 0.01
done
sleep 1
idle=$(curl -s "http://127.0.0.1:$worker_admin/metrics" | grep -E '^wgate_webhook_lag_seconds_(bucket|count)')
before=$(curl -s "http://127.0.0.1:$receiver_port/count")

start=$(date +%s.%N)
out=$(wrk -t2 -c"$connections" -d"${duration}s" -s benches/load/webhook_events.lua "$url")
accepted=$(echo "$out" | awk '/requests in/{print $1}')
non2xx=$(echo "$out" | awk '/Non-2xx/{print $5}')
target=$((before + accepted - ${non2xx:-0}))
while [ "$(curl -s "http://127.0.0.1:$receiver_port/count")" -lt "$target" ]; do sleep 0.05; done
end=$(date +%s.%N)
delivered=$(( $(curl -s "http://127.0.0.1:$receiver_port/count") - before ))

echo "$out" | sed -n '/Requests\/sec/p;/Latency /p;/Non-2xx/p'
python3 - "$start" "$end" "$delivered" "$duration" <<'PY'
import sys
start, end, delivered, duration = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
print(f"delivered {delivered} events in {end - start:.2f} s from the first post: {delivered / (end - start):.0f} events/s "
      f"received to delivered (posting lasted {duration:.0f} s)")
PY
echo "idle lag (200 events, one every 10 ms):"
echo "$idle"
echo "reproduce: DURATION=$duration CONNECTIONS=$connections benches/load/webhooks.sh"
