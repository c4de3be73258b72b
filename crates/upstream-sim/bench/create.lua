-- wrk script: every request is a session-create with the simulator's default key.
-- Usage: wrk -t2 -c64 -d10s -s crates/upstream-sim/bench/create.lua http://127.0.0.1:PORT/api/v1/session-create
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Api-Key"] = os.getenv("WGATE_SIM_KEY") or "sim-key"
wrk.body = '{"name":"bench","callback":"http://127.0.0.1:9/hook"}'

-- Non-2xx answers count as errors in the report, so a fault or a bad key cannot pass for throughput. Run from the
-- repository root (the report is shared with the latency scripts).
dofile("benches/load/wrk_report.lua")
