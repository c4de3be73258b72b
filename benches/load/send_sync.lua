-- wrk script: a synchronous text send (`async: false`) from one READY session, through wgate-api (TOKEN, as a
-- WhatsGate SDK sends it: X-API-Key) or straight to the simulator (WGATE_SIM_KEY). SESSION names the session.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json"
wrk.headers["X-API-Key"] = os.getenv("TOKEN") or os.getenv("WGATE_SIM_KEY")
wrk.body = '{"WhatsappID":"' .. os.getenv("SESSION") ..
  '","async":false,"recipient":{"number":"79990001122","type":"contact"},"message":{"type":"text","body":"Hello"}}'

local non_200 = 0
function response(status, headers, body)
  if status ~= 200 then non_200 = non_200 + 1 end
end

done = function(summary, latency, requests)
  io.write(string.format("requests/s: %.0f\n", summary.requests / (summary.duration / 1e6)))
  io.write(string.format("latency p50: %.2f ms, p99: %.2f ms, max: %.2f ms\n",
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
  io.write(string.format("non-2xx or socket errors: %d\n", non_200 +
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
