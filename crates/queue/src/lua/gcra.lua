-- One tenant bucket of the rate limit (GCRA), on Redis's clock so that every API replica shares it. Prepended to
-- the scripts that draw from a bucket (rate.lua, enqueue.lua).
-- A bucket's key holds its theoretical arrival time ("tat", microseconds since the epoch); interval is the time one
-- request's worth takes to come back (microseconds), burst the bucket's size.

-- Redis's clock in microseconds.
local function gcra_now()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end

-- One draw at `now` from a bucket whose tat is `tat` (0 = never drawn). Answers allowed 1|0, requests left now,
-- microseconds until the bucket is full, microseconds until one fits (four numbers, no table: the enqueue script
-- answers them flat), the bucket's tat after the draw, and true when that tat must be stored.
local function gcra_draw(tat, now, interval, burst)
  if tat < now then tat = now end
  local store = false
  -- A bucket never owes more than its size at the current rate (the rate may just have been changed): an empty
  -- bucket at that rate.
  if tat > now + burst * interval then
    tat = now + burst * interval
    store = true
  end
  local new_tat = tat + interval
  local allow_at = new_tat - burst * interval
  if now < allow_at then
    return 0, 0, tat - now, allow_at - now, tat, store
  end
  return 1, math.floor((now - allow_at) / interval), new_tat - now, 0, new_tat, true
end

-- Stores a bucket's tat until the bucket is full again. %.0f: a number this large would lose digits in Lua's
-- default formatting.
local function gcra_store(key, tat, now)
  redis.call('SET', key, string.format('%.0f', tat), 'PX', math.floor((tat - now) / 1000) + 1)
end

-- gcra(key, interval, burst): one draw from the bucket at `key`, answered as {allowed, left, until full, until one
-- fits}.
local function gcra(key, interval, burst)
  local now = gcra_now()
  local allowed, left, full, retry, tat, store =
    gcra_draw(tonumber(redis.call('GET', key) or '0') or 0, now, tonumber(interval), tonumber(burst))
  if store then gcra_store(key, tat, now) end
  return {allowed, left, full, retry}
end
