-- Claims an Idempotency-Key for one send, or finds what it already holds.
-- KEYS[1] the key's record (hash: fp, state pending|done, at (ms the claim was made, Redis's clock), status, body)
-- ARGV[1] sha256 of the send's body, ARGV[2] the record's TTL in ms
-- Answers {'claimed'} | {'conflict'} | {'in_flight', ms since the claim ('' when unknown)} | {'done', status, body}.
local rec = redis.call('HMGET', KEYS[1], 'fp', 'state', 'status', 'body', 'at')
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if not rec[1] then
  redis.call('HSET', KEYS[1], 'fp', ARGV[1], 'state', 'pending', 'at', now)
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {'claimed'}
end
if rec[1] ~= ARGV[1] then
  return {'conflict'}
end
if rec[2] ~= 'done' then
  if rec[5] then
    return {'in_flight', tostring(math.max(0, now - tonumber(rec[5])))}
  end
  return {'in_flight', ''}
end
return {'done', rec[3], rec[4]}
