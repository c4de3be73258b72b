-- Set aside stream entries that cannot be run (no job id, a malformed one, or a job record that cannot be read):
-- ack them, so they never stay pending or hold back trimming, and keep their raw fields in a capped, expiring list
-- for an operator to look at.
-- KEYS: 1 stream, 2 dead-letter list
-- ARGV: 1 consumer group, 2 list cap, 3 list TTL (ms), then 2 per entry: entry id, JSON of the dead letter
-- Answers the list's length.
for i = 4, #ARGV, 2 do
  redis.call('XACK', KEYS[1], ARGV[1], ARGV[i])
  redis.call('LPUSH', KEYS[2], ARGV[i + 1])
end
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[2]) - 1)
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return redis.call('LLEN', KEYS[2])
