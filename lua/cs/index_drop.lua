-- Drop index entries that can never be valid again (their service is gone, ended for a match
-- entry, or holds a newer member), found by a reader or left by a two-partition step.
-- KEYS[1] ix   KEYS[2] ixexp   (KEYS[3..5] ts, te, tu: not used)
-- ARGV members…
-- Returns the number of members.
local members = {}
for i = 1, #ARGV do members[i] = ARGV[i] end
chunked('ZREM', KEYS[1], members)
chunked('ZREM', KEYS[2], members)
return #members
