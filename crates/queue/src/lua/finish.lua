-- Finish attempts atomically, a batch at a time: per attempt, the outcome into the record, retry scheduling or
-- terminal bookkeeping, ack of the stream entry (one XACK for the batch, whose attempts share one partition;
-- trim.lua removes acked entries), publish of the completion. Each is fenced by its attempt number and the
-- `updated_at` its start wrote: an attempt (or reconcile-only pass, which keeps the attempt number) that was taken
-- over by another worker, or already finished, writes nothing ('stale').
-- KEYS: 1 the partition's stream, 2 its scheduled set, 3 its dead set. The keys of each attempt's job (its hash,
--   its tenant's pending and sessions sets, the session and hook hashes) are built from the partition's prefix:
--   the same hash slot, and no per-job key strings to pass.
-- ARGV: 1 group, 2 now (ns), 3 now (ms), 4 TTL (ms), 5 completion channel, 6 publish command (PUBLISH, or
--   SPUBLISH on a cluster), 7 the partition's key prefix "{tag}:", 8 the consumer reading next ('' = none), 9 how
--   many new entries it reads for the slots this batch frees (0 = none), then 13 per attempt: entry id, attempt,
--   outcome (succeeded|failed|retry|dead), job id, error JSON, response JSON, due (ns), due (ms), maybe_sent,
--   session unique id, tenant, hook token, `updated_at` written by the attempt's start (ns)
local group, now_ns, now_ms, ttl, channel, publish = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local prefix, consumer, read = ARGV[7], ARGV[8], tonumber(ARGV[9])
local stream, scheduled, dead = KEYS[1], KEYS[2], KEYS[3]
local results, acks = {}, {}
local n = (#ARGV - 9) / 13
for i = 0, n - 1 do
  local a = 9 + i * 13
  local entry, attempt, outcome, id = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4]
  local err, resp, due_ns, due_ms, maybe = ARGV[a + 5], ARGV[a + 6], ARGV[a + 7], ARGV[a + 8], ARGV[a + 9]
  local uid, tenant, token, started = ARGV[a + 10], ARGV[a + 11], ARGV[a + 12], ARGV[a + 13]
  local job = prefix .. 'job:' .. id
  local pending, sessions = prefix .. 'tenant:' .. tenant .. ':pending', prefix .. 'tenant:' .. tenant .. ':sessions'
  local hook = prefix .. 'hook:' .. token
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
        redis.call('HSET', prefix .. 'session:' .. uid, 'tenant', tenant, 'job', id, 'hook_token', token)
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
    table.insert(acks, entry)
    results[i + 1] = 'ok'
  end
end
-- One XACK for the whole batch.
if #acks > 0 then
  redis.call('XACK', stream, group, unpack(acks))
end
-- The next entries for the freed slots, in the same round trip (XREADGROUP's reply, or false).
local next = false
if read > 0 then
  next = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', read, 'STREAMS', stream, '>')
end
return {results, next}
