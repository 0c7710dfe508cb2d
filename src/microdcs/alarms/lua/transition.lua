-- One alarm transition or operator action as a compare-and-swap on the alarm's version,
-- with its timers, its journal entry and the scope's change counter, all or nothing.
-- KEYS[1] records hash, KEYS[2] versions hash, KEYS[3] timers zset, KEYS[4] journal
-- stream, KEYS[5] seq counter, KEYS[6] definitions hash.
-- ARGV[1] alarm id, ARGV[2] expected version ('0': never stored), ARGV[3] new version,
-- ARGV[4] record JSON, ARGV[5] journal maxlen (approximate),
-- ARGV[6] fired timer member ('' none), ARGV[7] its leased score (removed only if the
-- member still has it: a transition of another replica may have set it again),
-- ARGV[8] n timer ops, then n triples (op, member, due): op 'set' (ZADD) or 'cancel' (ZREM),
-- then ARGV[k] m journal field/value pairs (m = 0: no entry), then the pairs.
-- Returns {1, seq} when stored, {0, current version} when the version did not match,
-- {-1} when the alarm is no longer defined (deleted meanwhile: nothing is stored).
if redis.call('HEXISTS', KEYS[6], ARGV[1]) == 0 then
  return {-1}
end
local current = redis.call('HGET', KEYS[2], ARGV[1]) or '0'
if current ~= ARGV[2] then
  return {0, current}
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[4])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
if ARGV[6] ~= '' then
  local score = redis.call('ZSCORE', KEYS[3], ARGV[6])
  if score and tonumber(score) == tonumber(ARGV[7]) then
    redis.call('ZREM', KEYS[3], ARGV[6])
  end
end
local n = tonumber(ARGV[8])
local i = 9
for _ = 1, n do
  if ARGV[i] == 'set' then
    redis.call('ZADD', KEYS[3], ARGV[i + 2], ARGV[i + 1])
  else
    redis.call('ZREM', KEYS[3], ARGV[i + 1])
  end
  i = i + 3
end
local m = tonumber(ARGV[i])
if m > 0 then
  local fields = {}
  for j = 1, 2 * m do
    fields[j] = ARGV[i + j]
  end
  redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[5], '*', unpack(fields))
end
return {1, redis.call('INCR', KEYS[5])}
