-- The job response fields of one job: the listed job if it has a response, else its
-- archived response (kept for the retention period after Clear).
--
-- KEYS[1] job hash   KEYS[2] archived response hash
-- Returns {order, state, substate, started, ended, response data, has response, version}
-- or {} when there is neither.

local fields = {'order', 'st', 'sub', 'started', 'ended', 'rdata', 'res', 'v'}
local live = redis.call('HMGET', KEYS[1], unpack(fields))
if live[1] and live[7] == '1' then return live end
local archived = redis.call('HMGET', KEYS[2], unpack(fields))
if archived[1] then return archived end
if live[1] then return live end
return {}
