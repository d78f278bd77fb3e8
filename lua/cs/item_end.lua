-- End a state or a task.
-- KEYS[1] svc   KEYS[2] states   KEYS[3] tasks   KEYS[4] ix   KEYS[5] ixexp   KEYS[6..8] ts, te, tu
-- ARGV now, new expiry ('' keeps it), owner token (see remote_not_raised), "states" or "tasks", id,
--      t1 (ms), n + n field/value pairs (e:* end event fields, a:* attached data)
-- Returns {'nf'} unknown service, {'retry', expiry} remote index not raised yet to that expiry, {'nfs'} unknown id,
--         {'ended'} already ended, or {'ok'}.
local svc, states, tasks, ix, ixexp = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
time_index(KEYS[6], KEYS[7], KEYS[8])
local now, exp, token, kind, id, t1 = arg(), arg(), arg(), arg(), arg(), arg()
local fields = arg_pairs()
index_trim(ix, ixexp, now)
if redis.call('EXISTS', svc) == 0 then return {'nf'} end
local want = wanted_expiry(svc, now, exp)
if remote_not_raised(svc, want, token) then return {'retry', want} end
local items = states
if kind == 'tasks' then items = tasks end
if redis.call('HEXISTS', items, id .. ':t0') == 0 then return {'nfs'} end
if redis.call('HEXISTS', items, id .. ':t1') == 1 then return {'ended'} end
end_item(items, id, t1, fields)
touch(svc, states, tasks, ix, ixexp, now, exp, want)
return {'ok'}
