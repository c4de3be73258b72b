-- wrk script: a synchronous text send (`async: false`) from one READY session, through wgate-api (TOKEN, as a
-- WhatsGate SDK sends it: X-API-Key) or straight to the simulator (WGATE_SIM_KEY). SESSION names the session.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json"
wrk.headers["X-API-Key"] = os.getenv("TOKEN") or os.getenv("WGATE_SIM_KEY")
wrk.body = '{"WhatsappID":"' .. os.getenv("SESSION") ..
  '","async":false,"recipient":{"number":"79990001122","type":"contact"},"message":{"type":"text","body":"Hello"}}'

dofile("benches/load/wrk_report.lua")
