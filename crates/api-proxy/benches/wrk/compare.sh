#!/usr/bin/env bash
# Asynchronous session-create through wgate-api (JWT, rate limit, validation, Lua enqueue in Redis) against a bare
# actix-web 200 endpoint, same wrk settings, same machine, same run. Target: ratio >= 0.5. Then the latency of
# both at half the measured API throughput, at a constant rate (hey). Target: p99 <= 5 ms. Last, the same API run
# with WGATE_REDIS_WAIT_REPLICAS=1 against a replica started here (REPLICA_RUN=0 leaves it out): what waiting for a
# replica's acknowledgement costs.
#
# Beside each API run it prints the API's and Redis's CPU per request (process CPU time over the run / requests):
# the cost of one async session-create. API_BIN=<path> runs another wgate-api build (an older commit's) instead;
# REDIS_ARGS="--name value ..." is added to the redis-server command line (e.g. a listpack size).
#
#   crates/api-proxy/benches/wrk/compare.sh [duration=10s] [connections=64] [wrk threads=2]
set -euo pipefail
cd "$(dirname "$0")/../../../.."
DURATION=${1:-10s}
CONNECTIONS=${2:-64}
THREADS=${3:-2}
command -v wrk >/dev/null || { echo "wrk is not installed: apt-get install -y wrk" >&2; exit 1; }
command -v redis-server >/dev/null || { echo "redis-server is not installed: apt-get install -y redis-server" >&2; exit 1; }
cargo build --release -q -p wgate-api-proxy --bin wgate-api --example bare_200
BIN="${CARGO_TARGET_DIR:-$PWD/target}/release"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
REDIS_PORT=$(free_port); API_PORT=$(free_port); ADMIN_PORT=$(free_port); BARE_PORT=$(free_port)
DIR=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$DIR"; }
trap cleanup EXIT

# shellcheck disable=SC2086 # REDIS_ARGS is a list of arguments
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$DIR" ${REDIS_ARGS:-} >/dev/null &
PIDS+=($!)
SECRET=bench-secret-0123456789
WGATE_REDIS_URL=redis://127.0.0.1:$REDIS_PORT WGATE_NAMESPACE=bench WGATE_JWT_SECRET=$SECRET \
  WGATE_API_LISTEN=127.0.0.1:$API_PORT WGATE_API_ADMIN_LISTEN=127.0.0.1:$ADMIN_PORT \
  WGATE_RATE_PER_SECOND=1000000000 WGATE_RATE_BURST=1000000000 WGATE_LOG=warn \
  "${API_BIN:-$BIN/wgate-api}" &
API_PID=$!
PIDS+=($API_PID)
"$BIN/examples/bare_200" "127.0.0.1:$BARE_PORT" &
PIDS+=($!)
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$ADMIN_PORT/readyz" >/dev/null && curl -s -o /dev/null "http://127.0.0.1:$BARE_PORT/" && break
  sleep 0.1
done

