--- A fixed amount of single-threaded Lua work, timed. `make bench` runs it at the start
-- and at the end of a run and reports both, so that a run made while the machine slowed
-- down says so (the 2-vCPU machines of docs/benchmarks.md change speed by a fifth and
-- more within minutes, which moves every req/s figure with them).
-- Run as `build/todo-host script bench/cpu_check.lua`; prints the best of 3 times in ms.
local timer = require "timer"

local function work()
  local strings = {}
  for i = 1, 200000 do strings[i] = tostring(i) .. "x" end
  local n = 0
  for _, s in ipairs(strings) do n = n + #s end
  local x = 0
  for i = 1, 3000000 do x = (x + i * 7) % 1000003 end
  return n + x
end

local best
for _ = 1, 3 do
  local t0 = timer.monotonic()
  work()
  local dt = timer.monotonic() - t0
  if not best or dt < best then best = dt end
end
print(string.format("%.0f", best * 1000))
