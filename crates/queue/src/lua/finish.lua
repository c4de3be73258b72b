-- Finish an attempt atomically: outcome into the record, retry scheduling or terminal bookkeeping, ack and delete
-- the stream entry, publish the completion. Fenced by the attempt number: an attempt that was taken over by
-- another worker (or already finished) writes nothing.
-- KEYS: 1 job hash, 2 stream, 3 scheduled set, 4 dead set, 5 tenant pending set, 6 tenant sessions set,
--       7 session hash (succeeded only), 8 hook hash
-- ARGV: 1 entry id, 2 group, 3 attempt, 4 outcome (succeeded|failed|retry|dead), 5 now (ns), 6 now (ms),
--       7 TTL (ms), 8 completion channel, 9 job id, 10 error JSON, 11 response JSON, 12 due (ns), 13 due (ms),
--       14 maybe_sent, 15 session unique id, 16 tenant, 17 hook token
local cur = redis.call('HMGET', KEYS[1], 'attempts', 'status')
if cur[1] ~= ARGV[3] or cur[2] ~= 'running' then
  return 'stale'
end
local outcome = ARGV[4]
if outcome == 'retry' then
  redis.call('HSET', KEYS[1], 'status', 'retrying', 'updated_at', ARGV[5], 'error', ARGV[10],
    'next_attempt_at', ARGV[12], 'maybe_sent', ARGV[14])
  redis.call('ZADD', KEYS[3], ARGV[13], ARGV[9])
else
  redis.call('HDEL', KEYS[1], 'next_attempt_at', 'maybe_sent')
  if outcome == 'succeeded' then
    redis.call('HSET', KEYS[1], 'status', 'succeeded', 'updated_at', ARGV[5], 'response', ARGV[11])
    redis.call('HDEL', KEYS[1], 'error')
    redis.call('HSET', KEYS[7], 'tenant', ARGV[16], 'job', ARGV[9], 'hook_token', ARGV[17])
    redis.call('SADD', KEYS[6], ARGV[15])
  else
    redis.call('HSET', KEYS[1], 'status', outcome, 'updated_at', ARGV[5], 'error', ARGV[10])
    redis.call('PEXPIRE', KEYS[8], ARGV[7])
    if outcome == 'dead' then
      redis.call('ZADD', KEYS[4], ARGV[6], ARGV[9])
    end
  end
  redis.call('PEXPIRE', KEYS[1], ARGV[7])
  redis.call('SREM', KEYS[5], ARGV[9])
  redis.call('PUBLISH', ARGV[8], ARGV[9])
end
redis.call('XACK', KEYS[2], ARGV[2], ARGV[1])
redis.call('XDEL', KEYS[2], ARGV[1])
return 'ok'
