-- The members of the index under a prefix (a customer's or a contact key's services), without
-- the expired ones, which are dropped on the way, as are the expired entries under a second
-- prefix (the same owner's match entries) and a batch of any other expired entries; the time
-- entries of the expired conversations go with them.
-- KEYS[1] ix   KEYS[2] ixexp   KEYS[3..5] ts, te, tu
-- ARGV now, prefix, second prefix to trim ('' none)
-- Returns the live members under the prefix, in member order.
local ix, ixexp = KEYS[1], KEYS[2]
time_index(KEYS[3], KEYS[4], KEYS[5])
local now, prefix, also = arg(), arg(), arg()
index_trim(ix, ixexp, now)
local limit = tonumber(now)

-- The live members under `under`; the expired ones are removed.
local function live_members(under)
  local members = redis.call('ZRANGEBYLEX', ix, '[' .. under, '[' .. under .. '\255')
  local live, dead = {}, {}
  for i = 1, #members, CHUNK do
    local part = {unpack(members, i, math.min(i + CHUNK - 1, #members))}
    local scores = redis.call('ZMSCORE', ixexp, unpack(part))
    for j, member in ipairs(part) do
      if scores[j] and tonumber(scores[j]) >= limit then live[#live + 1] = member
      else dead[#dead + 1] = member end
    end
  end
  drop_expired(ix, ixexp, dead)
  return live
end

if also ~= '' then live_members(also) end
return live_members(prefix)
