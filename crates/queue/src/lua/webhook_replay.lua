-- Send a finished delivery again: back to 'queued' with a fresh attempt budget and a new stream entry. The same
-- webhook-id goes out, so a receiver that kept it can drop the copy.
-- KEYS: 1 delivery hash, 2 stream, 3 dead set; ARGV: 1 delivery id, 2 tenant ('' = any), 3 now (ms), 4 group,
--   5 retention (ms)
-- Answers {'notfound'}, {'busy', status} or {'requeued'}.
local cur = redis.call('HMGET', KEYS[1], 'status', 'tenant')
if not cur[1] or (ARGV[2] ~= '' and cur[2] ~= ARGV[2]) then
  return {'notfound'}
end
if cur[1] == 'queued' or cur[1] == 'retrying' or cur[1] == 'delivering' then
  return {'busy', cur[1]}
end
redis.call('HSET', KEYS[1], 'status', 'queued', 'attempts', '0', 'updated_ms', ARGV[3])
redis.call('HDEL', KEYS[1], 'next_ms')
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('ZREM', KEYS[3], ARGV[1])
if redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('XGROUP', 'CREATE', KEYS[2], ARGV[4], '0', 'MKSTREAM')
end
redis.call('XADD', KEYS[2], '*', 'job', ARGV[1])
return {'requeued'}
