-- (after gcra.lua) Accepts a batch of jobs in arrival order, each with its own outcome, exactly as if each had been
-- accepted alone in that order: the tenant's write bucket (when drawn), idempotency, quota, record (which keeps the
-- relay's target and the QR window's token), pending set, stream entry. A job's keys are derived here from the key
-- prefix and its ids; every key shares the prefix's hash slot.
-- KEYS: 1 the stream
-- ARGV: 1 key prefix "{ns}:", 2 consumer group, 3 TTL of idempotency keys (ms), then per job: 1 bucket drawn from ('' = no draw), 2 its emission interval (us), 3 its burst, 4 job id, 5 tenant,
--   6 tenant callback ('' = none), 7 max sessions (-1 = no limit), 8 sha256 of the Idempotency-Key ('' = none),
--   9 "<job id>:<sha256 of the request>", 10 hook token, 11 QR token ('' = none), 12-18 the record's kind,
--   status, attempts, max_attempts, created_at, updated_at and request (the order of `record::ENQUEUE_FIXED`),
--   19 the number n of further record fields, then n field/value pairs
-- Answers one reply per job, flat (a nested table costs Redis about a microsecond per job to answer): without a
-- draw {outcome...}; with one {'rated', allowed, left, until full, until one fits (gcra's answer), outcome...}, and
-- a refused draw stores nothing ({'rated', 0, 0, full, retry, 'limited'}). A job whose writes Redis refused answers
-- {'error', message} and the others go on.
local stream, prefix, group, idem_ttl = KEYS[1], ARGV[1], ARGV[2], ARGV[3]
local now = nil
-- The reply slot of the job being accepted.
local reply_index = 0
-- Per batch: buckets drawn from (bucket -> tenant -> {tat, changed, key}), tenants' used quota (tenant -> count),
-- the jobs created per tenant whose pending-set entry is added at the end (tenant -> {ids, reply indexes}), the
-- stream known.
local buckets, used, created, stream_ready = {}, {}, {}, false
-- The outcome of almost every job, shared: no table per job.
local CREATED = {'created'}

local function accept(a, id, tenant, n)
  local callback, max, idem, claim, hook, qr = ARGV[a + 6], tonumber(ARGV[a + 7]), ARGV[a + 8], ARGV[a + 9],
    ARGV[a + 10], ARGV[a + 11]
  local idem_key
  if idem ~= '' then
    idem_key = prefix .. 'idem:' .. tenant .. ':' .. idem
    local held = redis.call('GET', idem_key)
    if held then
      local sep = string.find(held, ':', 1, true)
      local wanted = string.sub(claim, string.find(claim, ':', 1, true) + 1)
      if not sep or string.sub(held, sep + 1) ~= wanted then
        return {'conflict'}
      end
      local rec = redis.call('HGETALL', prefix .. 'job:' .. string.sub(held, 1, sep - 1))
      if #rec > 0 then
        return {'existing', rec}
      end
      -- The record is gone (removed by hand): the key protects nothing any more, accept anew.
    end
  end
  if max >= 0 then
    if not used[tenant] then
      local t = prefix .. 'tenant:' .. tenant
      used[tenant] = redis.call('SCARD', t .. ':sessions') + redis.call('SCARD', t .. ':pending')
        + (created[tenant] and #created[tenant][1] or 0)
    end
    if used[tenant] >= max then
      return {'quota', max}
    end
  end
  local job = prefix .. 'job:' .. id
  if redis.call('EXISTS', job) == 1 then
    return {'duplicate'}
  end
  -- One call straight from ARGV: no table built for the record's fields ('' = no QR window, no callback). The
  -- record is also the relay's target: the hook token names the job, and `callback` is where its events go.
  redis.call('HSET', job, 'id', id, 'tenant', tenant, 'hook_token', hook, 'kind', ARGV[a + 12],
    'status', ARGV[a + 13], 'attempts', ARGV[a + 14], 'max_attempts', ARGV[a + 15], 'created_at', ARGV[a + 16],
    'updated_at', ARGV[a + 17], 'request', ARGV[a + 18], 'qr_token', qr, 'callback', callback,
    unpack(ARGV, a + 20, a + 19 + 2 * n))
  local mine = created[tenant]
  if not mine then
    mine = {{}, {}}
    created[tenant] = mine
  end
  mine[1][#mine[1] + 1] = id
  mine[2][#mine[2] + 1] = reply_index
  if used[tenant] then
    used[tenant] = used[tenant] + 1
  end
  if not stream_ready then
    if redis.call('EXISTS', stream) == 0 then
      redis.call('XGROUP', 'CREATE', stream, group, '0', 'MKSTREAM')
    end
    stream_ready = true
  end
  redis.call('XADD', stream, '*', 'job', id)
  if idem_key then
    redis.call('SET', idem_key, claim, 'PX', idem_ttl)
  end
  return CREATED
end

-- The job's draw from its tenant's `bucket`, on the batch's one reading of the clock: gcra_draw's four numbers.
local function draw(a, tenant, bucket)
  now = now or gcra_now()
  local of_bucket = buckets[bucket]
  if not of_bucket then
    of_bucket = {}
    buckets[bucket] = of_bucket
  end
  local b = of_bucket[tenant]
  if not b then
    local key = prefix .. 'rate:' .. bucket .. ':' .. tenant
    b = {tonumber(redis.call('GET', key) or '0') or 0, false, key}
    of_bucket[tenant] = b
  end
  local allowed, left, full, retry, tat, store = gcra_draw(b[1], now, tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3]))
  b[1], b[2] = tat, b[2] or store
  return allowed, left, full, retry
end

local function one(a, id, tenant, n)
  local bucket = ARGV[a + 1]
  if bucket == '' then return accept(a, id, tenant, n) end
  local allowed, left, full, retry = draw(a, tenant, bucket)
  if allowed == 0 then return {'rated', 0, left, full, retry, 'limited'} end
  return {'rated', allowed, left, full, retry, unpack(accept(a, id, tenant, n))}
end

local function refused(e)
  return {'error', type(e) == 'table' and e.err or tostring(e)}
end

local replies = {}
local a = 3
while a < #ARGV do
  local id, tenant, n = ARGV[a + 4], ARGV[a + 5], tonumber(ARGV[a + 19])
  reply_index = #replies + 1
  local ok, reply = pcall(one, a, id, tenant, n)
  replies[reply_index] = ok and reply or refused(reply)
  a = a + 19 + 2 * n
end
-- Each tenant's new jobs join its pending set at once; if Redis refuses that, those jobs answer the error.
for tenant, mine in pairs(created) do
  local ok, e = pcall(redis.call, 'SADD', prefix .. 'tenant:' .. tenant .. ':pending', unpack(mine[1]))
  if not ok then
    for _, i in ipairs(mine[2]) do
      replies[i] = refused(e)
    end
  end
end
for _, of_bucket in pairs(buckets) do
  for _, b in pairs(of_bucket) do
    if b[2] then gcra_store(b[3], b[1], now) end
  end
end
return replies
