-- Store or delete one alarm definition and move the scope's definitions version on.
-- KEYS[1] definitions hash, KEYS[2] versions hash, KEYS[3] records hash, KEYS[4] timers
-- zset, KEYS[5] seq counter.
-- ARGV[1] 'put' or 'delete', ARGV[2] alarm id, ARGV[3] definition JSON (put), ARGV[4..]
-- the alarm's timer members (delete: removed with its record and version).
-- Returns the new definitions version.
if ARGV[1] == 'put' then
  redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
else
  redis.call('HDEL', KEYS[1], ARGV[2])
  redis.call('HDEL', KEYS[3], ARGV[2])
  redis.call('HDEL', KEYS[2], ARGV[2])
  for i = 4, #ARGV do
    redis.call('ZREM', KEYS[4], ARGV[i])
  end
  redis.call('INCR', KEYS[5])
end
return redis.call('HINCRBY', KEYS[2], '~defs', 1)
