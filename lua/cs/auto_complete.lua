-- Complete idle services (MAINTENANCE.md §5.4): of the services the caller read from the
-- partition's auto-complete index `tu` as due, end each that is still due, as an explicit end
-- would: at its deadline (last update + period), with its active states and tasks at the same
-- timestamp, no disposition. Checked and done atomically per service, so any number of sweepers
-- (workers, replicas) racing complete each service exactly once.
-- KEYS[1] ix   KEYS[2] ixexp   KEYS[3..5] ts, te, tu
-- KEYS[6..]   svc, states, tasks of each due service (three keys per service)
-- ARGV now
-- Returns {completed, then ip, mm, cm, expiry per completed service whose index entries live in
-- another partition (the caller drops the match entry mm there and raises cm to the expiry)}.
local ix, ixexp = KEYS[1], KEYS[2]
time_index(KEYS[3], KEYS[4], KEYS[5])
local now = arg()
index_trim(ix, ixexp, now)
local completed, remote = 0, {}
for i = 6, #KEYS, 3 do
  local svc, states, tasks = KEYS[i], KEYS[i + 1], KEYS[i + 2]
  local sid = sid_of(svc)
  local due = redis.call('ZSCORE', TIME[3], sid)
  if due and tonumber(due) <= tonumber(now) then
    redis.call('ZREM', TIME[3], sid)
    if redis.call('EXISTS', svc) == 1 and redis.call('HEXISTS', svc, 't1') == 0 then
      local t1 = string.format('%d', tonumber(due))
      redis.call('HSET', svc, 't1', t1)
      end_all(states, t1)
      end_all(tasks, t1)
      time_put(2, t1, sid, ix, ixexp)
      local ip = redis.call('HGET', svc, 'ip') or ''
      local mm = redis.call('HGET', svc, 'mm') or ''
      redis.call('HDEL', svc, 'mm')
      if ip == '' and mm ~= '' then index_drop(ix, ixexp, mm) end
      local want = wanted_expiry(svc, now, '')
      -- the end slides the expiry as an explicit end would; `lu` stays the last client update
      if want ~= '' then set_expiry(svc, states, tasks, ix, ixexp, want) end
      completed = completed + 1
      if ip ~= '' then
        remote[#remote + 1] = ip
        remote[#remote + 1] = mm
        remote[#remote + 1] = redis.call('HGET', svc, 'cm') or ''
        remote[#remote + 1] = want
      end
    end
  end
end
return {completed, unpack(remote)}
