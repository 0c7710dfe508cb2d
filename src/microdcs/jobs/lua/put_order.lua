-- Store, StoreAndStart or Update a job order: acceptance checks against the station
-- configuration, then the write, the version bump and the change-stream entry, atomically.
-- Every key carries the scope's hash tag, so the script touches one slot.
--
-- KEYS[1]  job hash            KEYS[2]  job list (zset)      KEYS[3] change stream
-- KEYS[4]  seq counter         KEYS[5]  cfg:max (string)     KEYS[6] cfg:workmaster (hash)
-- KEYS[7]  cfg:recipe (hash)   KEYS[8..12] cfg sets: equipment, materialclass,
--                              materialdefinition, personnel, physicalasset
-- KEYS[13] archived result hash of the job   KEYS[14] the job's tombstone (string)
-- ARGV[1]  mode: "store" or "update"
-- ARGV[2]  job order id        ARGV[3] order JSON
-- ARGV[4]  state number (store)          ARGV[5] substate number (store; update: Ready)
-- ARGV[6]  now (ISO 8601)      ARGV[7] now (ms, list score)   ARGV[8] stream MAXLEN
-- ARGV[9..14] number of referenced IDs of each kind: workmaster, equipment,
--             materialclass, materialdefinition, personnel, physicalasset
-- ARGV[15..]  the referenced IDs, kind after kind; then, after them (ARGV[t..t+3]):
--             key base of the scope, Priority, StartTime (ms, 0: none), the default
--             job list limit (APP_JOBS_MAX_DOWNLOADABLE) when cfg:max is not set,
--             and the request's origin (ARGV[t+4]: digest of its CloudEvent source + id,
--             "" for none)
-- Store is idempotent by its origin: the job keeps it ('og'; the archived result keeps it
-- too, and a deleted job's tombstone holds it), and a Store of the same origin again
-- changes nothing and returns {1, 'again'}: the request was a copy of the one that stored
-- the job, and its answer is that one's.
-- An AllowedToStart job enters the dispatcher's queue (queue.lua, prepended). The job
-- keeps its references ('refs': "kind<TAB>id" lines, kind 0 = work master, 1.. = ID_KINDS)
-- for availability.lua.
-- Returns {status, version, seq, recipe dataschema or "", state, substate}
--   status 1 ok, 2 unknown job (update), 8 invalid state (update), 16 unable to accept.

local mode = ARGV[1]
local job = KEYS[1]
local tail = 15
for kind = 0, 5 do tail = tail + tonumber(ARGV[9 + kind]) end
local base, priority, start_ms = ARGV[tail], ARGV[tail + 1], ARGV[tail + 2]
local origin = ARGV[tail + 4] or ''
local current = redis.call('HMGET', job, 'st', 'v', 'sub', 'og')
if mode == 'store' then
  if origin ~= '' and (current[4] == origin or redis.call('HGET', KEYS[13], 'og') == origin
      or redis.call('GET', KEYS[14]) == origin) then
    return {1, 'again'}
  end
  if current[1] then return {16} end
  local max = tonumber(redis.call('GET', KEYS[5]) or ARGV[tail + 3])
  if max ~= 0 and max ~= 65535 and redis.call('ZCARD', KEYS[2]) >= max then return {16} end
else
  if not current[1] then return {2} end
  if current[1] ~= '1' and current[1] ~= '2' then return {8, current[1]} end
end

-- Acceptance: every referenced ID must be allowed by the scope's configuration.
local recipe = ''
local refs = {}
local at = 15
for kind = 0, 5 do
  local count = tonumber(ARGV[9 + kind])
  for i = 0, count - 1 do
    local id = ARGV[at + i]
    table.insert(refs, kind .. '\t' .. id)
    if kind == 0 then
      if redis.call('HEXISTS', KEYS[6], id) == 0 then return {16} end
      if recipe == '' then recipe = redis.call('HGET', KEYS[7], id) or '' end
    elseif redis.call('SISMEMBER', KEYS[7 + kind], id) == 0 then
      return {16}
    end
  end
  at = at + count
end

local version, state, sub
if mode == 'store' then
  version = 1
  state = ARGV[4]
  sub = ARGV[5]
  redis.call('HSET', job, 'order', ARGV[3], 'st', state, 'sub', sub, 'v', version,
    'created', ARGV[6], 'updated', ARGV[6], 'res', '0', 'rc', recipe,
    'qp', priority, 'qs', start_ms, 'refs', table.concat(refs, '\n'), 'og', origin)
  redis.call('ZADD', KEYS[2], ARGV[7], ARGV[2])
  if state == '2' then q_enter(base, job, ARGV[2], tonumber(ARGV[7]), false) end
else
  version = tonumber(current[2]) + 1
  state = current[1]
  sub = ARGV[5]
  redis.call('HSET', job, 'order', ARGV[3], 'sub', sub, 'v', version, 'updated', ARGV[6],
    'rc', recipe, 'qp', priority, 'qs', start_ms, 'refs', table.concat(refs, '\n'))
  -- Update keeps the place earned by the Start, re-ranked by the new Priority/StartTime.
  if state == '2' then q_enter(base, job, ARGV[2], tonumber(ARGV[7]), true) end
end
local seq = redis.call('INCR', KEYS[4])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[8], '*', 'id', ARGV[2], 'op', 'upsert',
  'v', version, 'st', state, 'sub', sub, 'res', '0', 'seq', seq)
return {1, version, seq, recipe, tonumber(state), tonumber(sub)}
