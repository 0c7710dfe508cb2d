-- Queue a re-evaluation of every execution that watches one of the changed tags.
-- KEYS[1] work stream of the scope, KEYS[2..] tag watch sets (job ids whose enabled
-- transitions read that tag), one per changed tag.
-- ARGV[1] approximate stream maxlen, ARGV[2] traceparent and ARGV[3] tracestate of the
-- change ("" = none: the work items get no tp/ts fields).
-- Returns how many work items were queued (one per watching job, however many of its
-- tags changed). Atomic with the CAS that adds or removes a watch: a job is either seen
-- here or reads the new value itself after storing its watch.
local jobs = {}
local count = 0
for i = 2, #KEYS do
  for _, job in ipairs(redis.call('SMEMBERS', KEYS[i])) do
    if not jobs[job] then
      jobs[job] = true
      count = count + 1
      if ARGV[2] == '' then
        redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'k', 'tags', 'j', job)
      else
        redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'k', 'tags', 'j', job,
          'tp', ARGV[2], 'ts', ARGV[3])
      end
    end
  end
end
return count
