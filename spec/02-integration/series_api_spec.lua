-- Recurring tasks through the Task API alone (issue 5): the recurrence field (validation,
-- phrases, the stored and returned shape), the due_at requirement, the preview route and
-- the scope of DELETE. The spawning of next occurrences is in series_events_spec.lua.
local h = require "spec.helpers"
local json = require "json"

local uid = h.uid

describe("series: the Task API", function()
  local host, alice

  lazy_setup(function()
    host = h.start({ bundles = { "services/api" } })
    alice = h.token(uid("alice"))
  end)

  lazy_teardown(function()
    if host then host:stop() end
  end)

  local function req(method, path, body, token)
    return host:request(method, path, { token = token or alice, body = body })
  end

  local function create(body)
    local status, task = req("POST", "/api/tasks", body)
    assert.are.equal(201, status, type(task) == "table" and task.error and task.error.message)
    return task
  end

  local function refused(field, status, body)
    assert.are.equal(422, status)
    assert.are.equal(field, body.error.field, body.error.message)
    return body.error.message
  end

  describe("the recurrence field", function()
    it("stores the canonical rule and answers zone, from and a description", function()
      local task = create({ title = "standup", due_at = "2026-05-04T09:00:00+02:00", tz = "Europe/Berlin",
        recurrence = { rule = "rrule:freq=weekly;byday=mo,we,fr" } })
      assert.are.same({ rule = "FREQ=WEEKLY;BYDAY=MO,WE,FR", tz = "Europe/Berlin", from = "due",
        description = "every Monday, Wednesday and Friday" }, task.recurrence)
      assert.are.equal(task.id, task.series_id)
      assert.are.equal(1, task.occurrence_index)
      assert.is_true(task.spawned_from == nil or type(task.spawned_from) == "userdata")
      local _, again = req("GET", "/api/tasks/" .. task.id)
      assert.are.same(task.recurrence, again.recurrence)
    end)

    it("defaults the zone to UTC and keeps an explicit zone and from", function()
      local task = create({ title = "utc", due_at = "2026-05-04T09:00:00Z", recurrence = { rule = "FREQ=DAILY" } })
      assert.are.equal("UTC", task.recurrence.tz)
      task = create({ title = "pinned", due_at = "2026-05-04T09:00:00Z", tz = "Europe/Paris",
        recurrence = { rule = "FREQ=DAILY;INTERVAL=3", tz = "Asia/Tokyo", from = "completion" } })
      assert.are.equal("Asia/Tokyo", task.recurrence.tz)
      assert.are.equal("completion", task.recurrence.from)
      assert.are.equal("every 3 days", task.recurrence.description)
    end)

    it("accepts a phrase and stores the rule it means", function()
      local task = create({ title = "phrase", due_at = "2026-05-04T09:00:00Z",
        recurrence = { phrase = "every weekday" } })
      assert.are.equal("FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR", task.recurrence.rule)
      assert.is_nil(task.recurrence.phrase)
    end)

    it("takes back what it returned (description included) without restarting the count", function()
      local task = create({ title = "round trip", due_at = "2026-05-04T09:00:00Z",
        recurrence = { rule = "FREQ=DAILY" } })
      local status, got = req("PATCH", "/api/tasks/" .. task.id, { recurrence = task.recurrence, title = "renamed" })
      assert.are.equal(200, status, got.error and got.error.message)
      assert.are.same(task.recurrence, got.recurrence)
      assert.are.equal(1, got.occurrence_index)
      -- sent back alone, the recurrence (its zone the task's, or UTC) changes nothing, and
      -- still follows the task's zone afterwards
      for _, tz in ipairs { json.null, "Europe/Berlin" } do
        local t = create({ title = "round trip", due_at = "2026-05-04T09:00:00Z", tz = tz,
          recurrence = { phrase = "every weekday" } })
        status, got = req("PATCH", "/api/tasks/" .. t.id, { recurrence = t.recurrence })
        assert.are.equal(200, status, got.error and got.error.message)
        assert.are.same({ 1, t.updated_at }, { got.version, got.updated_at })
        _, got = req("PATCH", "/api/tasks/" .. t.id, { tz = "Asia/Tokyo" })
        assert.are.equal("Asia/Tokyo", got.recurrence.tz)
      end
      -- the zone sent with a new tz for the task pins it when it differs, follows when equal
      local t = create({ title = "round trip", due_at = "2026-05-04T09:00:00Z", recurrence = { rule = "FREQ=DAILY" } })
      local _, pinned = req("PATCH", "/api/tasks/" .. t.id, { tz = "Europe/Paris", recurrence = t.recurrence })
      assert.are.equal("UTC", pinned.recurrence.tz)
      _, got = req("PATCH", "/api/tasks/" .. t.id, { tz = "Asia/Tokyo" })
      assert.are.equal("UTC", got.recurrence.tz)
    end)

    it("says plainly what to send for a UTC offset as tz and for a recurrence sent as text", function()
      local due = "2026-05-04T09:00:00Z"
      local msg = refused("tz", req("POST", "/api/tasks", { title = "t", due_at = due, tz = "+01:00" }))
      assert.truthy(msg:find('unknown time zone "+01:00": use an IANA name such as Europe/Berlin', 1, true), msg)
      msg = refused("tz", req("POST", "/api/tasks", { title = "t", tz = "Mars/Olympus" }))
      assert.are.equal('unknown time zone "Mars/Olympus": use an IANA name such as Europe/Berlin', msg)
      msg = refused("tz", req("POST", "/api/tasks", { title = "t", tz = 5 }))
      assert.truthy(msg:find("got number", 1, true), msg)
      msg = refused("recurrence.tz", req("POST", "/api/tasks", { title = "t", due_at = due,
        recurrence = { rule = "FREQ=DAILY", tz = "UTC+1" } }))
      assert.truthy(msg:find('unknown time zone "UTC+1" in recurrence.tz', 1, true), msg)
      msg = refused("tz", req("GET", "/api/recurrence/preview?rule=FREQ=DAILY&tz=%2B01:00"))
      assert.truthy(msg:find('unknown time zone "+01:00"', 1, true), msg)
      msg = refused("recurrence", req("POST", "/api/tasks", { title = "t", due_at = due, recurrence = "every day" }))
      assert.truthy(msg:find("must be an object", 1, true), msg)
      assert.truthy(msg:find('{"phrase": "every day"}', 1, true), msg)
      msg = refused("recurrence", req("POST", "/api/tasks", { title = "t", due_at = due,
        recurrence = "FREQ=WEEKLY;BYDAY=MO" }))
      assert.truthy(msg:find('{"rule": "FREQ=WEEKLY;BYDAY=MO"}', 1, true), msg)
    end)

    it("accepts 'last Friday of the month' and the like (BYDAY=-1FR)", function()
      local task = create({ title = "review", due_at = "2026-05-29T16:00:00Z",
        recurrence = { phrase = "last Friday of the month" } })
      assert.are.equal("FREQ=MONTHLY;BYDAY=-1FR", task.recurrence.rule)
      assert.are.equal("on the last Friday of every month", task.recurrence.description)
      local status, got = req("GET", "/api/recurrence/preview?phrase=monthly%20on%20the%20last%20friday"
        .. "&start=2026-05-29T16:00:00Z&count=3")
      assert.are.equal(200, status)
      assert.are.same({ "2026-05-29T16:00:00Z", "2026-06-26T16:00:00Z", "2026-07-31T16:00:00Z" }, got.occurrences)
    end)

    it("keeps dates within years 1 to 9999: 422 at the edges, never 500", function()
      for _, due in ipairs({ "9999-12-31T23:00:00-05:00", "0001-01-01T00:00:00+01:00" }) do
        local msg = refused("due_at", req("POST", "/api/tasks", { title = "edge", due_at = due }))
        assert.truthy(msg:find("supported range", 1, true), msg)
      end
      for _, due in ipairs({ "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z" }) do
        local status = req("POST", "/api/tasks", { title = "edge", due_at = due })
        assert.are.equal(201, status)
      end
      refused("due_before", req("GET", "/api/tasks?due_before=9999-12-31T23:00:00-05:00"))
      -- the preview: the start, and occurrences that would leave the range
      local base = "/api/recurrence/preview?rule=FREQ=DAILY&start="
      refused("count", req("GET", base .. "9999-12-30T09:00:00Z&count=5"))
      refused("start", req("GET", base .. "9999-12-31T23:30:00Z&tz=Europe/Berlin&count=1"))
      refused("start", req("GET", base .. "0001-01-01T00:00:00%2B01:00"))
      refused("count", req("GET", "/api/recurrence/preview?rule=FREQ=YEARLY&start=9990-06-01T00:00:00Z&count=20"))
      local status, got = req("GET", base .. "9999-12-30T09:00:00Z&count=2")
      assert.are.equal(200, status)
      assert.are.same({ "9999-12-30T09:00:00Z", "9999-12-31T09:00:00Z" }, got.occurrences)
      status, got = req("GET", base .. "0001-01-01T00:00:00Z&count=2")
      assert.are.equal(200, status)
      assert.are.same({ "0001-01-01T00:00:00Z", "0001-01-02T00:00:00Z" }, got.occurrences)
      -- skipping the last occurrence the range allows ends the series (no 500, no new task)
      local last = create({ title = "edge of time", due_at = "9999-12-31T09:00:00Z",
        recurrence = { rule = "FREQ=DAILY" } })
      assert.are.equal(204, (req("DELETE", "/api/tasks/" .. last.id)))
      local _, page = req("GET", "/api/tasks?q=edge%20of%20time")
      assert.are.equal(0, #page.items)
    end)

    it("names the part at fault with the engine's message", function()
      local due = "2026-05-04T09:00:00Z"
      local msg = refused("recurrence.rule", req("POST", "/api/tasks", { title = "t", due_at = due,
        recurrence = { rule = "FREQ=WEEKLY;BYDAY=XX" } }))
      assert.matches("BYDAY", msg)
      refused("recurrence.rule", req("POST", "/api/tasks", { title = "t", due_at = due,
        recurrence = { rule = "FREQ=DAILY;COUNT=0" } }))
      refused("recurrence.rule", req("POST", "/api/tasks", { title = "t", due_at = due, recurrence = { rule = 7 } }))
      refused("recurrence.rule", req("POST", "/api/tasks", { title = "t", due_at = due, recurrence = {} }))
      refused("recurrence.rule", req("POST", "/api/tasks", { title = "t", due_at = due,
        recurrence = { rule = "FREQ=DAILY", phrase = "every day" } }))
      refused("recurrence.phrase", req("POST", "/api/tasks", { title = "t", due_at = due,
        recurrence = { phrase = "whenever I feel like it" } }))
      refused("recurrence.tz", req("POST", "/api/tasks", { title = "t", due_at = due,
        recurrence = { rule = "FREQ=DAILY", tz = "Mars/Olympus" } }))
      refused("recurrence.from", req("POST", "/api/tasks", { title = "t", due_at = due,
        recurrence = { rule = "FREQ=DAILY", from = "whenever" } }))
      refused("recurrence.freq", req("POST", "/api/tasks", { title = "t", due_at = due,
        recurrence = { rule = "FREQ=DAILY", freq = "daily" } }))
      refused("recurrence", req("POST", "/api/tasks", { title = "t", due_at = due, recurrence = "FREQ=DAILY" }))
    end)

    it("needs a due_at, on create and when due_at would be cleared", function()
      local msg = refused("due_at", req("POST", "/api/tasks", { title = "t", recurrence = { rule = "FREQ=DAILY" } }))
      assert.matches("due_at", msg)
      local task = create({ title = "t", due_at = "2026-05-04T09:00:00Z", recurrence = { rule = "FREQ=DAILY" } })
      refused("due_at", req("PATCH", "/api/tasks/" .. task.id, { due_at = require("json").null }))
      local plain = create({ title = "no due" })
      refused("due_at", req("PATCH", "/api/tasks/" .. plain.id, { recurrence = { rule = "FREQ=DAILY" } }))
      -- clearing both is fine
      local status, got = req("PATCH", "/api/tasks/" .. task.id, { due_at = json.null, recurrence = json.null })
      assert.are.equal(200, status, got.error and got.error.message)
    end)

    it("series fields are read-only", function()
      local task = create({ title = "ro", due_at = "2026-05-04T09:00:00Z", recurrence = { rule = "FREQ=DAILY" } })
      for _, k in ipairs({ "series_id", "occurrence_index", "spawned_from" }) do
        local status, body = req("PATCH", "/api/tasks/" .. task.id, { [k] = 2 })
        assert.are.equal(422, status)
        assert.are.equal("read_only_field", body.error.code)
      end
    end)
  end)

  describe("GET /api/recurrence/preview", function()
    local function preview(q, token)
      return host:request("GET", "/api/recurrence/preview?" .. q, { token = token == nil and alice or token or nil })
    end

    it("lists the next occurrences in the zone, with the description", function()
      local status, body = preview("rule=FREQ%3DWEEKLY%3BBYDAY%3DMO%2CTH&start=2026-03-23T09:00:00%2B01:00"
        .. "&tz=Europe/Berlin&count=4")
      assert.are.equal(200, status, body.error and body.error.message)
      assert.are.equal("FREQ=WEEKLY;BYDAY=MO,TH", body.rule)
      assert.are.equal("every Monday and Thursday", body.description)
      assert.are.equal("Europe/Berlin", body.tz)
      -- 09:00 local on both sides of the DST change of 2026-03-29
      assert.are.same({ "2026-03-23T09:00:00+01:00", "2026-03-26T09:00:00+01:00",
        "2026-03-30T09:00:00+02:00", "2026-04-02T09:00:00+02:00" }, body.occurrences)
    end)

    it("defaults: 10 occurrences from now in UTC; a phrase works too", function()
      local status, body = preview("phrase=every%20day%20at%209")
      assert.are.equal(200, status, body.error and body.error.message)
      assert.are.equal(10, #body.occurrences)
      assert.are.equal("UTC", body.tz)
      assert.matches("T09:00:00Z$", body.occurrences[1])
    end)

    it("stops where the rule stops", function()
      local _, body = preview("rule=FREQ%3DDAILY%3BCOUNT%3D3&start=2026-01-01T00:00:00Z&count=100")
      assert.are.equal(3, #body.occurrences)
    end)

    it("checks every parameter", function()
      refused("rule", preview("start=2026-01-01T00:00:00Z"))
      refused("rule", preview("rule=FREQ%3DNEVER"))
      refused("count", preview("rule=FREQ%3DDAILY&count=101"))
      refused("count", preview("rule=FREQ%3DDAILY&count=0"))
      refused("count", preview("rule=FREQ%3DDAILY&count=ten"))
      refused("start", preview("rule=FREQ%3DDAILY&start=tomorrow"))
      refused("start", preview("rule=FREQ%3DDAILY&start=2026-01-01T00:00:00"))
      refused("tz", preview("rule=FREQ%3DDAILY&tz=Nowhere/Land"))
      refused("bogus", preview("rule=FREQ%3DDAILY&bogus=1"))
      refused("phrase", preview("phrase=every%20blue%20moon"))
    end)

    it("needs a token", function()
      local status = preview("rule=FREQ%3DDAILY", false)
      assert.are.equal(401, status)
    end)
  end)

  describe("DELETE scope", function()
    it("refuses an unknown scope", function()
      local task = create({ title = "scoped" })
      refused("scope", req("DELETE", "/api/tasks/" .. task.id .. "?scope=everything"))
      local status = req("DELETE", "/api/tasks/" .. task.id .. "?scope=series")
      assert.are.equal(204, status)
      status = req("GET", "/api/tasks/" .. task.id)
      assert.are.equal(404, status)
    end)
  end)
end)
