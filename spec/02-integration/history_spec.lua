-- Task history (issue 4): the "history" consumer of task-events records who changed what
-- and when; GET /api/tasks/:id/history, GET /api/activity, and undo with 412 when the
-- task changed since.
local h = require "spec.helpers"

describe("task history", function()
  local host
  setup(function() host = h.start { bundles = { "services/api" } } end)
  teardown(function() if host then host:stop() end end)

  local function call(method, path, body, user)
    return host:request(method, path, { token = h.token(user or "hana"), body = body })
  end

  local function history(id, n)
    return h.eventually(function()
      local s, b = call("GET", "/api/tasks/" .. id .. "/history")
      return s == 200 and #b.items >= n and b
    end, 10)
  end

  it("needs a token and hides other users' tasks", function()
    assert.are.equal(401, (host:request("GET", "/api/activity")))
    local _, t = call("POST", "/api/tasks", { title = "private" })
    assert.are.equal(404, (call("GET", "/api/tasks/" .. t.id .. "/history", nil, "intruder")))
    assert.are.equal(404, (call("GET", "/api/tasks/not-a-uuid/history")))
  end)

  it("lists changes newest first, and the user's activity", function()
    local _, t = call("POST", "/api/tasks", { title = "draft", priority = "low" })
    call("PATCH", "/api/tasks/" .. t.id, { title = "final" })
    call("POST", "/api/tasks/" .. t.id .. "/complete")
    local b = assert(history(t.id, 3))
    assert.are.same({ "completed", "updated", "created" }, { b.items[1].kind, b.items[2].kind, b.items[3].kind })
    assert.are.same({ "title" }, b.items[2].changed)
    assert.are.equal("draft", b.items[2].before.title)
    assert.are.equal("final", b.items[2].task.title)
    assert.are.equal("hana", b.items[1].actor)
    local s, act = call("GET", "/api/activity?limit=2")
    assert.are.equal(200, s)
    assert.are.equal(2, #act.items)
    assert.are.equal("completed", act.items[1].kind)
    assert.are.equal(422, (call("GET", "/api/activity?limit=0")))
    -- an unknown parameter is refused, as on every other route, naming it
    local s2, e = call("GET", "/api/activity?limit=2&since=yesterday")
    assert.are.equal(422, s2)
    assert.are.same({ "unknown_field", "since" }, { e.error.code, e.error.field })
    s2, e = call("GET", "/api/tasks/" .. t.id .. "/history?order=asc")
    assert.are.equal(422, s2)
    assert.are.equal("order", e.error.field)
  end)

  it("a PATCH to the values a task holds changes nothing: no version, no history, no event", function()
    local _, t = call("POST", "/api/tasks", { title = "same", priority = "high", tags = { "a", "b" },
      due_at = "2026-05-01T09:00:00Z", tz = "Europe/Paris", description = require("json").null })
    local url = "/api/tasks/" .. t.id
    local function events_of()
      return tonumber(h.psql("SELECT count(*) FROM bus_outbox WHERE event->>'subject' = '" .. t.id .. "'",
        host.database_url))
    end
    local before = events_of()
    local s, got, hdrs = host:request("PATCH", url, { token = h.token("hana"), headers = { ["If-Match"] = '"1"' },
      body = { title = "  same ", priority = "high", tags = { "A", "b" }, due_at = "2026-05-01T11:00:00+02:00",
        tz = "Europe/Paris", completed = false, description = require("json").null } })
    assert.are.equal(200, s)
    assert.are.equal(1, got.version)
    assert.are.equal(t.updated_at, got.updated_at)
    assert.are.equal('"1"', hdrs.etag)
    assert.are.equal(before, events_of())
    -- a stale If-Match is still a conflict, even for a change that changes nothing
    assert.are.equal(412, (host:request("PATCH", url, { token = h.token("hana"),
      headers = { ["If-Match"] = '"7"' }, body = { title = "same" } })))
    -- a change of one field among unchanged ones: one version, and only that field named
    s, got = call("PATCH", url, { title = "same", priority = "low" })
    assert.are.equal(200, s)
    assert.are.equal(2, got.version)
    local b = assert(history(t.id, 2))
    assert.are.equal(2, #b.items)
    assert.are.same({ "priority" }, b.items[1].changed)
  end)

  it("undoes the latest change, and refuses (412) when the task changed since", function()
    local _, t = call("POST", "/api/tasks", { title = "one", tags = { "x" } })
    call("PATCH", "/api/tasks/" .. t.id, { title = "two", tags = { "y" } })
    call("PATCH", "/api/tasks/" .. t.id, { priority = "high" })
    local b = assert(history(t.id, 3))
    local rename, prio = b.items[2], b.items[1]
    -- the rename is not the latest change: 412, which names no If-Match (undo takes none)
    local s412, e412 = call("POST", "/api/activity/" .. rename.id .. "/undo")
    assert.are.equal(412, s412)
    assert.are.equal("version_conflict", e412.error.code)
    assert.is_nil(e412.error.field)
    assert.is_nil(e412.error.message:find("If-Match", 1, true), e412.error.message)
    assert.is_nil(e412.error.message:find("ETag", 1, true), e412.error.message)
    assert.truthy(e412.error.message:find("latest change", 1, true), e412.error.message)
    local s, r = call("POST", "/api/activity/" .. prio.id .. "/undo")
    assert.are.equal(200, s)
    assert.are.equal("none", r.task.priority)
    assert.are.equal("two", r.task.title)
    -- undoing the same change twice: the task moved on (the undo itself is a change)
    assert.are.equal(412, (call("POST", "/api/activity/" .. prio.id .. "/undo")))
    assert.are.equal(404, (call("POST", "/api/activity/" .. prio.id .. "/undo", nil, "intruder")))
    assert.are.equal(404, (call("POST", "/api/activity/999999/undo")))
  end)

  it("undoes the deletion of an occurrence into its series: its place and the COUNT kept", function()
    local _, first = call("POST", "/api/tasks", { title = "thrice", due_at = "2026-05-04T09:00:00Z",
      recurrence = { rule = "FREQ=DAILY;COUNT=3" } })
    -- deleting an open occurrence skips it: the next one is made at once
    assert.are.equal(204, (call("DELETE", "/api/tasks/" .. first.id)))
    local _, page = call("GET", "/api/tasks?q=thrice")
    local second = page.items[1]
    assert.are.same({ 2, first.id }, { second.occurrence_index, second.spawned_from })
    assert.are.equal(204, (call("DELETE", "/api/tasks/" .. second.id)))
    local b = assert(history(second.id, 2))
    assert.are.equal("deleted", b.items[1].kind)
    local s, r = call("POST", "/api/activity/" .. b.items[1].id .. "/undo")
    assert.are.equal(200, s, r.error and r.error.message)
    local back = r.task
    assert.are.same({ second.id, first.id, 2, first.id },
      { back.id, back.series_id, back.occurrence_index, back.spawned_from })
    assert.are.same(second.recurrence, back.recurrence)
    -- the series still ends after its third task: occurrence 3 (made by the deletion) is
    -- the last, and the restored occurrence 2 makes no second one
    _, page = call("GET", "/api/tasks?q=thrice&sort=due")
    assert.are.equal(2, #page.items)
    local third = page.items[2]
    assert.are.same({ 3, first.id }, { third.occurrence_index, third.series_id })
    assert.are.equal(204, (call("DELETE", "/api/tasks/" .. back.id)))
    assert.are.equal(204, (call("DELETE", "/api/tasks/" .. third.id)))
    _, page = call("GET", "/api/tasks?q=thrice")
    assert.are.equal(0, #page.items)
  end)

  it("undoes a deletion (the task comes back) and a creation (the task goes)", function()
    local _, t = call("POST", "/api/tasks", { title = "keep me", description = "d" })
    assert.are.equal(204, (call("DELETE", "/api/tasks/" .. t.id)))
    local b = assert(history(t.id, 2))
    assert.are.equal("deleted", b.items[1].kind)
    local s, r = call("POST", "/api/activity/" .. b.items[1].id .. "/undo")
    assert.are.equal(200, s)
    assert.are.equal(t.id, r.task.id)
    local s2, back = call("GET", "/api/tasks/" .. t.id)
    assert.are.equal(200, s2)
    assert.are.equal("keep me", back.title)
    assert.are.equal("d", back.description)
    -- the re-creation is a change too; then undo it
    b = assert(history(t.id, 3))
    assert.are.equal("created", b.items[1].kind)
    assert.are.equal(200, (call("POST", "/api/activity/" .. b.items[1].id .. "/undo")))
    assert.are.equal(404, (call("GET", "/api/tasks/" .. t.id)))
  end)
end)
