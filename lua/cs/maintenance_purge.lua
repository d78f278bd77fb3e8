-- Purge one batch of services of a partition (POST /maintenance/purge): of the services the caller
-- read from the start-time index (all started before the purge's limit), delete those the operation
-- selects, with their states, tasks, index and time entries. A batch is bounded by the caller;
-- each service is checked and deleted atomically here.
-- KEYS[1] ix   KEYS[2] ixexp   KEYS[3..5] ts, te, tu
-- KEYS[6..]   svc, states, tasks of each service of the batch (three keys per service)
-- ARGV now, state ('any' | 'active' | 'completed'), '1' anonymous services only else '0'
-- Returns {marks, then ip, cm, mm per purged service whose customer entries live in another
-- partition (the caller drops them there)}; marks: one letter per service of the batch, `p`
-- purged, `k` kept (still in the start-time index: the caller reads past it), `g` gone.
local ix, ixexp = KEYS[1], KEYS[2]
time_index(KEYS[3], KEYS[4], KEYS[5])
local now, state, anonymous = arg(), arg(), arg()
index_trim(ix, ixexp, now)
local marks, remote = {}, {}
for i = 6, #KEYS, 3 do
  local svc, states, tasks = KEYS[i], KEYS[i + 1], KEYS[i + 2]
  if redis.call('EXISTS', svc) == 0 then
    time_forget(sid_of(svc))  -- expired, not yet trimmed: its entries go now
    redis.call('ZREM', ixexp, time_member(sid_of(svc)))
    marks[#marks + 1] = 'g'
  else
    local ended = redis.call('HEXISTS', svc, 't1') == 1
    local selected = (state == 'any' or (state == 'completed') == ended)
        and (anonymous == '0' or redis.call('HEXISTS', svc, 'cust') == 0)
    if selected then
      local ip, cm, mm = delete_conversation(svc, states, tasks, ix, ixexp)
      marks[#marks + 1] = 'p'
      if ip ~= '' then
        remote[#remote + 1] = ip
        remote[#remote + 1] = cm
        remote[#remote + 1] = mm
      end
    else
      marks[#marks + 1] = 'k'
    end
  end
end
index_expire(ix, ixexp)
return {table.concat(marks), unpack(remote)}
