-- Associate a service with a customer (first step, in the service's own partition): the
-- service hash is the truth, so it changes here, with the entries of this partition's index.
-- When the customer's index is in another partition (ip ~= ''), the caller adds the new entries
-- there afterwards (cs_index_link) and drops the old remote ones (cs_index_drop). A crash in
-- between leaves entries that readers skip: a member is valid only while the service holds it.
-- KEYS[1] svc   KEYS[2] states   KEYS[3] tasks   KEYS[4] ix   KEYS[5] ixexp   KEYS[6..8] ts, te, tu
-- ARGV now, service id, customer member prefix (c\0<customer>\0), customer part of match
--      members (c<customer>), customer id, ip (the customer's partition, '' if this one),
--      n + n field/value pairs (s:* start event fields, a:* attached data)
-- Returns {'nf'}, or {'ok', expiry, ip, cm, mm, old ip, old cm, old mm}: the service's
-- members now ('' if none) and, if the owner changed, the ones it held before.
local svc, states, tasks, ix, ixexp = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
time_index(KEYS[6], KEYS[7], KEYS[8])
local now, sid, prefix, owner, customer, ip = arg(), arg(), arg(), arg(), arg(), arg()
local fields = arg_pairs()
index_trim(ix, ixexp, now)
if redis.call('EXISTS', svc) == 0 then return {'nf'} end
local exp = redis.call('HGET', svc, 'exp')
local cm = redis.call('HGET', svc, 'cm')
local old_ip, old_cm, old_mm = '', '', ''
if string.sub(cm, 1, #prefix) ~= prefix then
  old_ip = redis.call('HGET', svc, 'ip') or ''
  old_cm = cm
  old_mm = redis.call('HGET', svc, 'mm') or ''
  if old_ip == '' then
    index_drop(ix, ixexp, old_cm)
    if old_mm ~= '' then index_drop(ix, ixexp, old_mm) end
  end
  local gen = tostring(redis.call('HINCRBY', svc, 'gen', 1))
  cm = prefix .. sid .. '#' .. gen
  redis.call('HSET', svc, 'cust', customer, 'cm', cm)
  redis.call('HDEL', svc, 'mm')
  if redis.call('HEXISTS', svc, 't1') == 0 then
    redis.call('HSET', svc, 'mm', 'm\0' .. owner .. redis.call('HGET', svc, 'mk') .. sid .. '#' .. gen)
  end
  if ip == '' then
    redis.call('HDEL', svc, 'ip')
    index_put(ix, ixexp, cm, exp)
    local mm = redis.call('HGET', svc, 'mm')
    if mm then index_put(ix, ixexp, mm, exp) end
    index_expire(ix, ixexp)
  else
    redis.call('HSET', svc, 'ip', ip)
  end
end
hset_pairs(svc, '', fields)
-- an update: the expiry slides (entries in another partition: the caller links them with it)
touch(svc, states, tasks, ix, ixexp, now, '', wanted_expiry(svc, now, ''))
exp = redis.call('HGET', svc, 'exp')
return {'ok', exp, redis.call('HGET', svc, 'ip') or '', cm, redis.call('HGET', svc, 'mm') or '',
        old_ip, old_cm, old_mm}
