-- One tenant bucket of the rate limit (GCRA), on Redis's clock so that every API replica shares it. Prepended to
-- the scripts that draw from a bucket (rate.lua, enqueue.lua).
-- gcra(key, interval, burst): key holds the bucket's theoretical arrival time (microseconds since the epoch);
-- interval is the time one request's worth takes to come back (microseconds), burst the bucket's size.
-- Answers {allowed 1|0, requests left now, microseconds until the bucket is full, microseconds until one fits}.
local function gcra(key, interval, burst)
  interval = tonumber(interval)
  burst = tonumber(burst)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local tat = tonumber(redis.call('GET', key) or '0') or 0
  if tat < now then tat = now end
  -- A bucket never owes more than its size at the current rate (the rate may just have been changed): an empty
  -- bucket at that rate.
  if tat > now + burst * interval then
    tat = now + burst * interval
    redis.call('SET', key, string.format('%.0f', tat), 'PX', math.floor((tat - now) / 1000) + 1)
  end
  local new_tat = tat + interval
  local allow_at = new_tat - burst * interval
  if now < allow_at then
    return {0, 0, tat - now, allow_at - now}
  end
  -- %.0f: a number this large would lose digits in Lua's default formatting.
  redis.call('SET', key, string.format('%.0f', new_tat), 'PX', math.floor((new_tat - now) / 1000) + 1)
  return {1, math.floor((now - allow_at) / interval), new_tat - now, 0}
end
