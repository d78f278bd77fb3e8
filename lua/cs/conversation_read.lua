-- Read conversations of one partition, each at one instant: its service hash and, if asked, its
-- states and tasks. A customer query reads all its conversations in one call. (On one plain Redis
-- server gmsd sends the same HGETALLs in a MULTI/EXEC instead: as atomic, without the Lua tables.)
-- KEYS[1] svc   KEYS[2] states   KEYS[3] tasks of the first conversation, KEYS[4..6] of the second, …
-- ARGV "1" to read the states, "1" to read the tasks
-- Returns one {service fields, state fields, task fields} per conversation, in KEYS' order (flat
-- HGETALL lists; empty if not read, all empty for a conversation that does not exist).
local read_states, read_tasks = ARGV[1] == '1', ARGV[2] == '1'
local out = {}
for i = 1, #KEYS, 3 do
  local states, tasks = {}, {}
  if read_states then states = redis.call('HGETALL', KEYS[i + 1]) end
  if read_tasks then tasks = redis.call('HGETALL', KEYS[i + 2]) end
  out[#out + 1] = {redis.call('HGETALL', KEYS[i]), states, tasks}
end
return out
