-- A consistent picture of a scope's job list for the publisher: the scope's change
-- counter, the last change-stream id, and each listed job's state. Job keys are derived
-- from ARGV[1] and share the hash tag of KEYS (one slot).
--
-- KEYS[1] job list (zset)   KEYS[2] seq counter   KEYS[3] change stream
-- ARGV[1] key base of the scope, e.g. "p:jobs:{scope}:"
-- (the scope escaped inside its tag by storage/keys.py; a job id is appended raw,
--  exactly as ScopeKeys.job builds it, so both name the same key)
-- Returns {seq, last stream id or "0-0", id, state, substate, has response, ...}

local last = redis.call('XREVRANGE', KEYS[3], '+', '-', 'COUNT', 1)
local out = {tonumber(redis.call('GET', KEYS[2]) or '0'), '0-0'}
if last[1] then out[2] = last[1][1] end
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local f = redis.call('HMGET', ARGV[1] .. 'job:' .. id, 'st', 'sub', 'res')
  if f[1] then
    table.insert(out, id)
    table.insert(out, f[1])
    table.insert(out, f[2] or '0')
    table.insert(out, f[3] or '0')
  end
end
return out
