-- Write, replace or delete profiles in one atomic step, with their identification index entries:
-- create, update, extension records, delete and merge are all this script. The caller read the
-- schema and the profiles, computed the new state and every index member (gmsd.ucs.schema); the
-- script checks that nothing changed since (else 'retry'), that no other customer holds a unique
-- key's values, and only then writes: a refused call writes nothing.
-- KEYS[1] schema  KEYS[2] ix  KEYS[3] ids  KEYS[4] int  KEYS[5] ii  KEYS[5+i] profile i
-- ARGV schema generation, n profiles, then per profile: customer id, expected version ('' =
--      must not exist yet), action ('w' write, 'd' delete); for 'w': n + n (field, value) to set
--      (flat), n + fields to delete, n + index members, n + unique prefixes; then the interaction
--      move: source customer id and destination customer id ('' = none)
-- Returns {'ok'}, {'retry'} (read again), {'nf', customer id}, or {'taken', unique prefix}.
local schema, ix, ids, int, ii = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local generation = arg()
if not same_generation(schema, generation) then return {'retry'} end
local n = tonumber(arg())
local plan, mine = {}, {}
for i = 1, n do
  local p = {key = KEYS[5 + i], id = arg(), expected = arg(), action = arg()}
  if p.action == 'w' then
    p.set = arg_list()
    p.del = arg_list()
    p.members = arg_list()
    p.unique = arg_list()
  end
  local version = redis.call('HGET', p.key, 'v')
  if p.expected == '' then
    if version then return {'retry'} end
  elseif not version then
    return {'nf', p.id}
  elseif version ~= p.expected then
    return {'retry'}
  end
  plan[i] = p
  mine[p.id] = true
end
local move_from, move_to = arg(), arg()
for _, p in ipairs(plan) do
  if p.unique then
    for _, prefix in ipairs(p.unique) do
      if taken(ix, prefix, mine, n + 1) then return {'taken', prefix} end
    end
  end
end
for _, p in ipairs(plan) do
  index_remove(ix, members_of(redis.call('HGET', p.key, 'ix')))
  if p.action == 'd' then
    redis.call('DEL', p.key)
    redis.call('ZREM', ids, p.id)
  else
    if #p.del > 0 then redis.call('HDEL', p.key, unpack(p.del)) end
    if #p.set > 0 then redis.call('HSET', p.key, unpack(p.set)) end
    redis.call('HSET', p.key, 'ix', joined(p.members))
    redis.call('HINCRBY', p.key, 'v', 1)
    index_add(ix, p.members)
    redis.call('ZADD', ids, 0, p.id)
  end
end
if move_from ~= '' then
  -- The source's interactions become the destination's (members `c\0<id>\0<15 digits>\0<iid>`).
  local prefix = 'c\0' .. move_from .. '\0'
  for _, member in ipairs(redis.call('ZRANGEBYLEX', ii, '[' .. prefix, '[' .. prefix .. '\255')) do
    local rest = string.sub(member, #prefix + 1)
    local moved = 'c\0' .. move_to .. '\0' .. rest
    local id = string.sub(rest, 17)
    redis.call('ZREM', ii, member)
    redis.call('ZADD', ii, 0, moved)
    redis.call('HSET', int, id .. '\0c', move_to)
    local list = members_of(redis.call('HGET', int, id .. '\0x'))
    for i, old in ipairs(list) do
      if old == member then list[i] = moved end
    end
    redis.call('HSET', int, id .. '\0x', joined(list))
  end
end
return {'ok'}
