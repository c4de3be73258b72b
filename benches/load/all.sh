#!/usr/bin/env bash
# Every benchmark of the repo in one command, one after the other on this machine, then one markdown table of the
# headline figures against their targets. Each part's full report is kept in a log folder (printed at the end).
# Usage: benches/load/all.sh [--quick]   (--quick: shorter wrk runs, fewer jobs, no criterion)
# Needs: cargo, redis-server, wrk, node >= 20 + npm, python3, curl.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
quick=0
[ "${1:-}" = "--quick" ] && quick=1
if [ "$quick" = 1 ]; then dur=5s; jobs=10000; rounds=1; chaos_jobs=300; else dur=10s; jobs=30000; rounds=5; chaos_jobs=1000; fi
logs="$(mktemp -d -t wgate-bench-XXXXXX)"
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"

cargo build --release --quiet --workspace --bins
bin="${CARGO_TARGET_DIR:-$root/target}/release"
step() { echo "== $1 (log: $logs/$2.log)" >&2; }

step "simulator alone, wrk" sim
benches/load/sim.sh "$dur" 64 2 >"$logs/sim.log" 2>&1
step "API async create vs bare actix 200, wrk" api
crates/api-proxy/benches/wrk/compare.sh "$dur" 64 2 >"$logs/api.log" 2>&1
step "sync session-create vs the simulator directly, wrk" sync
benches/load/sync.sh "$dur" 8 1 >"$logs/sync.log" 2>&1
step "worker and queue: pickup, no-op drain, end to end, bytes per job" queue
BENCH_JOBS="$jobs" BENCH_CONCURRENCY=256 cargo bench -p wgate-worker --bench queue --quiet >"$logs/queue.log" 2>&1
step "worker throughput with the real binaries: 1 and 2 processes, concurrency sweep" workers
if [ "$quick" = 1 ]; then benches/load/workers.sh "1 2" "16 32 256" >"$logs/workers.log" 2>&1
else benches/load/workers.sh "1 2" "1 4 16 32 64 256" >"$logs/workers.log" 2>&1; fi
step "peer baseline: BullMQ vs our no-op drain, same redis-server" peers
benches/load/peers.sh "$jobs" 256 "$rounds" >"$logs/peers.log" 2>&1
step "chaos: faults, worker SIGKILLs, redis-server restart" chaos
"$bin/wgate" chaos --jobs "$chaos_jobs" >"$logs/chaos.log" 2>&1 || true
if [ "$quick" = 0 ]; then
  step "criterion: JWT, limiter (100k tenants), validation, job records" criterion
  { cargo bench -p wgate-api-proxy --bench auth --bench limits && cargo bench -p wgate-types --bench validation --bench jobs; } >"$logs/criterion.log" 2>&1
fi

# Extraction: the first match of a pattern in a log, or "?" when a part did not print it.
pick() { local v; v="$(grep -m1 -E "$2" "$logs/$1.log" 2>/dev/null | sed -E "$3" || true)"; echo "${v:-?}"; }
# criterion prints long names on their own line, the times on the next one.
crit_next() { local v; v="$(grep -A1 -E "^$1( |\$)" "$logs/criterion.log" 2>/dev/null | grep -m1 'time:' | sed -E 's/.*time: +\[[^ ]+ [^ ]+ ([^ ]+ [^ ]+) .*/\1/' || true)"; echo "${v:-?}"; }

sim_rps="$(pick sim '^Requests/sec' 's/Requests\/sec: +//')"
sim_p99="$(pick sim '^ +99%' 's/ +99% +//')"
ratio="$(pick api '^== ratio' 's/== ratio api\/bare: //')"
half="$(pick api '^== half load .* api:' 's/.* api: ([0-9]+)[0-9.]* requests\/s, p50 ([0-9.]+ ms), p99 ([0-9.]+ ms).*/p99 \3 (p50 \2) at \1 requests\/s/')"
half_bare="$(pick api '^== half load .* bare:' 's/.* bare: .*p99 ([0-9.]+ ms).*/\1/')"
cost="$(pick api '^== CPU per request' 's/== CPU per request: //')"
wait1="$(pick api '^== wait replicas 1 vs 0' 's/== wait replicas 1 vs 0: ([0-9.]+) \(([0-9.]+) \/ ([0-9.]+) .*/\1x (\2 vs \3 requests\/s)/')"
rss="$(pick api 'memory after the run' 's/.*VmHWM: +([0-9]+) kB.*/\1 kB (VmHWM)/')"
added="$(pick sync '^\| \*\*added by wgate' 's/^\| \*\*added by wgate\*\* \| \| \*\*([0-9.-]+) ms\*\*[^|]*\| \*\*([0-9.-]+) ms\*\*.*/p50 +\1 ms, p99 +\2 ms/; s/\+-/-/g')"
pickup="$(pick queue '^\| idle pickup' 's/^\| [^|]+\| ([^|]+) \|$/\1/')"
noop="$(pick queue '^\| no-op drain' 's/^\| [^|]+\| ([^|]+) \|$/\1/')"
e2e="$(pick queue '^\| end to end' 's/^\| [^|]+\| ([^|]+) \|$/\1/')"
bytes="$(pick queue '^\| Redis bytes per finished job' 's/^\| [^|]+\| ([^|]+) \|$/\1/')"
peers="$(pick peers '^\| \*\*median' 's/^\| \*\*median\*\* \| \*\*([0-9.]+)\*\* \| \*\*([0-9.]+)\*\* \| \*\*([0-9.]+)\*\*.*/\1 vs \2 jobs\/s: \3x/')"
arq="$(pick peers '^\| \*\*median.*\| \*\*[0-9.]+\*\* \| \*\*[0-9.]+\*\* \|$' 's/^\| \*\*median\*\* \| \*\*([0-9.]+)\*\* \|.*\| \*\*([0-9.]+)\*\* \| \*\*([0-9.]+)\*\* \|$/\1 vs \2 jobs\/s: \3x/')"
lost="$(pick chaos '^\| \*\*lost' 's/.*\| \*\*([0-9]+)\*\* \|$/\1/')"
sessions="$(pick chaos '^\| \*\*upstream sessions per job' 's/.*\| \*\*([0-9]+)\*\* \|$/\1/')"
verdict="$(grep -q '^verdict: every check held' "$logs/chaos.log" && echo held || echo VIOLATED)"

