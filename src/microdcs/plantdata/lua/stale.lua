-- Turn the tags of a scope whose stale deadline passed bad and stale, atomically: each
-- deadline is removed in the same call, so exactly one replica's timer task reports it.
-- KEYS[1] specs hash, KEYS[2] cvt hash, KEYS[3] stale zset.
-- ARGV[1] now (Unix seconds), ARGV[2] most tags per call.
-- A tag no longer configured, or without a value, or already stale, changes nothing.
-- Returns 4 per stored change: tag, type, new, previous.
local due = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
for _, tag in ipairs(due) do
  redis.call('ZREM', KEYS[3], tag)
  local spec = redis.call('HGET', KEYS[1], tag)
  local prev = redis.call('HGET', KEYS[2], tag)
  if spec and prev and string.sub(prev, 2, 2) ~= '1' then
    local source, value = string.match(prev, '^%S+ (%S+) %S+ (.*)$')
    local new = 'b1 ' .. source .. ' ' .. ARGV[1] .. ' ' .. value
    redis.call('HSET', KEYS[2], tag, new)
    out[#out + 1] = tag
    out[#out + 1] = string.sub(spec, 1, 1)
    out[#out + 1] = new
    out[#out + 1] = prev
  end
end
return out
