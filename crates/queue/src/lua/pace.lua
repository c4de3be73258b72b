-- Paces the sends of one session, on Redis's clock so that every API replica shares it: at most ARGV[1] sends in
-- any ARGV[4] µs (a minute), and at least ARGV[2] µs plus this send's jitter ARGV[3] µs before the next one.
-- KEYS[1] sorted set of the session's sends within the window (score: admitted µs),
-- KEYS[2] hash: `next` (µs before which no send goes), `seq` (makes each member unique).
-- Every step is O(log n): a session with a high limit costs no more per send than one with a low limit.
-- Answers {allowed 1|0, sends left in the window now, µs until the window is empty (allowed) or until a send
-- fits (refused)}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', now - window))
local wait = (tonumber(redis.call('HGET', KEYS[2], 'next') or '0') or 0) - now
local used = redis.call('ZCARD', KEYS[1])
if used >= limit then
  -- The (used - limit + 1)-th oldest must age out before one more fits.
  local oldest = redis.call('ZRANGE', KEYS[1], used - limit, used - limit, 'WITHSCORES')
  local fits = tonumber(oldest[2]) + window - now
  if fits > wait then wait = fits end
end
if wait > 0 then
  return {0, 0, wait}
end
local next_at = now + tonumber(ARGV[2]) + tonumber(ARGV[3])
local seq = redis.call('HINCRBY', KEYS[2], 'seq', 1)
redis.call('ZADD', KEYS[1], string.format('%.0f', now), string.format('%.0f:%d', now, seq))
redis.call('HSET', KEYS[2], 'next', string.format('%.0f', next_at))
local ttl = math.floor(math.max(window, next_at - now) / 1000) + 1
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('PEXPIRE', KEYS[2], ttl)
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {1, math.max(limit - used - 1, 0), tonumber(first[2]) + window - now}
