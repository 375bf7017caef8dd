-- wrk script: the write mix. Cycles publish (POST /api/articles), comment
-- (POST /api/articles/<slug>/comments) and favourite/unfavourite (POST then
-- DELETE /api/articles/<slug>/favorite) with BENCH_TOKEN, on the slugs in
-- BENCH_PATHS ("|"-separated). Prints the same JSON summary as conduit.lua.
local slugs = {}
for s in string.gmatch(os.getenv("BENCH_PATHS") or "", "[^|]+") do
  table.insert(slugs, s)
end
local token = os.getenv("BENCH_TOKEN")
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end

function init(args)
  n = 0
  wrk.headers["Authorization"] = "Token " .. token
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  n = n + 1
  local slug = slugs[(n % #slugs) + 1]
  local kind = n % 4
  if kind == 0 then
    local body = string.format(
      '{"article": {"title": "Bench %d-%d", "description": "d", "body": "b", "tagList": ["bench"]}}',
      id, n)
    return wrk.format("POST", "/api/articles", nil, body)
  elseif kind == 1 then
    return wrk.format("POST", "/api/articles/" .. slug .. "/comments", nil,
      '{"comment": {"body": "a benchmark comment"}}')
  elseif kind == 2 then
    return wrk.format("POST", "/api/articles/" .. slug .. "/favorite")
  else
    return wrk.format("DELETE", "/api/articles/" .. slug .. "/favorite")
  end
end

dofile(os.getenv("BENCH_WRK_DIR") .. "/summary.lua")
