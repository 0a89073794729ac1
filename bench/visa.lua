-- wrk script for the visa run: each request takes the next line of the file named by
-- KABINET_BENCH_REQUESTS ("token<TAB>path<TAB>json body"), so every visa is a different
-- open approval. When the lines run out, requests repeat the last one; the server answers
-- 409, counted by wrk as non-2xx, so an exhausted list shows in the table. Each visa
-- carries its own Idempotency-Key, as the PWA sends it.
local lines = {}
for line in io.lines(os.getenv("KABINET_BENCH_REQUESTS")) do
  local token, path, body = line:match("^([^\t]+)\t([^\t]+)\t(.+)$")
  lines[#lines + 1] = wrk.format("POST", path, {
    ["Authorization"] = "Bearer " .. token,
    ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = "bench-" .. #lines .. "-" .. path:sub(19, 54),
  }, body)
end
local i = 0
request = function()
  if i < #lines then i = i + 1 end
  return lines[i]
end
