-- recommend.lua -- the wrk script of bench/serve.sh and deploy/replicas.sh.
-- With NB_USERS naming a file of user ids (one a line), every request is POST /recommend
-- {"user_id": <a random one of them>, "k": 10} (each wrk thread its own seed: reproducible);
-- without it, wrk's plain GET of the URL's path (/health). At the end one line:
--   RESULT <req/s> <p50 ms> <p99 ms> <errors> <requests>
-- errors = connect + read + write + timeout errors + responses with a status >= 400.
local path = os.getenv("NB_USERS")
if path == "" then path = nil end
local users, n = {}, 0
local thread_seed = 0
if path then
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  function request()
    return wrk.format(nil, "/recommend", nil,
                      string.format('{"user_id": %d, "k": 10}', users[math.random(n)]))
  end
end
function setup(thread) thread_seed = thread_seed + 1; thread:set("seed", thread_seed) end
function init(args)
  if path then
    for line in io.lines(path) do n = n + 1; users[n] = tonumber(line) end
  end
  math.randomseed(seed or 1)
end
done = function(summary, latency, requests)
  local errs = summary.errors.connect + summary.errors.read + summary.errors.write
             + summary.errors.timeout + summary.errors.status
  io.write(string.format("RESULT %.0f %.2f %.2f %d %d\n", summary.requests / (summary.duration / 1e6),
           latency:percentile(50) / 1000, latency:percentile(99) / 1000, errs, summary.requests))
end
