-- The station dispatcher's decision for one scope, atomically (queue.lua is prepended):
-- move due jobs into the queue, start the best queued jobs while a slot is free, mark the
-- next one AllowedToStart/Ready and the other waiting ones Waiting, and Close the
-- Ended/Completed jobs whose time has come. Two replicas calling it at once never start
-- more jobs than the scope has slots: the count and the moves are one script.
--
-- KEYS[1] queue (zset)   KEYS[2] due (zset)   KEYS[3] active (set)   KEYS[4] cfg:maxrun
-- KEYS[5] ready (string)   KEYS[6] fresh (set)   KEYS[7] handover (zset)   KEYS[8] closing
-- KEYS[9] change stream   KEYS[10] seq counter   KEYS[11] responses index (zset)
-- ARGV[1] key base of the scope (job keys are derived from it, as in snapshot.lua)
-- ARGV[2] now (ms)   ARGV[3] now (ISO 8601)   ARGV[4] stream MAXLEN
-- ARGV[5] max_running_jobs when cfg:maxrun is not set   ARGV[6] hand-over grace (ms)
-- Returns {next due ms (-1: nothing due), then per move: kind, id, order, state, substate,
--  started, ended, response data, has response, version, seq, recipe dataschema}
--  kind: "start" (-> Running), "sub" (substate), "close" (-> Closed), "handover" (a start
--  whose announcement is overdue: the replica that made it may have died).

local base = ARGV[1]
local now = tonumber(ARGV[2])
local iso = ARGV[3]
local out = {-1}

local function emit(kind, id, job, seq)
  local d = redis.call('HMGET', job, 'order', 'st', 'sub', 'started', 'ended', 'rdata', 'res',
    'v', 'rc')
  for _, x in ipairs({kind, id, d[1], d[2], d[3] or '0', d[4] or '', d[5] or '', d[6] or '',
      d[7] or '0', d[8], seq, d[9] or ''}) do
    table.insert(out, x)
  end
end

local function change(kind, id, job, st, sub)
  local v = redis.call('HINCRBY', job, 'v', 1)
  redis.call('HSET', job, 'st', st, 'sub', sub, 'updated', iso)
  local res = redis.call('HGET', job, 'res') or '0'
  local seq = redis.call('INCR', KEYS[10])
  redis.call('XADD', KEYS[9], 'MAXLEN', '~', ARGV[4], '*', 'id', id, 'op', 'upsert',
    'v', v, 'st', st, 'sub', sub, 'res', res, 'seq', seq)
  emit(kind, id, job, seq)
end

-- 1. Jobs whose StartTime has come join the queue.
for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 1000)) do
  redis.call('ZREM', KEYS[2], member)
  local priority = redis.call('HGET', base .. 'job:' .. string.sub(member, 28), 'qp')
  if priority then redis.call('ZADD', KEYS[1], priority, member) end
end

-- 2. Fill the free slots, best job first.
local max = tonumber(redis.call('GET', KEYS[4]) or ARGV[5])
local running = redis.call('SCARD', KEYS[3])
local budget = 1000
while (max == 0 or running < max) and budget > 0 do
  local top = redis.call('ZRANGE', KEYS[1], 0, 0)[1]
  if not top then break end
  budget = budget - 1
  redis.call('ZREM', KEYS[1], top)
  local id = string.sub(top, 28)
  local job = base .. 'job:' .. id
  if redis.call('HGET', job, 'st') == '2' then
    redis.call('HDEL', job, 'qm')
    redis.call('HSET', job, 'res', '1')
    redis.call('HSETNX', job, 'started', iso)
    redis.call('ZADD', KEYS[11], '+inf', id)
    redis.call('SADD', KEYS[3], id)
    redis.call('ZADD', KEYS[7], now, id)
    redis.call('SREM', KEYS[6], id)
    change('start', id, job, '3', '0')
    running = running + 1
  end
end

-- 3. Ready for the next job, Waiting for the others that changed or entered.
local head = redis.call('ZRANGE', KEYS[1], 0, 0)[1]
if head then head = string.sub(head, 28) end
local seen = {}
local candidates = redis.call('SMEMBERS', KEYS[6])
local previous = redis.call('GET', KEYS[5])
if previous then table.insert(candidates, previous) end
if head then table.insert(candidates, head) end
for _, id in ipairs(candidates) do
  if not seen[id] then
    seen[id] = true
    local job = base .. 'job:' .. id
    local f = redis.call('HMGET', job, 'st', 'sub')
    if f[1] == '2' then
      local want = '1'
      if id == head then want = '2' end
      if f[2] ~= want then change('sub', id, job, '2', want) end
    end
  end
end
redis.call('DEL', KEYS[6])
if head then redis.call('SET', KEYS[5], head) else redis.call('DEL', KEYS[5]) end

-- 4. Completed jobs whose time has come are Closed.
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[8], '-inf', now, 'LIMIT', 0, 100)) do
  redis.call('ZREM', KEYS[8], id)
  local job = base .. 'job:' .. id
  local f = redis.call('HMGET', job, 'st', 'sub')
  if f[1] == '5' and f[2] == '1' then change('close', id, job, '5', '2') end
end

-- 5. Starts nobody announced within the grace time (announced again by the caller).
local grace = tonumber(ARGV[6])
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[7], '-inf', now - grace, 'LIMIT', 0, 100)) do
  redis.call('ZADD', KEYS[7], now, id)
  local job = base .. 'job:' .. id
  if redis.call('EXISTS', job) == 1 then emit('handover', id, job, 0) end
end

-- The next time something is due here.
local due = {}
local d = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
if d[2] then table.insert(due, tonumber(d[2])) end
d = redis.call('ZRANGE', KEYS[8], 0, 0, 'WITHSCORES')
if d[2] then table.insert(due, tonumber(d[2])) end
d = redis.call('ZRANGE', KEYS[7], 0, 0, 'WITHSCORES')
if d[2] then table.insert(due, tonumber(d[2]) + grace) end
for _, t in ipairs(due) do
  if out[1] == -1 or t < out[1] then out[1] = t end
end
return out
