-- One batch of an identification key's back-fill: add the entries of profiles that have not
-- changed since the caller read them (a profile written since already carries the key's entries:
-- the key was in the schema, as "building", before the back-fill began).
-- KEYS[1] schema  KEYS[2] ix  KEYS[2+i] profile i
-- ARGV schema generation, n profiles, then per profile: customer id, version, n + members,
--      n + unique prefixes (the key's full tuples, when it is unique)
-- Returns {'ok', profiles filled}, {'retry'} (the schema changed), or {'taken', prefix}: the key
-- cannot be unique, nothing of this batch written.
local schema, ix = KEYS[1], KEYS[2]
if not same_generation(schema, arg()) then return {'retry'} end
local n = tonumber(arg())
local plan, claimed = {}, {}
for i = 1, n do
  local p = {key = KEYS[2 + i], id = arg(), version = arg()}
  p.members = arg_list()
  p.unique = arg_list()
  if redis.call('HGET', p.key, 'v') == p.version then
    for _, prefix in ipairs(p.unique) do
      if (claimed[prefix] and claimed[prefix] ~= p.id) or taken(ix, prefix, {[p.id] = true}, 2) then
        return {'taken', prefix}
      end
      claimed[prefix] = p.id
    end
    plan[#plan + 1] = p
  end
end
for _, p in ipairs(plan) do
  index_add(ix, p.members)
  local own = redis.call('HGET', p.key, 'ix') or ''
  redis.call('HSET', p.key, 'ix', own .. joined(p.members))
end
return {'ok', #plan}
