-- wrk script: synchronous session-create through wgate-api (no Prefer header: the answer waits for the job).
-- TOKEN comes from the environment (wgate token --secret S --tenant bench).
wrk.method = "POST"
wrk.body = '{"name":"Bench session"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("TOKEN")

dofile("benches/load/wrk_report.lua")
