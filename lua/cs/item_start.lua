-- Start a state or a task in a service (allowed on an ended service too).
-- KEYS[1] svc   KEYS[2] states   KEYS[3] tasks   KEYS[4] ix   KEYS[5] ixexp   KEYS[6..8] ts, te, tu
-- ARGV now, new expiry ('' keeps it), owner token (see remote_not_raised), "states" or "tasks",
--      state id the task is attached to ('' none), t0 (ms),
--      n + n field/value pairs (type, tk, est, s:*, a:*)
-- Returns {'nf'} unknown service, {'retry', expiry} remote index not raised yet to that expiry,
--         {'nfs'} unknown state to attach to,
--         or {'ok', new id}.
local svc, states, tasks, ix, ixexp = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
time_index(KEYS[6], KEYS[7], KEYS[8])
local now, exp, token, kind, state, t0 = arg(), arg(), arg(), arg(), arg(), arg()
local fields = arg_pairs()
index_trim(ix, ixexp, now)
if redis.call('EXISTS', svc) == 0 then return {'nf'} end
local want = wanted_expiry(svc, now, exp)
if remote_not_raised(svc, want, token) then return {'retry', want} end
local items = states
if kind == 'tasks' then items = tasks end
if state ~= '' and redis.call('HEXISTS', states, state .. ':t0') == 0 then return {'nfs'} end
local id = new_item(svc, items, t0, fields)
if state ~= '' then redis.call('HSET', items, id .. ':state', state) end
touch(svc, states, tasks, ix, ixexp, now, exp, want)
return {'ok', id}
