-- Find and release the live reservations on an access number that match a caller.
-- KEYS[1] resv, KEYS[2] exp, KEYS[3] busy, KEYS[4] num, KEYS[5] next  (gms:{pool:<group>}:…)
-- ARGV[1] the number dialled   ARGV[2] the access code given ("" if none)
-- ARGV[3] "1" if a phone number is given, ARGV[4] that phone number
-- ARGV[5] "1": release every match, else only the most recent one
-- Returns the matched service ids, most recent reservation first (released: their numbers
-- are back in the pool). A reservation with a code matches only the same code; one without
-- matches only when no code is given. Expired bookings are released first.
local number, code, has_phone, phone, all = ARGV[1], ARGV[2], ARGV[3] == '1', ARGV[4], ARGV[5] == '1'
pool_prune(pool_now())
local matches = {}
for _, id in ipairs(pool_holders(number)) do
  local rec = pool_record(id)
  if rec and rec.code == code and (not has_phone or rec.phone == phone) then
    matches[#matches + 1] = {id = id, created = rec.created}
  end
end
table.sort(matches, function(a, b)
  if a.created ~= b.created then return a.created > b.created end
  return a.id > b.id
end)
local taken = {}
for _, match in ipairs(matches) do
  pool_release(match.id)
  taken[#taken + 1] = match.id
  if not all then break end
end
return taken
