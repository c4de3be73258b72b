-- (after gcra.lua) Accept one job atomically: the tenant's write bucket (when drawn here), idempotency, quota,
-- record, hook, QR window token, pending set, stream entry.
-- KEYS: 1 job hash, 2 hook hash, 3 tenant pending set, 4 tenant sessions set, 5 stream, 6 idempotency key,
--       7 QR token hash, 8 the tenant's write bucket (when drawn)
-- ARGV: 1 '1' when an idempotency key is given, 2 its value "<job id>:<sha256 of the request>",
--       3 its TTL in ms, 4 max sessions (-1 = no limit), 5 job id, 6 tenant, 7 tenant callback ('' = none),
--       8 consumer group, 9 key prefix "{ns}:", 10 TTL of the QR token in ms ('0' = the job has no token),
--       11 the bucket's emission interval in microseconds ('' = no draw), 12 its burst,
--       13.. job hash field/value pairs
-- Without a draw the answer is {outcome...}; with one it is {'rated', gcra's answer, {outcome...}}, and a refused
-- draw stores nothing ({'rated', answer, {'limited'}}).
local function accept()
  if ARGV[1] == '1' then
    local held = redis.call('GET', KEYS[6])
    if held then
      local sep = string.find(held, ':', 1, true)
      local wanted = string.sub(ARGV[2], string.find(ARGV[2], ':', 1, true) + 1)
      if not sep or string.sub(held, sep + 1) ~= wanted then
        return {'conflict'}
      end
      local rec = redis.call('HGETALL', ARGV[9] .. 'job:' .. string.sub(held, 1, sep - 1))
      if #rec > 0 then
        return {'existing', rec}
      end
      -- The record is gone (removed by hand): the key protects nothing any more, accept anew.
    end
  end
  local max = tonumber(ARGV[4])
  if max >= 0 then
    local used = redis.call('SCARD', KEYS[4]) + redis.call('SCARD', KEYS[3])
    if used >= max then
      return {'quota', max}
    end
  end
  if redis.call('EXISTS', KEYS[1]) == 1 then
    return {'duplicate'}
  end
  redis.call('HSET', KEYS[1], unpack(ARGV, 13))
  redis.call('HSET', KEYS[2], 'tenant', ARGV[6], 'job', ARGV[5], 'callback', ARGV[7])
  if ARGV[10] ~= '0' then
    redis.call('HSET', KEYS[7], 'tenant', ARGV[6], 'job', ARGV[5])
    redis.call('PEXPIRE', KEYS[7], ARGV[10])
  end
  redis.call('SADD', KEYS[3], ARGV[5])
  if redis.call('EXISTS', KEYS[5]) == 0 then
    redis.call('XGROUP', 'CREATE', KEYS[5], ARGV[8], '0', 'MKSTREAM')
  end
  redis.call('XADD', KEYS[5], '*', 'job', ARGV[5])
  if ARGV[1] == '1' then
    redis.call('SET', KEYS[6], ARGV[2], 'PX', ARGV[3])
  end
  return {'created'}
end

if ARGV[11] == '' then
  return accept()
end
local rate = gcra(KEYS[8], ARGV[11], ARGV[12])
if rate[1] == 0 then
  return {'rated', rate, {'limited'}}
end
return {'rated', rate, accept()}
