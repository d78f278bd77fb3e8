-- Delete every key of a GMS service's storage; the service itself stays, same expiry.
-- KEYS[1] gms:{id}:data, KEYS[2] gms:{id}:bin, KEYS[3] gms:{id}:ftype
-- Returns 1, or 0 when the service does not exist.
local meta = redis.call('HMGET', KEYS[1], '_name', '_exp')
if not meta[1] then return 0 end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
redis.call('HSET', KEYS[1], '_name', meta[1], '_exp', meta[2])
redis.call('PEXPIREAT', KEYS[1], meta[2])
return 1
