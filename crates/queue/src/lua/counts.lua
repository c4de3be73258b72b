-- Queue gauges: {not yet delivered, scheduled, delivered and unacked, dead}.
-- Acked entries are deleted in the same script that acks them, so the stream holds exactly the undelivered
-- entries plus the consumer group's pending entries list.
-- KEYS: 1 stream, 2 scheduled set, 3 dead set; ARGV: 1 consumer group
local len = redis.call('XLEN', KEYS[1])
local running = 0
local summary = redis.pcall('XPENDING', KEYS[1], ARGV[1])
if type(summary) == 'table' and not summary.err then
  running = tonumber(summary[1]) or 0
end
return {len - running, redis.call('ZCARD', KEYS[2]), running, redis.call('ZCARD', KEYS[3])}
