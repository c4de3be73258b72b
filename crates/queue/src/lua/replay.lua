-- Put a dead job back on the queue with a fresh attempt budget, within the tenant's session quota.
-- `maybe_sent` is kept: when an earlier attempt may have created the session upstream, the first attempt of the
-- replay looks for it and adopts it instead of creating a second one.
-- KEYS: 1 job hash, 2 stream, 3 dead set
-- ARGV: 1 job id, 2 now (ns), 3 consumer group, 4 key prefix "{ns}:", 5 max sessions of the tenant (-1 = no limit)
local status = redis.call('HGET', KEYS[1], 'status')
if not status then
  return {'notfound'}
end
if status ~= 'dead' then
  return {'notdead', status}
end
local tenant = redis.call('HGET', KEYS[1], 'tenant')
local pending = ARGV[4] .. 'tenant:' .. tenant .. ':pending'
local max = tonumber(ARGV[5])
if max >= 0 then
  local used = redis.call('SCARD', ARGV[4] .. 'tenant:' .. tenant .. ':sessions') + redis.call('SCARD', pending)
  if used >= max then
    return {'quota', max}
  end
end
redis.call('HSET', KEYS[1], 'status', 'queued', 'attempts', '0', 'updated_at', ARGV[2])
redis.call('HDEL', KEYS[1], 'next_attempt_at', 'error', 'response', 'taken_over', 'reconciles')
redis.call('PERSIST', KEYS[1])
-- A hook token of an earlier release (not a job id and 22 characters) has a hash of its own; one of this release
-- lives in the record.
local token = redis.call('HGET', KEYS[1], 'hook_token')
if token and #token ~= 48 then
  redis.call('PERSIST', ARGV[4] .. 'hook:' .. token)
end
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('SADD', pending, ARGV[1])
if redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('XGROUP', 'CREATE', KEYS[2], ARGV[3], '0', 'MKSTREAM')
end
redis.call('XADD', KEYS[2], '*', 'job', ARGV[1])
return {'requeued', redis.call('HGETALL', KEYS[1])}
