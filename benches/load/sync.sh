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
cargo build --release --quiet --workspace --bins
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

get() { sed -nE "s/^latency p50: ([0-9.]+) ms, p99: ([0-9.]+) ms.*/\\$2/p" "$1"; }
rps() { sed -nE 's/^requests\/s: ([0-9]+)/\1/p' "$1"; }
errs() { sed -nE 's/^non-2xx or socket errors: ([0-9]+)/\1/p' "$1"; }
d50=$(get "$dir/direct.txt" 1); d99=$(get "$dir/direct.txt" 2); a50=$(get "$dir/api.txt" 1); a99=$(get "$dir/api.txt" 2)
echo
echo "| path ($connections connections) | requests/s | p50 | p99 | errors |"
echo "| --- | --- | --- | --- | --- |"
echo "| simulator directly | $(rps "$dir/direct.txt") | $d50 ms | $d99 ms | $(errs "$dir/direct.txt") |"
echo "| wgate sync session-create | $(rps "$dir/api.txt") | $a50 ms | $a99 ms | $(errs "$dir/api.txt") |"
echo "| **added by wgate** | | **$(awk -v a="$a50" -v b="$d50" 'BEGIN{printf "%.2f", a-b}') ms** (target <= 3) | **$(awk -v a="$a99" -v b="$d99" 'BEGIN{printf "%.2f", a-b}') ms** | |"
echo
echo "wgate-api memory after: $(awk '/VmRSS|VmHWM/ {printf "%s %s %s  ", $1, $2, $3}' "/proc/$api_pid/status")"
echo "$(nproc) cores, $(uname -sr); wrk, redis-server, the simulator, the API and the worker share them;"
echo "load average before / after: $load_before / $(cut -d' ' -f1-3 /proc/loadavg)."
echo "command: benches/load/sync.sh $duration $connections $threads"
