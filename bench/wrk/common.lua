-- Shared by the bench scripts: per-thread counters and one JSON line of results at the end.
-- Each thread has its own Lua state; setup() keeps the thread objects so done() can read them.
local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

ok, bad = 0, 0

function report(summary, latency)
  local total_ok, total_bad = 0, 0
  for _, t in ipairs(threads) do
    total_ok = total_ok + (t:get("ok") or 0)
    total_bad = total_bad + (t:get("bad") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    '{"ok": %d, "bad": %d, "requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, ' ..
    '"socket_errors": %d, "non_2xx_3xx": %d}\n',
    total_ok, total_bad, summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status))
end

done = report
