-- Shared functions of the access-number pool scripts. Not a script by itself: gmsd prepends
-- this file to every lua/gms/*.lua when it registers them, so each stays one self-contained EVALSHA.
--
-- A pool's keys (all tagged {pool:<group>}, see docs/keys.md), passed as KEYS[1..5]:
-- * resv  hash: service id -> "<number>\t<code>\t<created ms>\t<expires ms>\t<phone>"
-- * exp   sorted set: service id by reservation expiry (ms)
-- * busy  hash: number -> count of its live reservations
-- * num   sorted set, score 0: "<number>\0<service id>" (a number's reservations by member range)
-- * next  string: the round-robin position

-- Redis' clock in ms.
local function pool_now()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- A reservation record as a table (nil when there is none).
local function pool_record(id)
  local raw = redis.call('HGET', KEYS[1], id)
  if not raw then return nil end
  local number, code, created, expires, phone = string.match(raw, '^([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$')
  return {number = number, code = code, created = tonumber(created), expires = tonumber(expires), phone = phone}
end

-- Release the reservation of service `id`, if it has one: its number goes back to the pool.
local function pool_release(id)
  local rec = pool_record(id)
  if not rec then return end
  redis.call('HDEL', KEYS[1], id)
  redis.call('ZREM', KEYS[2], id)
  if redis.call('HINCRBY', KEYS[3], rec.number, -1) <= 0 then redis.call('HDEL', KEYS[3], rec.number) end
  redis.call('ZREM', KEYS[4], rec.number .. '\0' .. id)
end

-- Release every reservation whose booking has expired by `now`.
local function pool_prune(now)
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)) do pool_release(id) end
end

-- The service ids holding a reservation on `number`.
local function pool_holders(number)
  local holders = {}
  local prefix = number .. '\0'
  for _, member in ipairs(redis.call('ZRANGEBYLEX', KEYS[4], '[' .. prefix, '(' .. number .. '\1')) do
    holders[#holders + 1] = string.sub(member, #prefix + 1)
  end
  return holders
end
