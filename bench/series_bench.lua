-- bench/series_bench.lua: the next-occurrence step of recurring tasks (issue 5).
--   1. pure: tasks.series.next_due (the rule evaluation) per call, in this process;
--   2. end to end with BUS=postgres: a host serving services/api + services/recurring-task
--      (WORKERS=1), N recurring tasks inserted with SQL, then completed through
--      POST /api/tasks/:id/complete one request after the other ("paced": each event
--      arrives alone), and then N more completed at once with POST /api/tasks/bulk
--      ("burst", 10 users x N/10 ids). For each completed task: latency = the spawn's
--      clock time (task_series_spawns.created_at, clock_timestamp() at the claim) minus
--      completed_at (now() of the completing transaction); throughput = N / (last spawn -
--      first completion). Every completed task must have exactly one next occurrence.
-- Run (like bench/events_bench.lua):
--   PG=$(mktemp -d); URL=$(PG_THROWAWAY=1 scripts/pg start $PG)
--   TEST_PG_ADMIN_URL=${URL%/todo}/postgres build/todo-host script bench/series_bench.lua [N]
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
local h = require "spec.helpers"
local series = require "tasks.series"

local n = tonumber(arg and arg[1]) or 500

-- 1. pure
local cases = {
  { "FREQ=DAILY", "due" },
  { "FREQ=WEEKLY;BYDAY=MO,WE,FR", "due" },
  { "FREQ=MONTHLY;BYDAY=-1FR", "due" },
  { "FREQ=DAILY;INTERVAL=3", "completion" },
}
for _, c in ipairs(cases) do
  local task = { due_at = "2026-01-05T09:00:00Z", completed_at = "2026-03-20T17:00:00Z", tz = "Europe/Berlin",
    occurrence_index = 1, recurrence = { rule = c[1], from = c[2] } }
  local iters = 20000
  local t0 = os.clock()
  for _ = 1, iters do assert(series.next_due(task, 0)) end
  print(string.format("next_due %-28s from=%-10s %6.1f us/call", c[1], c[2], (os.clock() - t0) / iters * 1e6))
end

-- 2. end to end
local host = h.start { bundles = { "services/api", "services/recurring-task" },
  env = { LOG_LEVEL = "warn", ACCESS_LOG = "off", PG_POOL_SIZE = 8 } }
-- The host is stopped whatever happens below (a failed run must not leave it running).
local function main()
  local function q(sql) return h.psql(sql, host.database_url) end

  local function seed(tag)
    q(string.format([[INSERT INTO tasks (user_id, title, due_at, tz, recurrence)
      SELECT 'bench' || (g %% 10), '%s ' || g, now() + interval '1 day', 'Europe/Berlin',
             '{"rule": "FREQ=WEEKLY;BYDAY=MO,WE,FR", "from": "due"}'::jsonb
        FROM generate_series(1, %d) AS g]], tag, n))
    local ids = {}
    for line in q(string.format("SELECT user_id || ' ' || id FROM tasks WHERE title LIKE '%s %%' ORDER BY id", tag))
      :gmatch("[^\n]+") do
      local user, id = line:match("^(%S+) (%S+)$")
      ids[#ids + 1] = { user = user, id = id }
    end
    return ids
  end

  local tokens = {}
  for i = 0, 9 do tokens["bench" .. i] = h.token("bench" .. i) end

  local function report(tag)
    assert(h.eventually(function()
      return q(string.format([[SELECT count(*) FROM tasks s WHERE s.title LIKE '%s %%' AND s.completed
        AND NOT EXISTS (SELECT 1 FROM task_series_spawns x WHERE x.source_id = s.id)]], tag)) == "0"
    end, 120), "not every task spawned")
    assert(q(string.format([[SELECT count(*) FROM tasks t JOIN tasks s ON t.spawned_from = s.id
      WHERE s.title LIKE '%s %%']], tag)) == tostring(n), "not exactly one next occurrence per task")
    print(q(string.format([[SELECT format('%s: %%s tasks, latency p50 %%s ms, p99 %%s ms, max %%s ms, %%s tasks/s',
        count(*), round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 2),
        round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 2), round(max(ms)::numeric, 2),
        round(count(*) / extract(epoch FROM max(spawned) - min(done))::numeric, 0))
      FROM (SELECT extract(epoch FROM x.created_at - s.completed_at) * 1000 AS ms, x.created_at AS spawned,
                   s.completed_at AS done
              FROM tasks s JOIN task_series_spawns x ON x.source_id = s.id
             WHERE s.title LIKE '%s %%') d]], tag, tag)))
  end

  local paced = seed("paced")
  for _, t in ipairs(paced) do
    local status = h.request("POST", "/api/tasks/" .. t.id .. "/complete", { port = host.port, token = tokens[t.user] })
    assert(status == 200, "complete answered " .. tostring(status))
  end
  report("paced")

  local burst = seed("burst")
  local by_user = {}
  for _, t in ipairs(burst) do
    by_user[t.user] = by_user[t.user] or {}
    table.insert(by_user[t.user], t.id)
  end
  for user, ids in pairs(by_user) do
    local status = h.request("POST", "/api/tasks/bulk", { port = host.port, token = tokens[user],
      body = { action = "complete", ids = ids } })
    assert(status == 200, "bulk complete answered " .. tostring(status))
  end
  report("burst")
end
local ok, err = xpcall(main, debug.traceback)
host:stop()
if not ok then error(err, 0) end
