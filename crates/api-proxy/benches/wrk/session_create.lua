-- wrk script: asynchronous session-create with a tenant token.
-- TOKEN comes from the environment (wgate token --secret S --tenant bench).
wrk.method = "POST"
wrk.body = '{"name":"Bench session","callback":"https://callback.example/hook"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Prefer"] = "respond-async"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("TOKEN")
