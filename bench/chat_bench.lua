-- bench/chat_bench.lua: chat turns per second of the offline assistant, on a mix of the
-- evaluation set's utterances (spec/chat/eval_cases.lua: every single-turn case on the
-- default fixture, deletions left out so the data stays the same size).
--   1. the parser alone (chat.parse, in this process): turns/s;
--   2. POST /api/chat end to end (host with services/api + services/chat, WORKERS=2, a
--      fresh database, 100 users with the fixture's tasks, one conversation each): the
--      most turns/s under wrk -c32 (bench/wrk/chat.lua), then p50/p99 at a paced load of
--      half that, sent on schedule from here through the http primitive and timed from
--      the moment each turn was due (no coordinated omission).
-- CHAT_BENCH_WORKERS (2), CHAT_BENCH_POOL (PG_POOL_SIZE, 8), CHAT_BENCH_MIX=read (only turns that change nothing),
-- CHAT_BENCH_PERF=FILE (perf record of the host for 4 s during the run).
-- Run (scripts/bench does, with BENCH_EXTRAS containing "chat"):
--   TEST_PG_ADMIN_URL=... build/todo-host script bench/chat_bench.lua [SECONDS]
package.path = "./?.lua;./lua/?.lua;./lua/?/init.lua;" .. package.path
local h = require "spec.helpers"
local json = require "json"
local timer = require "timer"
local task = require "task"
local http = require "http"
local parse = require "chat.parse"
local set = require "spec.chat.eval_cases"

local seconds = tonumber(arg and arg[1]) or 10
local USERS = 100

-- The mix ---------------------------------------------------------------------------------
local texts = {}
for _, case in ipairs(set.cases) do
  local e = case[2]
  if case[1] and not case.tasks and not case.ctx and not case.tz and not case.now and e
    and e.kind ~= "confirm" and e.kind ~= "choose"
    and not (e.kind == "calls" and e.calls[1].name == "delete_task")
    -- CHAT_BENCH_MIX=read: only turns that change nothing (lists, plans, replies)
    and (os.getenv("CHAT_BENCH_MIX") ~= "read" or e.kind == "reply"
      or (e.calls[1].name == "list_tasks" or e.calls[1].name == "plan_day"))
    and #case[1] < 1000 and utf8.len(case[1]) and not case[1]:find("%z") and case[1]:match("%S") then
    texts[#texts + 1] = case[1]
  end
end

-- 1. The parser alone ---------------------------------------------------------------------
local function parser_rate()
  local n, t0 = 0, timer.monotonic()
  repeat
    for _, text in ipairs(texts) do parse.parse(text, {}, set.now, set.tz, set.fixtures.default) end
    n = n + #texts
  until timer.monotonic() - t0 >= 3
  return n / (timer.monotonic() - t0)
end
print(string.format("mix: %d utterances of the evaluation set", #texts))
print(string.format("parser alone (one core, in process): %.0f turns/s", parser_rate()))

-- 2. Over HTTP ----------------------------------------------------------------------------
local host = h.start { bundles = { "services/api", "services/chat" },
  env = { WORKERS = tonumber(os.getenv("CHAT_BENCH_WORKERS") or "2"), LOG_LEVEL = "warn", ACCESS_LOG = "off",
    PG_POOL_SIZE = tonumber(os.getenv("CHAT_BENCH_POOL") or "8") } }

local function main()
  -- every user gets the fixture's tasks (so "task 3" and "the meeting task" resolve)
  local values = {}
  for u = 1, USERS do
    for _, t in ipairs(set.fixtures.default) do
      values[#values + 1] = string.format("('bench%d', %s, %s, %s, %d, ARRAY[%s]::text[], %s, 'Europe/Berlin')", u,
        "'" .. t.title:gsub("'", "''") .. "'", t.completed and "true" or "false", t.completed and "now()" or "NULL",
        ({ none = 0, low = 1, medium = 2, high = 3 })[t.priority or "none"],
        #t.tags > 0 and ("'" .. table.concat(t.tags, "','") .. "'") or "",
        t.due_at and ("'" .. t.due_at .. "'") or "NULL")
    end
  end
  h.psql("INSERT INTO tasks (user_id, title, completed, completed_at, priority, tags, due_at, tz) VALUES "
    .. table.concat(values, ","), host.database_url)
  h.psql("VACUUM ANALYZE tasks", host.database_url)
  local lines, reqs, tokens = {}, {}, {}
  for u = 1, USERS do
    local token = h.token("bench" .. u, { exp = os.time() + 86400 })
    tokens[#tokens + 1] = "bench" .. u .. " " .. token
    local s, b = host:request("POST", "/api/chat",
      { token = token, body = { message = "hello", tz = "Europe/Berlin" } })
    assert(s == 200, "could not start a conversation: " .. tostring(s))
    for i = 1, #texts do
      local text = texts[(i + u * 7) % #texts + 1]
      local body = json.encode { message = text, conversation_id = b.conversation_id }
      lines[#lines + 1] = token .. "\t" .. body
      if i <= 20 then reqs[#reqs + 1] = { token = token, body = body } end
    end
  end
  local dir = h.sh("mktemp -d /tmp/chat-bench.XXXXXX")
  local f = assert(io.open(dir .. "/chat-requests.txt", "w"))
  f:write(table.concat(lines, "\n"), "\n")
  f:close()
  f = assert(io.open(dir .. "/tokens.txt", "w"))
  f:write(table.concat(tokens, "\n"), "\n")
  f:close()
  local base = "http://127.0.0.1:" .. host.port
  local function wrk(d, script)
    return h.sh(string.format("BENCH_DATA=%s wrk -t2 -c32 -d%ds --latency -s bench/wrk/%s.lua %s 2>&1",
      h.sh_quote(dir), d, script or "chat", base))
  end
  -- the same moment's baseline: a plain task list (one query) on the same host
  local base_line = wrk(seconds, "api_list"):match("BENCHRESULT[^\n]*") or ""
  print(string.format("baseline, GET /api/tasks?limit=20 at the same moment (wrk -t2 -c32 -d%ds): %s req/s, "
    .. "p50 %.2f ms, p99 %.2f ms", seconds, base_line:match("rps=(%d+)") or "?",
    (tonumber(base_line:match("p50_us=(%d+)")) or 0) / 1000, (tonumber(base_line:match("p99_us=(%d+)")) or 0) / 1000))
  wrk(2) -- warm-up
  if os.getenv("CHAT_BENCH_PERF") then
    os.execute(string.format("(sleep 1; perf record -F 999 -g -p %d -o %s -- sleep 4) >/dev/null 2>&1 &",
      host.pid, os.getenv("CHAT_BENCH_PERF")))
  end
  local out = wrk(seconds)
  local line = out:match("BENCHRESULT[^\n]*")
  assert(line, "wrk gave no result:\n" .. out)
  local rps = tonumber(line:match("rps=([%d.]+)"))
  local shown = 0
  for l in host:log():gmatch("[^\n]+") do
    if shown < 3 and (l:find('"level":"error"', 1, true) or l:find("unavailable", 1, true)) then
      print("host: " .. l:sub(1, 300))
      shown = shown + 1
    end
  end
  print(string.format("POST /api/chat, most turns/s (wrk -t2 -c32 -d%ds): %.0f turns/s, p50 %.2f ms, p99 %.2f ms, "
    .. "errors %s, non-2xx %s", seconds, rps, tonumber(line:match("p50_us=(%d+)")) / 1000,
    tonumber(line:match("p99_us=(%d+)")) / 1000, line:match("errors=(%d+)"), line:match("non2xx=(%d+)")))

  -- paced at half that rate, each turn timed from its scheduled start
  local rate = math.max(1, math.floor(rps / 2))
  local n = rate * seconds
  local lat, failed, finished = {}, 0, 0
  local t0 = timer.monotonic() + 0.2
  local tick = 0.005
  local sent = 0
  while sent < n do
    local due_now = math.min(n, math.floor((timer.monotonic() - t0) / (1 / rate)) + 1)
    while sent < due_now do
      sent = sent + 1
      local at = t0 + (sent - 1) / rate
      local r = reqs[(sent - 1) % #reqs + 1]
      task.spawn(function()
        local res = http.request { url = base .. "/api/chat", method = "POST", body = r.body, timeout = 10,
          headers = { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. r.token } }
        if res and res.status == 200 then lat[#lat + 1] = timer.monotonic() - at else failed = failed + 1 end
        finished = finished + 1
      end)
    end
    timer.sleep(tick)
  end
  local deadline = timer.monotonic() + 30
  while finished < n and timer.monotonic() < deadline do timer.sleep(0.05) end
  table.sort(lat)
  local function pct(p) return #lat > 0 and lat[math.max(1, math.ceil(#lat * p))] * 1000 or 0 end
  print(string.format("POST /api/chat paced at %d turns/s for %d s: %d turns, p50 %.2f ms, p99 %.2f ms, "
    .. "max %.2f ms, failed %d", rate, seconds, #lat, pct(0.5), pct(0.99), pct(1), failed + (n - finished)))
end
local ok, err = xpcall(main, debug.traceback)
host:stop()
if not ok then error(err, 0) end
