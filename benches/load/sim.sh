#!/usr/bin/env bash
# Load test of the WhatsGate simulator alone: session-create with --latency-ms 0, measured with wrk.
# Usage: benches/load/sim.sh [duration, default 10s] [connections, default 64] [wrk threads, default 2]
# Builds the release binary if needed (cargo reuses an up-to-date one), starts it on a free port, runs wrk,
# prints wrk's report and the simulator's counters, and stops the simulator.
set -euo pipefail

duration="${1:-10s}"
connections="${2:-64}"
threads="${3:-2}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

if ! command -v wrk >/dev/null; then
  echo "wrk is not installed: apt-get install -y wrk (with sudo when not root)" >&2
  exit 1
fi

cargo build --release --quiet -p wgate-upstream-sim
bin="${CARGO_TARGET_DIR:-$root/target}/release/wgate-sim"

out="$(mktemp)"
WGATE_LOG=warn "$bin" --listen 127.0.0.1:0 --latency-ms 0 --seed 1 >"$out" 2>/dev/null &
sim_pid=$!
cleanup() { kill "$sim_pid" 2>/dev/null || true; wait "$sim_pid" 2>/dev/null || true; rm -f "$out"; }
trap cleanup EXIT

base=""
for _ in $(seq 1 100); do
  base="$(sed -n 's/^listening on //p' "$out" | head -n1)"
  [ -n "$base" ] && break
  sleep 0.05
done
if [ -z "$base" ]; then
  echo "wgate-sim did not start" >&2
  exit 1
fi

cmd="wrk -t$threads -c$connections -d$duration --latency -s crates/upstream-sim/bench/create.lua $base/api/v1/session-create"
echo "machine: $(nproc) cores, $(uname -sr); wrk and the simulator share them"
echo "command: $cmd"
$cmd
echo "simulator stats: $(curl -s "$base/sim/stats" | sed 's/"by_name":{[^}]*},//')"
