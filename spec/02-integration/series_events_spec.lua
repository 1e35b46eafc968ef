-- Recurring tasks end to end (issue 5): the API publishes task.completed, the
-- recurring-task bundle consumes task-events and creates the next occurrence. Late
-- completion, from=completion, COUNT, a rule changed mid-series, reopen + complete, the
-- DELETE scopes, and the traps that must not create a second next occurrence: a replay of
-- the whole log without idempotency records, a duplicate event under a new id, two more
-- consumer replicas (one killed) against the same database.
local h = require "spec.helpers"
local tz = require "tz"
local json = require "json"

local uid = h.uid

local DAY = 86400

local function iso(t) return tz.format(t, "UTC") end
local function epoch(s) return (tz.parse_rfc3339(s)) end
-- 09:00 UTC, `days` days from today
local function nine(days) return (os.time() // DAY + days) * DAY + 9 * 3600 end

describe("series: next occurrences through task-events", function()
  local host, alice, db

  lazy_setup(function()
    host = h.start({ bundles = { "services/api", "services/recurring-task" } })
    db = host.database_url
    alice = h.token(uid("alice"))
  end)

  lazy_teardown(function()
    if host then host:stop() end
  end)

  local function req(method, path, body, token)
    local status, got = host:request(method, path, { token = token or alice, body = body })
    return status, got
  end

  local function create(body, token)
    local status, task = req("POST", "/api/tasks", body, token)
    assert.are.equal(201, status, type(task) == "table" and task.error and task.error.message)
    return task
  end

  local function complete(id, token)
    local status, task = req("POST", "/api/tasks/" .. id .. "/complete", nil, token)
    assert.are.equal(200, status)
    return task
  end

  -- The tasks of a series, by occurrence.
  local function series(id, token)
    local status, page = req("GET", "/api/tasks?limit=200&sort=due&order=asc", nil, token)
    assert.are.equal(200, status)
    local out = {}
    for _, t in ipairs(page.items) do
      if t.series_id == id then out[#out + 1] = t end
    end
    return out
  end

  -- Every task-event has been through the recurring-task group, and handled: caught up,
  -- no event failing at the head of a partition, none dead-lettered (a consumer that
  -- fails every event also catches up, once its events are dead letters).
  local function drained()
    local caught_up = h.eventually(function()
      return h.psql([[SELECT count(*) FROM bus_partitions p
        LEFT JOIN bus_cursors c ON c.grp = 'recurring-task' AND c.topic = p.topic AND c.part = p.part
        WHERE p.topic = 'task-events' AND coalesce(c.seq, 0) < p.last_seq]], db) == "0"
    end, 15)
    assert.is_truthy(caught_up, "the recurring-task group did not catch up")
    assert.are.equal("0", h.psql([[SELECT count(*) FROM bus_cursors
      WHERE grp = 'recurring-task' AND (attempts > 0 OR last_error IS NOT NULL)]], db), "failing events")
    assert.are.equal("0", h.psql("SELECT count(*) FROM bus_parked WHERE grp = 'recurring-task'", db),
      "parked (failing) events")
    assert.are.equal("0", h.psql("SELECT count(*) FROM bus_dead_letters WHERE grp = 'recurring-task'", db),
      "dead-lettered events")
    return true
  end

  local function wait_series(id, n, token)
    local got = h.eventually(function()
      local s = series(id, token)
      return #s >= n and s
    end, 10)
    assert.is_truthy(got, "the series did not reach " .. n .. " occurrences")
    return got
  end

  it("carries the task over to the next due time", function()
    local due = nine(1)
    local first = create({ title = "water the plants", description = "the big ones", priority = "high",
      tags = { "home" }, due_at = iso(due), tz = "UTC",
      reminders = { { at = iso(due - 900) }, { before = "PT5M" } },
      recurrence = { rule = "FREQ=DAILY" } })
    complete(first.id)
    local s = wait_series(first.id, 2)
    local nxt = s[2]
    assert.are.equal(iso(due + DAY), iso(epoch(nxt.due_at)))
    assert.are.equal("water the plants", nxt.title)
    assert.are.equal("the big ones", nxt.description)
    assert.are.equal("high", nxt.priority)
    assert.are.same({ "home" }, nxt.tags)
    -- an offset follows the new due time; an absolute reminder is not copied (issue 15)
    assert.are.same({ { before = "PT5M" } }, nxt.reminders)
    assert.are.same(first.recurrence, nxt.recurrence)
    assert.are.equal(false, nxt.completed)
    assert.are.equal(first.id, nxt.spawned_from)
    assert.are.equal(first.id, nxt.series_id)
    assert.are.equal(2, nxt.occurrence_index)
    assert.are.equal(1, nxt.version)
    drained()
    assert.are.equal(2, #series(first.id))
  end)

  it("a series due at the end of year 9999, completed, ends there without a failing event", function()
    local first = create({ title = "end of time", due_at = "9999-12-31T09:00:00Z",
      recurrence = { rule = "FREQ=DAILY" } })
    complete(first.id)
    drained()
    assert.are.equal(1, #series(first.id))
    -- the series is recorded as ended there: nothing is left to retry
    assert.are.equal("ended", h.psql("SELECT reason FROM task_series_spawns WHERE source_id = '"
      .. first.id .. "'", db))
  end)

  it("a late completion gives the first occurrence in the future, once", function()
    local due = nine(-10)
    local first = create({ title = "late", due_at = iso(due), recurrence = { rule = "FREQ=DAILY" } })
    local done = complete(first.id)
    local s = wait_series(first.id, 2)
    local want = nine(0)
    if want <= epoch(done.completed_at) then want = want + DAY end
    assert.are.equal(iso(want), iso(epoch(s[2].due_at)))
    drained()
    assert.are.equal(2, #series(first.id))
  end)

  it("from=completion applies the rule from the completion day", function()
    local first = create({ title = "every! 3 days", due_at = iso(nine(-10)),
      recurrence = { rule = "FREQ=DAILY;INTERVAL=3", from = "completion" } })
    complete(first.id)
    local s = wait_series(first.id, 2)
    assert.are.equal(iso(nine(3)), iso(epoch(s[2].due_at)))
  end)

  it("COUNT ends the series: the last occurrence creates nothing", function()
    local first = create({ title = "twice", due_at = iso(nine(1)), recurrence = { rule = "FREQ=DAILY;COUNT=2" } })
    complete(first.id)
    local s = wait_series(first.id, 2)
    assert.are.equal(2, s[2].occurrence_index)
    complete(s[2].id)
    drained()
    s = series(first.id)
    assert.are.equal(2, #s)
    assert.are.equal("ended", h.psql("SELECT reason FROM task_series_spawns WHERE source_id = '"
      .. s[2].id .. "'", db))
  end)

  it("UNTIL ends the series too", function()
    local due = nine(1)
    local first = create({ title = "until", due_at = iso(due),
      recurrence = { rule = "FREQ=DAILY;UNTIL=" .. os.date("!%Y%m%dT235959Z", due + DAY) } })
    complete(first.id)
    local s = wait_series(first.id, 2)
    complete(s[2].id)
    drained()
    assert.are.equal(2, #series(first.id))
  end)

  it("a rule changed mid-series applies from that occurrence on", function()
    local due = nine(1)
    local first = create({ title = "change", due_at = iso(due), recurrence = { rule = "FREQ=DAILY;COUNT=2" } })
    complete(first.id)
    local second = wait_series(first.id, 2)[2]
    local status, changed = req("PATCH", "/api/tasks/" .. second.id, { recurrence = { rule = "FREQ=WEEKLY;COUNT=3" } })
    assert.are.equal(200, status)
    assert.are.equal(1, changed.occurrence_index) -- the new rule counts from here
    complete(second.id)
    local s = wait_series(first.id, 3)
    assert.are.equal(iso(due + DAY + 7 * DAY), iso(epoch(s[3].due_at)))
    assert.are.equal("FREQ=WEEKLY;COUNT=3", s[3].recurrence.rule)
    assert.are.equal(2, s[3].occurrence_index)
    local _, old = req("GET", "/api/tasks/" .. first.id)
    assert.are.equal("FREQ=DAILY;COUNT=2", old.recurrence.rule)
  end)

  it("reopening and completing again creates no second next occurrence", function()
    local first = create({ title = "reopen", due_at = iso(nine(1)), recurrence = { rule = "FREQ=DAILY" } })
    complete(first.id)
    wait_series(first.id, 2)
    assert.are.equal(200, (req("POST", "/api/tasks/" .. first.id .. "/reopen")))
    complete(first.id)
    -- also through PATCH {"completed": true}
    assert.are.equal(200, (req("PATCH", "/api/tasks/" .. first.id, { completed = false })))
    assert.are.equal(200, (req("PATCH", "/api/tasks/" .. first.id, { completed = true })))
    drained()
    assert.are.equal(2, #series(first.id))
  end)

  it("PATCH completed=true spawns like /complete", function()
    local first = create({ title = "patched", due_at = iso(nine(1)), recurrence = { rule = "FREQ=WEEKLY" } })
    assert.are.equal(200, (req("PATCH", "/api/tasks/" .. first.id, { completed = true })))
    local s = wait_series(first.id, 2)
    assert.are.equal(iso(nine(8)), iso(epoch(s[2].due_at)))
  end)

  it("a one-off task spawns nothing", function()
    local t = create({ title = "once", due_at = iso(nine(1)) })
    complete(t.id)
    drained()
    assert.are.equal("0", h.psql("SELECT count(*) FROM tasks WHERE spawned_from = '" .. t.id .. "'", db))
  end)

  describe("DELETE", function()
    it("scope=occurrence skips an open occurrence: the series goes on", function()
      local due = nine(1)
      local first = create({ title = "skip me", due_at = iso(due), recurrence = { rule = "FREQ=DAILY" } })
      assert.are.equal(204, (req("DELETE", "/api/tasks/" .. first.id)))
      local s = series(first.id) -- at once: the skip is part of the delete
      assert.are.equal(1, #s)
      assert.are.equal(iso(due + DAY), iso(epoch(s[1].due_at)))
      assert.are.equal(first.id, s[1].spawned_from)
      assert.are.equal(2, s[1].occurrence_index)
    end)

    it("scope=series deletes the open occurrences and stops the series", function()
      local first = create({ title = "stop me", due_at = iso(nine(1)), recurrence = { rule = "FREQ=DAILY" } })
      complete(first.id)
      local second = wait_series(first.id, 2)[2]
      assert.are.equal(204, (req("DELETE", "/api/tasks/" .. second.id .. "?scope=series")))
      local s = series(first.id)
      assert.are.equal(1, #s)
      assert.are.equal(first.id, s[1].id) -- the completed one stays
      assert.are.equal(200, (req("POST", "/api/tasks/" .. first.id .. "/reopen")))
      complete(first.id)
      drained()
      assert.are.equal(1, #series(first.id))
    end)

    it("If-Match applies with scope=series", function()
      local first = create({ title = "guarded", due_at = iso(nine(1)), recurrence = { rule = "FREQ=DAILY" } })
      local status = host:request("DELETE", "/api/tasks/" .. first.id .. "?scope=series",
        { token = alice, headers = { ["If-Match"] = '"7"' } })
      assert.are.equal(412, status)
      assert.are.equal(1, #series(first.id))
    end)
  end)

  describe("exactly one next occurrence", function()
    it("survives a replay of the whole log without idempotency records", function()
      local ids = {}
      for i = 1, 3 do
        local t = create({ title = "replay " .. i, due_at = iso(nine(1)), recurrence = { rule = "FREQ=DAILY" } })
        complete(t.id)
        ids[i] = t.id
      end
      for _, id in ipairs(ids) do wait_series(id, 2) end
      drained()
      h.psql([[BEGIN; DELETE FROM bus_inbox WHERE grp = 'recurring-task';
        UPDATE bus_cursors SET seq = 0 WHERE grp = 'recurring-task'; COMMIT;]], db)
      drained()
      for _, id in ipairs(ids) do assert.are.equal(2, #series(id)) end
    end)

    it("survives the same completion published again under a new event id", function()
      local t = create({ title = "dup", due_at = iso(nine(1)), recurrence = { rule = "FREQ=DAILY" } })
      complete(t.id)
      wait_series(t.id, 2)
      drained()
      local n = h.psql([[WITH src AS (
          SELECT topic, part, key, event FROM bus_outbox
           WHERE topic = 'task-events' AND event->>'type' = 'task.completed' AND event->>'subject' = ']]
        .. t.id .. [[' LIMIT 1),
        seq AS (UPDATE bus_partitions p SET last_seq = p.last_seq + 1 FROM src
                 WHERE p.topic = src.topic AND p.part = src.part RETURNING p.last_seq)
        INSERT INTO bus_outbox (topic, part, seq, id, key, event)
        SELECT src.topic, src.part, seq.last_seq, x.id, src.key,
               jsonb_set(src.event, '{id}', to_jsonb(x.id::text))
          FROM src, seq, (SELECT gen_random_uuid() AS id) x
        RETURNING 1]], db)
      assert.matches("^1\n", n .. "\n")
      drained()
      assert.are.equal(2, #series(t.id))
    end)

    it("holds with two more consumer replicas, one of them killed mid-way", function()
      local bob = h.token(uid("bob"))
      local replicas = {}
      for i = 1, 2 do
        replicas[i] = h.start({ bundles = { "services/recurring-task" }, database_url = db, skip_migrate = true })
      end
      local ids = {}
      for i = 1, 20 do
        local t = create({ title = "replica " .. i, due_at = iso(nine(1)), recurrence = { rule = "FREQ=DAILY" } }, bob)
        ids[i] = t.id
      end
      local status = host:request("POST", "/api/tasks/bulk", { token = bob, body = { action = "complete", ids = ids } })
      assert.are.equal(200, status)
      replicas[1]:kill()
      drained()
      for _, id in ipairs(ids) do assert.are.equal(2, #series(id, bob), id) end
      assert.are.equal("20", h.psql("SELECT count(*) FROM task_series_spawns WHERE source_id = ANY('{"
        .. table.concat(ids, ",") .. "}'::uuid[]) AND task_id IS NOT NULL", db))
      replicas[2]:stop()
    end)
  end)

  it("the completed event carries the recurrence the consumer needs", function()
    local t = create({ title = "event shape", due_at = iso(nine(1)), recurrence = { rule = "FREQ=DAILY" } })
    complete(t.id)
    local ev = json.decode(h.psql([[SELECT event FROM bus_outbox WHERE topic = 'task-events'
      AND event->>'type' = 'task.completed' AND event->>'subject' = ']] .. t.id .. "'", db))
    assert.are.equal("FREQ=DAILY", ev.data.task_data.recurrence.rule)
    assert.are.equal(t.id, ev.data.task_data.series_id)
  end)
end)
