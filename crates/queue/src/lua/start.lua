-- Start an attempt: the attempt counter is incremented here, before anything is sent upstream, so a job that
-- crashes its worker every time still runs out of attempts.
-- KEYS: 1 job hash, 2 stream, 3 dead set
-- ARGV: 1 entry id, 2 group, 3 now (ns), 4 now (ms), 5 '1' when the entry was taken over from a dead consumer,
--       6 TTL of terminal records (ms), 7 completion channel, 8 job id, 9 key prefix, 10 error JSON for a job whose
--       last attempt never finished
local function drop_entry()
  redis.call('XACK', KEYS[2], ARGV[2], ARGV[1])
  redis.call('XDEL', KEYS[2], ARGV[1])
end
local cur = redis.call('HMGET', KEYS[1], 'status', 'attempts', 'max_attempts', 'tenant', 'hook_token')
local status = cur[1]
if not status or status == 'succeeded' or status == 'failed' or status == 'dead' then
  drop_entry()
  return {'skip'}
end
if ARGV[5] == '1' then
  redis.call('HSET', KEYS[1], 'maybe_sent', '1')
end
local attempts = tonumber(cur[2]) or 0
local max = tonumber(cur[3]) or 1
if attempts >= max then
  redis.call('HSET', KEYS[1], 'status', 'dead', 'updated_at', ARGV[3], 'error', ARGV[10])
  redis.call('HDEL', KEYS[1], 'next_attempt_at', 'maybe_sent')
  redis.call('PEXPIRE', KEYS[1], ARGV[6])
  if cur[5] then
    redis.call('PEXPIRE', ARGV[9] .. 'hook:' .. cur[5], ARGV[6])
  end
  redis.call('ZADD', KEYS[3], ARGV[4], ARGV[8])
  if cur[4] then
    redis.call('SREM', ARGV[9] .. 'tenant:' .. cur[4] .. ':pending', ARGV[8])
  end
  drop_entry()
  redis.call('PUBLISH', ARGV[7], ARGV[8])
  return {'dead', redis.call('HGETALL', KEYS[1])}
end
redis.call('HSET', KEYS[1], 'status', 'running', 'attempts', tostring(attempts + 1), 'updated_at', ARGV[3])
redis.call('HDEL', KEYS[1], 'next_attempt_at')
return {'run', redis.call('HGETALL', KEYS[1])}
