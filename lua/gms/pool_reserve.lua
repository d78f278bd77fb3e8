-- Reserve an access number of a resource group for a service: choose, code, record, atomically.
-- KEYS[1] resv, KEYS[2] exp, KEYS[3] busy, KEYS[4] num, KEYS[5] next  (gms:{pool:<group>}:…)
-- ARGV[1] service id          ARGV[2] "1": locking (one live reservation per number)
-- ARGV[3] "1": round-robin, else random   ARGV[4] booking lifetime in seconds
-- ARGV[5] access code length (0: no code)  ARGV[6] the device's phone number ("" if none)
-- ARGV[7] a random seed (Redis scripts have no entropy of their own)
-- ARGV[8..] the group's numbers, in configuration order
-- Returns {1, number, code, expires ms}, or {0} when no number is free (nothing kept).
-- A service's earlier reservation in this group is replaced. Expired bookings are released first.
local id, locking, round_robin = ARGV[1], ARGV[2] == '1', ARGV[3] == '1'
local lifetime, code_length, phone = tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]
math.randomseed(tonumber(ARGV[7]))
local numbers = {}
for i = 8, #ARGV do numbers[#numbers + 1] = ARGV[i] end
local now = pool_now()
pool_prune(now)
pool_release(id)

-- Candidates, in the order they are tried.
local free = {}
if locking then
  local counts = redis.call('HMGET', KEYS[3], unpack(numbers))
  for i, number in ipairs(numbers) do
    if not counts[i] or tonumber(counts[i]) <= 0 then free[#free + 1] = i end
  end
else
  for i = 1, #numbers do free[i] = i end
end
if #free == 0 then return {0} end
local order = {}
if round_robin then
  -- The first free number at or after the round-robin position.
  local start = (tonumber(redis.call('GET', KEYS[5]) or '0') or 0) % #numbers + 1
  for _, i in ipairs(free) do if i >= start then order[#order + 1] = i end end
  for _, i in ipairs(free) do if i < start then order[#order + 1] = i end end
else
  local first = math.random(#free)
  for k = 0, #free - 1 do order[#order + 1] = free[(first - 1 + k) % #free + 1] end
end

-- The first candidate that can also get a code unique among its live reservations.
local chosen, code
for _, i in ipairs(order) do
  local number = numbers[i]
  if code_length == 0 then
    chosen, code = i, ''
  else
    local used = {}
    for _, holder in ipairs(pool_holders(number)) do
      local rec = pool_record(holder)
      if rec then used[rec.code] = true end
    end
    for _ = 1, 50 do
      local digits = {}
      for d = 1, code_length do digits[d] = tostring(math.random(0, 9)) end
      local candidate = table.concat(digits)
      if not used[candidate] then chosen, code = i, candidate break end
    end
  end
  if chosen then break end
end
if not chosen then return {0} end

local number = numbers[chosen]
local expires = now + lifetime * 1000
redis.call('HSET', KEYS[1], id, table.concat({number, code, tostring(now), tostring(expires), phone}, '\t'))
redis.call('ZADD', KEYS[2], expires, id)
redis.call('HINCRBY', KEYS[3], number, 1)
redis.call('ZADD', KEYS[4], 0, number .. '\0' .. id)
if round_robin then redis.call('SET', KEYS[5], tostring(chosen)) end
-- The group's keys live as long as its last reservation.
local last = tonumber(redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')[2])
for k = 1, 5 do redis.call('PEXPIREAT', KEYS[k], last) end
return {1, number, code, expires}
