-- wrk script: POST /api/user/exports, cycling through the users' tokens in
-- BENCH_TOKENS ("|"-separated). Each user has one export at a time: a POST
-- while theirs is queued or running returns it; later ones queue new jobs.
local tokens = {}
for t in string.gmatch(os.getenv("BENCH_TOKENS") or "", "[^|]+") do
  table.insert(tokens, t)
end

function init(args)
  n = 0
end

function request()
  n = n + 1
  local headers = { ["Authorization"] = "Token " .. tokens[(n % #tokens) + 1] }
  return wrk.format("POST", "/api/user/exports", headers, "")
end

dofile(os.getenv("BENCH_WRK_DIR") .. "/summary.lua")
