-- Finish delivery attempts, a batch at a time, each fenced by its attempt number: an attempt taken over by another
-- worker writes nothing ('stale'). Per attempt: the outcome into the delivery, retry scheduling or dead-set entry,
-- the 410 stop on the hook, ack of the stream entry (trim.lua removes acked entries).
-- KEYS, 5 per attempt: delivery hash, stream, scheduled set, dead set, hook hash
-- ARGV: 1 group, 2 now (ms), 3 retention (ms), then 8 per attempt: entry id, delivery id, attempt, outcome
--   (delivered|retry|defer|dead), due (ms, retry and defer), last error ('' = none), last HTTP status ('' = none),
--   URL that answered 410 Gone ('' = none)
-- 'defer': the endpoint had no free delivery slot; the attempt is given back (not counted) and runs at `due`.
local group, now, ttl = ARGV[1], ARGV[2], ARGV[3]
local results = {}
local n = (#ARGV - 3) / 8
for i = 0, n - 1 do
  local k, a = i * 5, 3 + i * 8
  local delivery, stream, scheduled, dead, hook = KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], KEYS[k + 4], KEYS[k + 5]
  local entry, id, attempt, outcome = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4]
  local due, err, code, gone = ARGV[a + 5], ARGV[a + 6], ARGV[a + 7], ARGV[a + 8]
  local cur = redis.call('HMGET', delivery, 'attempts', 'status')
  if cur[1] ~= attempt or cur[2] ~= 'delivering' then
    results[i + 1] = 'stale'
  else
    if err ~= '' then
      redis.call('HSET', delivery, 'last_error', err)
    end
    if code ~= '' then
      redis.call('HSET', delivery, 'last_status', code)
    end
    if outcome == 'delivered' then
      redis.call('HSET', delivery, 'status', 'delivered', 'updated_ms', now, 'delivered_ms', now)
      redis.call('HDEL', delivery, 'last_error')
    elseif outcome == 'retry' then
      redis.call('HSET', delivery, 'status', 'retrying', 'updated_ms', now, 'next_ms', due)
      redis.call('ZADD', scheduled, due, id)
    elseif outcome == 'defer' then
      redis.call('HSET', delivery, 'status', 'queued', 'attempts', tostring(tonumber(attempt) - 1), 'next_ms', due)
      redis.call('ZADD', scheduled, due, id)
    else
      redis.call('HSET', delivery, 'status', 'dead', 'updated_ms', now)
      redis.call('ZADD', dead, now, id)
      redis.call('PEXPIRE', delivery, ttl)
    end
    if gone ~= '' and redis.call('EXISTS', hook) == 1 then
      redis.call('HSET', hook, 'gone', gone)
    end
    redis.call('XACK', stream, group, entry)
    results[i + 1] = 'ok'
  end
end
return results
