-- bench/ws/writer.lua: the REST side of `make bench-ws`. Creates tasks through the API
-- open loop (a POST is started every 1/RATE s whatever the earlier ones are doing), for
-- SECONDS, the user taken round-robin from TOKENS (a file, one token a line). Prints
-- "<title> <CLOCK_REALTIME microseconds when the 201 arrived> <... when the POST started>"
-- per created task, and
-- "# sent N ok N failed N" at the end.
-- `todo-host script bench/ws/writer.lua PORT RATE SECONDS TOKENS [DESCRIPTION_BYTES]`
-- (DESCRIPTION_BYTES: each task gets a description that long, for bigger events)
local http = require "http"
local task = require "task"
local timer = require "timer"

local port, rate, seconds, file = tonumber(arg[1]), tonumber(arg[2]), tonumber(arg[3]), arg[4]
local description = arg[5] and (',"description":"' .. string.rep("d", tonumber(arg[5])) .. '"') or ""
local tokens = {}
for line in io.lines(file) do if line ~= "" then tokens[#tokens + 1] = line end end
local url = "http://127.0.0.1:" .. port .. "/api/tasks"
local out, ok, failed, inflight = {}, 0, 0, 0
local run = (arg[5] and "b" or "w") .. os.time() -- "b": the busy writer of the stalled phase

local function post(i)
  inflight = inflight + 1
  local title = run .. "-" .. i
  local sent = timer.now()
  local res = http.request { method = "POST", url = url, body = '{"title":"' .. title .. '"' .. description .. '}',
    headers = { Authorization = "Bearer " .. tokens[(i - 1) % #tokens + 1], ["Content-Type"] = "application/json" } }
  local t = timer.now()
  if res and res.status == 201 then
    ok = ok + 1
    out[#out + 1] = string.format("%s %d %d", title, math.floor(t * 1e6), math.floor(sent * 1e6))
  else
    failed = failed + 1
  end
  inflight = inflight - 1
end

local total = math.floor(rate * seconds)
local start = timer.monotonic()
for i = 1, total do
  local wait = start + (i - 1) / rate - timer.monotonic()
  if wait > 0 then timer.sleep(wait) end
  task.spawn(function() post(i) end)
end
while inflight > 0 do timer.sleep(0.01) end
print(table.concat(out, "\n"))
print(string.format("# sent %d ok %d failed %d", total, ok, failed))