echo
echo "| measure | target | result | command |"
echo "| --- | --- | --- | --- |"
echo "| simulator session-create | well over 20,000/s | $sim_rps requests/s, p99 $sim_p99 | \`benches/load/sim.sh $dur\` |"
echo "| async session-create vs a bare actix endpoint reading the same body | >= 0.5x | $ratio | \`crates/api-proxy/benches/wrk/compare.sh $dur\` |"
echo "| async session-create at half the bare endpoint's load (hey) | p99 <= 5 ms | $half; bare endpoint p99 $half_bare | (same) |"
echo "| API memory under that load | <= 64 MiB | $rss | (same) |"
echo "| cost of one async session-create (CPU per request under that load) | API <= 30 us, Redis <= 15 us | $cost | (same) |"
echo "| async session-create with \`WGATE_REDIS_WAIT_REPLICAS=1\` (one replica) vs without | stated | $wait1 | (same) |"
echo "| sync session-create over the simulator directly (8 connections) | <= 3 ms added at p50 | $added | \`benches/load/sync.sh $dur 8 1\` |"
echo "| idle pickup, enqueue to handler | p50 <= 1 ms, p99 <= 3 ms | $pickup | \`BENCH_JOBS=$jobs cargo bench -p wgate-worker --bench queue\` |"
echo "| no-op drain, our backend | | $noop | (same) |"
echo "| end to end, simulator latency 0 | >= 5,000/s | $e2e | (same) |"
echo "| Redis bytes per finished job | stated | $bytes | (same) |"
echo "| no-op drain vs BullMQ 6.7.0, same redis-server | >= 2x | $peers | \`benches/load/peers.sh $jobs 256 $rounds\` |"
echo "| no-op drain vs arq 0.28.0, same redis-server | | $arq | (same) |"
echo "| chaos ($chaos_jobs jobs, 3 worker SIGKILLs, 1 Redis restart) | 0 lost, <= 1 session per job | lost $lost, max sessions $sessions: $verdict | \`target/release/wgate chaos --jobs $chaos_jobs\` |"
if [ "$quick" = 0 ]; then
  echo "| JWT first use (signature checked) RS256 / ES256 / EdDSA | <= 50 us | $(crit_next jwt_verify/rs256_first_use) / $(crit_next jwt_verify/es256_first_use) / $(crit_next jwt_verify/eddsa_first_use); the signature check alone, same run: $(crit_next jwt_verify/rs256_signature_only) / $(crit_next jwt_verify/es256_signature_only) / $(crit_next jwt_verify/eddsa_signature_only) | \`cargo bench -p wgate-api-proxy --bench auth\` |"
  echo "| JWT verify HS256, and RS256 / ES256 / EdDSA on the same token again (verified cache) | (5 us for the whole path) | $(crit_next jwt_verify/hs256) / $(crit_next jwt_verify/rs256) / $(crit_next jwt_verify/es256) / $(crit_next jwt_verify/eddsa) | (same) |"
  echo "| limiter check, 100k tenants | | $(crit_next rate_limit/check_100000_tenants_round_robin) | \`cargo bench -p wgate-api-proxy --bench limits\` |"
  echo "| limiter memory, 100k tenants | 100k tenants | $(pick criterion '^limiter memory' 's/limiter memory: //') | (same) |"
  echo "| validation (CODE body with callback) | | $(crit_next validation/session_create_code_with_callback) | \`cargo bench -p wgate-types --bench validation\` |"
  echo "| JobRecord JSON round trip | | $(crit_next job_record/json_round_trip) | \`cargo bench -p wgate-types --bench jobs\` |"
fi
echo
echo "End to end with the real binaries (\`benches/load/workers.sh\`):"
echo
sed -n '/^| worker processes/,/^$/p' "$logs/workers.log"
echo "Machine: $(nproc) cores, $(uname -sr), $(redis-server --version | sed -E 's/.*v=([^ ]+).*/redis \1/'), node $(node --version)."
echo "Load average before / after: $load_before / $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine lowers every figure)."
echo "Full reports: $logs"
echo "command: benches/load/all.sh$([ "$quick" = 1 ] && echo ' --quick')"
