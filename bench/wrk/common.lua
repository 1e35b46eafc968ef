-- Shared by the wrk scripts of `make bench` (wrk runs LuaJIT, i.e. Lua 5.1).
--   local bench = dofile(<this directory> .. "/common.lua")
-- Requests are formatted once per thread in init() and replayed in a cycle, so wrk
-- spends as little CPU as possible per request (it shares the cores with the server).
-- done() prints one machine-readable line that scripts/bench parses:
--   BENCHRESULT requests=N duration_us=N rps=F p50_us=N p99_us=N errors=N non2xx=N
-- luacheck: std lua51, globals wrk
local M = {}

--- Lines of a file as arrays of whitespace-separated fields.
function M.read_fields(path)
  local f = assert(io.open(path, "r"), "cannot open " .. tostring(path))
  local out = {}
  for line in f:lines() do
    local fields = {}
    for w in line:gmatch("%S+") do fields[#fields + 1] = w end
    if #fields > 0 then out[#out + 1] = fields end
  end
  f:close()
  return out
end

--- The file named by BENCH_DATA/<name> (scripts/bench writes them).
function M.data(name)
  local dir = os.getenv("BENCH_DATA") or error("set BENCH_DATA (scripts/bench does)")
  return M.read_fields(dir .. "/" .. name)
end

-- Thread numbering: setup() runs once per thread in the main state.
local next_tid = 0
function M.setup(thread)
  next_tid = next_tid + 1
  thread:set("tid", next_tid)
end

--- A request() replaying the formatted requests `build()` returns, in a cycle.
-- wrk calls request() once in its main state before any thread's init() (to check the
-- request), so the list is built on first use, in whichever state calls it.
function M.replay(build)
  local list, n, i
  return function()
    if not list then
      list = build()
      n = #list
      assert(n > 0, "no requests to replay")
      i = 0
    end
    i = i % n + 1
    return list[i]
  end
end

--- Shuffle an array in place.
function M.shuffle(t)
  for i = #t, 2, -1 do
    local j = math.random(i)
    t[i], t[j] = t[j], t[i]
  end
  return t
end

--- A per-thread random seed (tid is set by setup() in each thread's state).
function M.seed(tid)
  math.randomseed(os.time() * 1000 + (tid or 0) * 7919)
end

function M.done(summary, latency)
  local e = summary.errors
  local secs = summary.duration / 1e6
  io.write(string.format(
    "BENCHRESULT requests=%d duration_us=%d rps=%.1f p50_us=%d p99_us=%d errors=%d non2xx=%d\n",
    summary.requests, summary.duration, summary.requests / secs,
    latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status))
end

return M
