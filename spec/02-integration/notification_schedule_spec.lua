-- The reminder scheduler (issue 15) against a real PostgreSQL: reminders given as an
-- offset before the due time or as an instant fire once, within a second of their time;
-- editing, completing or deleting a task before the time changes or cancels them; a
-- recurring series carries offset reminders to the next occurrence; after downtime a
-- reminder fires once, marked late; a reminder across a daylight-saving change fires at
-- the right instant. Time is moved with NOTIFY_CLOCK_OFFSET_SECONDS (read once at start),
-- never slept through.
local h = require "spec.helpers"
local n = require "spec.support.notify"

describe("reminder scheduler", function()
  local host
  setup(function() host = n.start() end)
  teardown(function() host:stop() end)

  it("fires an offset and an absolute reminder once each, within a second of their time", function()
    local now = os.time()
    local t = n.task(host, "sched-a", { title = "pay rent", due_at = n.iso(now + 4),
      reminders = { { before = "PT2S" }, { at = n.iso(now + 3) } } })
    assert.truthy(h.eventually(function() return n.count(host, t.id) == 2 end, 8), host:log())
    assert.are.equal(t.id .. "|" .. n.iso(now + 2) .. "|f\n" .. t.id .. "|" .. n.iso(now + 3) .. "|f",
      n.rows(host, "task_id = '" .. t.id .. "'"))
    local lates = h.psql("SELECT extract(epoch FROM created_at - remind_at) FROM notifications"
      .. " WHERE task_id = '" .. t.id .. "'", host.database_url)
    for late in lates:gmatch("[^\n]+") do
      local v = tonumber(late)
      assert.is_true(v >= 0 and v < 1, "lateness " .. late)
    end
    -- and the event went out through the outbox, one per notification
    assert.are.equal("2", h.psql("SELECT count(*) FROM bus_outbox WHERE topic = 'reminders' AND event->>'subject' = '"
      .. t.id .. "'", host.database_url))
    -- each event matches the contract (spec/contracts/events/reminder.schema.json)
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    f:write(h.psql("SELECT json_agg(json_build_object('topic', topic, 'event', event)) FROM bus_outbox"
      .. " WHERE topic = 'reminders'", host.database_url))
    f:close()
    local out, ok = h.sh("python3 spec/contracts/events/validate.py " .. path)
    os.remove(path)
    assert(ok, out)
    assert.truthy(out:find("2 events checked, 0 problems", 1, true), out)
    h.sleep(1.5)
    assert.are.equal(2, n.count(host, t.id))
  end)

  it("fires nothing for a task completed, deleted or moved before the time", function()
    local now = os.time()
    local user = "sched-b"
    local body = { title = "t", due_at = n.iso(now + 3), reminders = { { before = "PT1S" } } }
    local done = n.task(host, user, body)
    local gone = n.task(host, user, body)
    local moved = n.task(host, user, body)
    local cleared = n.task(host, user, body)
    local tok = h.token(user)
    assert.are.equal(200, (host:request("POST", "/api/tasks/" .. done.id .. "/complete", { token = tok })))
    assert.are.equal(204, (host:request("DELETE", "/api/tasks/" .. gone.id, { token = tok })))
    assert.are.equal(200, (host:request("PATCH", "/api/tasks/" .. moved.id,
      { token = tok, body = { due_at = n.iso(now + 3600) } })))
    assert.are.equal(200, (host:request("PATCH", "/api/tasks/" .. cleared.id,
      { token = tok, body = { reminders = {} } })))
    h.sleep(math.max(0, now + 3.5 - n.now()))
    assert.are.equal(0, n.count(host, done.id))
    assert.are.equal(0, n.count(host, gone.id))
    assert.are.equal(0, n.count(host, moved.id))
    assert.are.equal(0, n.count(host, cleared.id))
    -- the moved one waits at its new time
    assert.are.equal(n.iso(now + 3599), h.psql("SELECT to_char(remind_at AT TIME ZONE 'UTC',"
      .. " 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM reminder_schedule WHERE task_id = '" .. moved.id .. "'",
      host.database_url))
  end)

  it("re-arms a reminder when the due time moves later, and a reopened task only for what is ahead", function()
    local now = os.time()
    local tok = h.token("sched-c")
    local t = n.task(host, "sched-c", { title = "t", due_at = n.iso(now + 2), reminders = { { before = "PT1S" } } })
    assert.truthy(h.eventually(function() return n.count(host, t.id) == 1 end, 6))
    assert.are.equal(200, (host:request("PATCH", "/api/tasks/" .. t.id,
      { token = tok, body = { due_at = n.iso(now + 5) } })))
    assert.truthy(h.eventually(function() return n.count(host, t.id) == 2 end, 8))
    -- a title edit changes nothing
    assert.are.equal(200, (host:request("PATCH", "/api/tasks/" .. t.id, { token = tok, body = { title = "u" } })))
    -- completed then reopened after the time: the passed reminder does not fire again
    assert.are.equal(200, (host:request("POST", "/api/tasks/" .. t.id .. "/complete", { token = tok })))
    assert.are.equal(200, (host:request("POST", "/api/tasks/" .. t.id .. "/reopen", { token = tok })))
    n.caught_up(host)
    h.sleep(1)
    assert.are.equal(2, n.count(host, t.id))
    assert.are.equal("skipped", h.psql("SELECT state FROM reminder_schedule WHERE task_id = '" .. t.id .. "'",
      host.database_url))
  end)

  it("never fires for a task completed or deleted whose event has not been read yet", function()
    local now = os.time()
    local user = "sched-f"
    local done = n.task(host, user, { title = "t", reminders = { { at = n.iso(now + 2) } } })
    local gone = n.task(host, user, { title = "t", reminders = { { at = n.iso(now + 2) } } })
    n.caught_up(host)
    -- changed behind the consumer's back (as if its events were still in flight)
    h.psql("UPDATE tasks SET completed = true, completed_at = now() WHERE id = '" .. done.id
      .. "'; DELETE FROM tasks WHERE id = '" .. gone.id .. "'", host.database_url)
    h.sleep(math.max(0, now + 3 - n.now()))
    assert.are.equal(0, n.count(host, done.id))
    assert.are.equal(0, n.count(host, gone.id))
    assert.are.equal("0", h.psql("SELECT count(*) FROM reminder_schedule WHERE task_id IN ('" .. done.id
      .. "', '" .. gone.id .. "')", host.database_url))
  end)

  it("does not fire a reminder whose time had passed when it was set", function()
    local t = n.task(host, "sched-d", { title = "t", reminders = { { at = n.iso(os.time() - 60) } } })
    n.caught_up(host)
    h.sleep(0.5)
    assert.are.equal(0, n.count(host, t.id))
  end)

  it("skips an offset that would fall before year 1 instead of failing the task's event", function()
    -- the API refuses such an offset beside a due_at in the body; a PATCH of the reminders
    -- alone leaves the instant to the schedule, which must not park or dead-letter it
    local t = n.task(host, "sched-edge", { title = "t", due_at = "0001-01-01T00:30:00Z" })
    local s, got = host:request("PATCH", "/api/tasks/" .. t.id, { token = h.token("sched-edge"),
      body = { reminders = { { before = "PT1H" }, { before = "PT10M" } } } })
    assert.are.equal(200, s, require("json").encode(got))
    local later = n.task(host, "sched-edge", { title = "later", due_at = n.iso(os.time() + 3600),
      reminders = { { before = "PT5M" } } })
    assert.truthy(n.caught_up(host))
    assert.are.equal("0", h.psql("SELECT count(*) FROM bus_parked WHERE grp = 'notification'", host.database_url))
    assert.are.equal("0", h.psql("SELECT count(*) FROM bus_dead_letters WHERE grp = 'notification'",
      host.database_url))
    assert.are.equal("1", h.psql("SELECT count(*) FROM reminder_schedule WHERE task_id = '" .. later.id .. "'",
      host.database_url))
  end)

  it("handles a redelivered event and an older version without firing twice", function()
    local now = os.time()
    local t = n.task(host, "sched-e", { title = "t", due_at = n.iso(now + 2), reminders = { { before = "PT1S" } } })
    assert.truthy(h.eventually(function() return n.count(host, t.id) == 1 end, 6))
    -- replay every event of the group from the start (cursor back to 0, inbox cleared)
    h.psql([[BEGIN; DELETE FROM bus_inbox WHERE grp = 'notification';
      UPDATE bus_cursors SET seq = 0 WHERE grp = 'notification'; COMMIT;]], host.database_url)
    n.caught_up(host)
    h.sleep(1)
    assert.are.equal(1, n.count(host, t.id))
  end)
end)

