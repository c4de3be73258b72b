-- Queue gauges: {not yet delivered, scheduled, delivered and unacked, dead, dead letters}.
-- Not yet delivered is the consumer group's lag (valid: entries are only ever removed below the last delivered
-- one); without a group every entry is undelivered.
-- KEYS: 1 stream, 2 scheduled set, 3 dead set, 4 dead-letter list; ARGV: 1 consumer group
local len = redis.call('XLEN', KEYS[1])
local pending, running = len, 0
local groups = redis.pcall('XINFO', 'GROUPS', KEYS[1])
if type(groups) == 'table' and not groups.err then
  for _, g in ipairs(groups) do
    local fields = {}
    for i = 1, #g, 2 do
      fields[g[i]] = g[i + 1]
    end
    if fields['name'] == ARGV[1] then
      running = tonumber(fields['pending']) or 0
      local lag = fields['lag']
      if type(lag) == 'number' then
        pending = lag
      else
        -- Lag unknown: fall back to an upper bound (acked entries not yet trimmed count too).
        pending = math.max(0, len - running)
      end
    end
  end
end
return {pending, redis.call('ZCARD', KEYS[2]), running, redis.call('ZCARD', KEYS[3]), redis.call('LLEN', KEYS[4])}
