-- wrk script: cycle through the paths in BENCH_PATHS (separated by "|"),
-- optionally with a token (BENCH_TOKEN) and a unique query string per
-- request (BENCH_BUST=1, to get past Nginx's micro-cache), and print a JSON
-- summary with percentiles at the end.
local paths = {}
for p in string.gmatch(os.getenv("BENCH_PATHS") or "/", "[^|]+") do
  table.insert(paths, p)
end
local token = os.getenv("BENCH_TOKEN")
local bust = os.getenv("BENCH_BUST") == "1"
-- Unique per wrk run: a warm-up's URLs must not be answered from Nginx's
-- cache in the measured run that follows it.
local run = os.getenv("BENCH_RUN") or "0"
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end

function init(args)
  n = 0
  if token and token ~= "" then
    wrk.headers["Authorization"] = "Token " .. token
  end
end

function request()
  n = n + 1
  local path = paths[(n % #paths) + 1]
  if bust then
    local sep = string.find(path, "?", 1, true) and "&" or "?"
    path = path .. sep .. "_b=" .. run .. "-" .. id .. "-" .. n
  end
  return wrk.format("GET", path)
end

dofile(os.getenv("BENCH_WRK_DIR") .. "/summary.lua")
