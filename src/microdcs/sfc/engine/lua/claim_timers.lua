-- Turn due timers into work items, atomically: exactly one replica fires each timer.
-- KEYS[1] timers zset (member = job \31 timer key, score = due time), KEYS[2] work stream.
-- ARGV[1] now (seconds), ARGV[2] max timers per call, ARGV[3] approximate stream maxlen.
-- Returns the number of timers fired.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, member in ipairs(due) do
  redis.call('ZREM', KEYS[1], member)
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'k', 'timer', 'm', member)
end
return #due
