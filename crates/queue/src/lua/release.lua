-- Give entries fetched but never run back to the queue (shutdown): ack each (trim.lua removes it), add it anew. An
-- entry whose attempt the finish script started as it read it (finish.lua) is unstarted first: the fields that
-- start changed get their earlier values back, provided the record still shows that start (status running, the
-- attempt and `updated_at` it wrote); a record changed since is left as it is. Only entries still pending for the
-- consumer giving them back: one another consumer has taken over meanwhile is that one's to run (acking it and
-- adding it anew would let the job run twice at once).
-- KEYS: 1 stream; ARGV: 1 group, 2 key prefix, 3 the consumer, then 9 per entry: entry id, job id, the attempt and
--   `updated_at` the start wrote ('' = not started), then the earlier status, attempts, updated_at, next_attempt_at
--   and reconciles ('' = absent)
local stream, group, prefix, consumer = KEYS[1], ARGV[1], ARGV[2], ARGV[3]
for i = 4, #ARGV, 9 do
  local entry, id, attempt, started = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local ours = #redis.call('XPENDING', stream, group, entry, entry, 1, consumer) == 1
  if ours and started ~= '' then
    local job = prefix .. 'job:' .. id
    local cur = redis.call('HMGET', job, 'status', 'attempts', 'updated_at')
    if cur[1] == 'running' and cur[2] == attempt and cur[3] == started then
      local attempts = ARGV[i + 5] ~= '' and ARGV[i + 5] or '0'
      redis.call('HSET', job, 'status', ARGV[i + 4], 'attempts', attempts, 'updated_at', ARGV[i + 6])
      if ARGV[i + 7] ~= '' then
        redis.call('HSET', job, 'next_attempt_at', ARGV[i + 7])
      end
      if ARGV[i + 8] ~= '' then
        redis.call('HSET', job, 'reconciles', ARGV[i + 8])
      else
        redis.call('HDEL', job, 'reconciles')
      end
    end
  end
  if ours and redis.call('XACK', stream, group, entry) == 1 then
    redis.call('XADD', stream, '*', 'job', id)
  end
end
return 'ok'
