-- (after start_one.lua) Start attempts, a batch at a time: start_one for each (a retry of a start whose answer was
-- lost gets that start back).
-- KEYS, 3 per attempt: job hash, stream, dead set
-- ARGV: 1 group, 2 now (ns), 3 now (ms), 4 TTL of terminal records (ms), 5 completion channel, 6 key prefix,
--   7 error JSON for a job whose last attempt never finished, 8 reconcile-only passes allowed, 9 error JSON for a
--   job whose reconcile passes could not reach upstream, 10 publish command (PUBLISH, or SPUBLISH on a cluster),
--   then 3 per attempt: entry id, '1' when the entry was taken over from a dead consumer, job id
-- Answers start_one's reply per attempt.
local c = start_constants(ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10])
local results = {}
local n = (#ARGV - 10) / 3
for i = 0, n - 1 do
  results[i + 1] = start_one(c, KEYS[i * 3 + 1], KEYS[i * 3 + 2], KEYS[i * 3 + 3], ARGV[11 + i * 3],
    ARGV[12 + i * 3], ARGV[13 + i * 3])
end
return results
