-- Give a conversation a new expiry (PUT /services/{id} with ttl or expiration_time).
-- KEYS[1] svc   KEYS[2] states   KEYS[3] tasks   KEYS[4] ix   KEYS[5] ixexp   KEYS[6..8] ts, te, tu
-- ARGV now, new expiry (ms), owner token (see remote_not_raised in lua/cs/lib.lua)
-- Returns {'nf'}, {'retry', expiry} (remote index not raised yet) or {'ok'}. An explicit expiry: it
-- stays until another explicit one (the conversation stops sliding).
local svc, states, tasks, ix, ixexp = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
time_index(KEYS[6], KEYS[7], KEYS[8])
local now, exp, token = arg(), arg(), arg()
index_trim(ix, ixexp, now)
if redis.call('EXISTS', svc) == 0 then return {'nf'} end
if remote_not_raised(svc, exp, token) then return {'retry', exp} end
touch(svc, states, tasks, ix, ixexp, now, exp, exp)
return {'ok'}
