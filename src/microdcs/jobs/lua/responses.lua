-- Every job response of a scope (listed jobs that have started, and archived ones still
-- retained), for RequestJobResponseByJobOrderState. Expired index entries are pruned.
-- The job keys are derived from ARGV[2]; they share KEYS[1]'s hash tag (one slot).
--
-- KEYS[1] responses index (zset: id -> expiry ms, +inf while listed)
-- ARGV[1] now (ms)   ARGV[2] key base of the scope, e.g. "p:jobs:{scope}:"
-- (the scope escaped inside its tag by storage/keys.py; a job id is appended raw,
--  exactly as ScopeKeys.job builds it, so both name the same key)
-- Returns a flat list: per job {id, order, state, substate, started, ended, response data}

redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1])
local out = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local f = redis.call('HMGET', ARGV[2] .. 'job:' .. id, 'order', 'st', 'sub', 'started',
    'ended', 'rdata', 'res')
  if not f[1] or f[7] ~= '1' then
    f = redis.call('HMGET', ARGV[2] .. 'result:' .. id, 'order', 'st', 'sub', 'started',
      'ended', 'rdata', 'res')
  end
  if f[1] then
    table.insert(out, id)
    for i = 1, 6 do table.insert(out, f[i] or '') end
  else
    redis.call('ZREM', KEYS[1], id)
  end
end
return out
