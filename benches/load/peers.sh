#!/usr/bin/env bash
# Peer baseline in the same run: wgate's no-op queue drain and BullMQ's, one after the other (alternating, ROUNDS
# times) against ONE redis-server started here, with the same number of jobs and the same concurrency; prints a
# markdown table with each run and the ratio of the medians.
# Usage: benches/load/peers.sh [jobs, default 30000] [concurrency, default 256] [rounds, default 3]
# Needs redis-server, node >= 20 and npm (BullMQ 6.7.0 + ioredis are installed into benches/peers/bullmq).
set -euo pipefail

jobs="${1:-30000}"
concurrency="${2:-256}"
rounds="${3:-3}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"

for tool in redis-server redis-cli node npm; do
  command -v "$tool" >/dev/null || { echo "$tool is not installed (redis-server: apt-get install -y redis-server; node 20: nodejs)" >&2; exit 1; }
done

(cd benches/peers/bullmq && { [ -f package-lock.json ] && npm ci --no-audit --no-fund --silent || npm install --no-audit --no-fund --silent; })
cargo bench -p wgate-worker --bench queue --no-run --quiet

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
dir="$(mktemp -d)"
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" --daemonize no >/dev/null 2>&1 &
redis_pid=$!
cleanup() { kill "$redis_pid" 2>/dev/null || true; wait "$redis_pid" 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
for _ in $(seq 1 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done
url="redis://127.0.0.1:$port"

ours=()
theirs=()
rows=""
for round in $(seq 1 "$rounds"); do
  redis-cli -p "$port" flushall >/dev/null
  out="$(BENCH_ONLY=noop BENCH_REDIS_URL="$url" BENCH_JOBS="$jobs" BENCH_CONCURRENCY="$concurrency" \
    cargo bench -p wgate-worker --bench queue --quiet 2>/dev/null)"
  w="$(grep '^| no-op drain' <<<"$out" | sed -E 's/.*\| ([0-9]+) jobs\/s \|$/\1/')"
  wcpu="$(grep '^| Redis CPU per job' <<<"$out" | sed -E 's/.*\| ([0-9.]+) us \|$/\1/')"
  ours+=("$w")
  redis-cli -p "$port" flushall >/dev/null
  json="$(cd benches/peers/bullmq && REDIS_URL="$url" JOBS="$jobs" CONCURRENCY="$concurrency" node drain.mjs | tail -n1)"
  b="$(sed -E 's/.*"drain_jobs_per_s":([0-9]+).*/\1/' <<<"$json")"
  bcpu="$(sed -E 's/.*"redis_cpu_us_per_job":([0-9.]+).*/\1/' <<<"$json")"
  theirs+=("$b")
  rows+="| $round | $w (Redis CPU $wcpu us/job) | $b (Redis CPU $bcpu us/job) | $(awk -v a="$w" -v b="$b" 'BEGIN{printf "%.2f", a/b}') |"$'\n'
done

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END{print (NR%2)? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
mo="$(median "${ours[@]}")"
mt="$(median "${theirs[@]}")"

echo
echo "| round | wgate no-op drain, jobs/s | BullMQ 6.7.0 no-op drain, jobs/s | ratio |"
echo "| --- | --- | --- | --- |"
printf '%s' "$rows"
echo "| **median** | **$mo** | **$mt** | **$(awk -v a="$mo" -v b="$mt" 'BEGIN{printf "%.2f", a/b}')** (target >= 1.5) |"
echo
echo "$jobs jobs, concurrency $concurrency, one redis-server $(redis-server --version | sed -E 's/.*v=([^ ]+).*/\1/') on 127.0.0.1:$port"
echo "(no persistence, FLUSHALL before each run); $(nproc) cores, $(uname -sr), load average before / after: $load_before / $(cut -d' ' -f1-3 /proc/loadavg)."
echo "command: benches/load/peers.sh $jobs $concurrency $rounds"
