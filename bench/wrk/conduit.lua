-- wrk script: cycle through the paths in BENCH_PATHS (separated by "|"),
-- optionally with a token (BENCH_TOKEN), and print a JSON summary with
-- percentiles at the end.
local paths = {}
for p in string.gmatch(os.getenv("BENCH_PATHS") or "/", "[^|]+") do
  table.insert(paths, p)
end
local token = os.getenv("BENCH_TOKEN")

function init(args)
  n = 0
  if token and token ~= "" then
    wrk.headers["Authorization"] = "Token " .. token
  end
end

function request()
  n = n + 1
  return wrk.format("GET", paths[(n % #paths) + 1])
end

dofile(os.getenv("BENCH_WRK_DIR") .. "/summary.lua")
