-- Claims an Idempotency-Key for one send, or finds what it already holds.
-- KEYS[1] the key's record (hash: fp, state pending|done, status, body)
-- ARGV[1] sha256 of the send's body, ARGV[2] the record's TTL in ms
-- Answers {'claimed'} | {'conflict'} | {'in_flight'} | {'done', status, body}.
local rec = redis.call('HMGET', KEYS[1], 'fp', 'state', 'status', 'body')
if not rec[1] then
  redis.call('HSET', KEYS[1], 'fp', ARGV[1], 'state', 'pending')
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {'claimed'}
end
if rec[1] ~= ARGV[1] then
  return {'conflict'}
end
if rec[2] ~= 'done' then
  return {'in_flight'}
end
return {'done', rec[3], rec[4]}
