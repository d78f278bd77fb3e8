-- Shared functions of the Context Services scripts. Not a script by itself: gmsd prepends this
-- file to every lua/cs/*.lua when it registers them, so each stays one self-contained EVALSHA.
--
-- Layout (all keys of one script share the hash tag {cs:<p>}; see docs/keys.md):
-- * svc     service hash: t0, t1 (start/end ms), exp (expiry ms), seq (last state/task id),
--           type, tk, est, cust, ck, mk, cm, mm, ip, gen, s:<event field>, e:<end field>,
--           sl (sliding period ms), xp (an explicit expiry was given), lu (last update ms),
--           ac (auto-complete period ms, when auto-complete applies to it),
--           a:<attached data key>; values of typed fields are JSON text as the client sent it.
-- * states, tasks  `<id>:<field>` (t0, t1, type, tk, est, prev, state, s:*, e:*, a:*) per
--           state or task, and `active` = " 3 7 " (the ids still active).
-- * ix      the partition's index: members `<kind>\0<owner…>\0<service id>#<gen>`, score 0.
-- * ixexp   the same members scored by the expiry (ms) of the conversation they point to, and
--           one member `t\0<service id>` per conversation of the partition (its time entries).
-- * ts, te  the partition's time index: service ids scored by start / end time (ms), so that
--           "services with an event in [from, to]" is a range read (export, purge).
-- * tu      active service ids scored by their auto-complete deadline (ms), for the sweeper.
--           A script that takes ix and ixexp takes ts, te and tu right after them, and names
--           them with time_index() before it calls the index functions below.
-- An index member is valid only while the service hash holds exactly that member in `cm` or
-- `mm`; readers skip and drop entries that fail this, and expired ones are trimmed by score.

local argi = 0
-- The next ARGV value (scripts read their arguments in order).
local function arg()
  argi = argi + 1
  return ARGV[argi]
end

-- A counted list from ARGV: n, then n field/value pairs (returned flat).
local function arg_pairs()
  local n = tonumber(arg())
  local out = {}
  for i = 1, 2 * n do out[i] = arg() end
  return out
end

local CHUNK = 500
-- Run `command key …items` in chunks (unpack has a stack limit).
local function chunked(command, key, items)
  for i = 1, #items, CHUNK do
    redis.call(command, key, unpack(items, i, math.min(i + CHUNK - 1, #items)))
  end
end

-- HSET prefix..field = value for each pair of a flat list.
local function hset_pairs(key, prefix, list)
  local batch = {}
  for i = 1, #list, 2 do
    batch[#batch + 1] = prefix .. list[i]
    batch[#batch + 1] = list[i + 1]
  end
  chunked('HSET', key, batch)
end

-- The time index keys of the partition the script works in: {ts, te, tu} (set by time_index).
local TIME = {}
local function time_index(ts, te, tu)
  TIME = {ts, te, tu}
end

-- The service id in a service hash's key name (`…svc:<id>`; ids hold no `:`).
local function sid_of(svc)
  return string.match(svc, 'svc:([^:]*)$')
end

-- The ixexp member that stands for a conversation's time entries.
local function time_member(sid)
  return 't\0' .. sid
end

-- Forget a conversation's time entries (ts, te, tu; the caller drops its time member).
local function time_forget(sid)
  for _, key in ipairs(TIME) do redis.call('ZREM', key, sid) end
end

-- Drop index entries whose conversation has expired, with the time entries of that conversation
-- (its time member and its ts/te/tu entries; when they are in another partition there is
-- nothing to remove here, and its own partition trims them by their score).
local function drop_expired(ix, ixexp, dead)
  if #dead == 0 then return end
  chunked('ZREM', ix, dead)
  chunked('ZREM', ixexp, dead)
  local times = {}
  for _, member in ipairs(dead) do
    local sid
    if string.sub(member, 1, 2) == 't\0' then
      sid = string.sub(member, 3)
    else
      sid = string.match(member, '%z([^%z#]*)#[0-9]+$')  -- Lua 5.1 patterns spell NUL %z
      if sid then times[#times + 1] = time_member(sid) end
    end
    if sid then time_forget(sid) end
  end
  if #times > 0 then chunked('ZREM', ixexp, times) end
end

local TRIM_BATCH = 256
-- Remove (up to a batch of) index entries whose conversation has expired, time entries included.
local function index_trim(ix, ixexp, now)
  drop_expired(ix, ixexp, redis.call('ZRANGEBYSCORE', ixexp, '-inf', '(' .. now, 'LIMIT', 0, TRIM_BATCH))
end

-- The index keys live as long as their longest-lived entry.
local function index_expire(ix, ixexp)
  local top = redis.call('ZRANGE', ixexp, -1, -1, 'WITHSCORES')
  if top[2] then
    local at = string.format('%d', tonumber(top[2]))
    redis.call('PEXPIREAT', ix, at)
    redis.call('PEXPIREAT', ixexp, at)
    for _, key in ipairs(TIME) do redis.call('PEXPIREAT', key, at) end
  end
end

-- Add a time entry to TIME[i] (2 te, 3 tu) from a write that may move no expiry. A key this ZADD
-- makes has none: it gets the index keys' expiry at once (one PTTL otherwise). start_service
-- adds its entries itself: its index_expire always follows.
local function time_put(i, score, sid, ix, ixexp)
  redis.call('ZADD', TIME[i], score, sid)
  if redis.call('PTTL', TIME[i]) == -1 then index_expire(ix, ixexp) end
end

local function index_put(ix, ixexp, member, exp)
  redis.call('ZADD', ix, 0, member)
  redis.call('ZADD', ixexp, exp, member)
end

local function index_drop(ix, ixexp, member)
  redis.call('ZREM', ix, member)
  redis.call('ZREM', ixexp, member)
end

-- Delete a conversation with its index entries in this partition and its time entries.
-- Returns ip, cm, mm: the entries the caller drops in partition ip when it is not ''.
local function delete_conversation(svc, states, tasks, ix, ixexp)
  local ip = redis.call('HGET', svc, 'ip') or ''
  local cm = redis.call('HGET', svc, 'cm') or ''
  local mm = redis.call('HGET', svc, 'mm') or ''
  if ip == '' then
    if cm ~= '' then index_drop(ix, ixexp, cm) end
    if mm ~= '' then index_drop(ix, ixexp, mm) end
  end
  local sid = sid_of(svc)
  time_forget(sid)
  redis.call('ZREM', ixexp, time_member(sid))
  redis.call('DEL', svc, states, tasks)
  return ip, cm, mm
end

-- Create a service: its hash and its index entries (customer or anonymous, and match).
-- `seq`: the last state/task id it starts with (0, or the items a composite start creates with it).
local function start_service(svc, ix, ixexp, now, exp, cm, mm, t0, fields, seq)
  local batch = {'t0', t0, 'exp', exp, 'seq', seq or 0, 'gen', 0, 'cm', cm, 'mm', mm, 'lu', now}
  local period  -- auto-complete applies to it (`ac`): its first deadline
  for i = 1, #fields, 2 do
    batch[#batch + 1] = fields[i]
    batch[#batch + 1] = fields[i + 1]
    if fields[i] == 'ac' then period = fields[i + 1] end
  end
  chunked('HSET', svc, batch)
  redis.call('PEXPIREAT', svc, exp)
  local sid = sid_of(svc)
  redis.call('ZADD', ix, 0, cm, 0, mm)
  redis.call('ZADD', ixexp, exp, cm, exp, mm, exp, time_member(sid))
  redis.call('ZADD', TIME[1], t0, sid)
  if period then redis.call('ZADD', TIME[3], tonumber(now) + tonumber(period), sid) end
  index_expire(ix, ixexp)
end

-- Give the whole conversation a new expiry, and the entries of this partition's index with it.
-- Entries in another partition (`ip`) were raised by the caller before (see remote_not_raised).
local function set_expiry(svc, states, tasks, ix, ixexp, exp)
  redis.call('HSET', svc, 'exp', exp)
  redis.call('PEXPIREAT', svc, exp)
  redis.call('PEXPIREAT', states, exp)
  redis.call('PEXPIREAT', tasks, exp)
  if not redis.call('HGET', svc, 'ip') then
    for _, field in ipairs({'cm', 'mm'}) do
      local member = redis.call('HGET', svc, field)
      if member then redis.call('ZADD', ixexp, 'XX', exp, member) end
    end
  end
  redis.call('ZADD', ixexp, 'XX', exp, time_member(sid_of(svc)))
  index_expire(ix, ixexp)
end

-- True when a new expiry must not be applied yet: the service's index entries are in another
-- partition, and the caller has not raised them for its current owner (`token` = the `cm` the
-- caller read before raising them; '' if it did not). The caller then raises and tries again.
local function remote_not_raised(svc, exp, token)
  return exp ~= '' and redis.call('HEXISTS', svc, 'ip') == 1 and redis.call('HGET', svc, 'cm') ~= token
end

-- The expiry a write gives the conversation (MAINTENANCE.md §5.5): an explicit one (`exp`, from
-- `ttl`/`expiration_time`) as given; else, unless an explicit one was given before (`xp`), now
-- plus the conversation's sliding period (`sl`, ms); '' when it keeps its expiry.
local function wanted_expiry(svc, now, exp)
  if exp ~= '' then return exp end
  local period = redis.call('HGET', svc, 'sl')
  if period and redis.call('HEXISTS', svc, 'xp') == 0 then
    return string.format('%d', tonumber(now) + tonumber(period))
  end
  return ''
end

-- A write to the conversation (an "update", MAINTENANCE.md §5.4 and §5.5): the time of the last
-- update, the auto-complete deadline of an active service (`ac`: its period, ms, when
-- auto-complete applies to it), and the expiry `want` (wanted_expiry); `exp` ~= '': explicit,
-- it stays until another explicit one.
local function touch(svc, states, tasks, ix, ixexp, now, exp, want)
  redis.call('HSET', svc, 'lu', now)
  local period = redis.call('HGET', svc, 'ac')
  if period and redis.call('HEXISTS', svc, 't1') == 0 then
    time_put(3, tonumber(now) + tonumber(period), sid_of(svc), ix, ixexp)
  end
  if exp ~= '' then redis.call('HSET', svc, 'xp', 1) end
  if want ~= '' then set_expiry(svc, states, tasks, ix, ixexp, want) end
end

local function active_ids(items)
  local ids = {}
  for id in string.gmatch(redis.call('HGET', items, 'active') or '', '%d+') do ids[#ids + 1] = id end
  return ids
end

local function active_remove(items, id)
  local list = redis.call('HGET', items, 'active') or ' '
  local pattern = ' ' .. id .. ' '
  local at = string.find(list, pattern, 1, true)
  if not at then return false end
  redis.call('HSET', items, 'active', string.sub(list, 1, at) .. string.sub(list, at + #pattern))
  return true
end

-- A new state or task: the next id of the service, its fields, active, the conversation's expiry.
local function new_item(svc, items, t0, fields)
  local id = tostring(redis.call('HINCRBY', svc, 'seq', 1))
  redis.call('HSET', items, id .. ':t0', t0, 'active', (redis.call('HGET', items, 'active') or ' ') .. id .. ' ')
  hset_pairs(items, id .. ':', fields)
  redis.call('PEXPIREAT', items, redis.call('HGET', svc, 'exp'))
  return id
end

-- End an active state or task with its end event fields.
local function end_item(items, id, t1, fields)
  active_remove(items, id)
  redis.call('HSET', items, id .. ':t1', t1)
  hset_pairs(items, id .. ':', fields)
end

-- End every active state or task at `t1` (the service ends).
local function end_all(items, t1)
  local ids = active_ids(items)
  for _, id in ipairs(ids) do redis.call('HSET', items, id .. ':t1', t1) end
  if #ids > 0 then redis.call('HSET', items, 'active', ' ') end
end

-- The first active state or task of type part `tk` (and attached to state `state` if given).
local function find_item(items, tk, state)
  for _, id in ipairs(active_ids(items)) do
    if redis.call('HGET', items, id .. ':tk') == tk
        and (state == nil or redis.call('HGET', items, id .. ':state') == state) then
      return id
    end
  end
  return nil
end

-- The state and task part of a composite start's ARGV: state tk, t0, fields; then "0" (no
-- task) or "1", task tk, "1" to attach the task to the state, t0, fields.
local function items_args()
  local want = {state_tk = arg(), state_t0 = arg(), state_fields = arg_pairs()}
  if arg() == '1' then
    want.task_tk, want.attach, want.task_t0, want.task_fields = arg(), arg() == '1', arg(), arg_pairs()
  end
  return want
end

-- Composite start inside a found service: find or create the active state of the request's
-- type, then (if asked) its task. `want`: items_args(). Returns {state id, created 0/1[, task
-- id, created 0/1]}.
local function find_or_start_items(svc, states, tasks, want)
  local state_id, state_new = find_item(states, want.state_tk, nil), 0
  if not state_id then
    state_id, state_new = new_item(svc, states, want.state_t0, want.state_fields), 1
  end
  if not want.task_tk then return {state_id, state_new} end
  local linked = nil
  if want.attach then linked = state_id end
  local task_id, task_new = find_item(tasks, want.task_tk, linked), 0
  if not task_id then
    task_id, task_new = new_item(svc, tasks, want.task_t0, want.task_fields), 1
    if linked then redis.call('HSET', tasks, task_id .. ':state', linked) end
  end
  return {state_id, state_new, task_id, task_new}
end

-- The first item of a new service (id `id`, nothing to read): one HSET with `more` pairs added.
local function first_item(items, id, t0, fields, exp, more)
  local p = id .. ':'
  local batch = {p .. 't0', t0, 'active', ' ' .. id .. ' '}
  for i = 1, #fields, 2 do
    batch[#batch + 1] = p .. fields[i]
    batch[#batch + 1] = fields[i + 1]
  end
  for i = 1, #more, 2 do
    batch[#batch + 1] = p .. more[i]
    batch[#batch + 1] = more[i + 1]
  end
  chunked('HSET', items, batch)
  redis.call('PEXPIREAT', items, exp)
end

-- Composite start of a new service: its state is 1 and its task 2, both created.
local function start_items(states, tasks, exp, want)
  first_item(states, '1', want.state_t0, want.state_fields, exp, {})
  if not want.task_tk then return {'1', 1} end
  first_item(tasks, '2', want.task_t0, want.task_fields, exp, want.attach and {'state', '1'} or {})
  return {'1', 1, '2', 1}
end

-- ---- end of lua/cs/lib.lua ----
