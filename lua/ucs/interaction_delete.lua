-- Delete one interaction, its contents and its list entries.
-- KEYS[1] int  KEYS[2] ii
-- ARGV interaction id
-- Returns 1, or 0 when there is no such interaction.
local int, ii = KEYS[1], KEYS[2]
local id = arg()
if redis.call('HEXISTS', int, id .. '\0m') == 0 then return 0 end
index_remove(ii, members_of(redis.call('HGET', int, id .. '\0x')))
redis.call('HDEL', int, id .. '\0m', id .. '\0c', id .. '\0x', id .. '\0pt', id .. '\0st', id .. '\0stt',
           id .. '\0bc', id .. '\0bct')
return 1
