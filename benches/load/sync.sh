#!/usr/bin/env bash
# Synchronous session-create through the whole gateway (wgate-api -> Redis -> wgate-worker -> simulator -> back)
# against calling the simulator directly, same wrk settings, same run: the latency the gateway adds (target: at
# most 3 ms at p50). Low concurrency on purpose: this measures latency, not saturation.
# Usage: benches/load/sync.sh [duration=10s] [connections=8] [wrk threads=1]
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
# shellcheck source=benches/load/latency.sh
. benches/load/latency.sh
latency_start "$@"
cargo build --release --quiet --workspace --bins
bin="${CARGO_TARGET_DIR:-$root/target}/release"

# shellcheck source=benches/load/stack.sh
. benches/load/stack.sh
latency_stack
export TOKEN WGATE_SIM_KEY="$key"

direct_cmd="wrk -t$threads -c$connections -d$duration --latency -s crates/upstream-sim/bench/create.lua $sim/api/v1/session-create"
api_cmd="wrk -t$threads -c$connections -d$duration --latency -s benches/load/sync_create.lua http://127.0.0.1:$api_port/api/v1/session-create"
echo "== the simulator directly" >&2
$direct_cmd | tee "$dir/direct.txt" >&2
echo "== through wgate (sync: API, Redis, worker, simulator)" >&2
$api_cmd | tee "$dir/api.txt" >&2

latency_table "wgate sync session-create" 3 "benches/load/sync.sh $duration $connections $threads"
