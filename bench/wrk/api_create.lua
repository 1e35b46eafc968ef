-- wrk script: POST /api/tasks with varied bodies, spread over every user's token.
-- Reads $BENCH_DATA/tokens.txt (lines "user token", written by scripts/bench).
-- luacheck: std lua51, globals wrk setup request done tid
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local bench = dofile(here .. "common.lua")
setup = bench.setup
done = bench.done

local PRIORITIES = { "none", "low", "medium", "high" }
local TAGS = { "work", "home", "errand", "call", "read" }

request = bench.replay(function()
  bench.seed(tid)
  local tokens = bench.data("tokens.txt")
  local list = {}
  for i = 1, 5000 do
    local token = tokens[math.random(#tokens)][2]
    local body = string.format(
      '{"title":"bench task %d-%d","priority":"%s","tags":["%s","bench"],"due_at":"2027-%02d-%02dT09:00:00Z"}',
      tid or 0, i, PRIORITIES[math.random(4)], TAGS[math.random(#TAGS)],
      math.random(12), math.random(28))
    list[i] = wrk.format("POST", "/api/tasks",
      { Authorization = "Bearer " .. token, ["Content-Type"] = "application/json" }, body)
  end
  return list
end)
