-- Shared functions of the customer profile scripts. Not a script by itself: gmsd prepends this
-- file to every lua/ucs/*.lua when it registers them, so each stays one self-contained EVALSHA.
--
-- Layout (every key of one tenant shares the hash tag {ucs} or {ucs:t:<tenant>:}; docs/keys.md):
-- * schema  hash: x:<name> extension schemas, k:<name> identification keys (JSON), gen, kseq
-- * ix      identification index, score 0: `<key number>.<k>\0<v1>\0…\0<vk>\0<customer id>`
-- * ids     every customer id, score 0
-- * p:<id>  profile hash: v (version), c (core attributes JSON), x:<ext> (extension JSON),
--           ix (the profile's index members, each ended by \1)
-- * int     interactions: `<id>\0m` metadata JSON, `<id>\0c` customer id, `<id>\0x` its list
--           members (each ended by \1), `<id>\0pt|st|stt|bc|bct` contents and their types
-- * ii      interaction lists, score 0: `c\0<customer>\0<inverted ms>\0<id>`, `s\0<service>\0…`

local argi = 0
-- The next ARGV value (scripts read their arguments in order).
local function arg()
  argi = argi + 1
  return ARGV[argi]
end

-- A counted list from ARGV: n, then n values.
local function arg_list()
  local n = tonumber(arg())
  local out = {}
  for i = 1, n do out[i] = arg() end
  return out
end

local CHUNK = 500

-- The members of a `\1`-terminated list.
local function members_of(text)
  local out = {}
  if not text then return out end
  for member in string.gmatch(text, '([^\1]*)\1') do out[#out + 1] = member end
  return out
end

-- A list as one `\1`-terminated text.
local function joined(list)
  if #list == 0 then return '' end
  return table.concat(list, '\1') .. '\1'
end

-- ZADD score 0 for every member, in chunks (unpack has a stack limit).
local function index_add(key, members)
  local batch = {}
  for _, member in ipairs(members) do
    batch[#batch + 1] = 0
    batch[#batch + 1] = member
    if #batch >= 2 * CHUNK then
      redis.call('ZADD', key, unpack(batch))
      batch = {}
    end
  end
  if #batch > 0 then redis.call('ZADD', key, unpack(batch)) end
end

-- ZREM every member, in chunks.
local function index_remove(key, members)
  for i = 1, #members, CHUNK do
    redis.call('ZREM', key, unpack(members, i, math.min(i + CHUNK - 1, #members)))
  end
end

-- Whether a customer not in `mine` holds a member `<prefix><customer id>`.
local function taken(ix, prefix, mine, limit)
  local found = redis.call('ZRANGEBYLEX', ix, '[' .. prefix, '[' .. prefix .. '\255', 'LIMIT', 0, limit)
  for _, member in ipairs(found) do
    if not mine[string.sub(member, #prefix + 1)] then return true end
  end
  return false
end

-- The schema generation the caller read is still the current one.
local function same_generation(schema, generation)
  return (redis.call('HGET', schema, 'gen') or '0') == generation
end
