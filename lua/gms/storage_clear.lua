-- Empty a GMS service's storage (the service stays, same expiry), or delete a Storage API area.
-- KEYS[1] gms:{id}:data, KEYS[2] gms:{id}:bin, KEYS[3] gms:{id}:ftype
-- ARGV[1] (optional) "area": a Storage API area (`_name` "") is deleted as a whole
-- Returns 1 when emptied, 2 when the area was deleted, 0 when it does not exist.
local meta = redis.call('HMGET', KEYS[1], '_name', '_exp')
if not meta[1] then return 0 end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
if ARGV[1] == 'area' and meta[1] == '' then return 2 end
redis.call('HSET', KEYS[1], '_name', meta[1], '_exp', meta[2])
redis.call('PEXPIREAT', KEYS[1], meta[2])
return 1
