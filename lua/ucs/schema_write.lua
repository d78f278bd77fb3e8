-- Change the schema (extension schemas, identification keys) if nobody changed it since the
-- caller read it; every change raises the generation, so profile writes computed with the old
-- schema are refused ('retry') and recomputed.
-- KEYS[1] schema
-- ARGV expected generation, n + n (field, value) flat ('' value: delete the field),
--      n + fields that must not exist
-- Returns {'ok', new generation}, {'retry'}, or {'taken', field}.
local schema = KEYS[1]
if not same_generation(schema, arg()) then return {'retry'} end
local changes = arg_list()
local fresh = arg_list()
for _, name in ipairs(fresh) do
  if redis.call('HEXISTS', schema, name) == 1 then return {'taken', name} end
end
for i = 1, #changes, 2 do
  if changes[i + 1] == '' then
    redis.call('HDEL', schema, changes[i])
  else
    redis.call('HSET', schema, changes[i], changes[i + 1])
  end
end
return {'ok', tostring(redis.call('HINCRBY', schema, 'gen', 1))}
