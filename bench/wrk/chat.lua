-- wrk script: POST /api/chat with the evaluation set's utterances, each user in their own
-- conversation. Reads $BENCH_DATA/chat-requests.txt (lines "token<TAB>json body", written
-- by bench/chat_bench.lua).
-- luacheck: std lua51, globals wrk setup request done tid
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local bench = dofile(here .. "common.lua")
setup = bench.setup
done = bench.done

request = bench.replay(function()
  bench.seed(tid)
  local dir = os.getenv("BENCH_DATA") or error("set BENCH_DATA")
  local f = assert(io.open(dir .. "/chat-requests.txt", "r"))
  local list = {}
  for line in f:lines() do
    local token, body = line:match("^([^\t]+)\t(.*)$")
    if token then
      list[#list + 1] = wrk.format("POST", "/api/chat",
        { Authorization = "Bearer " .. token, ["Content-Type"] = "application/json" }, body)
    end
  end
  f:close()
  return bench.shuffle(list)
end)
