-- wrk script for bench/gateway.sh: a small non-streaming chat completion, and one
-- machine-readable summary line ("BENCH k=v ...") that gateway.sh parses.
-- The model name matches the bench route (aigis `mock*`, the LiteLLM model_name).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
-- BENCH_AUTH=KEY: send an aigis API key (the auth-enabled case).
local auth = os.getenv("BENCH_AUTH")
if auth and auth ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. auth
end
wrk.body = '{"model":"mock-1","messages":[{"role":"system","content":"You are terse."},'
  .. '{"role":"user","content":"Say hello to the benchmark."}],"max_tokens":16,"temperature":0}'

-- BENCH_PAUSE_MS=N: each connection waits N ms after a response before its next request, so a
-- few connections give a moderate, roughly fixed request rate (the low-load run). The pause is
-- not part of the measured latency.
local pause = tonumber(os.getenv("BENCH_PAUSE_MS") or "")
if pause and pause > 0 then
  function delay()
    return pause
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  local secs = summary.duration / 1e6
  io.write(string.format(
    "BENCH requests=%d duration_s=%.3f rps=%.1f p50_us=%.1f p90_us=%.1f p99_us=%.1f max_us=%.1f "
      .. "socket_errors=%d status_errors=%d timeouts=%d\n",
    summary.requests, secs, summary.requests / secs,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.connect + e.read + e.write, e.status, e.timeout))
end
