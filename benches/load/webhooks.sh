#!/usr/bin/env bash
# Webhook events received to delivered, release binaries on this machine: wrk posts WhatsGate-shaped events (unique
# ids) to POST /hooks/<token> for DURATION seconds (default 10) with CONNECTIONS connections (default 32); one
# wgate-worker delivers them to a Node endpoint on loopback. Prints the rate the API stored and acknowledged events
# at, the rate the worker delivered them at (until every acknowledged event arrived), and the idle latency from the
# worker's wgate_webhook_lag_seconds histogram, measured with an empty store and again after the posting phase (so a
# long DURATION shows pickup with a million stored events: DURATION=130 at about 8k events/s). Build first: cargo build --release -p wgate -p wgate-api-proxy
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

lag() { curl -s "http://127.0.0.1:$worker_admin/metrics" | grep -E '^wgate_webhook_lag_seconds_(bucket|count)'; }
# Idle latency: 200 events one at a time (ids from $1), then the worker's lag histogram over just those 200: how
# many arrived within each bucket bound, and the bucket holding the median.
idle_phase() {
  local first=$1 i lag_before lag_after
  lag_before=$(lag)
  for i in $(seq "$first" $((first + 199))); do
    curl -s -o /dev/null -X POST "$url" -H 'Content-Type: application/json' \
      -d "{\"id\":$i,\"whatsapp_id\":\"1\",\"event_action\":\"message\",\"event_date\":\"2026-01-01 00:00:00\",\"status_code\":200,\"event_data\":{}}"
    sleep 0.01
  done
  sleep 1
  lag_after=$(lag)
  python3 - "$lag_before" "$lag_after" <<'PY'
import re, sys
def parse(text):
    out = {}
    for line in text.splitlines():
        m = re.match(r'wgate_webhook_lag_seconds_bucket\{le="([^"]+)"\} (\S+)', line)
        if m:
            out[m.group(1)] = float(m.group(2))
    return out
before, after = parse(sys.argv[1]), parse(sys.argv[2])
rows, median = [], None
for le in sorted(after, key=lambda b: float("inf") if b == "+Inf" else float(b)):
    n = after[le] - before.get(le, 0)
    rows.append(f"<= {le} s: {n:.0f}")
    if median is None and n >= 100:
        median = le
print("  " + ", ".join(rows[:8]) + f"; p50 <= {median} s")
PY
}
echo "idle lag, empty store (200 events, one every 10 ms):"
idle_phase 1
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
stored=$(redis-cli -p "$redis_port" dbsize)
echo "idle lag with $(( $(curl -s "http://127.0.0.1:$receiver_port/count") )) events stored ($stored Redis keys):"
idle_phase 900000000
echo "reproduce: DURATION=$duration CONNECTIONS=$connections benches/load/webhooks.sh"
