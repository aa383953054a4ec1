-- wrk script for scripts/bench-api.sh: POST /v1/transactions with a unique Idempotency-Key per
-- request. TOKEN and ACCOUNT come from the environment.
local token = os.getenv("TOKEN")
local account = os.getenv("ACCOUNT")
local counter = 0
local thread_id = 0

function setup(thread)
  thread_id = thread_id + 1
  thread:set("tid", thread_id)
end

function init(args)
  math.randomseed(os.time() + (tid or 0))
  prefix = string.format("bench-%d-%d-%d", os.time(), tid or 0, math.random(1, 1e9))
end

request = function()
  counter = counter + 1
  local headers = {
    ["Authorization"] = "Bearer " .. token,
    ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = prefix .. "-" .. counter,
  }
  local body = '{"type":"DEPOSIT","target_account":"' .. account ..
    '","amount":"1.00","currency":"USD"}'
  return wrk.format("POST", "/v1/transactions", headers, body)
end

local non202 = 0
response = function(status, headers, body)
  if status ~= 202 then
    non202 = non202 + 1
    if non202 <= 3 then io.stderr:write("unexpected status " .. status .. ": " .. body .. "\n") end
  end
end

done = function(summary, latency, requests)
  io.write(string.format("requests=%d duration_s=%.2f rps=%.1f p50_ms=%.2f p99_ms=%.2f non2xx_3xx=%d\n",
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.status))
end
