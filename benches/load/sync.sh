#!/usr/bin/env bash
# Synchronous session-create through the whole gateway (wgate-api -> Redis -> wgate-worker -> simulator -> back)
# against calling the simulator directly, same wrk settings, same run: the latency the gateway adds (target: at
# most 3 ms at p50). Low concurrency on purpose: this measures latency, not saturation.
# Usage: benches/load/sync.sh [duration=10s] [connections=8] [wrk threads=1]
set -euo pipefail

duration="${1:-10s}"
connections="${2:-8}"
threads="${3:-1}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
for tool in wrk redis-server redis-cli python3 curl; do
  command -v "$tool" >/dev/null || { echo "$tool is not installed (apt-get install -y $tool)" >&2; exit 1; }
done
cargo build --release --quiet --bins
bin="${CARGO_TARGET_DIR:-$root/target}/release"

# shellcheck source=benches/load/stack.sh
. benches/load/stack.sh
start_stack warn
worker_admin=$(free_port)
env "${common[@]}" WGATE_WORKER_ADMIN_LISTEN="127.0.0.1:$worker_admin" "$bin/wgate-worker" >/dev/null &
pids+=($!)
wait_until_up "http://127.0.0.1:$worker_admin/readyz"
export TOKEN WGATE_SIM_KEY="$key"

direct_cmd="wrk -t$threads -c$connections -d$duration --latency -s crates/upstream-sim/bench/create.lua $sim/api/v1/session-create"
api_cmd="wrk -t$threads -c$connections -d$duration --latency -s benches/load/sync_create.lua http://127.0.0.1:$api_port/api/v1/session-create"
echo "== the simulator directly" >&2
$direct_cmd | tee "$dir/direct.txt" >&2
echo "== through wgate (sync: API, Redis, worker, simulator)" >&2
$api_cmd | tee "$dir/api.txt" >&2

# shellcheck source=benches/load/latency.sh
. benches/load/latency.sh
latency_table "wgate sync session-create" 3 "benches/load/sync.sh $duration $connections $threads"
