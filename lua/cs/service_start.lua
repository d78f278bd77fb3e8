-- Start a Context Services service (POST /services/start).
-- KEYS[1] svc   KEYS[2] ix   KEYS[3] ixexp   KEYS[4..6] ts, te, tu   (one partition; the id is new)
-- ARGV now (ms), expiry (ms), cm (customer or anonymous member), mm (match member), t0 (ms),
--      n, then n field/value pairs of the service hash (type, tk, est, cust, ck, mk, s:*, a:*)
-- Returns 1.
local svc, ix, ixexp = KEYS[1], KEYS[2], KEYS[3]
time_index(KEYS[4], KEYS[5], KEYS[6])
local now, exp, cm, mm, t0 = arg(), arg(), arg(), arg(), arg()
local fields = arg_pairs()
index_trim(ix, ixexp, now)
start_service(svc, ix, ixexp, now, exp, cm, mm, t0, fields)
return 1
