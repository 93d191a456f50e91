-- wrk script for the gateway benchmark: POST a probe record with a distinct body each time.
counter = 0
request = function()
  counter = counter + 1
  local body = string.format('{"key":"bench","value":%d}', counter)
  return wrk.format("POST", "/v1/probe/records", {["Content-Type"] = "application/json"}, body)
end
