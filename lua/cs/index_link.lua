-- Add or raise index entries that point to a service of another partition (the second step of
-- an association, or before a new expiry of such a service). Scores only go up: an entry must
-- never expire before the conversation it points to.
-- KEYS[1] ix   KEYS[2] ixexp   KEYS[3..5] ts, te, tu
-- ARGV now, expiry (ms), members…
-- Returns the number of members.
local ix, ixexp = KEYS[1], KEYS[2]
time_index(KEYS[3], KEYS[4], KEYS[5])
local now, exp = arg(), arg()
index_trim(ix, ixexp, now)
for i = 3, #ARGV do
  redis.call('ZADD', ix, 0, ARGV[i])
  redis.call('ZADD', ixexp, 'GT', exp, ARGV[i])
end
index_expire(ix, ixexp)
return #ARGV - 2
