-- S2: write three small keys, urlencoded. args[1] = the path.
init = function(args)
  wrk.method = "POST"
  wrk.path = args[1]
  wrk.body = "firstname=Alexandra&language=french&phone=+1-650-466-9999"
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
end
