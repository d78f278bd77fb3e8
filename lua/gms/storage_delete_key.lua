-- Delete one key (string or file) from a GMS service's storage.
-- KEYS[1] gms:{id}:data, KEYS[2] gms:{id}:bin, KEYS[3] gms:{id}:ftype
-- ARGV[1] the key
-- Returns 1, or 0 when the service does not exist. A missing key is not an error.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
return 1
