-- wrk script: GET /api/tasks/:id, each task read with its owner's token.
-- Reads $BENCH_DATA/tasks.txt (lines "token id completed", written by scripts/bench).
-- luacheck: std lua51, globals wrk setup request done tid
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local bench = dofile(here .. "common.lua")
setup = bench.setup
done = bench.done

request = bench.replay(function()
  bench.seed(tid)
  local tasks = bench.data("tasks.txt")
  local list = {}
  for i, t in ipairs(tasks) do
    list[i] = wrk.format("GET", "/api/tasks/" .. t[2], { Authorization = "Bearer " .. t[1] })
  end
  bench.shuffle(list)
  return list
end)
