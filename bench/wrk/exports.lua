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

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\nJSON {"requests": %d, "duration_us": %d, "non2xx": %d, "connect_errors": %d, ' ..
    '"read_errors": %d, "write_errors": %d, "timeouts": %d, ' ..
    '"p50_ms": %.3f, "p95_ms": %.3f, "p99_ms": %.3f, "mean_ms": %.3f}\n',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000,
    latency:percentile(99) / 1000, latency.mean / 1000))
end
