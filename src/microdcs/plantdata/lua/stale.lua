-- Turn the tags of a scope whose stale deadline passed bad and stale, atomically: each
-- due deadline is leased to the calling replica (re-scored to the lease end), so one
-- replica reports it; that replica removes it once its listeners heard the change
-- (stale_done.lua). A replica that died in between leaves the lease to run out, and the
-- next claim reports the (already stale) tag again: listeners hear it at least once.
-- KEYS[1] specs hash, KEYS[2] cvt hash, KEYS[3] stale zset.
-- ARGV[1] now (Unix seconds), ARGV[2] most tags per call, ARGV[3] lease end.
-- A tag no longer configured or without a value changes nothing (its deadline goes).
-- Returns 4 per change: tag, type, new, previous (a repeated report: new == previous).
local due = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
for _, tag in ipairs(due) do
  local spec = redis.call('HGET', KEYS[1], tag)
  local prev = redis.call('HGET', KEYS[2], tag)
  if spec and prev then
    local new = prev
    if string.sub(prev, 2, 2) ~= '1' then
      local source, value = string.match(prev, '^%S+ (%S+) %S+ (.*)$')
      new = 'b1 ' .. source .. ' ' .. ARGV[1] .. ' ' .. value
      redis.call('HSET', KEYS[2], tag, new)
    end
    redis.call('ZADD', KEYS[3], ARGV[3], tag)
    out[#out + 1] = tag
    out[#out + 1] = string.sub(spec, 1, 1)
    out[#out + 1] = new
    out[#out + 1] = prev
  else
    redis.call('ZREM', KEYS[3], tag)
  end
end
return out
