-- S6: a Storage API write + read pair on one area, each connection alternating
-- POST {area}/600 (three small keys, urlencoded; restarts the lifetime) and GET {area}/firstname.
-- args[1] = the area path, /genesys/1/storage/{id}. Two requests per pair: pairs/s = req/s / 2.
local write, read
local sent = 0
init = function(args)
  write = wrk.format("POST", args[1] .. "/600", {["Content-Type"] = "application/x-www-form-urlencoded"},
                     "firstname=Alexandra&language=french&phone=+1-650-466-9999")
  read = wrk.format("GET", args[1] .. "/firstname")
end
request = function()
  sent = sent + 1
  if sent % 2 == 1 then return write end
  return read
end
