-- Give entries fetched but never started back to the queue (shutdown): ack each (trim.lua removes it), add it anew.
-- KEYS: 1 stream; ARGV: 1 group, then pairs of entry id, job id
for i = 2, #ARGV, 2 do
  if redis.call('XACK', KEYS[1], ARGV[1], ARGV[i]) == 1 then
    redis.call('XADD', KEYS[1], '*', 'job', ARGV[i + 1])
  end
end
return 'ok'
