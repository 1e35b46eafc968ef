-- tasks.repo called directly, as a chat tool or a notification handler would (issue 13):
-- the same validation as REST (same codes and messages), the same events in the same
-- transaction, the same user scoping, and errors as `nil, message, code[, detail]`.
-- The calls run in a child `todo-host script` against a database that an API host
-- serves too, so that REST's answers can be compared with the repository's.
local h = require "spec.helpers"
local json = require "json"

local PRELUDE = [[
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
local json = require "json"
local repo = require "tasks.repo"
local function pack(...) return { n = select("#", ...), ... } end
-- One call's answer: r1 (the result, or false for nil), message, code, detail.
local function call(fn, ...)
  local r = pack(pcall(fn, ...))
  if not r[1] then return { raised = tostring(r[2]) } end
  local r1 = r[2]
  if r1 == nil then r1 = false end
  return { r1 = r1, message = r[3], code = r[4], detail = r[5] }
end
local function emit(v) print("RESULT " .. json.encode(v)) end
]]

local function child(url, code)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(PRELUDE, code)
  f:close()
  local out, ok = h.sh("DATABASE_URL=" .. h.sh_quote(url) .. " LOG_LEVEL=warn timeout 60 "
    .. h.sh_quote(h.host_bin) .. " script " .. h.sh_quote(path))
  os.remove(path)
  assert(ok, "the child host failed:\n" .. out)
  local line = out:match("RESULT ([^\n]+)")
  assert(line, "the child printed no result:\n" .. out)
  return assert(json.decode(line), "bad JSON from the child:\n" .. out)
end

describe("tasks.repo from outside the API bundle", function()
  local host, url

  lazy_setup(function()
    host = h.start({ bundles = { "services/api" } })
    url = host.database_url
  end)
  lazy_teardown(function() if host then host:stop() end end)

  local function sql(q) return h.psql(q, url) end

  it("validates like REST: the same code, message and field", function()
    local bodies = {
      { title = "" }, { title = "x", priority = "urgent" }, { title = "x", colour = "red" },
      { title = "x", id = "00000000-0000-4000-8000-000000000000" }, {},
      { title = "x", recurrence = { rule = "FREQ=DAILY" } },
    }
    local r = child(url, [[
      local bodies = json.decode(]] .. string.format("%q", json.encode(bodies)) .. [[)
      local out = {}
      for i, b in ipairs(bodies) do out[i] = call(repo.create, "val-user", b) end
      emit(out)
    ]])
    for i, body in ipairs(bodies) do
      local status, rest = host:request("POST", "/api/tasks", { token = h.token("val-user"), body = body })
      assert.are.equal(422, status, json.encode(body))
      local got = r[i]
      assert.is_false(got.r1, json.encode(body))
      assert.are.equal(rest.error.code, got.code)
      assert.are.equal(rest.error.message, got.message)
      assert.are.equal(rest.error.field, got.detail)
    end
    assert.are.equal("0", sql("SELECT count(*) FROM tasks WHERE user_id = 'val-user'"))
  end)

  it("writes the change and its events in one transaction, scoped to the user", function()
    local r = child(url, [[
      local t = assert(repo.create("ann", { title = "from chat", priority = "high", tags = { "chat" } }))
      local out = { created = t }
      out.theirs = call(repo.get, "bob", t.id)
      out.bob_update = call(repo.update, "bob", t.id, { title = "stolen" })
      out.bob_delete = call(repo.delete, "bob", t.id)
      out.bob_list = call(repo.list, "bob", {})
      out.conflict = call(repo.update, "ann", t.id, { title = "late" }, { versions = { 7 } })
      out.updated = call(repo.update, "ann", t.id, { title = "renamed" }, { versions = { 1 } })
      out.completed = call(repo.set_completed, "ann", t.id, true)
      out.again = call(repo.set_completed, "ann", t.id, true)
      out.list = call(repo.list, "ann", { status = "completed", tag = { "chat" }, sort = "title" })
      out.bad_list = call(repo.list, "ann", { sort = "colour" })
      out.tags = call(repo.tags, "ann")
      out.no_user = call(repo.get, nil, t.id)
      emit(out)
    ]])
    local id = r.created.id
    assert.are.equal("high", r.created.priority)
    for _, k in ipairs { "theirs", "bob_update", "bob_delete" } do
      assert.is_false(r[k].r1, k)
      assert.are.equal("not_found", r[k].code, k)
    end
    assert.are.same({}, r.bob_list.r1.items)
    assert.are.equal("version_conflict", r.conflict.code)
    assert.are.equal(1, r.conflict.detail)
    assert.are.equal("renamed", r.updated.r1.title)
    assert.are.equal(3, r.completed.r1.version)
    assert.are.equal(3, r.again.r1.version) -- already completed: as it is
    assert.are.equal(1, #r.list.r1.items)
    assert.are.equal("invalid_field", r.bad_list.code)
    assert.are.equal("sort", r.bad_list.detail)
    assert.are.same({ { tag = "chat", count = 1 } }, r.tags.r1)
    assert.matches("user id must be a non%-empty string", r.no_user.raised)
    -- REST sees the same task, at the same version
    local status, rest = host:request("GET", "/api/tasks/" .. id, { token = h.token("ann") })
    assert.are.equal(200, status)
    assert.are.equal(3, rest.version)
    assert.is_true(rest.completed)
    -- events: created, updated, completed, each in its change's transaction
    assert.are.equal("task.completed,task.created,task.updated", sql([[SELECT string_agg(DISTINCT
      event->>'type', ',' ORDER BY event->>'type') FROM bus_outbox WHERE event->>'subject' = ']] .. id .. "'"))
    assert.are.equal(sql("SELECT xmin::text FROM tasks WHERE id = '" .. id .. "'"),
      sql("SELECT string_agg(DISTINCT xmin::text, ',') FROM bus_outbox WHERE event->>'subject' = '"
        .. id .. "' AND event->>'type' = 'task.completed'"))
  end)

  it("recognises a constraint by its name: a recurring task keeps its due_at", function()
    local r = child(url, [[
      local t = assert(repo.create("cora", { title = "daily", due_at = "2030-01-01T09:00:00Z",
        recurrence = { rule = "FREQ=DAILY" } }))
      emit { clear = call(repo.update, "cora", t.id, { due_at = json.null }) }
    ]])
    assert.is_false(r.clear.r1)
    assert.are.equal("recurrence_needs_due", r.clear.code)
    assert.are.equal("due_at", r.clear.detail)
  end)

  it("deletes by scope and runs bulk actions with the REST body", function()
    local r = child(url, [[
      local a = assert(repo.create("dora", { title = "a" }))
      local b = assert(repo.create("dora", { title = "b" }))
      local out = {}
      out.bad_scope = call(repo.delete, "dora", a.id, { scope = "everything" })
      out.bulk = call(repo.bulk, "dora", { action = "complete", ids = { a.id, b.id } })
      out.bulk_bad = call(repo.bulk, "dora", { action = "explode", ids = { a.id } })
      out.deleted = call(repo.delete, "dora", a.id)
      out.gone = call(repo.get, "dora", a.id)
      emit(out)
    ]])
    assert.are.equal("scope", r.bad_scope.detail)
    assert.are.equal(2, r.bulk.r1.changed)
    assert.are.equal("action", r.bulk_bad.detail)
    assert.are.equal("a", r.deleted.r1.title)
    assert.are.equal("not_found", r.gone.code)
  end)
end)
