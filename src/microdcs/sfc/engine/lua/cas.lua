-- Compare-and-swap of one execution, with its timer and awaiting-index changes.
-- KEYS[1] execution hash, KEYS[2] timers zset, KEYS[3] awaiting hash,
-- KEYS[4..] pull sets (one per awaited event type) and tag watch sets (job ids whose
-- enabled transitions read the tag), named by the ops below.
-- ARGV[1] expected version ("" = the execution must not exist yet), ARGV[2] new version,
-- ARGV[3] state JSON, ARGV[4] work entry id, ARGV[5] effects JSON (redone on a claim),
-- ARGV[6] n = number of extra hash field/value pairs, then the pairs,
-- then triples (op, a, b): za member score | zr member - | ha corr job | hr corr - |
-- sa keyindex member | sr keyindex member.
-- Returns {1} when stored, {0, current version} when the version did not match.
-- 'applied' is the entry of this change; 'recent' keeps the last RECENT entries applied
-- (space-separated), so a claimed entry that later changes superseded is not applied again.
local RECENT = 32
local current = redis.call('HGET', KEYS[1], 'v')
if ARGV[1] == '' then
  if current then return {0, current} end
elseif current ~= ARGV[1] then
  return {0, current or ''}
end
local recent = {}
for id in string.gmatch(redis.call('HGET', KEYS[1], 'recent') or '', '%S+') do
  recent[#recent + 1] = id
end
recent[#recent + 1] = ARGV[4]
local first = math.max(1, #recent - RECENT + 1)
redis.call('HSET', KEYS[1], 'v', ARGV[2], 'state', ARGV[3], 'applied', ARGV[4], 'fx', ARGV[5],
  'recent', table.concat(recent, ' ', first, #recent))
local n = tonumber(ARGV[6])
local i = 7
for _ = 1, n do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  i = i + 2
end
while i <= #ARGV do
  local op, a, b = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if op == 'za' then redis.call('ZADD', KEYS[2], b, a)
  elseif op == 'zr' then redis.call('ZREM', KEYS[2], a)
  elseif op == 'ha' then redis.call('HSET', KEYS[3], a, b)
  elseif op == 'hr' then redis.call('HDEL', KEYS[3], a)
  elseif op == 'sa' then redis.call('SADD', KEYS[tonumber(a)], b)
  elseif op == 'sr' then redis.call('SREM', KEYS[tonumber(a)], b)
  end
  i = i + 3
end
return {1}
