# Sourced by the latency scripts (sync.sh, send.sh), from the repository root. `latency_start "$@"` reads their
# arguments ([duration=10s] [connections=8] [wrk threads=1]), notes the load average and checks the tools;
# `latency_stack` starts the stack (stack.sh, sourced by the caller) and one wgate-worker; once wrk
# wrote "$dir/direct.txt" (the simulator directly) and "$dir/api.txt" (through wgate), `latency_table ROW TARGET_MS
# COMMAND` prints the comparison table, the API's memory ($api_pid), the machine and the load average, and the
# command that reproduces it.
latency_start() {
  duration="${1:-10s}"
  connections="${2:-8}"
  threads="${3:-1}"
  load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
  for tool in wrk redis-server redis-cli python3 curl; do
    command -v "$tool" >/dev/null || { echo "$tool is not installed (apt-get install -y $tool)" >&2; exit 1; }
  done
}

# The stack of stack.sh (sourced by the caller, which owns its clean-up trap) and one wgate-worker.
latency_stack() {
  start_stack warn
  local worker_admin
  worker_admin=$(free_port)
  env "${common[@]}" WGATE_WORKER_ADMIN_LISTEN="127.0.0.1:$worker_admin" "$bin/wgate-worker" >/dev/null &
  pids+=($!)
  wait_until_up "http://127.0.0.1:$worker_admin/readyz"
}

latency_table() {
  local row="$1" target="$2" command="$3"
  get() { sed -nE "s/^latency p50: ([0-9.]+) ms, p99: ([0-9.]+) ms.*/\\$2/p" "$1"; }
  rps() { sed -nE 's/^requests\/s: ([0-9]+)/\1/p' "$1"; }
  errs() { sed -nE 's/^non-2xx or socket errors: ([0-9]+)/\1/p' "$1"; }
  local d50 d99 a50 a99
  d50=$(get "$dir/direct.txt" 1); d99=$(get "$dir/direct.txt" 2); a50=$(get "$dir/api.txt" 1); a99=$(get "$dir/api.txt" 2)
  echo
  echo "| path ($connections connections) | requests/s | p50 | p99 | errors |"
  echo "| --- | --- | --- | --- | --- |"
  echo "| simulator directly | $(rps "$dir/direct.txt") | $d50 ms | $d99 ms | $(errs "$dir/direct.txt") |"
  echo "| $row | $(rps "$dir/api.txt") | $a50 ms | $a99 ms | $(errs "$dir/api.txt") |"
  echo "| **added by wgate** | | **$(awk -v a="$a50" -v b="$d50" 'BEGIN{printf "%.2f", a-b}') ms** (target <= $target) | **$(awk -v a="$a99" -v b="$d99" 'BEGIN{printf "%.2f", a-b}') ms** | |"
  echo
  echo "wgate-api memory after: $(awk '/VmRSS|VmHWM/ {printf "%s %s %s  ", $1, $2, $3}' "/proc/$api_pid/status")"
  echo "$(nproc) cores, $(uname -sr); wrk, redis-server, the simulator, the API and the worker share them;"
  echo "load average before / after: $load_before / $(cut -d' ' -f1-3 /proc/loadavg)."
  echo "command: $command"
}
