-- wrk script: POST /api/tasks/:id/complete on tasks that are pending, so that every
-- request changes a row (a task already completed is answered without an UPDATE).
-- Each wrk thread takes its own share of the pending tasks (BENCH_WRK_THREADS, default 2)
-- and cycles: complete every task of its share, then reopen every one, then again. The
-- reopen passes run the same handler (the other direction); a task's complete and its
-- reopen are a whole share apart (thousands of requests), so they never race.
-- scripts/bench sets the tasks pending again after the warm-up run.
-- Reads $BENCH_DATA/tasks.txt (lines "token id completed", written by scripts/bench).
-- luacheck: std lua51, globals wrk setup request done tid
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local bench = dofile(here .. "common.lua")
setup = bench.setup
done = bench.done

request = bench.replay(function()
  bench.seed(tid)
  local threads = tonumber(os.getenv("BENCH_WRK_THREADS")) or 2
  local mine = {}
  local k = 0
  for _, t in ipairs(bench.data("tasks.txt")) do
    if t[3] == "0" then
      k = k + 1
      if k % threads == (tid or 1) - 1 then mine[#mine + 1] = t end
    end
  end
  bench.shuffle(mine)
  local list = {}
  for _, action in ipairs({ "complete", "reopen" }) do
    for _, t in ipairs(mine) do
      list[#list + 1] = wrk.format("POST", "/api/tasks/" .. t[2] .. "/" .. action,
        { Authorization = "Bearer " .. t[1] })
    end
  end
  return list
end)
