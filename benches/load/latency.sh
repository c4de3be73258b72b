# Sourced by the latency scripts (sync.sh, send.sh) after wrk wrote "$dir/direct.txt" (the simulator directly) and
# "$dir/api.txt" (through wgate): `latency_table ROW TARGET_MS COMMAND` prints the comparison table, the API's
# memory ($api_pid), the machine and the load average (from $load_before), and the command that reproduces it.
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
