-- Remove a claimed alarm timer that caused no transition, unless it was set again since.
-- KEYS[1] timers zset. ARGV[1] member, ARGV[2] the score it was leased with.
-- Returns 1 when removed, 0 when it was set again (or is gone).
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and tonumber(score) == tonumber(ARGV[2]) then
  return redis.call('ZREM', KEYS[1], ARGV[1])
end
return 0
