-- wrk script: GET /api/tasks?limit=20 with a filter and a sort, for every user in turn.
-- Reads $BENCH_DATA/tokens.txt (lines "user token", written by scripts/bench).
-- luacheck: std lua51, globals wrk setup request done tid
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local bench = dofile(here .. "common.lua")
setup = bench.setup
done = bench.done

-- Each has one filter and one sort; all are served by the (user_id, key, id) indexes.
local QUERIES = {
  "/api/tasks?limit=20&status=pending&sort=due",
  "/api/tasks?limit=20&priority=high,medium&sort=created&order=desc",
  "/api/tasks?limit=20&tag=work&sort=priority",
  "/api/tasks?limit=20&status=completed&sort=updated&order=desc",
}

request = bench.replay(function()
  bench.seed(tid)
  local list = {}
  for _, u in ipairs(bench.data("tokens.txt")) do
    for _, q in ipairs(QUERIES) do
      list[#list + 1] = wrk.format("GET", q, { Authorization = "Bearer " .. u[2] })
    end
  end
  bench.shuffle(list)
  return list
end)
