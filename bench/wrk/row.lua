-- wrk script: GET /bench/row/:id with ids spread uniformly over bench_rows.
--   BENCH_ROWS (number of rows, default 100000)
-- luacheck: std lua51, globals wrk setup request done tid
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local bench = dofile(here .. "common.lua")
setup = bench.setup
done = bench.done

request = bench.replay(function()
  local rows = tonumber(os.getenv("BENCH_ROWS")) or 100000
  bench.seed(tid)
  local list = {}
  for i = 1, 20000 do
    list[i] = wrk.format("GET", "/bench/row/" .. math.random(1, rows))
  end
  return list
end)
