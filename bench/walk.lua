-- wrk script that walks a list of prepared requests, one per line of the file named by
-- KABINET_BENCH_REQUESTS: "METHOD<TAB>token<TAB>path[<TAB>json body]". Used for runs in
-- which every request must differ: visas (each a different open approval, with its own
-- Idempotency-Key, as the PWA sends it), cold cards (each another document) and cold
-- queues (each another cabinet's folder).
-- With `once` lines are sent once; when they run out the last one repeats (a visa then
-- answers 409, counted by wrk as non-2xx, so an exhausted list shows in the table).
-- Otherwise the list wraps around.
local once = os.getenv("KABINET_BENCH_ONCE") == "1"
local lines = {}
for line in io.lines(os.getenv("KABINET_BENCH_REQUESTS")) do
  local method, token, path, body = line:match("^(%u+)\t([^\t]+)\t([^\t]+)\t?(.*)$")
  local headers = { ["Authorization"] = "Bearer " .. token }
  if body ~= "" then
    headers["Content-Type"] = "application/json"
    headers["Idempotency-Key"] = "bench-" .. #lines .. "-" .. path:sub(19, 54)
  else
    body = nil
  end
  lines[#lines + 1] = wrk.format(method, path, headers, body)
end
local i = 0
request = function()
  if once then
    if i < #lines then i = i + 1 end
  else
    i = i % #lines + 1
  end
  return lines[i]
end
