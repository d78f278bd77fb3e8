-- Read a conversation at one instant: the service hash and, if asked, its states and tasks.
-- KEYS[1] svc   KEYS[2] states   KEYS[3] tasks
-- ARGV "1" to read the states, "1" to read the tasks
-- Returns {service fields, state fields, task fields} (flat HGETALL lists; empty if not read).
local states, tasks = {}, {}
if ARGV[1] == '1' then states = redis.call('HGETALL', KEYS[2]) end
if ARGV[2] == '1' then tasks = redis.call('HGETALL', KEYS[3]) end
return {redis.call('HGETALL', KEYS[1]), states, tasks}
