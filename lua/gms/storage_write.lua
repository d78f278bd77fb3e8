-- Create a GMS service or Storage API area, or write keys into an existing one: all or nothing.
-- KEYS[1] gms:{id}:data   strings + `_name`, `_exp`
-- KEYS[2] gms:{id}:bin    file bytes
-- KEYS[3] gms:{id}:ftype  file "<content type>\n<file name>"
-- ARGV[1] mode: "create"  a new service/area named ARGV[3], living ARGV[2] seconds;
--               "create_after_files"  the same, when the MULTI that runs this script has just
--                         written the file bytes to KEYS[2] (their triples carry '' for bytes):
--                         Redis stores big values faster from a plain HSET than through Lua;
--               "update"  an existing one, its expiry unchanged;
--               "renew"   an existing one; a Storage API area (`_name` "") then lives ARGV[2]
--                         seconds from now, a service keeps its expiry;
--               "upsert"  a Storage API area, created if missing, living ARGV[2] seconds from now
-- ARGV[2] lifetime in seconds (create, renew, upsert), ARGV[3] the name (create)
-- ARGV[4] n = number of string values, followed by n (key, value) pairs,
--         then (key, bytes, type) triples for the files
-- Returns 1, or 0 when updating (or renewing) one that does not exist (or has expired).
-- A key written again replaces its old value, string or file. Every key of the service
-- expires at the same instant: `_exp`, taken from Redis' own clock.
local data, bin, ftype = KEYS[1], KEYS[2], KEYS[3]
local mode = ARGV[1]
local function from_now(seconds)
  local now = redis.call('TIME')
  return tostring(tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) + tonumber(seconds) * 1000)
end
local expire_at
local moved = false
local files_written = mode == 'create_after_files'
if mode == 'create' or files_written then
  expire_at = from_now(ARGV[2])
  redis.call('HSET', data, '_name', ARGV[3], '_exp', expire_at)
  redis.call('PEXPIREAT', data, expire_at)
else
  local meta = redis.call('HMGET', data, '_name', '_exp')
  if mode == 'upsert' then
    meta[1] = ''
  elseif not meta[1] then
    return 0
  end
  expire_at = meta[2]
  if mode ~= 'update' and meta[1] == '' then
    expire_at = from_now(ARGV[2])
    redis.call('HSET', data, '_name', '', '_exp', expire_at)
    moved = true
  end
end
local n = tonumber(ARGV[4])
-- (a new service has nothing to replace: its bin key holds only the files of this write)
local has_files = not files_written and redis.call('EXISTS', bin) == 1
-- The strings in HSETs of up to 256 pairs (one call each, not one per key: a call from Lua
-- costs Redis more than the HSET itself; the bound keeps unpack within Lua's stack).
local i = 5
local last = 4 + 2 * n
while i <= last do
  local stop = math.min(i + 511, last)
  redis.call('HSET', data, unpack(ARGV, i, stop))
  if has_files then
    local keys = {}
    for k = i, stop, 2 do keys[#keys + 1] = ARGV[k] end
    redis.call('HDEL', bin, unpack(keys))
    redis.call('HDEL', ftype, unpack(keys))
  end
  i = stop + 1
end
local files = i <= #ARGV
while i <= #ARGV do
  local key = ARGV[i]
  if not files_written then redis.call('HSET', bin, key, ARGV[i + 1]) end
  redis.call('HSET', ftype, key, ARGV[i + 2])
  redis.call('HDEL', data, key)
  i = i + 3
end
if moved then
  for k = 1, 3 do redis.call('PEXPIREAT', KEYS[k], expire_at) end
elseif files then
  redis.call('PEXPIREAT', bin, expire_at)
  redis.call('PEXPIREAT', ftype, expire_at)
end
return 1
