-- wrk script: every request carries the bearer token given in KABINET_BENCH_TOKEN.
-- Used by bench/run.py; run by hand as
--   KABINET_BENCH_TOKEN=... wrk -t1 -c16 -d12s --latency -s bench/auth.lua URL
local token = os.getenv("KABINET_BENCH_TOKEN")
if token and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end
