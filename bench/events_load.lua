-- bench/events_load.lua: the load side of bench/events_bench.lua. Publishes task events
-- (task-events) at RATE transactions a second for SECONDS, each in its own transaction
-- like an API change, spread over USERS partition keys; prints the count committed.
-- Run inside todo-host: `DATABASE_URL=... todo-host script bench/events_load.lua RATE SECONDS USERS`.
local pg = require "pg"
local bus = require "bus"
local task = require "task"
local timer = require "timer"
local crypto = require "crypto"

local rate, seconds, users = tonumber(arg[1]) or 1000, tonumber(arg[2]) or 10, tonumber(arg[3]) or 50
local committed, failed, inflight = 0, 0, 0
local tick = 0.01
local per_tick = rate * tick

local function change(n)
  inflight = inflight + 1
  local user = "bench-" .. (n % users)
  local id = crypto.uuid_v4()
  local ok = pg.tx(function(tx)
    local t = { id = id, title = "bench " .. n, version = 1 }
    return bus.publish(tx, "task-events", "task.updated", {
      event_type = "updated", task_id = id, task_data = t, user_id = user,
      timestamp = require("bus.cloudevents").timestamp(), changed = { "title" }, version = 1,
    }, { key = user, subject = id })
  end)
  if ok then committed = committed + 1 else failed = failed + 1 end
  inflight = inflight - 1
end

local t0 = timer.monotonic()
local n, due = 0, 0
while timer.monotonic() - t0 < seconds do
  due = due + per_tick
  while due >= 1 do
    n = n + 1
    due = due - 1
    task.spawn(change, n)
  end
  timer.sleep(tick)
end
while inflight > 0 do timer.sleep(0.01) end
print(string.format("committed %d failed %d in %.2f s", committed, failed, timer.monotonic() - t0))
