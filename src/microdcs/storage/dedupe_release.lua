-- Give up a dedupe claim: delete the key only while it still holds this claim, so a
-- holder never frees a claim taken over by another copy, nor a stored record.
-- KEYS[1]: the event's dedupe key
-- ARGV[1]: the claim marker the holder set
-- Returns 1 if the claim was deleted, 0 otherwise.
if redis.call("GET", KEYS[1]) == ARGV[1] then
    return redis.call("DEL", KEYS[1])
end
return 0
