-- One element of a composite start whose matching service lives in another partition than the
-- match entry (it was associated with this customer later): check that the service still holds
-- that entry (active, same owner), then find or create its state and task, atomically. An update
-- of the conversation: its expiry slides here; its index entries are in the match entry's
-- partition, which the caller raises to the expiry answered (after this script: until then they
-- keep the previous expiry, still ahead).
-- KEYS[1] svc   KEYS[2] states   KEYS[3] tasks   KEYS[4] ix   KEYS[5] ixexp   KEYS[6..8] ts, te, tu
--   (the candidate's conversation and its own partition's index)
-- ARGV now, candidate member, then the state and task part read by items_args (lua/cs/lib.lua)
-- Returns {'stale'} if the service no longer holds the entry, else
--         {'ok', 0, state id, created 0/1[, task id, created 0/1], new expiry ('' unchanged)}.
local svc, states, tasks, ix, ixexp = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
time_index(KEYS[6], KEYS[7], KEYS[8])
local now, candidate = arg(), arg()
index_trim(ix, ixexp, now)
if redis.call('HGET', svc, 'mm') ~= candidate then return {'stale'} end
local items = find_or_start_items(svc, states, tasks, items_args())
local want = wanted_expiry(svc, now, '')
touch(svc, states, tasks, ix, ixexp, now, '', want)
items[#items + 1] = want
return {'ok', 0, unpack(items)}
