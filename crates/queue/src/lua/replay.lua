-- Put a dead job back on the queue with a fresh attempt budget.
-- KEYS: 1 job hash, 2 stream, 3 dead set
-- ARGV: 1 job id, 2 now (ns), 3 consumer group, 4 key prefix "{ns}:"
local status = redis.call('HGET', KEYS[1], 'status')
if not status then
  return {'notfound'}
end
if status ~= 'dead' then
  return {'notdead', status}
end
redis.call('HSET', KEYS[1], 'status', 'queued', 'attempts', '0', 'updated_at', ARGV[2])
redis.call('HDEL', KEYS[1], 'next_attempt_at', 'error', 'response', 'maybe_sent', 'taken_over')
redis.call('PERSIST', KEYS[1])
local tenant = redis.call('HGET', KEYS[1], 'tenant')
local token = redis.call('HGET', KEYS[1], 'hook_token')
if token then
  redis.call('PERSIST', ARGV[4] .. 'hook:' .. token)
end
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('SADD', ARGV[4] .. 'tenant:' .. tenant .. ':pending', ARGV[1])
if redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('XGROUP', 'CREATE', KEYS[2], ARGV[3], '0', 'MKSTREAM')
end
redis.call('XADD', KEYS[2], '*', 'job', ARGV[1])
return {'requeued', redis.call('HGETALL', KEYS[1])}
