-- Remove acked entries from the stream: everything below the oldest entry still pending in the group, or, with
-- nothing pending, everything up to the last delivered entry. Entries not yet delivered are never touched.
-- (Trimming instead of an XDEL per ack: XDEL costs several times any other command of an attempt.)
-- KEYS: 1 stream; ARGV: 1 group
local groups = redis.pcall('XINFO', 'GROUPS', KEYS[1])
if type(groups) ~= 'table' or groups.err then
  return 0
end
local last
for _, g in ipairs(groups) do
  local name, delivered
  for i = 1, #g, 2 do
    if g[i] == 'name' then
      name = g[i + 1]
    elseif g[i] == 'last-delivered-id' then
      delivered = g[i + 1]
    end
  end
  if name == ARGV[1] then
    last = delivered
  end
end
if not last or last == '0-0' then
  return 0
end
local minid
local summary = redis.call('XPENDING', KEYS[1], ARGV[1])
if tonumber(summary[1]) > 0 then
  minid = summary[2]
else
  local dash = string.find(last, '-', 1, true)
  minid = string.sub(last, 1, dash) .. string.format('%d', tonumber(string.sub(last, dash + 1)) + 1)
end
return redis.call('XTRIM', KEYS[1], 'MINID', minid)
