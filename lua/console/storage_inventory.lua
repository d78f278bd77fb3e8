-- What the console shows of a GMS service's storage beside its string values: the configured
-- name, the time left, and the files (key, type and name, size) without their bytes.
-- KEYS[1] gms:{id}:data, KEYS[2] gms:{id}:bin, KEYS[3] gms:{id}:ftype
-- ARGV[1] the most files to list
-- Returns {} when the service does not exist; else {name, pttl (ms; -1: no expiry), file count,
-- {key, "<content type>\n<file name>", size, key, …}} with at most ARGV[1] files.
local data, bin, ftype = KEYS[1], KEYS[2], KEYS[3]
local name = redis.call('HGET', data, '_name')
if not name then return {} end
local limit = tonumber(ARGV[1])
local listed = {}
local cursor = '0'
repeat
  local page = redis.call('HSCAN', bin, cursor, 'COUNT', 100)
  cursor = page[1]
  local entries = page[2]
  for i = 1, #entries, 2 do
    if #listed >= limit * 3 then break end
    local key = entries[i]
    listed[#listed + 1] = key
    listed[#listed + 1] = redis.call('HGET', ftype, key) or ''
    listed[#listed + 1] = string.len(entries[i + 1])
  end
until cursor == '0' or #listed >= limit * 3
return {name, redis.call('PTTL', data), redis.call('HLEN', bin), listed}
