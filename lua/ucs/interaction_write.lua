-- Import one interaction (a gmsd extension: POST /genesys/1/cs/interactions).
-- KEYS[1] int  KEYS[2] ii
-- ARGV interaction id, n + (part, value) flat (parts m, c, pt, st, stt, bc, bct), n + list members
-- Returns {'ok'} or {'taken'} (the id exists: nothing written).
local int, ii = KEYS[1], KEYS[2]
local id = arg()
local parts = arg_list()
local members = arg_list()
if redis.call('HEXISTS', int, id .. '\0m') == 1 then return {'taken'} end
for i = 1, #parts, 2 do redis.call('HSET', int, id .. '\0' .. parts[i], parts[i + 1]) end
redis.call('HSET', int, id .. '\0x', joined(members))
index_add(ii, members)
return {'ok'}