describe("reminder scheduler with a moved clock", function()
  it("fires reminders that came due during downtime once, marked late with how late", function()
    local db = h.new_database()
    local api = h.start { bundles = { "services/api" }, database_url = db }
    -- migrate the notification bundle too, but do not run it yet (it is "down")
    local out, ok = h.sh("env DATABASE_URL=" .. h.sh_quote(db) .. " " .. h.sh_quote(h.host_bin)
      .. " migrate services/notification")
    assert(ok, out)
    local now = os.time()
    local t = n.task(api, "late-a", { title = "t", due_at = n.iso(now + 3600),
      reminders = { { before = "PT30M" }, { before = "PT10M" } } })
    -- the scheduler comes back two hours later (by its clock): both fired once, late
    local notify = n.start { bundles = { "services/notification" }, database_url = db, skip_migrate = true,
      env = { NOTIFY_CLOCK_OFFSET_SECONDS = "7200" } }
    finally(function() notify:stop(); api:stop() end)
    assert.truthy(h.eventually(function() return n.count(notify, t.id) == 2 end, 8), notify:log())
    assert.are.equal("t\nt", h.psql("SELECT late FROM notifications ORDER BY remind_at", db))
    local lates = h.psql("SELECT late_ms FROM notifications ORDER BY remind_at", db)
    local first, second = lates:match("^(%d+)\n(%d+)$")
    -- due + 1 h - 30 min = now + 30 min; the clock says now + 2 h: ~90 min late
    assert.is_true(math.abs(tonumber(first) / 1000 - 5400) < 30, lates)
    assert.is_true(math.abs(tonumber(second) / 1000 - 4200) < 30, lates)
    local s, body = notify:request("GET", "/api/notifications", { token = h.token("late-a") })
    assert.are.equal(200, s)
    assert.is_true(body.items[1].late)
    assert.is_true(body.items[1].late_seconds > 4000)
    h.sleep(1)
    assert.are.equal(2, n.count(notify, t.id))
  end)

  it("carries offset reminders to the next occurrence of a series, which fires on its own day", function()
    local db = h.new_database()
    local host = n.start { bundles = { "services/api", "services/recurring-task", "services/notification" },
      database_url = db }
    local now = os.time()
    local first = n.task(host, "series-a", { title = "stand-up", due_at = n.iso(now + 3), tz = "UTC",
      recurrence = { rule = "FREQ=DAILY" }, reminders = { { before = "PT1S" }, { at = n.iso(now + 3600) } } })
    assert.are.equal(200, (host:request("POST", "/api/tasks/" .. first.id .. "/complete",
      { token = h.token("series-a") })))
    local next_id = h.eventually(function()
      local id = h.psql("SELECT id FROM tasks WHERE spawned_from = '" .. first.id .. "'", db)
      return id ~= "" and id
    end, 8)
    assert.truthy(next_id, host:log())
    n.caught_up(host)
    -- the offset follows the new due time; the absolute reminder is not copied
    assert.are.equal("before:PT1S=" .. n.iso(now + 86400 + 2), h.psql("SELECT rkey || '=' ||"
      .. " to_char(remind_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM reminder_schedule"
      .. " WHERE task_id = '" .. next_id .. "'", db))
    h.sleep(math.max(0, now + 3 - n.now()))
    assert.are.equal(0, n.count(host, first.id))
    host:stop()
    -- a day later (by the scheduler's clock) the next occurrence's reminder fires on time
    -- (its clock starts five seconds before the reminder)
    local offset = (now + 86400 + 2 - 5) - n.now()
    local later = n.start { bundles = { "services/notification" }, database_url = db, skip_migrate = true,
      env = { NOTIFY_CLOCK_OFFSET_SECONDS = string.format("%.3f", offset) } }
    finally(function() later:stop() end)
    assert.truthy(h.eventually(function() return n.count(later, next_id) == 1 end, 10), later:log())
    assert.are.equal("f", h.psql("SELECT late FROM notifications WHERE task_id = '" .. next_id .. "'", db))
    assert.are.equal(0, n.count(later, first.id))
  end)

  it("fires a reminder one day before across a daylight-saving change at the right instant", function()
    -- 2027-03-28 02:00 CET -> 03:00 CEST in Europe/Berlin. Due 09:00 CEST (07:00Z) on the
    -- 28th: "P1D before" is 09:00 CET on the 27th = 08:00Z (23 hours earlier); "PT24H
    -- before" is exactly 24 hours earlier = 07:00Z.
    local db = h.new_database()
    local api = h.start { bundles = { "services/api" }, database_url = db }
    local out, ok = h.sh("env DATABASE_URL=" .. h.sh_quote(db) .. " " .. h.sh_quote(h.host_bin)
      .. " migrate services/notification")
    assert(ok, out)
    local t = n.task(api, "dst-a", { title = "dentist", due_at = "2027-03-28T09:00:00+02:00", tz = "Europe/Berlin",
      reminders = { { before = "P1D" }, { before = "PT24H" } } })
    local autumn = n.task(api, "dst-a", { title = "autumn", due_at = "2027-10-31T09:00:00+01:00",
      tz = "Europe/Berlin", reminders = { { before = "P1D" } } })
    -- the scheduler's clock starts 6 s before 08:00Z
    local target = require("tz").from_local(2027, 3, 27, 8, 0, 0, "UTC")
    local started = n.now()
    local host = n.start { bundles = { "services/notification" }, database_url = db, skip_migrate = true,
      env = { NOTIFY_CLOCK_OFFSET_SECONDS = string.format("%.3f", target - 6 - started) } }
    finally(function() host:stop(); api:stop() end)
    n.caught_up(host)
    local rows = h.psql("SELECT rkey || '=' || to_char(remind_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS')"
      .. " FROM reminder_schedule WHERE task_id IN ('" .. t.id .. "', '" .. autumn.id .. "') ORDER BY remind_at",
      host.database_url)
    assert.are.equal("before:PT24H=2027-03-27T07:00:00\nbefore:P1D=2027-03-27T08:00:00\n"
      .. "before:P1D=2027-10-30T07:00:00", rows)
    -- the clock is still before 08:00Z: the P1D reminder has not fired yet ...
    assert.is_true(n.now() - started < 5.5, "the machine is too slow for this check")
    assert.are.equal(0, tonumber(h.psql("SELECT count(*) FROM notifications WHERE remind_at = '2027-03-27T08:00:00Z'",
      host.database_url)))
    -- ... and fires within a second of 08:00:00Z by the scheduler's clock
    assert.truthy(h.eventually(function()
      return h.psql("SELECT count(*) FROM notifications WHERE remind_at = '2027-03-27T08:00:00Z'",
        host.database_url) == "1"
    end, 10), host:log())
    local late = tonumber(h.psql("SELECT extract(epoch FROM created_at - remind_at) FROM notifications"
      .. " WHERE remind_at = '2027-03-27T08:00:00Z'", host.database_url))
    assert.is_true(late >= 0 and late < 1, "fired " .. late .. " s after its time")
  end)
end)
