#!/usr/bin/env bash
# A synchronous send through wgate-api (token, ownership, pacing script, one upstream call) against the same send
# straight to the simulator, same wrk settings, same run: the latency the gateway adds (target: at most 1 ms at
# p50). The session's pace is opened wide (the pacing script still runs on every send) so that wrk measures the
# path, not the pace. Usage: benches/load/send.sh [duration=10s] [connections=8] [wrk threads=1]
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
# shellcheck source=benches/load/latency.sh
. benches/load/latency.sh
latency_start "$@"
cargo build --release --quiet -p wgate -p wgate-api-proxy -p wgate-worker -p wgate-upstream-sim
bin="${CARGO_TARGET_DIR:-$root/target}/release"

export WGATE_SEND_PER_MINUTE=1000000000 WGATE_SEND_MIN_INTERVAL_MS=0 WGATE_SEND_JITTER_MS=0
# shellcheck source=benches/load/stack.sh
. benches/load/stack.sh
latency_stack
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

latency_table "wgate send" 1 "benches/load/send.sh $duration $connections $threads"
