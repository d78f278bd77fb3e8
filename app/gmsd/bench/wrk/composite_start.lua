-- S4: Context Services composite start.
-- args[1] = "new" (a new customer per request: the create path) or "same" (one customer: the
-- found path); args[2] = a nonce that keeps customer ids unique across runs.
local counter = 0
local threads = {}
thread_id = 0  -- global: set per thread by setup() through thread:set

setup = function(thread)
  thread:set("thread_id", #threads + 1)
  threads[#threads + 1] = thread
end

init = function(args)
  mode = args[1]
  nonce = args[2]
  wrk.method = "POST"
  wrk.path = "/genesys/1/cs/services_composite/start"
  wrk.headers["Content-Type"] = "application/json"
end

request = function()
  local customer
  if mode == "new" then
    counter = counter + 1
    customer = "bench-" .. nonce .. "-" .. thread_id .. "-" .. counter
  else
    customer = "bench-" .. nonce .. "-regular"
  end
  local body = '{"services":[{"service":{"customer_id":"' .. customer ..
    '","service_type":"MyService1","media_type":"voice","interaction_id":"123ABC"},' ..
    '"state":{"state_type":"MyState1"},"task":{"task_type":"MyTask1"},"associate_state_task":true}]}'
  return wrk.format(nil, nil, nil, body)
end
