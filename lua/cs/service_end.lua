-- End a service and, with the same timestamp, its active states and tasks.
-- KEYS[1] svc   KEYS[2] states   KEYS[3] tasks   KEYS[4] ix   KEYS[5] ixexp   KEYS[6..8] ts, te, tu
-- ARGV now, new expiry ('' keeps it), owner token (see remote_not_raised in lua/cs/lib.lua),
--      t1 (ms), n + n field/value pairs (e:* end event fields, a:* attached data)
-- Returns {'nf'} unknown service, {'retry', expiry} remote index not raised yet to that expiry, {'ended'} already ended, or
--         {'ok', ip, mm}: the partition and match member the caller must drop when the
--         service's index entries are in another partition (ip ~= '').
local svc, states, tasks, ix, ixexp = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
time_index(KEYS[6], KEYS[7], KEYS[8])
local now, exp, token, t1 = arg(), arg(), arg(), arg()
local fields = arg_pairs()
index_trim(ix, ixexp, now)
if redis.call('EXISTS', svc) == 0 then return {'nf'} end
local want = wanted_expiry(svc, now, exp)
if remote_not_raised(svc, want, token) then return {'retry', want} end
if redis.call('HEXISTS', svc, 't1') == 1 then return {'ended'} end
redis.call('HSET', svc, 't1', t1)
hset_pairs(svc, '', fields)
end_all(states, t1)
end_all(tasks, t1)
time_put(2, t1, sid_of(svc), ix, ixexp)      -- the time index: ended at t1
redis.call('ZREM', TIME[3], sid_of(svc))      -- no longer waits for auto-complete
local ip = redis.call('HGET', svc, 'ip') or ''
local mm = redis.call('HGET', svc, 'mm') or ''
redis.call('HDEL', svc, 'mm')  -- an ended service is no longer matched by composite start
if ip == '' and mm ~= '' then index_drop(ix, ixexp, mm) end
touch(svc, states, tasks, ix, ixexp, now, exp, want)
return {'ok', ip, mm}
