-- Start attempts, a batch at a time. The attempt counter is incremented here, before anything is sent upstream, so
-- a job that crashes its worker every time still runs out of attempts.
-- KEYS, 3 per attempt: job hash, stream, dead set
-- ARGV: 1 group, 2 now (ns), 3 now (ms), 4 TTL of terminal records (ms), 5 completion channel, 6 key prefix,
--   7 error JSON for a job whose last attempt never finished, then 3 per attempt: entry id, '1' when the entry was
--   taken over from a dead consumer, job id
-- Answers per attempt {'skip'} (finished or missing: entry acked), {'dead', record} or {'run', record}.
local group, now_ns, now_ms, ttl, channel, prefix, lost = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local results = {}
local n = (#ARGV - 7) / 3
for i = 0, n - 1 do
  local job, stream, dead = KEYS[i * 3 + 1], KEYS[i * 3 + 2], KEYS[i * 3 + 3]
  local entry, taken_over, id = ARGV[8 + i * 3], ARGV[9 + i * 3], ARGV[10 + i * 3]
  local cur = redis.call('HMGET', job, 'status', 'attempts', 'max_attempts', 'tenant', 'hook_token', 'next_attempt_at')
  local status = cur[1]
  if not status or status == 'succeeded' or status == 'failed' or status == 'dead' then
    redis.call('XACK', stream, group, entry)
    results[i + 1] = {'skip'}
  else
    if taken_over == '1' then
      redis.call('HSET', job, 'maybe_sent', '1')
    end
    local attempts = tonumber(cur[2]) or 0
    local max = tonumber(cur[3]) or 1
    if attempts >= max then
      redis.call('HSET', job, 'status', 'dead', 'updated_at', now_ns, 'error', lost)
      redis.call('HDEL', job, 'next_attempt_at', 'maybe_sent')
      redis.call('PEXPIRE', job, ttl)
      if cur[5] then
        redis.call('PEXPIRE', prefix .. 'hook:' .. cur[5], ttl)
      end
      redis.call('ZADD', dead, now_ms, id)
      if cur[4] then
        redis.call('SREM', prefix .. 'tenant:' .. cur[4] .. ':pending', id)
      end
      redis.call('XACK', stream, group, entry)
      redis.call('PUBLISH', channel, id)
      results[i + 1] = {'dead', redis.call('HGETALL', job)}
    else
      redis.call('HSET', job, 'status', 'running', 'attempts', tostring(attempts + 1), 'updated_at', now_ns)
      if cur[6] then
        redis.call('HDEL', job, 'next_attempt_at')
      end
      results[i + 1] = {'run', redis.call('HGETALL', job)}
    end
  end
end
return results
