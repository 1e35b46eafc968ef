-- wrk script: GET /bench/row/:id with ids spread uniformly over bench_rows.
--   BENCH_ROWS (number of rows, default 100000)
-- luacheck: std lua51, globals wrk setup init request done tid
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local bench = dofile(here .. "common.lua")
setup = bench.setup
done = bench.done

function init()
  local rows = tonumber(os.getenv("BENCH_ROWS")) or 100000
  math.randomseed(os.time() * 1000 + (tid or 0))
  local list = {}
  for i = 1, 20000 do
    list[i] = wrk.format("GET", "/bench/row/" .. math.random(1, rows))
  end
  request = bench.replay(list)
end
