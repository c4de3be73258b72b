-- Reset the idle time of the entries this consumer is working on, so that only a dead consumer's entries are
-- taken over. An entry another consumer has taken over in the meantime is left alone (and reported).
-- KEYS: 1 stream; ARGV: 1 group, 2 consumer, 3.. entry ids
local lost = {}
for i = 3, #ARGV do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1, ARGV[2])
  if #p == 1 then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
  else
    lost[#lost + 1] = ARGV[i]
  end
end
return lost
