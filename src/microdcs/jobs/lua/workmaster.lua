-- Store (PUT) or delete (DELETE) a work master of a scope together with its recipe
-- format, so a Store sees both or neither.
--
-- KEYS[1] cfg:workmaster (hash id -> JSON)   KEYS[2] cfg:recipe (hash id -> dataschema)
-- ARGV[1] "PUT" or "DELETE"   ARGV[2] work master id   ARGV[3] JSON   ARGV[4] dataschema
-- ("" when the work master carries no recipe)
-- Returns 1.

if ARGV[1] == 'DELETE' then
  redis.call('HDEL', KEYS[1], ARGV[2])
  redis.call('HDEL', KEYS[2], ARGV[2])
  return 1
end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
if ARGV[4] ~= '' then
  redis.call('HSET', KEYS[2], ARGV[2], ARGV[4])
else
  redis.call('HDEL', KEYS[2], ARGV[2])
end
return 1
