-- (after start_one.lua) Finish attempts atomically, a batch at a time: per attempt, the outcome into the record,
-- retry scheduling or terminal bookkeeping, ack of the stream entry (one XACK for the batch, whose attempts share one
-- partition; trim.lua removes acked entries), publish of the completion. Each is fenced by its attempt number and the
-- `updated_at` its start wrote: an attempt (or reconcile-only pass, which keeps the attempt number) that was taken
-- over by another worker, or already finished, writes nothing ('stale'). Then, when asked, it reads new entries for
-- the slots the batch frees and starts their attempts (start_one), so a job's next attempt costs no round trip of
-- its own.
-- KEYS: 1 the partition's stream, 2 its scheduled set, 3 its dead set. The keys of each attempt's job (its hash,
--   its tenant's pending and sessions sets, the session hash) are built from the partition's prefix:
--   the same hash slot, and no per-job key strings to pass.
-- ARGV: 1 group, 2 now (ns), 3 now (ms), 4 TTL (ms), 5 completion channel, 6 publish command (PUBLISH, or
--   SPUBLISH on a cluster), 7 the partition's key prefix "{tag}:", 8 the consumer reading next ('' = none), 9 how
--   many new entries it reads for the slots this batch frees (0 = none), 10-12 start.lua's ARGV 7-9 (the errors of
--   jobs out of attempts, the reconcile-only passes allowed), 13 on a retry of the batch, how many of the consumer's
--   pending entries to look through for the starts an earlier run of it made (0 = first try), then 13 per attempt:
--   entry id, attempt, outcome
--   (succeeded|failed|retry|dead), job id, error JSON, response JSON, due (ns), due (ms), maybe_sent, session unique
--   id, tenant, hook token, `updated_at` written by the attempt's start (ns)
-- Answers {per attempt 'ok' or 'stale', the entries read and left unstarted (their job field is not a job id; for
--   the worker to set aside) in XREADGROUP's form (or false), the starts: entry id, job id, start_one's reply with
--   what it changed appended as one comma-separated string, ...}.
-- A retry after an answer that was lost (the run happened, the worker never heard): its outcomes are written already
-- ('stale' now), and the entries that run read are pending for this consumer, their records running with the
-- `updated_at` of the batch's clock, which every try of a batch shares (and no other call of the process). They are
-- answered again, started as they are, in place of as many new ones: none waits for the visibility timeout, and no
-- attempt is counted twice.
local group, now_ns, now_ms, ttl, channel, publish = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local prefix, consumer, read = ARGV[7], ARGV[8], tonumber(ARGV[9])
local c = start_constants(group, now_ns, now_ms, ttl, channel, prefix, ARGV[10], ARGV[11], ARGV[12], publish)
local recover = tonumber(ARGV[13])
local stream, scheduled, dead = KEYS[1], KEYS[2], KEYS[3]
local results, acks = {}, {}
-- Per tenant: the ids leaving its pending set and the sessions joining its sessions set, one SREM and one SADD for
-- the batch.
local done, sessions = {}, {}
local n = (#ARGV - 13) / 13
for i = 0, n - 1 do
  local a = 13 + i * 13
  local entry, attempt, outcome, id = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4]
  local err, resp, due_ns, due_ms, maybe = ARGV[a + 5], ARGV[a + 6], ARGV[a + 7], ARGV[a + 8], ARGV[a + 9]
  local uid, tenant, token, started = ARGV[a + 10], ARGV[a + 11], ARGV[a + 12], ARGV[a + 13]
  local job = prefix .. 'job:' .. id
  local cur = call('HMGET', job, 'attempts', 'status', 'updated_at', 'next_attempt_at', 'maybe_sent', 'error')
  if cur[1] ~= attempt or cur[2] ~= 'running' or cur[3] ~= started then
    results[i + 1] = 'stale'
  else
    if outcome == 'retry' then
      call('HSET', job, 'status', 'retrying', 'updated_at', now_ns, 'error', err,
        'next_attempt_at', due_ns, 'maybe_sent', maybe)
      call('ZADD', scheduled, due_ms, id)
    else
      if outcome == 'succeeded' then
        if cur[4] or cur[5] or cur[6] then
          call('HDEL', job, 'next_attempt_at', 'maybe_sent', 'error')
        end
        -- The record lives as long as the session it made (it is the session's relay target); forgetting the
        -- session lets it expire.
        call('HSET', job, 'status', 'succeeded', 'updated_at', now_ns, 'response', resp)
        call('HSET', prefix .. 'session:' .. uid, 'tenant', tenant, 'job', id, 'hook_token', token)
        local mine = sessions[tenant]
        if mine then mine[#mine + 1] = uid else sessions[tenant] = {uid} end
      else
        if cur[4] or cur[5] then
          call('HDEL', job, 'next_attempt_at', 'maybe_sent')
        end
        call('HSET', job, 'status', outcome, 'updated_at', now_ns, 'error', err)
        call('PEXPIRE', job, ttl)
        local hook = old_hook(prefix, token)
        if hook then
          call('PEXPIRE', hook, ttl)
        end
        if outcome == 'dead' then
          call('ZADD', dead, now_ms, id)
        end
      end
      local mine = done[tenant]
      if mine then mine[#mine + 1] = id else done[tenant] = {id} end
      call(publish, channel, id)
    end
    table.insert(acks, entry)
    results[i + 1] = 'ok'
  end
end
for tenant, ids in pairs(done) do
  call('SREM', prefix .. 'tenant:' .. tenant .. ':pending', unpack(ids))
end
for tenant, uids in pairs(sessions) do
  call('SADD', prefix .. 'tenant:' .. tenant .. ':sessions', unpack(uids))
end
-- One XACK for the whole batch.
if #acks > 0 then
  call('XACK', stream, group, unpack(acks))
end
-- The job id of an entry's fields: a job id (a ULID in canonical form), or nil (left to the worker).
local function job_of(fields)
  for f = 1, #fields, 2 do
    if fields[f] == 'job' then
      local id = fields[f + 1]
      if #id == 26 and not string.find(id, '[^0-9A-HJKMNP-TV-Z]') and string.byte(id) <= 55 then return id end
      return nil
    end
  end
  return nil
end
-- The next entries for the freed slots, in the same round trip, started: on a retry first those an earlier run of
-- this batch read and started, then new ones (XREADGROUP) for the rest. Answered in XREADGROUP's form (or false).
local entries = {}
if recover > 0 then
  for _, p in ipairs(call('XPENDING', stream, group, '-', '+', recover, consumer)) do
    local e = call('XRANGE', stream, p[1], p[1])[1]
    local id = e and job_of(e[2])
    if id then
      local cur = call('HMGET', prefix .. 'job:' .. id, 'status', 'updated_at')
      if cur[1] == 'running' and cur[2] == now_ns then
        entries[#entries + 1] = e
      end
    end
  end
end
if read > #entries then
  local got = call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', read - #entries, 'STREAMS', stream, '>')
  if got then
    for _, e in ipairs(got[1][2]) do
      entries[#entries + 1] = e
    end
  end
end
-- The entries started answer as {entry id, job id, start}; the others (no job id) in XREADGROUP's form, for the worker
-- to set aside.
local begun, unstarted = {}, {}
for _, e in ipairs(entries) do
  local id = job_of(e[2])
  if id then
    local reply, prior = start_one(c, prefix .. 'job:' .. id, stream, dead, e[1], '0', id)
    -- What the start changed, as one comma-separated string (a status and numbers: no commas in them).
    if prior then reply[3] = table.concat(prior, ',') end
    begun[#begun + 1], begun[#begun + 2], begun[#begun + 3] = e[1], id, reply
  else
    unstarted[#unstarted + 1] = e
  end
end
local next = #unstarted > 0 and {{stream, unstarted}} or false
return {results, next, begun}
