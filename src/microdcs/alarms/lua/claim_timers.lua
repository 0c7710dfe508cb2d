-- Claim the due alarm timers of a scope, atomically: each is handed to one replica.
-- A claimed timer is not removed but leased (re-scored to the lease end): the transition
-- it causes removes it in the same script that stores the transition, and a replica that
-- died in between leaves it to fire again on another one once the lease ends.
-- KEYS[1] timers zset (member = alarm \31 kind, score = due time in Unix seconds).
-- ARGV[1] now, ARGV[2] max timers per call, ARGV[3] lease end (Unix seconds).
-- Returns {member, due, member, due, ...} of the claimed timers (due as stored).
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0,
  tonumber(ARGV[2]))
for i = 1, #due, 2 do
  redis.call('ZADD', KEYS[1], ARGV[3], due[i])
end
return due
