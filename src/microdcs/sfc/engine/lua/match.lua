-- Match an equipment answer or event to the action(s) awaiting it; queue the completion.
-- KEYS[1] awaiting hash (correlation id -> job), KEYS[2] work stream,
-- KEYS[3] pull set of the event's type (correlation ids of pull_event runs awaiting it).
-- ARGV[1] correlation id ("" if none), ARGV[2] kind (done|fail), ARGV[3] result JSON or
-- failure reason, ARGV[4] approximate stream maxlen, ARGV[5] traceparent and ARGV[6]
-- tracestate of the message ("" = none: the work items get no tp/ts fields).
-- Returns how many actions the message completes (0: nobody waits for it).
local function queue(corr, job)
  if ARGV[5] == '' then
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*',
      'k', ARGV[2], 'j', job, 'c', corr, 'r', ARGV[3])
  else
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*',
      'k', ARGV[2], 'j', job, 'c', corr, 'r', ARGV[3], 'tp', ARGV[5], 'ts', ARGV[6])
  end
end
if ARGV[1] ~= '' then
  local job = redis.call('HGET', KEYS[1], ARGV[1])
  if job then
    queue(ARGV[1], job)
    return 1
  end
end
local count = 0
for _, corr in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  local job = redis.call('HGET', KEYS[1], corr)
  if job then
    queue(corr, job)
    count = count + 1
  end
end
redis.call('DEL', KEYS[3])
return count
