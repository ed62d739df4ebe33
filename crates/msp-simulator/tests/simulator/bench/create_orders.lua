-- wrk script: POST /v1/json/orders with a unique order_id per request (MSP test card
-- 4111111111111111, which is challenged: the common path). Usage is in README ("Simulator").
local threads = {}
local counter = 0

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  prefix = string.format("bench-%d-%d-", os.time(), tid)
end

local headers = { ["Content-Type"] = "application/json", ["api_key"] = "bench-key" }
local template = '{"type":"direct","gateway":"CREDITCARD","order_id":"%s%d","currency":"EUR",'
  .. '"amount":1000,"description":"bench","payment_options":{"redirect_url":"http://127.0.0.1/ok",'
  .. '"cancel_url":"http://127.0.0.1/failed"},"customer":{"ip_address":"1.2.3.4","country":"NL"},'
  .. '"gateway_info":{"card_number":"4111111111111111","card_expiry_date":"3012","card_cvc":"123"}}'

function request()
  counter = counter + 1
  return wrk.format("POST", "/v1/json/orders", headers, string.format(template, prefix, counter))
end
