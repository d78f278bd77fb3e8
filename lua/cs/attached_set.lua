-- Set one attached data key of a service, state or task (the deprecated extension PUTs): an
-- update of the conversation (its expiry slides, its auto-complete deadline moves).
-- KEYS[1] svc   KEYS[2] states   KEYS[3] tasks   KEYS[4] ix   KEYS[5] ixexp   KEYS[6..8] ts, te, tu
-- ARGV now, owner token (see remote_not_raised), '' the service itself or "states" or "tasks",
--      field prefix of the resource ('' the service, '<id>:' a state or task), key, JSON value
-- Returns {'nf'} unknown service, {'retry', expiry} remote index not raised yet to that expiry,
--         {'nfs'} unknown state or task, or {'ok'}.
local svc, states, tasks, ix, ixexp = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
time_index(KEYS[6], KEYS[7], KEYS[8])
local now, token, kind, prefix, key, value = arg(), arg(), arg(), arg(), arg(), arg()
index_trim(ix, ixexp, now)
if redis.call('EXISTS', svc) == 0 then return {'nf'} end
local want = wanted_expiry(svc, now, '')
if remote_not_raised(svc, want, token) then return {'retry', want} end
if kind == '' then
  redis.call('HSET', svc, 'a:' .. key, value)
else
  local items = states
  if kind == 'tasks' then items = tasks end
  if redis.call('HEXISTS', items, prefix .. 't0') == 0 then return {'nfs'} end
  redis.call('HSET', items, prefix .. 'a:' .. key, value)
end
touch(svc, states, tasks, ix, ixexp, now, '', want)
return {'ok'}
