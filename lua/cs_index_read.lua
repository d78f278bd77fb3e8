-- The members of the index under a prefix (a customer's or a contact key's services), without
-- the expired ones, which are dropped on the way (and a batch of other expired entries).
-- KEYS[1] ix   KEYS[2] ixexp
-- ARGV now, prefix
-- Returns the live members, in member order.
local ix, ixexp = KEYS[1], KEYS[2]
local now, prefix = arg(), arg()
index_trim(ix, ixexp, now)
local members = redis.call('ZRANGEBYLEX', ix, '[' .. prefix, '[' .. prefix .. '\255')
local live, dead = {}, {}
local limit = tonumber(now)
for i = 1, #members, CHUNK do
  local part = {unpack(members, i, math.min(i + CHUNK - 1, #members))}
  local scores = redis.call('ZMSCORE', ixexp, unpack(part))
  for j, member in ipairs(part) do
    if scores[j] and tonumber(scores[j]) >= limit then live[#live + 1] = member
    else dead[#dead + 1] = member end
  end
end
if #dead > 0 then
  chunked('ZREM', ix, dead)
  chunked('ZREM', ixexp, dead)
end
return live
