-- Delete a service with its states and tasks, and its index entries in this partition.
-- KEYS[1] svc   KEYS[2] states   KEYS[3] tasks   KEYS[4] ix   KEYS[5] ixexp   KEYS[6..8] ts, te, tu
-- ARGV now
-- Returns {'nf'}, or {'ok', ip, cm, mm}: entries the caller drops in partition ip (if not '').
local svc, states, tasks, ix, ixexp = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
time_index(KEYS[6], KEYS[7], KEYS[8])
index_trim(ix, ixexp, arg())
if redis.call('EXISTS', svc) == 0 then return {'nf'} end
return {'ok', delete_conversation(svc, states, tasks, ix, ixexp)}
