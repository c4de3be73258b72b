-- Finish attempts atomically, a batch at a time: per attempt, the outcome into the record, retry scheduling or
-- terminal bookkeeping, ack of the stream entry (one XACK per stream for the batch; trim.lua removes acked
-- entries), publish of the completion. Each is fenced by its attempt number and the `updated_at` its start wrote:
-- an attempt (or reconcile-only pass, which keeps the attempt number) that was taken over by another worker, or
-- already finished, writes nothing ('stale').
-- KEYS, 8 per attempt: job hash, stream, scheduled set, dead set, tenant pending set, tenant sessions set,
--   session hash (used when succeeded), hook hash
-- ARGV: 1 group, 2 now (ns), 3 now (ms), 4 TTL (ms), 5 completion channel, 6 publish command (PUBLISH, or
--   SPUBLISH on a cluster), then 13 per attempt: entry id, attempt,
--   outcome (succeeded|failed|retry|dead), job id, error JSON, response JSON, due (ns), due (ms), maybe_sent,
--   session unique id, tenant, hook token, `updated_at` written by the attempt's start (ns)
local group, now_ns, now_ms, ttl, channel, publish = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local results, acks = {}, {}
local n = (#ARGV - 6) / 13
for i = 0, n - 1 do
  local k, a = i * 8, 6 + i * 13
  local job, stream, scheduled, dead = KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], KEYS[k + 4]
  local pending, sessions, session, hook = KEYS[k + 5], KEYS[k + 6], KEYS[k + 7], KEYS[k + 8]
  local entry, attempt, outcome, id = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4]
  local err, resp, due_ns, due_ms, maybe = ARGV[a + 5], ARGV[a + 6], ARGV[a + 7], ARGV[a + 8], ARGV[a + 9]
  local uid, tenant, token, started = ARGV[a + 10], ARGV[a + 11], ARGV[a + 12], ARGV[a + 13]
  local cur = redis.call('HMGET', job, 'attempts', 'status', 'updated_at', 'next_attempt_at', 'maybe_sent', 'error')
  if cur[1] ~= attempt or cur[2] ~= 'running' or cur[3] ~= started then
    results[i + 1] = 'stale'
  else
    if outcome == 'retry' then
      redis.call('HSET', job, 'status', 'retrying', 'updated_at', now_ns, 'error', err,
        'next_attempt_at', due_ns, 'maybe_sent', maybe)
      redis.call('ZADD', scheduled, due_ms, id)
    else
      if outcome == 'succeeded' then
        if cur[4] or cur[5] or cur[6] then
          redis.call('HDEL', job, 'next_attempt_at', 'maybe_sent', 'error')
        end
        redis.call('HSET', job, 'status', 'succeeded', 'updated_at', now_ns, 'response', resp)
        redis.call('HSET', session, 'tenant', tenant, 'job', id, 'hook_token', token)
        redis.call('SADD', sessions, uid)
      else
        if cur[4] or cur[5] then
          redis.call('HDEL', job, 'next_attempt_at', 'maybe_sent')
        end
        redis.call('HSET', job, 'status', outcome, 'updated_at', now_ns, 'error', err)
        redis.call('PEXPIRE', hook, ttl)
        if outcome == 'dead' then
          redis.call('ZADD', dead, now_ms, id)
        end
      end
      redis.call('PEXPIRE', job, ttl)
      redis.call('SREM', pending, id)
      redis.call(publish, channel, id)
    end
    acks[stream] = acks[stream] or {}
    table.insert(acks[stream], entry)
    results[i + 1] = 'ok'
  end
end
-- One XACK per stream for the whole batch.
for stream, entries in pairs(acks) do
  redis.call('XACK', stream, group, unpack(entries))
end
return results
