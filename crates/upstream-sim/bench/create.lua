-- wrk script: every request is a session-create with the simulator's default key.
-- Usage: wrk -t2 -c64 -d10s -s crates/upstream-sim/bench/create.lua http://127.0.0.1:PORT/api/v1/session-create
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Api-Key"] = os.getenv("WGATE_SIM_KEY") or "sim-key"
wrk.body = '{"name":"bench","callback":"http://127.0.0.1:9/hook"}'

-- Count answers other than 200 so a fault or a bad key cannot pass for throughput.
local non_200 = 0
function response(status, headers, body)
  if status ~= 200 then non_200 = non_200 + 1 end
end

done = function(summary, latency, requests)
  io.write(string.format("requests/s: %.0f\n", summary.requests / (summary.duration / 1e6)))
  io.write(string.format("latency p50: %.2f ms, p99: %.2f ms, max: %.2f ms\n",
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
  io.write(string.format("non-2xx or socket errors: %d\n",
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
