# Sourced by the load scripts: the release binaries' stack on free loopback ports, torn down on exit.
# Expects $bin (release binaries) and a working directory at the repo root. `start_stack LOG_LEVEL` starts a
# private redis-server, the simulator (latency 0) and wgate-api (rate limit out of the way), waits until they
# answer, and sets: redis_port api_port admin_port sim sim_port key secret common (env for api and workers),
# api_pid, TOKEN (exported). A script that starts more processes adds their pids to `pids`, or defines
# `stack_before_cleanup` to stop them first.

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
dir="$(mktemp -d)"
pids=()
cleanup() {
  if declare -F stack_before_cleanup >/dev/null; then stack_before_cleanup; fi
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT

# Polls until every URL answers (a process that is starting cannot signal readiness any other way).
wait_until_up() {
  for _ in $(seq 200); do
    local all=1 url
    for url in "$@"; do curl -sf -o /dev/null "$url" || { all=0; break; }; done
    [ "$all" -eq 1 ] && return 0
    sleep 0.05
  done
  echo "not up after 10 s: $*" >&2
  return 1
}

start_stack() {
  local log="$1"
  redis_port=$(free_port); api_port=$(free_port); admin_port=$(free_port); sim_port=$(free_port)
  redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" >/dev/null &
  pids+=($!)
  key=bench-upstream-key
  WGATE_LOG=warn "$bin/wgate-sim" --listen "127.0.0.1:$sim_port" --api-key "$key" --latency-ms 0 --seed 1 \
    --workers 1 >/dev/null 2>&1 &
  pids+=($!)
  sim="http://127.0.0.1:$sim_port"
  secret=bench-secret-0123456789
  common=(WGATE_REDIS_URL="redis://127.0.0.1:$redis_port" WGATE_NAMESPACE=bench WGATE_LOG="$log"
    WGATE_PUBLIC_URL="http://127.0.0.1:$api_port" WGATE_UPSTREAM_URL="$sim" WGATE_UPSTREAM_API_KEY="$key")
  env "${common[@]}" WGATE_JWT_SECRET="$secret" WGATE_API_LISTEN="127.0.0.1:$api_port" \
    WGATE_API_ADMIN_LISTEN="127.0.0.1:$admin_port" WGATE_RATE_PER_SECOND=1000000000 WGATE_RATE_BURST=1000000000 \
    "$bin/wgate-api" >/dev/null &
  api_pid=$!
  pids+=($api_pid)
  wait_until_up "http://127.0.0.1:$admin_port/readyz" "$sim/sim/stats"
  TOKEN="$("$bin/wgate" token --secret "$secret" --tenant bench)"
  export TOKEN
}
