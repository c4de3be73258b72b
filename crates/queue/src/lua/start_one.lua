-- (before start.lua and finish.lua) Starting one attempt. The attempt counter is incremented here, before anything
-- is sent upstream, so a job that crashes its worker every time still runs out of attempts.
-- A job out of attempts whose upstream calls may have reached WhatsGate (`maybe_sent`) is not buried at once: it
-- gets up to c.max_reconciles reconcile-only passes (look upstream for the session, adopt it or end dead; never
-- create), so no session that wgate caused is left without an owner. Passes used up: dead, `maybe_sent` kept for
-- the replay.
-- An entry taken over whose record is running was started by a consumer that stopped answering: its call may have
-- reached WhatsGate (`maybe_sent`). One taken over unstarted (its reader's answer was lost before any start) is an
-- ordinary start.
-- A job has one entry unacknowledged at a time, read by one consumer: an entry not taken over whose record is
-- running was started already, for this consumer, by a call whose answer was lost. That start is answered again as
-- it is, and nothing is counted twice.
-- c: the batch's {group, now_ns, now_ms, ttl, channel, prefix, lost, max_reconciles, unreconciled, publish} (see
-- start.lua's ARGV). taken_over: '1' when the entry was taken over from a dead consumer.
-- Answers {'skip'} (finished or missing: entry acked), {'dead', record} (field/value pairs), {'run', record} (the
-- pairs as one JSON array of strings, a later pair overriding an earlier one: one bulk string is far cheaper to
-- answer and to parse than thirty) or {'reconcile', record}; and, for a run or a reconcile pass started now, what the
-- start changed as it was before ({status, attempts, updated_at, next_attempt_at, reconciles}, '' = absent), which
-- giving the entry back unstarted restores (release.lua).
local call = redis.call
-- The own hash of a hook token of an earlier release; nil for a token of this release (its job's id and 22
-- characters), whose relay target is its job's record.
local function old_hook(prefix, token)
  if token and token ~= '' and #token ~= 48 then return prefix .. 'hook:' .. token end
  return nil
end
local function start_one(c, job, stream, dead, entry, taken_over, id)
  local now_ns = c.now_ns
  -- One read of the whole record: the fields decided on here, and (for a run) the record answered, patched below.
  local flat = call('HGETALL', job)
  -- Sized for a record's fields up front: filled pair by pair, an empty table would be rehashed five times.
  local h = {id = false, tenant = false, hook_token = false, kind = false, status = false, attempts = false,
    max_attempts = false, created_at = false, updated_at = false, request = false, qr_token = false,
    callback = false, next_attempt_at = false, maybe_sent = false, reconciles = false, error = false,
    response = false}
  for f = 1, #flat, 2 do
    h[flat[f]] = flat[f + 1]
  end
  local status, next_at = h.status, h.next_attempt_at
  if not status or status == 'succeeded' or status == 'failed' or status == 'dead' then
    call('XACK', stream, c.group, entry)
    return {'skip'}
  end
  local attempts = tonumber(h.attempts) or 0
  local max = tonumber(h.max_attempts) or 1
  local reconciles = tonumber(h.reconciles) or 0
  local lost_run = taken_over == '1' and status == 'running'
  if status == 'running' and not lost_run then
    -- The start whose answer was lost, again (a pass keeps the attempt number and counts `reconciles`).
    if attempts >= max and reconciles > 0 then return {'reconcile', flat} end
    return {'run', cjson.encode(flat)}
  end
  local prior = {status, h.attempts or '', h.updated_at or '', next_at or '', h.reconciles or ''}
  local maybe = h.maybe_sent == '1'
  if lost_run then
    call('HSET', job, 'maybe_sent', '1')
    maybe = true
  end
  if attempts >= max and maybe and reconciles < c.max_reconciles then
    call('HSET', job, 'status', 'running', 'reconciles', tostring(reconciles + 1), 'updated_at', now_ns)
    if lost_run and reconciles == 0 then
      -- The last attempt itself never finished: that is the error the job ends with if nothing is found.
      call('HSET', job, 'error', c.lost)
    end
    if next_at then
      call('HDEL', job, 'next_attempt_at')
    end
    return {'reconcile', call('HGETALL', job)}, prior
  elseif attempts >= max then
    call('HSET', job, 'status', 'dead', 'updated_at', now_ns, 'error', maybe and c.unreconciled or c.lost)
    call('HDEL', job, 'next_attempt_at')
    if not maybe then
      call('HDEL', job, 'maybe_sent')
    end
    call('PEXPIRE', job, c.ttl)
    local hook = old_hook(c.prefix, h.hook_token)
    if hook then
      call('PEXPIRE', hook, c.ttl)
    end
    call('ZADD', dead, c.now_ms, id)
    if h.tenant then
      call('SREM', c.prefix .. 'tenant:' .. h.tenant .. ':pending', id)
    end
    call('XACK', stream, c.group, entry)
    call(c.publish, c.channel, id)
    return {'dead', call('HGETALL', job)}
  end
  local next_attempt = tostring(attempts + 1)
  call('HSET', job, 'status', 'running', 'attempts', next_attempt, 'updated_at', now_ns)
  if next_at then
    call('HDEL', job, 'next_attempt_at')
  end
  -- The record as these writes left it, without reading it again: the fields read, then the ones written (a later
  -- pair wins; an empty next_attempt_at is none).
  local n = #flat
  flat[n + 1], flat[n + 2], flat[n + 3], flat[n + 4] = 'status', 'running', 'attempts', next_attempt
  flat[n + 5], flat[n + 6] = 'updated_at', now_ns
  if next_at then
    flat[n + 7], flat[n + 8] = 'next_attempt_at', ''
  end
  if lost_run then
    flat[#flat + 1], flat[#flat + 2] = 'maybe_sent', '1'
  end
  return {'run', cjson.encode(flat)}, prior
end

-- The constants start_one takes, from a script's arguments.
local function start_constants(group, now_ns, now_ms, ttl, channel, prefix, lost, max_reconciles, unreconciled,
    publish)
  return {group = group, now_ns = now_ns, now_ms = now_ms, ttl = ttl, channel = channel, prefix = prefix, lost = lost,
    max_reconciles = tonumber(max_reconciles), unreconciled = unreconciled, publish = publish}
end

