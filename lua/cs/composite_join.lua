-- One element of a composite start whose matching service lives in another partition than the
-- match entry (it was associated with this customer later): check that the service still holds
-- that entry (active, same owner), then find or create its state and task, atomically.
-- KEYS[1] svc   KEYS[2] states   KEYS[3] tasks   (the candidate's conversation)
-- ARGV candidate member, then the state and task part read by find_or_start_items (lua/cs/lib.lua)
-- Returns {'stale'} if the service no longer holds the entry, else
--         {'ok', 0, state id, created 0/1[, task id, created 0/1]}.
local candidate = arg()
if redis.call('HGET', KEYS[1], 'mm') ~= candidate then return {'stale'} end
local items = find_or_start_items(KEYS[1], KEYS[2], KEYS[3])
return {'ok', 0, unpack(items)}
