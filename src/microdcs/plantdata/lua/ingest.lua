-- Store the samples of one data event in a scope's current value table, all or nothing.
-- KEYS[1] specs hash (tag -> "<type> <deadband> <stale timeout>"), KEYS[2] cvt hash
-- (tag -> "<quality><stale> <source time> <receive time> <value>"), KEYS[3] stale zset.
-- ARGV[1] receive time (Unix seconds), then 5 per sample: tag, kind (f i b s), value text,
-- quality (g u b), source time.
-- Every sample is checked first: a tag that is not configured or a value of the wrong kind
-- (an int tag takes i, a float tag f or i) refuses the whole event, nothing stored.
-- A sample inside the deadband of the stored value, with the same quality and the tag not
-- stale, is not stored. Storing is idempotent, so data events need no dedupe: a sample
-- whose source time is older than the stored one's (redelivered or out of order) never
-- replaces it, nor does the stored sample again (same source time and value, also when
-- the tag turned stale meanwhile); neither moves the stale deadline, every other sample
-- does.
-- Returns {0, index, code, ...} when refused (index from 0; code 'unknown' or the tag's
-- type letter followed by the sample's kind), else {1, earliest deadline set ('' none),
-- then 4 per stored change: tag, type, new, previous ('' none)}.
local now = ARGV[1]
local n = (#ARGV - 1) / 5
local specs = {}
local refused = {0}
for i = 0, n - 1 do
  local b = 2 + i * 5
  local spec = redis.call('HGET', KEYS[1], ARGV[b])
  if not spec then
    refused[#refused + 1] = i
    refused[#refused + 1] = 'unknown'
  else
    local t = string.sub(spec, 1, 1)
    local kind = ARGV[b + 1]
    if t ~= kind and not (t == 'f' and kind == 'i') then
      refused[#refused + 1] = i
      refused[#refused + 1] = t .. kind
    end
    specs[i] = spec
  end
end
if #refused > 1 then
  return refused
end
local out = {1, ''}
local earliest = nil
local nowf = tonumber(now)
for i = 0, n - 1 do
  local b = 2 + i * 5
  local tag, value, q = ARGV[b], ARGV[b + 2], ARGV[b + 3]
  local t, deadband, timeout = string.match(specs[i], '^(%a) (%S+) (%S+)$')
  local source = ARGV[b + 4]
  local prev = redis.call('HGET', KEYS[2], tag)
  local store = true
  local fresh = true
  if prev then
    local ps, pv = string.match(prev, '^%S+ (%S+) %S+ (.*)$')
    local age = tonumber(source) - tonumber(ps)
    if age < 0 or (age == 0 and pv == value) then
      store = false
      fresh = false
    end
  end
  if store and prev and string.sub(prev, 1, 1) == q and string.sub(prev, 2, 2) == '0' then
    local pv = string.match(prev, '^%S+ %S+ %S+ (.*)$')
    if t == 'f' or t == 'i' then
      store = math.abs(tonumber(value) - tonumber(pv)) > tonumber(deadband)
    else
      store = pv ~= value
    end
  end
  if store then
    local new = q .. '0 ' .. source .. ' ' .. now .. ' ' .. value
    redis.call('HSET', KEYS[2], tag, new)
    out[#out + 1] = tag
    out[#out + 1] = t
    out[#out + 1] = new
    out[#out + 1] = prev or ''
  end
  local seconds = tonumber(timeout)
  if fresh and seconds > 0 then
    local due = nowf + seconds
    redis.call('ZADD', KEYS[3], due, tag)
    if earliest == nil or due < earliest then
      earliest = due
    end
  end
end
if earliest ~= nil then
  out[2] = tostring(earliest)
end
return out
