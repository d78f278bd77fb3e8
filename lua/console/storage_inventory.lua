-- What the console shows of a GMS service's storage beside its string values: the configured
-- name, the time left, and the files (key, type and name, size) without their bytes.
-- KEYS[1] gms:{id}:data, KEYS[2] gms:{id}:bin, KEYS[3] gms:{id}:ftype
-- ARGV[1] the most files to list
-- Returns {} when the service does not exist; else {name, pttl (ms; -1: no expiry), file count,
-- {key, "<content type>\n<file name>", size, key, …}} with at most ARGV[1] files.
-- Sizes come from HSTRLEN: the bytes of a file (up to [limits] file_bytes each) never enter the script.
local data, bin, ftype = KEYS[1], KEYS[2], KEYS[3]
local name = redis.call('HGET', data, '_name')
if not name then return {} end
local limit = tonumber(ARGV[1])
local keys = redis.call('HKEYS', bin)  -- names only (each at most [limits] key_bytes)
local listed = {}
for i = 1, math.min(#keys, limit) do
  local key = keys[i]
  listed[#listed + 1] = key
  listed[#listed + 1] = redis.call('HGET', ftype, key) or ''
  listed[#listed + 1] = redis.call('HSTRLEN', bin, key)
end
return {name, redis.call('PTTL', data), #keys, listed}
