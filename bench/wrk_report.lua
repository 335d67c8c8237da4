-- wrk script of the REST benchmarks: one request shape from the environment, every
-- non-200 response counted, and a JSON summary line printed when the run is done.
--   WRK_METHOD  GET or POST (default GET)
--   WRK_BODY    request body (sent as application/json)
--   WRK_TOKENS  comma-separated bearer tokens, one per wrk thread in turn

local threads = {}
local tokens = {}
for token in string.gmatch(os.getenv("WRK_TOKENS") or "", "[^,]+") do
   table.insert(tokens, token)
end

function setup(thread)
   table.insert(threads, thread)
   if #tokens > 0 then
      thread:set("token", tokens[(#threads - 1) % #tokens + 1])
   end
end

function init(args)
   non200 = 0
   wrk.method = os.getenv("WRK_METHOD") or "GET"
   local body = os.getenv("WRK_BODY")
   if body and #body > 0 then
      wrk.body = body
      wrk.headers["content-type"] = "application/json"
   end
   if token then
      wrk.headers["authorization"] = "Bearer " .. token
   end
end

function response(status, headers, body)
   if status ~= 200 then
      non200 = non200 + 1
   end
end

function done(summary, latency, requests)
   local non200_total = 0
   for _, thread in ipairs(threads) do
      non200_total = non200_total + (thread:get("non200") or 0)
   end
   local errors = summary.errors
   io.write(string.format(
      'WRK_RESULT {"requests": %d, "duration_us": %d, "non200": %d, "socket_errors": %d, '
         .. '"p50_us": %d, "p99_us": %d}\n',
      summary.requests, summary.duration, non200_total,
      errors.connect + errors.read + errors.write + errors.timeout,
      latency:percentile(50), latency:percentile(99)))
end
