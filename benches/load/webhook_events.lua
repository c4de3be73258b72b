-- wrk script: POSTs WhatsGate-shaped webhook events with ids unique across threads and requests.
local counter = 0
local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("base", threads * 100000000)
end

request = function()
  counter = counter + 1
  local id = base + counter
  local body = string.format(
    '{"id":%d,"whatsapp_id":"6345454545454","event_action":"message","event_date":"2026-01-01 00:00:00",' ..
    '"status_code":200,"event_data":{"id":"false_79990001122@c.us_3EB0A1","body":"Hello, is my order ready?",' ..
    '"from":"79990001122@c.us"}}', id)
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)
end
