-- Start delivery attempts, a batch at a time: the attempt counter goes up before anything is sent, so a delivery
-- that crashes its worker every time still runs out of attempts.
-- The relay target (current callback, 410 stop) is named from the delivery's `token` and the key prefix, and shares
-- the delivery's hash tag: the record of the job the token names (a token of this release: the job's id and 22
-- characters), or the token's own hash for a token of an earlier release.
-- KEYS, 3 per attempt: delivery hash, stream, dead set
-- A delivery has one entry unacknowledged at a time, read by one consumer: an entry not taken over whose delivery is
-- already `delivering` was started by a call whose answer was lost, and that start is answered again as it is,
-- nothing counted twice.
-- ARGV: 1 group, 2 now (ms), 3 attempts allowed, 4 retention (ms), 5 error for a delivery whose last attempt never
--   finished, 6 key prefix, then 3 per attempt: entry id, delivery id, '1' when the entry was taken over from a
--   consumer that stopped answering
-- Answers per attempt {'skip'} (finished, not deliverable or gone: entry acked), {'dead'} (out of attempts: now
--   dead) or {'run', delivery fields, hook fields}.
local group, now, max, ttl, lost, prefix = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5], ARGV[6]
local results = {}
-- A delivery's relay target as field/value pairs (current callback, 410 stop); none when the token is no longer
-- the one its job keeps.
local function hook(token)
  token = token or ''
  if #token ~= 48 then return redis.call('HGETALL', prefix .. 'hook:' .. token) end
  local h = redis.call('HMGET', prefix .. 'job:' .. string.sub(token, 1, 26), 'hook_token', 'callback', 'gone')
  if h[1] ~= token then return {} end
  return {'callback', h[2] or '', 'gone', h[3] or ''}
end
-- A run's answer: the delivery as it now is, and its relay target.
local function run(delivery, token)
  return {'run', redis.call('HGETALL', delivery), hook(token)}
end
local n = (#ARGV - 6) / 3
for i = 0, n - 1 do
  local delivery, stream, dead = KEYS[i * 3 + 1], KEYS[i * 3 + 2], KEYS[i * 3 + 3]
  local entry, id, taken_over = ARGV[7 + i * 3], ARGV[8 + i * 3], ARGV[9 + i * 3]
  local cur = redis.call('HMGET', delivery, 'status', 'attempts', 'token')
  local status = cur[1]
  if not status or (status ~= 'queued' and status ~= 'retrying' and status ~= 'delivering') then
    redis.call('XACK', stream, group, entry)
    results[i + 1] = {'skip'}
  elseif status == 'delivering' and taken_over ~= '1' then
    results[i + 1] = run(delivery, cur[3])
  else
    local attempts = tonumber(cur[2]) or 0
    if attempts >= max then
      redis.call('HSET', delivery, 'status', 'dead', 'updated_ms', now, 'last_error', lost)
      redis.call('HDEL', delivery, 'next_ms')
      redis.call('PEXPIRE', delivery, ttl)
      redis.call('ZADD', dead, now, id)
      redis.call('XACK', stream, group, entry)
      results[i + 1] = {'dead'}
    else
      redis.call('HSET', delivery, 'status', 'delivering', 'attempts', tostring(attempts + 1), 'updated_ms', now)
      redis.call('HDEL', delivery, 'next_ms')
      results[i + 1] = run(delivery, cur[3])
    end
  end
end
return results
