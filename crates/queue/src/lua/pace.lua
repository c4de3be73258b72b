-- Paces the sends of one session, on Redis's clock so that every API replica shares it: at most ARGV[1] sends in
-- any ARGV[4] µs (a minute), and at least ARGV[2] µs plus this send's jitter ARGV[3] µs before the next one.
-- KEYS[1] the session's recent sends, newest first, each "<admitted µs>:<next allowed µs>" (at most ARGV[1]).
-- Answers {allowed 1|0, sends left in the window now, µs until the window is empty (allowed) or until a send
-- fits (refused)}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[4])
local recent = redis.call('LRANGE', KEYS[1], 0, limit - 1)
local function parts(entry)
  local sep = string.find(entry, ':', 1, true)
  if not sep then return 0, 0 end
  return tonumber(string.sub(entry, 1, sep - 1)) or 0, tonumber(string.sub(entry, sep + 1)) or 0
end
local wait = 0
if #recent > 0 then
  local _, next_at = parts(recent[1])
  if next_at > now then wait = next_at - now end
end
if #recent >= limit then
  local oldest = parts(recent[limit])
  if oldest + window > now and oldest + window - now > wait then wait = oldest + window - now end
end
if wait > 0 then
  return {0, 0, wait}
end
local next_at = now + tonumber(ARGV[2]) + tonumber(ARGV[3])
redis.call('LPUSH', KEYS[1], string.format('%.0f:%.0f', now, next_at))
redis.call('LTRIM', KEYS[1], 0, limit - 1)
redis.call('PEXPIRE', KEYS[1], math.floor(math.max(window, next_at - now) / 1000) + 1)
-- Sends within the window, this one included; the window is empty once the oldest of them is a window old.
local used, oldest_in = 1, now
for i = 1, math.min(#recent, limit - 1) do
  local at = parts(recent[i])
  if at + window > now then
    used = used + 1
    oldest_in = at
  end
end
return {1, limit - used, oldest_in + window - now}
