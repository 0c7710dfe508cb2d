-- After the MES changed a scope's station configuration: every NotAllowedToStart job whose
-- references are no longer all allowed becomes NotAllowedToStart/Waiting, and one whose
-- references are all allowed again becomes Ready. A reference is available while the
-- scope's configuration allows it (the work master is stored, the ID is in its set).
-- Config changes are rare, so the scan of the scope's job list is fine here.
--
-- KEYS[1] job list (zset)   KEYS[2] cfg:workmaster (hash)   KEYS[3..7] cfg sets:
--   equipment, materialclass, materialdefinition, personnel, physicalasset
-- KEYS[8] change stream   KEYS[9] seq counter
-- ARGV[1] key base of the scope (job keys derived from it, as in snapshot.lua)
-- ARGV[2] now (ISO 8601)   ARGV[3] stream MAXLEN
-- Returns {-1, then per move the twelve fields of dispatch.lua, kind "sub"}

local base = ARGV[1]
local out = {-1}

local function available(refs)
  for line in string.gmatch(refs, '[^\n]+') do
    local tab = string.find(line, '\t', 1, true)
    local kind, id = tonumber(string.sub(line, 1, tab - 1)), string.sub(line, tab + 1)
    if kind == 0 then
      if redis.call('HEXISTS', KEYS[2], id) == 0 then return false end
    elseif redis.call('SISMEMBER', KEYS[2 + kind], id) == 0 then
      return false
    end
  end
  return true
end

for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local job = base .. 'job:' .. id
  local f = redis.call('HMGET', job, 'st', 'sub', 'refs')
  if f[1] == '1' and (f[2] == '1' or f[2] == '2') then
    local want = '1'
    if available(f[3] or '') then want = '2' end
    if f[2] ~= want then
      local v = redis.call('HINCRBY', job, 'v', 1)
      redis.call('HSET', job, 'sub', want, 'updated', ARGV[2])
      local seq = redis.call('INCR', KEYS[9])
      redis.call('XADD', KEYS[8], 'MAXLEN', '~', ARGV[3], '*', 'id', id, 'op', 'upsert',
        'v', v, 'st', '1', 'sub', want, 'res', '0', 'seq', seq)
      local d = redis.call('HMGET', job, 'order', 'started', 'ended', 'rdata', 'rc')
      for _, x in ipairs({'sub', id, d[1], '1', want, d[2] or '', d[3] or '', d[4] or '',
          '0', v, seq, d[5] or ''}) do
        table.insert(out, x)
      end
    end
  end
end
return out
