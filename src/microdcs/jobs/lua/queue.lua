-- The station dispatcher's queue, shared by put_order.lua, transition.lua and dispatch.lua
-- (scripts.py prepends this file to each). Key names derive from the scope's key base,
-- with the suffixes of jobs/keys.py (ScopeKeys.queue, .due, .fresh), so they share the
-- scope's hash tag. A job hash keeps its Priority ('qp'), StartTime in ms ('qs', 0: none),
-- the time of its Start ('qt') and, while it is queued, its queue member ('qm').
--
-- queue (zset 'dq'): score Priority, member "StartTime(13)Start(13)|id", so ZRANGE 0 0 is
-- the next job: lower Priority first, then StartTime (the time of the Start for a job
-- without one), then the time of the Start.
-- due (zset 'dd'): jobs whose StartTime lies ahead, score StartTime; dispatch.lua moves
-- them into the queue when it is reached.

local function q_enter(base, job, id, now_ms, keep_start)
  local f = redis.call('HMGET', job, 'qp', 'qs', 'qt', 'qm')
  if f[4] then
    redis.call('ZREM', base .. 'dq', f[4])
    redis.call('ZREM', base .. 'dd', f[4])
  end
  local qp = tonumber(f[1] or '0')
  local qs = tonumber(f[2] or '0')
  local qt = now_ms
  if keep_start and f[3] then qt = tonumber(f[3]) end
  -- A job without StartTime is planned for the time of its Start.
  local planned = qs
  if planned == 0 then planned = qt end
  local member = string.format('%013d%013d|', planned, qt) .. id
  if qs > now_ms then
    redis.call('ZADD', base .. 'dd', qs, member)
  else
    redis.call('ZADD', base .. 'dq', qp, member)
  end
  redis.call('HSET', job, 'qm', member, 'qt', qt)
  redis.call('SADD', base .. 'dnew', id)
end

local function q_leave(base, job, id)
  local member = redis.call('HGET', job, 'qm')
  if member then
    redis.call('ZREM', base .. 'dq', member)
    redis.call('ZREM', base .. 'dd', member)
    redis.call('HDEL', job, 'qm')
  end
  redis.call('SREM', base .. 'dnew', id)
end

