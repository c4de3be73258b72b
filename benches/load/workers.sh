#!/usr/bin/env bash
# End-to-end worker throughput with the real binaries: a backlog accepted through wgate-api (wrk, async
# session-create), then drained by 1 or 2 wgate-worker processes at each concurrency, against the simulator at
# latency 0. Prints jobs/s per (processes, concurrency).
# Usage: benches/load/workers.sh [processes list, default "1 2"] [concurrency list, default "1 4 16 64 256"]
# Each cell: FLUSHALL, fill for FILL_SECS (default 2) with wrk, start the workers, count finished jobs until the
# backlog is gone or MEASURE_SECS (default 8) have passed; jobs/s = finished / elapsed (worker start-up included).
set -euo pipefail

procs_list="${1:-1 2}"
conc_list="${2:-1 4 16 64 256}"
fill="${FILL_SECS:-2}"
measure="${MEASURE_SECS:-8}"
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
workers=()
stop_workers() { for p in "${workers[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; workers=(); }
stack_before_cleanup() { stop_workers; }
start_stack error
unfinished() { redis-cli -p "$redis_port" scard '{bench}:tenant:bench:pending'; }

rows=""
for procs in $procs_list; do
  for c in $conc_list; do
    redis-cli -p "$redis_port" flushall >/dev/null
    curl -s -X POST "$sim/sim/reset" >/dev/null || true
    wrk -t2 -c64 -d"${fill}s" -s crates/api-proxy/benches/wrk/session_create.lua \
      "http://127.0.0.1:$api_port/api/v1/session-create" >/dev/null
    backlog=$(unfinished)
    t0=$(date +%s.%N)
    for _ in $(seq "$procs"); do
      env "${common[@]}" WGATE_WORKER_CONCURRENCY="$c" WGATE_WORKER_ADMIN_LISTEN="127.0.0.1:$(free_port)" \
        "$bin/wgate-worker" >/dev/null &
      workers+=($!)
    done
    left=$backlog
    while :; do
      left=$(unfinished)
      now=$(date +%s.%N)
      [ "$left" -eq 0 ] && break
      awk -v a="$now" -v b="$t0" -v m="$measure" 'BEGIN{exit !(a-b >= m)}' && break
      sleep 0.01
    done
    elapsed=$(awk -v a="$now" -v b="$t0" 'BEGIN{printf "%.2f", a-b}')
    stop_workers
    done_jobs=$((backlog - left))
    rate=$(awk -v d="$done_jobs" -v e="$elapsed" 'BEGIN{printf "%.0f", d/e}')
    echo "processes $procs, concurrency $c: $done_jobs of $backlog jobs in $elapsed s = $rate jobs/s" >&2
    rows+="| $procs | $c | $rate | $done_jobs of $backlog in $elapsed s |"$'\n'
  done
done

echo
echo "| worker processes | concurrency each | jobs/s end to end | finished / backlog, time |"
echo "| --- | --- | --- | --- |"
printf '%s' "$rows"
echo
echo "Simulator latency 0; backlog accepted through wgate-api (wrk, ${fill} s) before the workers start; the time"
echo "includes the workers' start-up. $(nproc) cores, $(uname -sr), shared by redis-server, the simulator, the API and"
echo "the workers; load average before / after: $load_before / $(cut -d' ' -f1-3 /proc/loadavg)."
echo "command: benches/load/workers.sh \"$procs_list\" \"$conc_list\""