TOKEN=$(python3 - "$SECRET" <<'PY'
import base64, hashlib, hmac, json, sys, time
b = lambda d: base64.urlsafe_b64encode(d).rstrip(b"=")
h = b(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
c = b(json.dumps({"sub": "bench", "aud": "wgate", "exp": int(time.time()) + 3600}).encode())
s = b(hmac.new(sys.argv[1].encode(), h + b"." + c, hashlib.sha256).digest())
print((h + b"." + c + b"." + s).decode())
PY
)
export TOKEN
SCRIPT=crates/api-proxy/benches/wrk/session_create.lua
echo "== bare actix 200 (baseline)"
wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$SCRIPT" "http://127.0.0.1:$BARE_PORT/api/v1/session-create" | tee "$DIR/bare.txt"
# CPU seconds a process has used (user + system), and Redis's own (INFO cpu).
cpu_of() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.4f", ($14 + $15) / hz}' "/proc/$1/stat"; }
redis_cpu() { redis-cli -p "$REDIS_PORT" info cpu | awk -F: '/^used_cpu_(user|sys):/ {s += $2} END {printf "%.4f", s}'; }
# Runs wrk against an API and prints the API's and Redis's CPU per request over the run.
api_run() {
  local port=$1 pid=$2 out=$3 a0 r0
  a0=$(cpu_of "$pid"); r0=$(redis_cpu)
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$SCRIPT" "http://127.0.0.1:$port/api/v1/session-create" | tee "$out"
  local n; n=$(awk '/requests in/ {print $1}' "$out")
  echo "== CPU per request: API $(awk -v a="$(cpu_of "$pid")" -v b="$a0" -v n="$n" 'BEGIN {printf "%.1f", (a - b) / n * 1e6}') us, Redis $(awk -v a="$(redis_cpu)" -v b="$r0" -v n="$n" 'BEGIN {printf "%.1f", (a - b) / n * 1e6}') us ($n requests)"
}
echo "== wgate-api async session-create"
api_run "$API_PORT" "$API_PID" "$DIR/api.txt"
echo "== answers by status (wgate-api)"
curl -s "http://127.0.0.1:$ADMIN_PORT/metrics" | grep '^wgate_http_requests_total'
echo "== wgate-api memory after the run: $(awk '/VmRSS|VmHWM/ {printf "%s %s %s  ", $1, $2, $3}' "/proc/$API_PID/status")"
echo "== queued jobs in Redis: $(redis-cli -p "$REDIS_PORT" XLEN '{bench}:queue:session-create')"
BARE=$(awk '/Requests\/sec/ {print $2}' "$DIR/bare.txt")
API=$(awk '/Requests\/sec/ {print $2}' "$DIR/api.txt")
echo "== ratio api/bare: $(python3 -c "print(round($API / $BARE, 3))") ($API / $BARE requests/s)"

# The same API, acknowledging each enqueue only once a replica has it (WAIT 1), against a replica of the same Redis.
if [ "${REPLICA_RUN:-1}" = 1 ]; then
  REPLICA_PORT=$(free_port); WAPI_PORT=$(free_port); WADMIN_PORT=$(free_port)
  mkdir -p "$DIR/replica"
  redis-server --port "$REPLICA_PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$DIR/replica" \
    --replicaof 127.0.0.1 "$REDIS_PORT" >/dev/null &
  PIDS+=($!)
  for _ in $(seq 200); do
    redis-cli -p "$REPLICA_PORT" info replication 2>/dev/null | grep -q '^master_link_status:up' && break
    sleep 0.05
  done
  WGATE_REDIS_URL=redis://127.0.0.1:$REDIS_PORT WGATE_NAMESPACE=bench WGATE_JWT_SECRET=$SECRET \
    WGATE_API_LISTEN=127.0.0.1:$WAPI_PORT WGATE_API_ADMIN_LISTEN=127.0.0.1:$WADMIN_PORT \
    WGATE_RATE_PER_SECOND=1000000000 WGATE_RATE_BURST=1000000000 WGATE_LOG=warn WGATE_REDIS_WAIT_REPLICAS=1 \
    "${API_BIN:-$BIN/wgate-api}" &
  WAPI_PID=$!
  PIDS+=($WAPI_PID)
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$WADMIN_PORT/readyz" >/dev/null && break; sleep 0.1; done
  echo "== wgate-api async session-create, WGATE_REDIS_WAIT_REPLICAS=1 (one replica)"
  api_run "$WAPI_PORT" "$WAPI_PID" "$DIR/wait.txt"
  WAIT1=$(awk '/Requests\/sec/ {print $2}' "$DIR/wait.txt")
  echo "== answers by status (WAIT 1): $(curl -s "http://127.0.0.1:$WADMIN_PORT/metrics" | grep '^wgate_http_requests_total' | tr '\n' ' ')"
  echo "== wait replicas 1 vs 0: $(python3 -c "print(round($WAIT1 / $API, 3))") ($WAIT1 / $API requests/s)"
fi

# Latency at half the measured throughput, at a constant rate (wrk is closed-loop and cannot hold a rate; hey's -q
# paces each of its workers). Target: p99 <= 5 ms. The same pacing against the bare endpoint is the baseline.
if command -v hey >/dev/null; then
  HALF=$(python3 -c "print(max(1, int($API / 2)))")
  WORKERS=${HEY_WORKERS:-16}
  PER_WORKER=$(python3 -c "print(max(1, round($HALF / $WORKERS)))")
  body='{"name":"Bench session","callback":"https://callback.example/hook"}'
  for target in "bare:$BARE_PORT" "api:$API_PORT"; do
    name=${target%%:*}; port=${target##*:}
    hey -z "$DURATION" -c "$WORKERS" -q "$PER_WORKER" -m POST -T application/json -d "$body" \
      -H "Prefer: respond-async" -H "Authorization: Bearer $TOKEN" \
      "http://127.0.0.1:$port/api/v1/session-create" >"$DIR/half-$name.txt"
    rps=$(awk '/Requests\/sec/ {print $2}' "$DIR/half-$name.txt")
    p50=$(awk '/ 50%+ in/ {print $3 * 1000}' "$DIR/half-$name.txt")
    p99=$(awk '/ 99%+ in/ {print $3 * 1000}' "$DIR/half-$name.txt")
    codes=$(awk '/Status code distribution/ {f=1; next} f && /\[/ {printf "%s%s ", $1, $2} /^$/ {f=0}' "$DIR/half-$name.txt")
    echo "== half load ($HALF requests/s asked, $WORKERS workers) $name: $rps requests/s, p50 ${p50} ms, p99 ${p99} ms, answers $codes"
  done
else
  echo "== half-load latency skipped: apt-get install -y hey"
fi
