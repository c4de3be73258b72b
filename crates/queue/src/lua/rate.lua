-- (after gcra.lua) Draws one request from a tenant's bucket.
-- KEYS[1] the bucket; ARGV[1] emission interval in microseconds, ARGV[2] burst. Answers gcra's reply.
return gcra(KEYS[1], ARGV[1], ARGV[2])
