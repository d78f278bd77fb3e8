-- Read one value of a GMS service's storage as bytes, with its type, in one round trip.
-- KEYS[1] gms:{id}:data, KEYS[2] gms:{id}:bin, KEYS[3] gms:{id}:ftype
-- ARGV[1] the key, ARGV[2] the largest value returned inline (bytes; -1: any size)
-- Returns {} when the service does not exist; {0} when the key does not;
-- {1, bytes, "<content type>\n<file name>"} for a file; {2, value} for a string;
-- {3, size, "<content type>\n<file name>"} for a file over ARGV[2], {4, size} for such a string
-- (their bytes are read on the large values' own connection, gmsd.gms.store).
local data, bin, ftype = KEYS[1], KEYS[2], KEYS[3]
local limit = tonumber(ARGV[2])
if redis.call('EXISTS', data) == 0 then return {} end
if limit >= 0 then
  local size = redis.call('HSTRLEN', bin, ARGV[1])
  if size > limit then return {3, size, redis.call('HGET', ftype, ARGV[1])} end
end
local bytes = redis.call('HGET', bin, ARGV[1])
if bytes then return {1, bytes, redis.call('HGET', ftype, ARGV[1])} end
if limit >= 0 then
  local size = redis.call('HSTRLEN', data, ARGV[1])
  if size > limit then return {4, size} end
end
local text = redis.call('HGET', data, ARGV[1])
if text then return {2, text} end
return {0}
