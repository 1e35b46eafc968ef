-- POST /api/tasks/bulk and GET /api/tags through HTTP: every action, by ids and by
-- filter, all or nothing, validation, and the tag counts.
local h = require "spec.helpers"

local uid = h.uid

describe("Task API: bulk and tags", function()
  local host, token

  local function post(body)
    local status, task = host:request("POST", "/api/tasks", { token = token, body = body })
    assert.are.equal(201, status, type(task) == "table" and task.error and task.error.message)
    return task
  end

  local function get(id)
    local status, task = host:request("GET", "/api/tasks/" .. id, { token = token })
    return status, task
  end

  local function bulk(body, tok)
    return host:request("POST", "/api/tasks/bulk", { token = tok or token, body = body })
  end

  lazy_setup(function()
    host = h.start({ bundles = { "services/api" } })
  end)

  lazy_teardown(function() if host then host:stop() end end)

  before_each(function()
    token = h.token(uid("bulker")) -- a fresh user per test: a clean slate
  end)

  it("completes and reopens a list of ids, answering what changed", function()
    local a, b, c = post({ title = "a" }), post({ title = "b", completed = true }), post({ title = "c" })
    local status, res = bulk({ action = "complete", ids = { a.id, b.id, c.id } })
    assert.are.equal(200, status)
    assert.are.equal("complete", res.action)
    assert.are.equal(3, res.matched)
    assert.are.equal(2, res.changed) -- b was already completed
    assert.are.equal(2, #res.items)
    for _, t in ipairs(res.items) do assert.are.equal(true, t.completed) end
    status, res = bulk({ action = "reopen", ids = { a.id, b.id } })
    assert.are.equal(200, status)
    assert.are.equal(2, res.changed)
    local _, got = get(c.id)
    assert.are.equal(true, got.completed)
    _, got = get(b.id)
    assert.are.equal(false, got.completed)
  end)

  it("deletes by filter", function()
    local keep = post({ title = "keep", tags = { "keep" } })
    post({ title = "drop 1", tags = { "drop" } })
    post({ title = "drop 2", tags = { "drop", "x" } })
    local status, res = bulk({ action = "delete", filter = { tag = "drop" } })
    assert.are.equal(200, status)
    assert.are.equal(2, res.changed)
    assert.are.equal(2, #res.ids)
    local _, list = host:request("GET", "/api/tasks", { token = token })
    assert.are.equal(1, #list.items)
    assert.are.equal(keep.id, list.items[1].id)
  end)

  it("refuses a filter without a condition (or none) unless the request says all: true", function()
    local a, b = post({ title = "a" }), post({ title = "b" })
    for _, body in ipairs({
      { action = "delete", filter = {} },
      { action = "delete", filter = { status = "all", q = "  ", tag = {} } },
      { action = "complete", filter = { tags_mode = "all" } },
      { action = "delete", all = false, filter = {} },
    }) do
      local status, res = bulk(body)
      assert.are.equal(422, status)
      assert.are.same({ "required", "all" }, { res.error.code, res.error.field })
      assert.truthy(res.error.message:find('"all": true', 1, true), res.error.message)
    end
    -- nothing was touched
    local _, got = get(a.id)
    assert.are.equal(1, got.version)
    -- all must be a boolean, and goes with a filter, not with ids
    local status, res = bulk({ action = "delete", filter = {}, all = "yes" })
    assert.are.same({ 422, "all" }, { status, res.error.field })
    status, res = bulk({ action = "delete", ids = { a.id }, all = true })
    assert.are.same({ 422, "all" }, { status, res.error.field })
    -- said explicitly: every task, with or without an (empty) filter
    status, res = bulk({ action = "complete", all = true })
    assert.are.equal(200, status)
    assert.are.equal(2, res.changed)
    status, res = bulk({ action = "delete", filter = {}, all = true })
    assert.are.equal(200, status)
    assert.are.same({ 2, 2 }, { res.matched, #res.ids })
    assert.are.equal(404, (get(b.id)))
    -- a filter with a condition needs no all
    post({ title = "c", tags = { "x" } })
    status = bulk({ action = "delete", filter = { tag = "x" } })
    assert.are.equal(200, status)
  end)

  it("updates with the same fields as PATCH", function()
    local a, b = post({ title = "a", priority = "low" }), post({ title = "b" })
    local status, res = bulk({ action = "update", ids = { a.id, b.id },
      changes = { priority = "high", tags = { "Sprint" } } })
    assert.are.equal(200, status)
    assert.are.equal(2, res.changed)
    for _, t in ipairs(res.items) do
      assert.are.equal("high", t.priority)
      assert.are.same({ "sprint" }, t.tags)
      assert.are.equal(2, t.version)
    end
    status, res = bulk({ action = "update", ids = { a.id }, changes = { title = "" } })
    assert.are.equal(422, status)
    assert.are.equal("changes.title", res.error.field)
    status, res = bulk({ action = "update", ids = { a.id }, changes = { bogus = 1 } })
    assert.are.equal(422, status)
    assert.are.equal("changes.bogus", res.error.field)
  end)

  it("reschedules to a new time of day in each task's zone", function()
    -- "move my morning meetings to 2 PM"
    local paris = post({ title = "standup", tags = { "meeting" }, due_at = "2026-07-01T09:00:00+02:00",
      tz = "Europe/Paris" })
    local ny = post({ title = "sync", tags = { "meeting" }, due_at = "2026-07-01T09:30:00-04:00",
      tz = "America/New_York" })
    local nodue = post({ title = "someday", tags = { "meeting" } })
    local status, res = bulk({ action = "reschedule", filter = { tag = "meeting" }, time = "14:00" })
    assert.are.equal(200, status)
    assert.are.equal(3, res.matched)
    assert.are.equal(2, res.changed)
    -- 14:00 in Paris (UTC+2 in July) and 14:00 in New York (UTC-4)
    local _, list = host:request("GET", "/api/tasks?due_after=2026-07-01T12:00:00Z&due_before=2026-07-01T12:00:01Z",
      { token = token })
    assert.are.equal(1, #list.items)
    assert.are.equal(paris.id, list.items[1].id)
    _, list = host:request("GET", "/api/tasks?due_after=2026-07-01T18:00:00Z&due_before=2026-07-01T18:00:01Z",
      { token = token })
    assert.are.equal(1, #list.items)
    assert.are.equal(ny.id, list.items[1].id)
    local _, got = get(nodue.id)
    assert.are.equal(1, got.version)
  end)

  it("reschedules by a shift, keeping the wall-clock time across a DST change", function()
    local t = post({ title = "weekly", due_at = "2026-03-27T09:00:00+01:00", tz = "Europe/Paris" })
    local status, res = bulk({ action = "reschedule", ids = { t.id }, shift = { days = 7 } })
    assert.are.equal(200, status)
    assert.are.equal(1, res.changed)
    -- 2026-04-03 09:00 in Paris is 07:00Z (summer time)
    local _, list = host:request("GET", "/api/tasks?due_after=2026-04-03T07:00:00Z&due_before=2026-04-03T07:00:01Z",
      { token = token })
    assert.are.equal(1, #list.items)
    status = bulk({ action = "reschedule", ids = { t.id }, shift = { hours = -2, minutes = 30 } })
    assert.are.equal(200, status)
  end)

  it("is all or nothing: one unknown id changes nothing", function()
    local a = post({ title = "a" })
    local status, res = bulk({ action = "delete", ids = { a.id, "00000000-0000-4000-8000-000000000000" } })
    assert.are.equal(404, status)
    assert.are.equal("not_found", res.error.code)
    assert.are.equal(200, (get(a.id)))
  end)

  it("is all or nothing: another user's id changes nothing", function()
    local a = post({ title = "mine" })
    local other = h.token(uid("other"))
    local _, theirs = host:request("POST", "/api/tasks", { token = other, body = { title = "theirs" } })
    local status = bulk({ action = "complete", ids = { a.id, theirs.id } })
    assert.are.equal(404, status)
    local _, got = get(a.id)
    assert.are.equal(false, got.completed)
    local _, t2 = host:request("GET", "/api/tasks/" .. theirs.id, { token = other })
    assert.are.equal(false, t2.completed)
  end)

  it("is all or nothing: a value PostgreSQL refuses rolls everything back", function()
    local a = post({ title = "a", due_at = "9999-12-31T00:00:00Z", tz = "UTC" })
    local b = post({ title = "b", due_at = "2026-01-01T00:00:00Z", tz = "UTC" })
    local status = bulk({ action = "reschedule", ids = { b.id, a.id }, shift = { days = 3660 } })
    assert.are.equal(422, status)
    local _, got = get(b.id)
    assert.are.equal(1, got.version)
    assert.are.equal(b.due_at, got.due_at)
  end)

  it("an empty match is not an error", function()
    local status, res = bulk({ action = "complete", filter = { tag = "nothing-has-this" } })
    assert.are.equal(200, status)
    assert.are.equal(0, res.matched)
    assert.are.equal(0, res.changed)
  end)

  describe("validation", function()
    local id = "00000000-0000-4000-8000-000000000000"
    local cases = {
      { "missing action", { ids = { id } }, "action" },
      { "unknown action", { action = "archive", ids = { id } }, "action" },
      { "neither ids nor filter", { action = "complete" }, "ids" },
      { "both ids and filter", { action = "complete", ids = { id }, filter = {} }, "ids" },
      { "ids not an array", { action = "complete", ids = id }, "ids" },
      { "ids with a number", { action = "complete", ids = { 5 } }, "ids" },
      { "unknown filter", { action = "complete", filter = { colour = "red" } }, "filter.colour" },
      { "bad filter value", { action = "complete", filter = { status = "done" } }, "filter.status" },
      { "bad filter type", { action = "complete", filter = { q = 5 } }, "filter.q" },
      { "update without changes", { action = "update", ids = { id } }, "changes" },
      { "changes for complete", { action = "complete", ids = { id }, changes = {} }, "changes" },
      { "reschedule with nothing", { action = "reschedule", ids = { id } }, "time" },
      { "bad time", { action = "reschedule", ids = { id }, time = "2 PM" }, "time" },
      { "time 24:00", { action = "reschedule", ids = { id }, time = "24:00" }, "time" },
      { "bad shift", { action = "reschedule", ids = { id }, shift = { weeks = 1 } }, "shift.weeks" },
      { "fractional shift", { action = "reschedule", ids = { id }, shift = { days = 1.5 } }, "shift.days" },
      { "huge shift", { action = "reschedule", ids = { id }, shift = { days = 1e300 } }, "shift.days" },
      { "bad tz", { action = "reschedule", ids = { id }, time = "14:00", tz = "Nowhere/Land" }, "tz" },
    }
    for _, c in ipairs(cases) do
      it("422 for " .. c[1], function()
        local status, body = bulk(c[2])
        assert.are.equal(422, status)
        assert.are.equal(c[3], body.error.field)
      end)
    end

    it("404 for an id that is not a UUID", function()
      local status = bulk({ action = "delete", ids = { "1 OR 1=1" } })
      assert.are.equal(404, status)
    end)
  end)

  describe("GET /api/tags", function()
    it("lists the user's tags with counts, most used first", function()
      post({ title = "1", tags = { "Work", "urgent" } })
      post({ title = "2", tags = { "work" } })
      post({ title = "3", tags = { "home" } })
      local status, body = host:request("GET", "/api/tags", { token = token })
      assert.are.equal(200, status)
      assert.are.same({ { tag = "work", count = 2 }, { tag = "home", count = 1 }, { tag = "urgent", count = 1 } },
        body.items)
    end)

    it("is an empty list for a new user", function()
      local status, body = host:request("GET", "/api/tags", { token = token })
      assert.are.equal(200, status)
      assert.are.same({}, body.items)
    end)
  end)
end)
