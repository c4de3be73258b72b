-- One tenant bucket of the rate limit (GCRA), on Redis's clock so that every API replica shares it.
-- KEYS[1] the bucket (its theoretical arrival time, microseconds since the epoch)
-- ARGV[1] emission interval in microseconds (the time one request's worth takes to come back), ARGV[2] burst.
-- Answers {allowed 1|0, requests left now, microseconds until the bucket is full, microseconds until one fits}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if tat < now then tat = now end
-- A bucket never owes more than its size at the current rate (the rate may just have been changed): an empty
-- bucket at that rate.
if tat > now + burst * interval then
  tat = now + burst * interval
  redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', math.floor((tat - now) / 1000) + 1)
end
local new_tat = tat + interval
local allow_at = new_tat - burst * interval
if now < allow_at then
  return {0, 0, tat - now, allow_at - now}
end
-- %.0f: a number this large would lose digits in Lua's default formatting.
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.floor((new_tat - now) / 1000) + 1)
return {1, math.floor((now - allow_at) / interval), new_tat - now, 0}
