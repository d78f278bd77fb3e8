-- Create a GMS service, or write keys into an existing one's storage: all or nothing.
-- KEYS[1] gms:{id}:data   strings + `_name`, `_exp`
-- KEYS[2] gms:{id}:bin    file bytes
-- KEYS[3] gms:{id}:ftype  file "<content type>\n<file name>"
-- ARGV[1] "" to update an existing service, or its lifetime in seconds to create it
-- ARGV[2] configured service name (create only)
-- ARGV[3] n = number of string values, followed by n (key, value) pairs,
--         then (key, bytes, type) triples for the files
-- Returns 1, or 0 when updating a service that does not exist (or has expired).
-- A key written again replaces its old value, string or file. Every key of the service
-- expires at the same instant: `_exp`, taken from Redis' own clock at creation.
local data, bin, ftype = KEYS[1], KEYS[2], KEYS[3]
local expire_at
if ARGV[1] == '' then
  expire_at = redis.call('HGET', data, '_exp')
  if not expire_at then return 0 end
else
  local now = redis.call('TIME')
  expire_at = tostring(tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
                       + tonumber(ARGV[1]) * 1000)
  redis.call('HSET', data, '_name', ARGV[2], '_exp', expire_at)
  redis.call('PEXPIREAT', data, expire_at)
end
local n = tonumber(ARGV[3])
local has_files = redis.call('EXISTS', bin) == 1
local i = 4
for _ = 1, n do
  local key = ARGV[i]
  redis.call('HSET', data, key, ARGV[i + 1])
  if has_files then
    redis.call('HDEL', bin, key)
    redis.call('HDEL', ftype, key)
  end
  i = i + 2
end
if i <= #ARGV then
  while i <= #ARGV do
    local key = ARGV[i]
    redis.call('HSET', bin, key, ARGV[i + 1])
    redis.call('HSET', ftype, key, ARGV[i + 2])
    redis.call('HDEL', data, key)
    i = i + 3
  end
  redis.call('PEXPIREAT', bin, expire_at)
  redis.call('PEXPIREAT', ftype, expire_at)
end
return 1
