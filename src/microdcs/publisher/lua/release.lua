-- Give a lease up, only if the caller holds it.
--
-- KEYS[1] lease key   ARGV[1] holder id
-- Returns 1 when released, else 0.

if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
