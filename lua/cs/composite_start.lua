-- One element of a composite start whose match entries are in this partition: find the active
-- service of (customer, contact key, service type) or create it, then find or create its state
-- and task. Atomic, so any number of identical requests racing create exactly one of each.
-- KEYS[1] ix   KEYS[2] ixexp   KEYS[3..5] ts, te, tu
-- KEYS[6..8]  svc, states, tasks of the new service (used when nothing matches)
-- KEYS[9..11] svc, states, tasks of the candidate (optional: a member an earlier call answered)
-- ARGV now, match prefix, candidate member ('' if none),
--      new service: expiry, cm, mm, t0, n + n field/value pairs,
--      then the state and task part read by items_args (lua/cs/lib.lua)
-- Returns {'retry', member} if the index has a match entry and it is not a valid candidate
--         given (the caller checks that member and runs the script again with it), else
--         {'ok', service created 0/1, state id, created 0/1[, task id, created 0/1]}
--         (service created 1: the new service of KEYS[6]; 0: the candidate).
local ix, ixexp = KEYS[1], KEYS[2]
time_index(KEYS[3], KEYS[4], KEYS[5])
local now, prefix, candidate = arg(), arg(), arg()
local exp, cm, mm, t0 = arg(), arg(), arg(), arg()
local fields = arg_pairs()
local want = items_args()
index_trim(ix, ixexp, now)
if candidate ~= '' then
  if redis.call('HGET', KEYS[9], 'mm') == candidate then
    local svc, states, tasks = KEYS[9], KEYS[10], KEYS[11]
    local items = find_or_start_items(svc, states, tasks, want)
    touch(svc, states, tasks, ix, ixexp, now, '', wanted_expiry(svc, now, ''))
    return {'ok', 0, unpack(items)}
  end
  index_drop(ix, ixexp, candidate)  -- ended, deleted, expired or moved: never valid again
end
local other = redis.call('ZRANGEBYLEX', ix, '[' .. prefix, '[' .. prefix .. '\255', 'LIMIT', 0, 1)
if #other > 0 then return {'retry', other[1]} end
start_service(KEYS[6], ix, ixexp, now, exp, cm, mm, t0, fields, want.task_tk and 2 or 1)
return {'ok', 1, unpack(start_items(KEYS[7], KEYS[8], exp, want))}
