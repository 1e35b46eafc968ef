-- bench/reminders_bench.lua: the reminder scheduler under a burst (issue 15).
-- 100,000 reminders are scheduled (100,000 tasks of 1,000 users and their schedule rows,
-- written with SQL so the seeding takes seconds); 1,000 of them are due in the same
-- second, the rest spread over the next day. A host serves services/api and
-- services/notification (WORKERS workers: each runs a scheduler, so they share the burst).
-- Lateness, from the due time to the notification row being visible (committed) in the
-- database: a psql session polls count(*) every few milliseconds and records when each
-- count was first seen; since every burst reminder is due at the same instant T, the k-th
-- notification's lateness is (first time count >= k) - T. The rows' own created_at (the
-- scheduler's clock when its firing transaction began) gives a second, lower figure.
-- To the WebSocket client: the users of 20 burst reminders each hold a connection to
-- /ws (services/websocket, spec/support/wsclient.lua); the bench polls what the clients
-- received and records when each `reminder.due` first shows up (lateness = that - T).
-- Also checks that exactly the 1,000 due reminders fired.
-- Run (like bench/series_bench.lua):
--   PG=$(mktemp -d); URL=$(PG_THROWAWAY=1 scripts/pg start $PG)
--   TEST_PG_ADMIN_URL=${URL%/todo}/postgres build/todo-host script bench/reminders_bench.lua [TOTAL] [BURST] [WORKERS]
local h = require "spec.helpers"
local socket = require "socket"

local total = tonumber(arg and arg[1]) or 100000
local burst = tonumber(arg and arg[2]) or 1000
local workers = tonumber(arg and arg[3]) or 2

local db = h.new_database()
local out, ok = h.sh("env DATABASE_URL=" .. h.sh_quote(db) .. " " .. h.sh_quote(h.host_bin)
  .. " migrate services/api services/notification services/websocket")
assert(ok, out)
local function q(sql) return h.psql(sql, db) end

-- T: a whole second comfortably after seeding and start-up.
local t0 = socket.gettime()
q(string.format([[INSERT INTO tasks (id, user_id, title, due_at)
  SELECT gen_random_uuid(), 'bench' || (g %% 1000), 'reminder ' || g, now() + interval '1 day'
  FROM generate_series(1, %d) AS g]], total))
local T = math.floor(socket.gettime()) + 25
-- the burst: `burst` tasks have a reminder at T; the others between T + 60 s and T + 1 day
q(string.format([[INSERT INTO reminder_schedule (user_id, task_id, rkey, remind_at)
  SELECT user_id, id, 'before:PT15M',
         CASE WHEN row_number() OVER (ORDER BY id) <= %d THEN to_timestamp(%d)
              ELSE to_timestamp(%d) + (60 + random() * 86400) * interval '1 second' END
  FROM tasks]], burst, T, T))
q("ANALYZE reminder_schedule; ANALYZE tasks")
print(string.format("seeded %d tasks and %d reminders in %.1f s; %d due at T = %s",
  total, total, socket.gettime() - t0, burst, os.date("!%H:%M:%SZ", T)))

local wsc = require "spec.support.wsclient"
local host = h.start { bundles = { "services/api", "services/notification", "services/websocket" }, database_url = db,
  skip_migrate = true, workers = workers, env = { LOG_LEVEL = "warn", ACCESS_LOG = "off" } }
local function main()
  assert(socket.gettime() < T - 2, "seeding took too long: T is already close")
  -- WebSocket clients for the users of 20 burst reminders
  local clients, ws_due, ws_seen = {}, 0, {}
  for user in q(string.format([[SELECT user_id FROM reminder_schedule WHERE remind_at = to_timestamp(%d)
      GROUP BY user_id ORDER BY user_id LIMIT 20]], T)):gmatch("[^\n]+") do
    local c = wsc.open { port = host.port, token = h.token(user), seconds = T - socket.gettime() + 20,
      send = { { type = "ping" } } }
    clients[#clients + 1] = { c = c, got = 0 }
    ws_due = ws_due + tonumber(q(string.format("SELECT count(*) FROM reminder_schedule WHERE user_id = '%s'"
      .. " AND remind_at = to_timestamp(%d)", user, T)))
  end
  for _, cl in ipairs(clients) do assert(cl.c:wait_count(2, 10), "a WebSocket client did not connect") end
  local function poll_clients(now)
    for _, cl in ipairs(clients) do
      local n = #wsc.of_type(cl.c:messages(), "reminder.due")
      for _ = cl.got + 1, n do ws_seen[#ws_seen + 1] = now end
      cl.got = n
    end
  end
  local session = h.psql_session(db)
  local seen = {} -- seen[k] = first time count >= k
  local last = 0
  while socket.gettime() < T + 10 and (last < burst or #ws_seen < ws_due) do
    if socket.gettime() < T - 0.5 then
      h.sleep(0.1)
    else
      local c = tonumber(session.query("SELECT count(*) FROM notifications"))
      local now = socket.gettime()
      for k = last + 1, c do seen[k] = now end
      last = math.max(last, c)
      poll_clients(socket.gettime())
      h.sleep(0.002)
    end
  end
  session.close()
  for _, cl in ipairs(clients) do cl.c:kill() end
  h.sleep(1)
  local fired = tonumber(q("SELECT count(*) FROM notifications"))
  assert(fired == burst, "fired " .. fired .. " notifications, expected " .. burst)
  assert(q("SELECT count(*) FROM reminder_schedule WHERE state = 'fired'") == tostring(burst))
  assert(q("SELECT count(*) FROM bus_outbox WHERE topic = 'reminders'") == tostring(burst))
  local function at(p) return (seen[math.max(1, math.ceil(p * burst))] - T) * 1000 end
  print(string.format("visible in the database: p50 %.0f ms, p99 %.0f ms, max %.0f ms (polled every ~3 ms)",
    at(0.5), at(0.99), at(1)))
  assert(#ws_seen == ws_due, "WebSocket clients got " .. #ws_seen .. " of " .. ws_due .. " reminder.due")
  table.sort(ws_seen)
  local function ws_at(p) return (ws_seen[math.max(1, math.ceil(p * #ws_seen))] - T) * 1000 end
  print(string.format("to the WebSocket client (%d reminders of %d connected users): p50 %.0f ms, p99 %.0f ms,"
    .. " max %.0f ms (polled every few ms)", #ws_seen, #clients, ws_at(0.5), ws_at(0.99), ws_at(1)))
  print(q([[SELECT format('created_at - remind_at: p50 %s ms, p99 %s ms, max %s ms; %s transactions',
      round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1),
      round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 1), round(max(ms)::numeric, 1),
      count(DISTINCT created_at))
    FROM (SELECT extract(epoch FROM created_at - remind_at) * 1000 AS ms, created_at FROM notifications) d]]))
  print(string.format("workers %d; reminders still scheduled: %s", workers,
    q("SELECT count(*) FROM reminder_schedule WHERE state = 'scheduled'")))
end
local okm, err = pcall(main)
host:stop()
assert(okm, err)
