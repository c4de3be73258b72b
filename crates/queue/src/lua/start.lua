-- Start attempts, a batch at a time. The attempt counter is incremented here, before anything is sent upstream, so
-- a job that crashes its worker every time still runs out of attempts.
-- A job out of attempts whose upstream calls may have reached WhatsGate (`maybe_sent`) is not buried at once: it
-- gets up to ARGV[8] reconcile-only passes (look upstream for the session, adopt it or end dead; never create), so
-- no session that wgate caused is left without an owner. Passes used up: dead, `maybe_sent` kept for the replay.
-- KEYS, 3 per attempt: job hash, stream, dead set
-- ARGV: 1 group, 2 now (ns), 3 now (ms), 4 TTL of terminal records (ms), 5 completion channel, 6 key prefix,
--   7 error JSON for a job whose last attempt never finished, 8 reconcile-only passes allowed, 9 error JSON for a
--   job whose reconcile passes could not reach upstream, 10 publish command (PUBLISH, or SPUBLISH on a cluster),
--   then 3 per attempt: entry id, '1' when the entry was taken
--   over from a dead consumer, job id
-- Answers per attempt {'skip'} (finished or missing: entry acked), {'dead', record}, {'run', record} (field/value
--   pairs, a later pair overriding an earlier one) or
--   {'reconcile', record}.
local group, now_ns, now_ms, ttl, channel, prefix, lost = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local max_reconciles, unreconciled, publish = tonumber(ARGV[8]), ARGV[9], ARGV[10]
local results = {}
local n = (#ARGV - 10) / 3
for i = 0, n - 1 do
  local job, stream, dead = KEYS[i * 3 + 1], KEYS[i * 3 + 2], KEYS[i * 3 + 3]
  local entry, taken_over, id = ARGV[11 + i * 3], ARGV[12 + i * 3], ARGV[13 + i * 3]
  -- One read of the whole record: the fields decided on here, and (for a run) the record answered, patched below.
  local flat = redis.call('HGETALL', job)
  local h = {}
  for f = 1, #flat, 2 do
    h[flat[f]] = flat[f + 1]
  end
  local cur = {h.status, h.attempts, h.max_attempts, h.tenant, h.hook_token, h.next_attempt_at, h.maybe_sent,
    h.reconciles}
  local status = cur[1]
  if not status or status == 'succeeded' or status == 'failed' or status == 'dead' then
    redis.call('XACK', stream, group, entry)
    results[i + 1] = {'skip'}
  else
    local maybe = cur[7] == '1'
    if taken_over == '1' then
      redis.call('HSET', job, 'maybe_sent', '1')
      maybe = true
    end
    local attempts = tonumber(cur[2]) or 0
    local max = tonumber(cur[3]) or 1
    local reconciles = tonumber(cur[8]) or 0
    if attempts >= max and maybe and reconciles < max_reconciles then
      redis.call('HSET', job, 'status', 'running', 'reconciles', tostring(reconciles + 1), 'updated_at', now_ns)
      if taken_over == '1' and reconciles == 0 then
        -- The last attempt itself never finished: that is the error the job ends with if nothing is found.
        redis.call('HSET', job, 'error', lost)
      end
      if cur[6] then
        redis.call('HDEL', job, 'next_attempt_at')
      end
      results[i + 1] = {'reconcile', redis.call('HGETALL', job)}
    elseif attempts >= max then
      redis.call('HSET', job, 'status', 'dead', 'updated_at', now_ns, 'error', maybe and unreconciled or lost)
      redis.call('HDEL', job, 'next_attempt_at')
      if not maybe then
        redis.call('HDEL', job, 'maybe_sent')
      end
      redis.call('PEXPIRE', job, ttl)
      if cur[5] then
        redis.call('PEXPIRE', prefix .. 'hook:' .. cur[5], ttl)
      end
      redis.call('ZADD', dead, now_ms, id)
      if cur[4] then
        redis.call('SREM', prefix .. 'tenant:' .. cur[4] .. ':pending', id)
      end
      redis.call('XACK', stream, group, entry)
      redis.call(publish, channel, id)
      results[i + 1] = {'dead', redis.call('HGETALL', job)}
    else
      redis.call('HSET', job, 'status', 'running', 'attempts', tostring(attempts + 1), 'updated_at', now_ns)
      if cur[6] then
        redis.call('HDEL', job, 'next_attempt_at')
      end
      -- The record as these writes left it, without reading it again: the fields read, then the ones written
      -- (a later pair wins; an empty next_attempt_at is none).
      local n = #flat
      flat[n + 1], flat[n + 2], flat[n + 3], flat[n + 4] = 'status', 'running', 'attempts', tostring(attempts + 1)
      flat[n + 5], flat[n + 6] = 'updated_at', now_ns
      if cur[6] then
        flat[n + 7], flat[n + 8] = 'next_attempt_at', ''
      end
      if taken_over == '1' then
        flat[#flat + 1], flat[#flat + 2] = 'maybe_sent', '1'
      end
      results[i + 1] = {'run', flat}
    end
  end
end
return results
