-- Delete a service with its states and tasks, and its index entries in this partition.
-- KEYS[1] svc   KEYS[2] states   KEYS[3] tasks   KEYS[4] ix   KEYS[5] ixexp
-- ARGV now
-- Returns {'nf'}, or {'ok', ip, cm, mm}: entries the caller drops in partition ip (if not '').
local svc, states, tasks, ix, ixexp = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
index_trim(ix, ixexp, arg())
if redis.call('EXISTS', svc) == 0 then return {'nf'} end
local ip = redis.call('HGET', svc, 'ip') or ''
local cm = redis.call('HGET', svc, 'cm') or ''
local mm = redis.call('HGET', svc, 'mm') or ''
if ip == '' then
  if cm ~= '' then index_drop(ix, ixexp, cm) end
  if mm ~= '' then index_drop(ix, ixexp, mm) end
end
redis.call('DEL', svc, states, tasks)
return {'ok', ip, cm, mm}
