-- Store or delete one tag definition of a scope.
-- KEYS[1] definitions hash, KEYS[2] specs hash, KEYS[3] cvt hash, KEYS[4] stale zset.
-- ARGV[1] 'put' or 'delete', ARGV[2] tag, ARGV[3] definition JSON (put), ARGV[4] spec (put).
-- A put that changes the tag's type drops its stored value (it would not decode as the new
-- type); a put without a stale timeout drops its deadline; a delete removes all of it.
-- Returns 1 when the tag's value was dropped (or deleted), else 0.
local tag = ARGV[2]
if ARGV[1] == 'put' then
  local old = redis.call('HGET', KEYS[2], tag)
  redis.call('HSET', KEYS[1], tag, ARGV[3])
  redis.call('HSET', KEYS[2], tag, ARGV[4])
  if tonumber(string.match(ARGV[4], ' (%S+)$')) == 0 then
    redis.call('ZREM', KEYS[4], tag)
  end
  if old and string.sub(old, 1, 1) ~= string.sub(ARGV[4], 1, 1) then
    redis.call('ZREM', KEYS[4], tag)
    return redis.call('HDEL', KEYS[3], tag)
  end
  return 0
end
redis.call('HDEL', KEYS[1], tag)
redis.call('HDEL', KEYS[2], tag)
redis.call('ZREM', KEYS[4], tag)
return redis.call('HDEL', KEYS[3], tag)
