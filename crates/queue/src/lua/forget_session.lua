-- A session was deleted upstream: drop its owner record, free the tenant's quota slot, let its create job's record
-- (its relay target, which late events still reach) expire, and close its QR window (the token leaves the job's
-- record).
-- KEYS: 1 session hash; ARGV: 1 unique id, 2 key prefix, 3 TTL (ms)
local owner = redis.call('HMGET', KEYS[1], 'tenant', 'job', 'hook_token')
if not owner[1] then
  return {}
end
redis.call('SREM', ARGV[2] .. 'tenant:' .. owner[1] .. ':sessions', ARGV[1])
-- A hook token of an earlier release (not a job id and 22 characters) has a hash of its own.
if owner[3] and #owner[3] ~= 48 then
  redis.call('PEXPIRE', ARGV[2] .. 'hook:' .. owner[3], ARGV[3])
end
local job = ARGV[2] .. 'job:' .. owner[2]
redis.call('PEXPIRE', job, ARGV[3])
local qr = redis.call('HGET', job, 'qr_token')
if qr and qr ~= '' then
  redis.call('HDEL', job, 'qr_token')
  -- A token of an earlier release has a record of its own.
  redis.call('DEL', ARGV[2] .. 'qr:' .. qr)
end
redis.call('DEL', KEYS[1])
return owner
