-- Remove the leased stale deadlines whose reports the listeners heard, unless a sample
-- moved them meanwhile (a new deadline, with another score).
-- KEYS[1] stale zset. ARGV[1] the lease end they were claimed with, ARGV[2..] tags.
-- Returns how many were removed.
local removed = 0
for i = 2, #ARGV do
  local score = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if score and tonumber(score) == tonumber(ARGV[1]) then
    removed = removed + redis.call('ZREM', KEYS[1], ARGV[i])
  end
end
return removed
