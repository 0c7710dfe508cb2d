-- One state change of a job (any method but Store/Update, or a system move): checks the
-- current state (and optionally the version: compare-and-swap), writes the new state,
-- bumps the version, keeps the job response fields, and appends to the change stream.
--
-- KEYS[1] job hash   KEYS[2] job list (zset)   KEYS[3] change stream   KEYS[4] seq counter
-- KEYS[5] responses index (zset: id -> expiry ms, +inf while listed)
-- KEYS[6] archived response hash of this job
-- KEYS[7] tombstone of this job: a deleted job leaves its Store's origin ('og') there
--         for the response retention, so a late copy of that Store stays a copy
-- ARGV[1] job order id
-- ARGV[2] allowed current states as ",1,2,"
-- ARGV[3] target state ("" keeps the state)    ARGV[4] target substate ("0" = none)
-- ARGV[5] removal: "" | "delete" | "archive"
-- ARGV[6] now (ISO 8601)   ARGV[7] now (ms)    ARGV[8] stream MAXLEN
-- ARGV[9] response retention (s)   ARGV[10] expected version ("" = any)
-- ARGV[11] job response data JSON ("" = unchanged)
-- ARGV[12] key base of the scope   ARGV[13] required current substate ("" = any)
-- ARGV[14] seconds after which an Ended/Completed job is Closed (0 = never by time)
-- Keeps the dispatcher's sets (queue.lua, prepended): an AllowedToStart job is queued,
-- a Running or Interrupted one holds a slot ('active'), a Completed one may be 'closing'.
-- Returns {status} on failure (2 unknown, 8 invalid state or lost the race), else
-- {1, version, seq, state, substate, order, started, ended, response data, has response,
--  recipe dataschema of the job's work master}

local job = KEYS[1]
local cur = redis.call('HMGET', job, 'st', 'v', 'sub', 'started')
if not cur[1] then return {2} end
if not string.find(ARGV[2], ',' .. cur[1] .. ',', 1, true) then return {8} end
if ARGV[10] ~= '' and ARGV[10] ~= cur[2] then return {8} end
if ARGV[13] ~= '' and ARGV[13] ~= (cur[3] or '') then return {8} end
local base = ARGV[12]

local version = tonumber(cur[2]) + 1
local state, sub = cur[1], cur[3]
if ARGV[3] ~= '' then state, sub = ARGV[3], ARGV[4] end
local n = tonumber(state)
local res = '0'
if n >= 3 then res = '1' end
redis.call('HSET', job, 'st', state, 'sub', sub, 'v', version, 'updated', ARGV[6], 'res', res)
if n == 3 and not cur[4] then redis.call('HSET', job, 'started', ARGV[6]) end
if n >= 5 then redis.call('HSET', job, 'ended', ARGV[6]) end
if ARGV[11] ~= '' then redis.call('HSET', job, 'rdata', ARGV[11]) end
if res == '1' then redis.call('ZADD', KEYS[5], '+inf', ARGV[1]) end

-- The dispatcher's view: queued, holding a slot, waiting to be Closed.
local gone = ARGV[5] ~= ''
if cur[1] == '2' and (state ~= '2' or gone) then q_leave(base, job, ARGV[1]) end
if state == '2' and cur[1] ~= '2' and not gone then
  q_enter(base, job, ARGV[1], tonumber(ARGV[7]), false)
end
if (n == 3 or n == 4) and not gone then
  redis.call('SADD', base .. 'active', ARGV[1])
else
  redis.call('SREM', base .. 'active', ARGV[1])
end
if n == 5 and sub == '1' and tonumber(ARGV[14]) > 0 and not gone then
  redis.call('ZADD', base .. 'closing', tonumber(ARGV[7]) + 1000 * tonumber(ARGV[14]), ARGV[1])
else
  redis.call('ZREM', base .. 'closing', ARGV[1])
end
if gone then redis.call('ZREM', base .. 'dstarted', ARGV[1]) end

local data = redis.call('HMGET', job, 'order', 'started', 'ended', 'rdata', 'rc', 'og')
local op = 'upsert'
if ARGV[5] == 'delete' then
  redis.call('DEL', job)
  if data[6] and data[6] ~= '' and tonumber(ARGV[9]) > 0 then
    redis.call('SET', KEYS[7], data[6], 'EX', ARGV[9])
  end
  redis.call('ZREM', KEYS[2], ARGV[1])
  op = 'remove'
elseif ARGV[5] == 'archive' then
  redis.call('RENAME', job, KEYS[6])
  redis.call('EXPIRE', KEYS[6], ARGV[9])
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('ZADD', KEYS[5], tonumber(ARGV[7]) + 1000 * tonumber(ARGV[9]), ARGV[1])
  op = 'remove'
end
local seq = redis.call('INCR', KEYS[4])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[8], '*', 'id', ARGV[1], 'op', op,
  'v', version, 'st', state, 'sub', sub, 'res', res, 'seq', seq)
return {1, version, seq, n, tonumber(sub), data[1], data[2] or '', data[3] or '',
  data[4] or '', res, data[5] or ''}
