-- Store one webhook event from WhatsGate and queue its delivery, atomically; WhatsGate's redelivery of an event
-- already stored (same hook token and event id) stores nothing and answers the first delivery's id.
-- KEYS: 1 event-seen key, 2 delivery hash, 3 tenant's stored events (sorted set), 4 webhook stream
-- ARGV: 1 delivery id, 2 retention (ms), 3 now (ms), 4 consumer group, 5 '1' to queue a delivery ('0': stored
--   only), then delivery hash field/value pairs
-- Answers {'new', id} or {'seen', id of the stored one}.
local seen = redis.call('GET', KEYS[1])
if seen then
  return {'seen', seen}
end
local id, ttl, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
redis.call('SET', KEYS[1], id, 'PX', ttl)
for i = 6, #ARGV, 2 do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
end
redis.call('PEXPIRE', KEYS[2], ttl)
redis.call('ZADD', KEYS[3], now, id)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - tonumber(ttl))
redis.call('PEXPIRE', KEYS[3], ttl)
if ARGV[5] == '1' then
  if redis.call('EXISTS', KEYS[4]) == 0 then
    redis.call('XGROUP', 'CREATE', KEYS[4], ARGV[4], '0', 'MKSTREAM')
  end
  redis.call('XADD', KEYS[4], '*', 'job', id)
end
return {'new', id}
