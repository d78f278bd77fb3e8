-- Give a GMS service and all its storage a new expiry (Update Conversation Expiration).
-- KEYS[1] gms:{id}:data, KEYS[2] gms:{id}:bin, KEYS[3] gms:{id}:ftype
-- ARGV[1] "ttl" (ARGV[2] = seconds from now, by Redis' clock) or "at" (ARGV[2] = epoch ms)
-- Returns the new expiry in epoch ms, or 0 when the service does not exist.
-- An expiry in the past deletes the service at once (PEXPIREAT semantics).
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local expire_at
if ARGV[1] == 'ttl' then
  local now = redis.call('TIME')
  expire_at = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) + tonumber(ARGV[2]) * 1000
else
  expire_at = tonumber(ARGV[2])
end
redis.call('HSET', KEYS[1], '_exp', tostring(expire_at))
for i = 1, 3 do redis.call('PEXPIREAT', KEYS[i], expire_at) end
return expire_at
