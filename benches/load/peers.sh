#!/usr/bin/env bash
# Peer baseline in the same run: wgate's no-op queue drain and BullMQ's, one after the other (alternating, ROUNDS
# times) against ONE redis-server started here, with the same number of jobs and the same concurrency; prints a
# markdown table with each run and the ratio of the medians.
# Usage: benches/load/peers.sh [jobs, default 30000] [concurrency, default 256] [rounds, default 3]
# Needs redis-server, node >= 20 and npm (BullMQ 6.7.0 + ioredis are installed into benches/peers/bullmq), and
# python3 with venv for arq 0.28.0 (installed into benches/peers/arq/.venv; PEERS_ARQ=0 leaves arq out).
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
arq="${PEERS_ARQ:-1}"
if [ "$arq" = 1 ]; then
  (cd benches/peers/arq && { [ -x .venv/bin/python ] || python3 -m venv .venv; } && .venv/bin/pip install -q -r requirements.txt) \
    || { echo "arq could not be installed (python3 -m venv, pip): left out" >&2; arq=0; }
fi
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
arqs=()
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
  arq_cells=""
  if [ "$arq" = 1 ]; then
    redis-cli -p "$port" flushall >/dev/null
    ajson="$(cd benches/peers/arq && REDIS_URL="$url" JOBS="$jobs" CONCURRENCY="$concurrency" .venv/bin/python drain.py | tail -n1)"
    a="$(sed -E 's/.*"drain_jobs_per_s": ([0-9]+).*/\1/' <<<"$ajson")"
    acpu="$(sed -E 's/.*"redis_cpu_us_per_job": ([0-9.]+).*/\1/' <<<"$ajson")"
    arqs+=("$a")
    arq_cells=" $a (Redis CPU $acpu us/job) | $(awk -v x="$w" -v y="$a" 'BEGIN{printf "%.2f", x/y}') |"
  fi
  rows+="| $round | $w (Redis CPU $wcpu us/job) | $b (Redis CPU $bcpu us/job) | $(awk -v a="$w" -v b="$b" 'BEGIN{printf "%.2f", a/b}') |$arq_cells"$'\n'
done

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END{print (NR%2)? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
mo="$(median "${ours[@]}")"
mt="$(median "${theirs[@]}")"

echo
if [ "$arq" = 1 ]; then
  ma="$(median "${arqs[@]}")"
  echo "| round | wgate no-op drain, jobs/s | BullMQ 6.7.0 no-op drain, jobs/s | ratio | arq 0.28.0 no-op drain, jobs/s | ratio |"
  echo "| --- | --- | --- | --- | --- | --- |"
  printf '%s' "$rows"
  echo "| **median** | **$mo** | **$mt** | **$(awk -v a="$mo" -v b="$mt" 'BEGIN{printf "%.2f", a/b}')** (target >= 2) | **$ma** | **$(awk -v a="$mo" -v b="$ma" 'BEGIN{printf "%.2f", a/b}')** |"
else
  echo "| round | wgate no-op drain, jobs/s | BullMQ 6.7.0 no-op drain, jobs/s | ratio |"
  echo "| --- | --- | --- | --- |"
  printf '%s' "$rows"
  echo "| **median** | **$mo** | **$mt** | **$(awk -v a="$mo" -v b="$mt" 'BEGIN{printf "%.2f", a/b}')** (target >= 2) |"
fi
ratios=()
for i in "${!ours[@]}"; do ratios+=("$(awk -v a="${ours[$i]}" -v b="${theirs[$i]}" 'BEGIN{printf "%.2f", a/b}')"); done
best_ours="$(printf '%s\n' "${ours[@]}" | sort -n | tail -n1)"
best_theirs="$(printf '%s\n' "${theirs[@]}" | sort -n | tail -n1)"
echo
echo "vs BullMQ: ratio of the medians $(awk -v a="$mo" -v b="$mt" 'BEGIN{printf "%.2f", a/b}'), median of the per-round ratios $(median "${ratios[@]}"), best round vs best round $(awk -v a="$best_ours" -v b="$best_theirs" 'BEGIN{printf "%.2f", a/b}') ($best_ours / $best_theirs jobs/s)."
echo "$jobs jobs, concurrency $concurrency (arq: max_jobs, poll_delay 5 ms), one redis-server $(redis-server --version | sed -E 's/.*v=([^ ]+).*/\1/') on 127.0.0.1:$port"
echo "(no persistence, FLUSHALL before each run); $(nproc) cores, $(uname -sr), load average before / after: $load_before / $(cut -d' ' -f1-3 /proc/loadavg)."
echo "command: benches/load/peers.sh $jobs $concurrency $rounds"
