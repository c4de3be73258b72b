-- Ends the send that claimed an Idempotency-Key: stores its answer, or (status '') drops the claim because the
-- send surely never left the gateway, so that the same key may send.
-- KEYS[1] the key's record; ARGV[1] sha256 of the send's body, ARGV[2] HTTP status ('' = drop), ARGV[3] body,
-- ARGV[4] TTL in ms. A record that another body holds is left alone. Answers 1 when the record was changed.
if redis.call('HGET', KEYS[1], 'fp') ~= ARGV[1] then
  return 0
end
if ARGV[2] == '' then
  redis.call('DEL', KEYS[1])
  return 1
end
redis.call('HSET', KEYS[1], 'state', 'done', 'status', ARGV[2], 'body', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
