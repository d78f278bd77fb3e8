-- Set one attached data key of a service, state or task (the deprecated extension PUTs).
-- KEYS[1] svc   KEYS[2] states or tasks (absent for the service itself)
-- ARGV field prefix of the resource ('' the service, '<id>:' a state or task), key, JSON value
-- Returns {'nf'} unknown service, {'nfs'} unknown state or task, or {'ok'}.
local svc, items = KEYS[1], KEYS[2]
local prefix, key, value = arg(), arg(), arg()
if redis.call('EXISTS', svc) == 0 then return {'nf'} end
if items == nil then
  redis.call('HSET', svc, 'a:' .. key, value)
  return {'ok'}
end
if redis.call('HEXISTS', items, prefix .. 't0') == 0 then return {'nfs'} end
redis.call('HSET', items, prefix .. 'a:' .. key, value)
return {'ok'}
