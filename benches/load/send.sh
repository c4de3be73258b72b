#!/usr/bin/env bash
# A synchronous send through wgate-api (token, ownership, pacing script, one upstream call) against the same send
# straight to the simulator, same wrk settings, same run: the latency the gateway adds (target: at most 1 ms at
# p50). The session's pace is opened wide (the pacing script still runs on every send) so that wrk measures the
# path, not the pace. Usage: benches/load/send.sh [duration=10s] [connections=8] [wrk threads=1]
set -euo pipefail

duration="${1:-10s}"
connections="${2:-8}"
threads="${3:-1}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
for tool in wrk redis-server python3 curl; do
  command -v "$tool" >/dev/null || { echo "$tool is not installed (apt-get install -y $tool)" >&2; exit 1; }
done
cargo build --release --quiet -p wgate -p wgate-api-proxy -p wgate-worker -p wgate-upstream-sim
bin="${CARGO_TARGET_DIR:-$root/target}/release"

export WGATE_SEND_PER_MINUTE=1000000000 WGATE_SEND_MIN_INTERVAL_MS=0 WGATE_SEND_JITTER_MS=0
# shellcheck source=benches/load/stack.sh
. benches/load/stack.sh
start_stack warn
worker_admin=$(free_port)
env "${common[@]}" WGATE_WORKER_ADMIN_LISTEN="127.0.0.1:$worker_admin" "$bin/wgate-worker" >/dev/null &
pids+=($!)
wait_until_up "http://127.0.0.1:$worker_admin/readyz"
# One session, created through the gateway (so the tenant owns it) and scanned on the simulator.
SESSION=$(curl -sf "http://127.0.0.1:$api_port/api/v1/session-create" -H "Authorization: Bearer $TOKEN" \
  -H 'Content-Type: application/json' -d '{"name":"Bench sender"}' \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["unique_id"])')
curl -sf -o /dev/null -X POST "$sim/sim/sessions/$SESSION/scan"
export SESSION WGATE_SIM_KEY="$key"

echo "== the simulator directly" >&2
env -u TOKEN wrk -t"$threads" -c"$connections" -d"$duration" --latency -s benches/load/send_sync.lua "$sim/v1/send" \
  | tee "$dir/direct.txt" >&2
echo "== through wgate" >&2
wrk -t"$threads" -c"$connections" -d"$duration" --latency -s benches/load/send_sync.lua \
  "http://127.0.0.1:$api_port/v1/send" | tee "$dir/api.txt" >&2

# shellcheck source=benches/load/latency.sh
. benches/load/latency.sh
latency_table "wgate send" 1 "benches/load/send.sh $duration $connections $threads"
