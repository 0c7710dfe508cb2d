-- Acquire or renew a lease: succeeds when the key is free or already ours.
--
-- KEYS[1] lease key   ARGV[1] holder id   ARGV[2] lease time (ms)
-- Returns 1 when the caller holds the lease afterwards, else 0.

local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
