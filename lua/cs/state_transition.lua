-- Transition: end the active state `from` and start the next one, whose previous_state_id is
-- `from`, at the same timestamp, atomically.
-- KEYS[1] svc   KEYS[2] states   KEYS[3] tasks   KEYS[4] ix   KEYS[5] ixexp   KEYS[6..8] ts, te, tu
-- ARGV now, new expiry ('' keeps it), owner token (see remote_not_raised), from id, timestamp (ms),
--      n + n pairs for the end of `from` (e:*), m + m pairs for the new state (type, tk, …)
-- Returns {'nf'}, {'retry', expiry} (remote index not raised yet to that expiry), {'nfs'} unknown `from`, {'ended'} `from` not active, or
--         {'ok', new state id}.
local svc, states, tasks, ix, ixexp = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
time_index(KEYS[6], KEYS[7], KEYS[8])
local now, exp, token, from, t = arg(), arg(), arg(), arg(), arg()
local end_fields = arg_pairs()
local new_fields = arg_pairs()
index_trim(ix, ixexp, now)
if redis.call('EXISTS', svc) == 0 then return {'nf'} end
local want = wanted_expiry(svc, now, exp)
if remote_not_raised(svc, want, token) then return {'retry', want} end
if redis.call('HEXISTS', states, from .. ':t0') == 0 then return {'nfs'} end
if redis.call('HEXISTS', states, from .. ':t1') == 1 then return {'ended'} end
end_item(states, from, t, end_fields)
local id = new_item(svc, states, t, new_fields)
redis.call('HSET', states, id .. ':prev', from)
touch(svc, states, tasks, ix, ixexp, now, exp, want)
return {'ok', id}
