-- Reminders on the task (issue 15): the API accepts `[{"at": RFC 3339}, {"before": ISO
-- 8601 duration}]` on create, PATCH and bulk; refuses bad ones with a 422 naming the part
-- at fault and writes nothing; an offset needs a due time (also when a PATCH would clear
-- it); at most 10; the reminders are returned on the task and are in its events and
-- history like any other field.
local h = require "spec.helpers"
local json = require "json"

describe("reminders on tasks", function()
  local host
  local user = "rem-input"
  setup(function() host = h.start { bundles = { "services/api" } } end)
  teardown(function() host:stop() end)

  local function req(method, path, body)
    return host:request(method, path, { token = h.token(user), body = body })
  end

  it("accepts instants and offsets, returns them cleaned, in order, without duplicates", function()
    local s, t = req("POST", "/api/tasks", { title = "t", due_at = "2026-05-01T09:00:00+02:00",
      reminders = { { at = "2026-05-01T08:00:00+02:00" }, { before = "PT15M" }, { before = "P1DT2H" },
        { before = "PT15M" } } })
    assert.are.equal(201, s, json.encode(t))
    assert.are.same({ { at = "2026-05-01T08:00:00+02:00" }, { before = "PT15M" }, { before = "P1DT2H" } },
      t.reminders)
    local _, got = req("GET", "/api/tasks/" .. t.id)
    assert.are.same(t.reminders, got.reminders)
    -- without a due time, only instants
    s = req("POST", "/api/tasks", { title = "t", reminders = { { at = "2026-05-01T08:00:00Z" } } })
    assert.are.equal(201, s)
    -- an empty list stays an empty array
    s, t = req("POST", "/api/tasks", { title = "t", reminders = json.array {} })
    assert.are.equal(201, s)
    assert.are.equal("[]", json.encode(t.reminders))
  end)

  it("refuses bad reminders with a 422 naming the part at fault, and creates nothing", function()
    local eleven = {}
    for i = 1, 11 do eleven[i] = { before = "PT" .. i .. "M" } end
    local due = "2026-05-01T09:00:00Z"
    local cases = {
      { { at = "x" }, "reminders", "must be an array" },
      { eleven, "reminders", "at most 10 reminders" },
      { { { at = "2026-05-01 08:00" } }, "reminders[1].at", "RFC 3339" },
      { { { before = "15 minutes" } }, "reminders[1].before", "ISO 8601 duration" },
      { { { before = "PT" } }, "reminders[1].before", "ISO 8601 duration" },
      { { { before = "P1M2Y" } }, "reminders[1].before", "ISO 8601 duration" },
      { { { before = "P2Y" } }, "reminders[1].before", "at most a year" },
      { { { before = "PT15M", at = due } }, "reminders[1]", "exactly one of" },
      { { {} }, "reminders[1]", "" },
      { { { before = "PT1M" }, { when = "soon" } }, "reminders[2]", "unknown field when" },
      { { "PT15M" }, "reminders[1]", "must be an object" },
    }
    local before = h.psql("SELECT count(*) FROM tasks", host.database_url)
    for _, c in ipairs(cases) do
      local s, body = req("POST", "/api/tasks", { title = "t", due_at = due, reminders = c[1] })
      assert.are.equal(422, s, json.encode(c[1]))
      assert.are.equal(c[2], body.error.field, json.encode(c[1]) .. " -> " .. json.encode(body))
      assert.truthy(body.error.message:find(c[3], 1, true), body.error.message)
    end
    -- an offset without a due time
    local s, body = req("POST", "/api/tasks", { title = "t", reminders = { { before = "PT15M" } } })
    assert.are.equal(422, s)
    assert.are.equal("reminder_needs_due", body.error.code)
    assert.are.equal("reminders[1].before", body.error.field)
    assert.are.equal(before, h.psql("SELECT count(*) FROM tasks", host.database_url))
  end)

  it("keeps reminders within years 1 to 9999: 422 for an instant or an offset leaving it", function()
    local before = h.psql("SELECT count(*) FROM tasks", host.database_url)
    local cases = {
      { "9999-12-31T23:00:00Z", { { at = "9999-12-31T23:59:59-05:00" } }, "reminders[1].at" },
      { "0001-01-01T09:00:00Z", { { at = "0001-01-01T00:00:00+05:00" } }, "reminders[1].at" },
      { "0001-01-01T00:30:00Z", { { before = "PT15M" }, { before = "PT1H" } }, "reminders[2].before" },
      { "0001-01-01T12:00:00+01:00", { { before = "P1D" } }, "reminders[1].before" },
    }
    for _, c in ipairs(cases) do
      local s, body = req("POST", "/api/tasks", { title = "t", due_at = c[1], reminders = c[2] })
      assert.are.equal(422, s, json.encode(c))
      assert.are.same({ "invalid_field", c[3] }, { body.error.code, body.error.field }, json.encode(body))
      assert.truthy(body.error.message:find("supported range", 1, true), body.error.message)
    end
    assert.are.equal(before, h.psql("SELECT count(*) FROM tasks", host.database_url))
    -- the edges themselves are fine
    local s, t = req("POST", "/api/tasks", { title = "t", due_at = "0001-01-01T01:00:00Z",
      reminders = { { before = "PT1H" }, { at = "9999-12-31T23:59:59Z" } } })
    assert.are.equal(201, s, json.encode(t))
  end)

  it("checks an offset against the task's due time on PATCH, with no partial write", function()
    local _, plain = req("POST", "/api/tasks", { title = "no due" })
    local s, body = req("PATCH", "/api/tasks/" .. plain.id, { title = "renamed", reminders = { { before = "PT5M" } } })
    assert.are.equal(422, s, json.encode(body))
    assert.are.equal("reminder_needs_due", body.error.code)
    local _, again = req("GET", "/api/tasks/" .. plain.id)
    assert.are.equal("no due", again.title)
    assert.are.equal(plain.version, again.version)
    local _, due = req("POST", "/api/tasks", { title = "due", due_at = "2026-05-01T09:00:00Z",
      reminders = { { before = "PT5M" } } })
    s, body = req("PATCH", "/api/tasks/" .. due.id, { due_at = json.null })
    assert.are.equal(422, s)
    assert.are.equal("reminder_needs_due", body.error.code)
    assert.are.equal("due_at", body.error.field)
    -- clearing both at once is fine
    s, body = req("PATCH", "/api/tasks/" .. due.id, { due_at = json.null, reminders = json.null })
    assert.are.equal(200, s, json.encode(body))
    s, body = req("PATCH", "/api/tasks/" .. plain.id,
      { due_at = "2026-05-02T09:00:00Z", reminders = { { before = "PT5M" } } })
    assert.are.equal(200, s, json.encode(body))
    assert.are.same({ { before = "PT5M" } }, body.reminders)
  end)

  it("takes reminders in a bulk update, all or nothing", function()
    local _, a = req("POST", "/api/tasks", { title = "bulk a", due_at = "2026-05-01T09:00:00Z" })
    local _, b = req("POST", "/api/tasks", { title = "bulk b" })
    local s, body = req("POST", "/api/tasks/bulk", { action = "update", ids = { a.id, b.id },
      changes = { reminders = { { before = "PT10M" } } } })
    assert.are.equal(422, s, json.encode(body))
    assert.are.equal("reminder_needs_due", body.error.code)
    local _, a2 = req("GET", "/api/tasks/" .. a.id)
    assert.are.equal(json.null, a2.reminders)
    s, body = req("POST", "/api/tasks/bulk", { action = "update", ids = { a.id, b.id },
      changes = { reminders = { { at = "2026-05-01T08:00:00Z" } } } })
    assert.are.equal(200, s, json.encode(body))
    local _, b2 = req("GET", "/api/tasks/" .. b.id)
    assert.are.same({ { at = "2026-05-01T08:00:00Z" } }, b2.reminders)
    s, body = req("POST", "/api/tasks/bulk", { action = "update", ids = { a.id },
      changes = { reminders = { { before = "nope" } } } })
    assert.are.equal(422, s)
    assert.truthy(tostring(body.error.field):find("reminders", 1, true), json.encode(body))
  end)

  it("puts a change of reminders in the task's events and history", function()
    local _, t = req("POST", "/api/tasks", { title = "hist", due_at = "2026-05-01T09:00:00Z" })
    local s = req("PATCH", "/api/tasks/" .. t.id, { reminders = { { before = "PT1H" } } })
    assert.are.equal(200, s)
    local ev = h.psql("SELECT event->'data'->>'changed' || ' ' || (event->'data'->'task_data'->>'reminders')"
      .. " FROM bus_outbox WHERE topic = 'task-events' AND event->>'subject' = '" .. t.id
      .. "' AND event->>'type' = 'task.updated'", host.database_url)
    assert.truthy(ev:find('["reminders"]', 1, true), ev)
    assert.truthy(ev:find('"before": "PT1H"', 1, true), ev)
    local hist = h.eventually(function()
      local _, body = req("GET", "/api/tasks/" .. t.id .. "/history")
      return body.items and #body.items == 2 and body
    end, 5)
    assert.truthy(hist)
    assert.are.same({ "reminders" }, hist.items[1].changed)
    assert.are.same({ { before = "PT1H" } }, hist.items[1].task.reminders)
    assert.are.equal(json.null, hist.items[1].before.reminders)
  end)
end)
