-- Read one value of a GMS service's storage as bytes, with its type, in one round trip.
-- KEYS[1] gms:{id}:data, KEYS[2] gms:{id}:bin, KEYS[3] gms:{id}:ftype
-- ARGV[1] the key
-- Returns {} when the service does not exist; {0} when the key does not;
-- {1, bytes, "<content type>\n<file name>"} for a file; {2, value} for a string.
local data, bin, ftype = KEYS[1], KEYS[2], KEYS[3]
if redis.call('EXISTS', data) == 0 then return {} end
local bytes = redis.call('HGET', bin, ARGV[1])
if bytes then return {1, bytes, redis.call('HGET', ftype, ARGV[1])} end
local text = redis.call('HGET', data, ARGV[1])
if text then return {2, text} end
return {0}
