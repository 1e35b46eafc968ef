-- Task API through HTTP: create, read, update, delete, complete/reopen, validation errors,
-- ETag / If-Match, odd input, and isolation between users.
local h = require "spec.helpers"

local uid = h.uid

describe("Task API: single tasks", function()
  local host, alice, bob

  lazy_setup(function()
    host = h.start({ bundles = { "services/api" } })
    alice = h.token(uid("alice"))
    bob = h.token(uid("bob"))
  end)

  lazy_teardown(function()
    if host then host:stop() end
  end)

  local function create(body, token)
    local status, task, headers = host:request("POST", "/api/tasks", { token = token or alice, body = body })
    assert.are.equal(201, status, type(task) == "table" and task.error and task.error.message)
    return task, headers
  end

  describe("POST /api/tasks", function()
    it("creates a task with defaults, a Location and an ETag", function()
      local task, headers = create({ title = "Buy milk" })
      assert.is_string(task.id)
      assert.matches("^%x+%-%x+%-%x+%-%x+%-%x+$", task.id)
      assert.are.equal("Buy milk", task.title)
      assert.are.equal(false, task.completed)
      assert.are.equal("none", task.priority)
      assert.are.same({}, task.tags)
      assert.are.equal(1, task.version)
      assert.is_string(task.created_at)
      assert.is_string(task.updated_at)
      assert.are.equal("/api/tasks/" .. task.id, headers["location"])
      assert.are.equal('"1"', headers["etag"])
    end)

    it("stores every field", function()
      local task = create({
        title = "  Dentist  ", description = "Bring the form", priority = "high",
        tags = { "Health", "health", " ERRANDS " }, due_at = "2026-05-01T09:00:00+02:00",
        tz = "Europe/Paris", recurrence = { rule = "FREQ=WEEKLY;INTERVAL=2" },
        reminders = { { before = "PT30M" } },
      })
      assert.are.equal("Dentist", task.title)
      assert.are.equal("Bring the form", task.description)
      assert.are.equal("high", task.priority)
      assert.are.same({ "health", "errands" }, task.tags)
      assert.are.equal("Europe/Paris", task.tz)
      assert.are.same({ rule = "FREQ=WEEKLY;INTERVAL=2", tz = "Europe/Paris", from = "due",
        description = "every 2 weeks" }, task.recurrence)
      assert.are.same({ { before = "PT30M" } }, task.reminders)
      -- the same instant, whatever the rendering
      local _, got = host:request("GET", "/api/tasks?due_after=2026-05-01T07:00:00Z&due_before=2026-05-01T07:00:01Z",
        { token = alice })
      local found = false
      for _, t in ipairs(got.items) do if t.id == task.id then found = true end end
      assert.is_true(found)
    end)

    it("creates a completed task with completed_at", function()
      local task = create({ title = "done already", completed = true })
      assert.are.equal(true, task.completed)
      assert.is_string(task.completed_at)
    end)
  end)

  describe("validation", function()
    local long = string.rep("a", 201)
    local many_tags = {}
    for i = 1, 21 do many_tags[i] = "t" .. i end
    local cases = {
      { "missing title", {}, "title" },
      { "empty title", { title = "" }, "title" },
      { "blank title", { title = "   " }, "title" },
      { "title too long", { title = long }, "title" },
      { "title wrong type", { title = 42 }, "title" },
      { "title null", '{"title": null}', "title" },
      { "tags null", '{"title": "t", "tags": null}', "tags" },
      { "priority null", '{"title": "t", "priority": null}', "priority" },
      { "description too long", { title = "t", description = string.rep("d", 4001) }, "description" },
      { "description wrong type", { title = "t", description = { "x" } }, "description" },
      { "completed wrong type", { title = "t", completed = "yes" }, "completed" },
      { "unknown priority", { title = "t", priority = "urgent" }, "priority" },
      { "priority as number", { title = "t", priority = 3 }, "priority" },
      { "tags not an array", { title = "t", tags = "a,b" }, "tags" },
      { "too many tags", { title = "t", tags = many_tags }, "tags" },
      { "tag too long", { title = "t", tags = { string.rep("x", 33) } }, "tags" },
      { "empty tag", { title = "t", tags = { "" } }, "tags" },
      { "tag with a comma", { title = "t", tags = { "a,b" } }, "tags" },
      { "tag not a string", { title = "t", tags = { 1 } }, "tags" },
      { "due_at without offset", { title = "t", due_at = "2026-05-01T09:00:00" }, "due_at" },
      { "due_at a date", { title = "t", due_at = "2026-05-01" }, "due_at" },
      { "due_at impossible", { title = "t", due_at = "2026-02-30T09:00:00Z" }, "due_at" },
      { "due_at a number", { title = "t", due_at = 1714550400 }, "due_at" },
      { "unknown tz", { title = "t", tz = "Mars/Olympus" }, "tz" },
      { "tz path", { title = "t", tz = "../../etc/passwd" }, "tz" },
      { "recurrence a string", { title = "t", recurrence = "daily" }, "recurrence" },
      { "reminders an object", { title = "t", reminders = { at = "x" } }, "reminders" },
      { "unknown field", { title = "t", colour = "red" }, "colour" },
      { "read-only field", { title = "t", version = 7 }, "version" },
      { "read-only id", { title = "t", id = "x" }, "id" },
    }
    for _, case in ipairs(cases) do
      it("422 for " .. case[1], function()
        local opts = { token = alice, body = case[2] }
        if type(case[2]) == "string" then
          opts = { token = alice, body = case[2], headers = { ["Content-Type"] = "application/json" } }
        end
        local status, body = host:request("POST", "/api/tasks", opts)
        assert.are.equal(422, status)
        assert.are.equal(case[3], body.error.field)
        assert.is_string(body.error.code)
        assert.is_string(body.error.message)
      end)
    end

    it("422 when the body is not an object", function()
      local status, body = host:request("POST", "/api/tasks", { token = alice, body = '"a string"',
        headers = { ["Content-Type"] = "application/json" } })
      assert.are.equal(422, status)
      assert.is_table(body.error)
    end)

    it("400 for malformed JSON", function()
      local status, body = host:request("POST", "/api/tasks", { token = alice, body = '{"title": ',
        headers = { ["Content-Type"] = "application/json" } })
      assert.are.equal(400, status)
      assert.are.equal("malformed_json", body.error.code)
    end)

    it("400 for an empty body", function()
      local status = host:request("POST", "/api/tasks", { token = alice, body = "",
        headers = { ["Content-Type"] = "application/json" } })
      assert.are.equal(400, status)
    end)

    it("415 for another content type", function()
      local status, body = host:request("POST", "/api/tasks", { token = alice, body = "title=x",
        headers = { ["Content-Type"] = "application/x-www-form-urlencoded" } })
      assert.are.equal(415, status)
      assert.are.equal("unsupported_media_type", body.error.code)
    end)

    it("415 without a content type", function()
      local status = host:request("POST", "/api/tasks", { token = alice, body = '{"title":"x"}' })
      assert.are.equal(415, status)
    end)

    it("accepts application/json with a charset", function()
      local status = host:request("POST", "/api/tasks", { token = alice, body = '{"title":"x"}',
        headers = { ["Content-Type"] = "application/json; charset=utf-8" } })
      assert.are.equal(201, status)
    end)
  end)

  describe("odd input never gives a 500", function()
    local function post_raw(raw)
      return host:request("POST", "/api/tasks", { token = alice, body = raw,
        headers = { ["Content-Type"] = "application/json" } })
    end

    it("invalid UTF-8 in the title -> 422", function()
      local status, body = post_raw('{"title": "bad \255\254 bytes"}')
      assert.is_true(status == 422 or status == 400, "got " .. tostring(status))
      if status == 422 then assert.are.equal("title", body.error.field) end
    end)

    it("a NUL byte in the title -> 422", function()
      local status, body = post_raw('{"title": "nul \\u0000 here"}')
      assert.are.equal(422, status)
      assert.are.equal("title", body.error.field)
    end)

    it("a NUL byte inside recurrence -> 422", function()
      local status, body = post_raw('{"title": "t", "recurrence": {"x": "\\u0000"}}')
      assert.are.equal(422, status)
      assert.are.equal("recurrence", body.error.field)
    end)

    it("a lone surrogate -> 422", function()
      local status = post_raw('{"title": "\\ud800"}')
      assert.is_true(status == 422 or status == 400, "got " .. tostring(status))
    end)

    it("huge numbers -> 422", function()
      local status = post_raw('{"title": "t", "recurrence": {"n": 1e999}}')
      assert.is_true(status == 422 or status == 400, "got " .. tostring(status))
      status = post_raw('{"title": 123456789012345678901234567890}')
      assert.are.equal(422, status)
    end)

    it("deeply nested JSON -> 400 or 422", function()
      local status = post_raw('{"title": "t", "recurrence": ' .. string.rep("[", 5000) .. string.rep("]", 5000) .. "}")
      assert.is_true(status == 400 or status == 422, "got " .. tostring(status))
      status = post_raw('{"title": "t", "recurrence": ' .. string.rep('{"a":', 20) .. "1" .. string.rep("}", 20) .. "}")
      assert.are.equal(422, status)
    end)

    it("SQL-looking and non-ASCII text round-trips unchanged", function()
      local texts = {
        "Robert'); DROP TABLE tasks;--",
        "1' OR '1'='1",
        "$1 $$ \\ %s %% ' \" ` ; -- /* */",
        "Überweisung für Müller — 東京 🍣 مرحبا",
        "tab\there\nnewline",
      }
      for _, text in ipairs(texts) do
        local task = create({ title = text, description = text, tags = { "ü-" .. #text } })
        assert.are.equal(text, task.title)
        assert.are.equal(text, task.description)
        local status, got = host:request("GET", "/api/tasks/" .. task.id, { token = alice })
        assert.are.equal(200, status)
        assert.are.equal(text, got.title)
        assert.are.equal(text, got.description)
      end
    end)

    it("a path id that is not a UUID -> 404", function()
      for _, id in ipairs({ "1", "abc", "1%20OR%201=1", "00000000-0000-0000-0000-00000000000g" }) do
        local status, body = host:request("GET", "/api/tasks/" .. id, { token = alice })
        assert.are.equal(404, status)
        assert.are.equal("not_found", body.error.code)
      end
    end)
  end)

  describe("GET, PATCH, DELETE /api/tasks/:id", function()
    it("reads a task with its ETag", function()
      local task = create({ title = "read me" })
      local status, got, headers = host:request("GET", "/api/tasks/" .. task.id, { token = alice })
      assert.are.equal(200, status)
      assert.are.same(task, got)
      assert.are.equal('"1"', headers["etag"])
    end)

    it("answers 304 to a matching If-None-Match", function()
      local task = create({ title = "cache me" })
      local status = host:request("GET", "/api/tasks/" .. task.id,
        { token = alice, headers = { ["If-None-Match"] = '"1"' } })
      assert.are.equal(304, status)
    end)

    it("404 for an unknown task", function()
      local status, body = host:request("GET", "/api/tasks/00000000-0000-4000-8000-000000000000", { token = alice })
      assert.are.equal(404, status)
      assert.are.equal("not_found", body.error.code)
    end)

    it("updates only the fields sent and bumps the version", function()
      local task = create({ title = "patch me", description = "keep", priority = "low", tags = { "a" } })
      local status, got, headers = host:request("PATCH", "/api/tasks/" .. task.id,
        { token = alice, body = { priority = "medium", tags = { "B", "c" } } })
      assert.are.equal(200, status)
      assert.are.equal("patch me", got.title)
      assert.are.equal("keep", got.description)
      assert.are.equal("medium", got.priority)
      assert.are.same({ "b", "c" }, got.tags)
      assert.are.equal(2, got.version)
      assert.are.equal('"2"', headers["etag"])
    end)

    it("clears nullable fields with null", function()
      local task = create({ title = "clear me", description = "x", due_at = "2026-01-01T00:00:00Z",
        tz = "UTC", recurrence = { rule = "FREQ=DAILY" } })
      local raw = '{"description": null, "due_at": null, "tz": null, "recurrence": null, "reminders": null}'
      local status, got = host:request("PATCH", "/api/tasks/" .. task.id, { token = alice, body = raw,
        headers = { ["Content-Type"] = "application/json" } })
      assert.are.equal(200, status)
      for _, k in ipairs({ "description", "due_at", "tz", "recurrence", "reminders" }) do
        assert.is_true(got[k] == nil or type(got[k]) == "userdata", k)
      end
    end)

    it("PATCH completed=true sets completed_at, false clears it", function()
      local task = create({ title = "toggle" })
      local _, got = host:request("PATCH", "/api/tasks/" .. task.id, { token = alice, body = { completed = true } })
      assert.are.equal(true, got.completed)
      assert.is_string(got.completed_at)
      _, got = host:request("PATCH", "/api/tasks/" .. task.id, { token = alice, body = { completed = false } })
      assert.are.equal(false, got.completed)
      assert.is_not_string(got.completed_at)
    end)

    it("PATCH validates like POST", function()
      local task = create({ title = "strict" })
      local status, body = host:request("PATCH", "/api/tasks/" .. task.id, { token = alice, body = { title = "" } })
      assert.are.equal(422, status)
      assert.are.equal("title", body.error.field)
      status, body = host:request("PATCH", "/api/tasks/" .. task.id, { token = alice, body = { nope = 1 } })
      assert.are.equal(422, status)
      assert.are.equal("nope", body.error.field)
    end)

    it("PATCH with If-Match: the current version passes, a stale one gets 412", function()
      local task = create({ title = "v1" })
      local url = "/api/tasks/" .. task.id
      local status, got = host:request("PATCH", url, { token = alice, body = { title = "v2" },
        headers = { ["If-Match"] = '"1"' } })
      assert.are.equal(200, status)
      assert.are.equal(2, got.version)
      -- a second writer still holding version 1
      local body
      status, body = host:request("PATCH", url, { token = alice, body = { title = "lost update" },
        headers = { ["If-Match"] = '"1"' } })
      assert.are.equal(412, status)
      assert.are.equal("version_conflict", body.error.code)
      local _, now = host:request("GET", url, { token = alice })
      assert.are.equal("v2", now.title)
      -- `*` matches any version
      status = host:request("PATCH", url, { token = alice, body = { title = "v3" }, headers = { ["If-Match"] = "*" } })
      assert.are.equal(200, status)
    end)

    it("concurrent PATCHes with the same If-Match: exactly one wins, the others get 412", function()
      local socket = require "socket"
      local task = create({ title = "race" })
      local n = 8
      local conns = {}
      for i = 1, n do
        local body = '{"title": "writer ' .. i .. '"}'
        local c = socket.tcp()
        c:settimeout(30)
        assert(c:connect("127.0.0.1", host.port))
        c:send("PATCH /api/tasks/" .. task.id .. " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
          .. "Authorization: Bearer " .. alice .. "\r\nContent-Type: application/json\r\n"
          .. 'If-Match: "1"\r\nContent-Length: ' .. #body .. "\r\n\r\n" .. body)
        conns[i] = c
      end
      local counts = {}
      for _, c in ipairs(conns) do
        local status = h.read_response(c)
        c:close()
        counts[status] = (counts[status] or 0) + 1
      end
      assert.are.same({ [200] = 1, [412] = n - 1 }, counts)
      local _, got = host:request("GET", "/api/tasks/" .. task.id, { token = alice })
      assert.are.equal(2, got.version)
    end)

    it("DELETE with a stale If-Match gets 412 and keeps the task", function()
      local task = create({ title = "keep me" })
      local url = "/api/tasks/" .. task.id
      host:request("PATCH", url, { token = alice, body = { title = "changed" } })
      local status = host:request("DELETE", url, { token = alice, headers = { ["If-Match"] = '"1"' } })
      assert.are.equal(412, status)
      status = host:request("GET", url, { token = alice })
      assert.are.equal(200, status)
      status = host:request("DELETE", url, { token = alice, headers = { ["If-Match"] = '"2"' } })
      assert.are.equal(204, status)
      status = host:request("GET", url, { token = alice })
      assert.are.equal(404, status)
      status = host:request("DELETE", url, { token = alice })
      assert.are.equal(404, status)
    end)

    it("complete and reopen", function()
      local task = create({ title = "finish" })
      local url = "/api/tasks/" .. task.id
      local status, got, headers = host:request("POST", url .. "/complete", { token = alice })
      assert.are.equal(200, status)
      assert.are.equal(true, got.completed)
      assert.is_string(got.completed_at)
      assert.are.equal('"2"', headers["etag"])
      -- completing again changes nothing
      local again
      status, again = host:request("POST", url .. "/complete", { token = alice })
      assert.are.equal(200, status)
      assert.are.equal(2, again.version)
      assert.are.equal(got.completed_at, again.completed_at)
      status, got = host:request("POST", url .. "/reopen", { token = alice })
      assert.are.equal(200, status)
      assert.are.equal(false, got.completed)
      assert.are.equal(3, got.version)
      status = host:request("POST", url .. "/complete", { token = alice, headers = { ["If-Match"] = '"2"' } })
      assert.are.equal(412, status)
    end)
  end)

  describe("another user's tasks", function()
    it("are 404 on every route and absent from lists", function()
      local task = create({ title = "alice only", tags = { "secret-tag" } })
      local url = "/api/tasks/" .. task.id
      local checks = {
        { "GET", url }, { "PATCH", url, { title = "mine now" } }, { "DELETE", url },
        { "POST", url .. "/complete" }, { "POST", url .. "/reopen" },
      }
      for _, c in ipairs(checks) do
        local status, body = host:request(c[1], c[2], { token = bob, body = c[3] })
        assert.are.equal(404, status, c[1] .. " " .. c[2])
        assert.are.equal("not_found", body.error.code)
      end
      local status, body = host:request("POST", "/api/tasks/bulk", { token = bob,
        body = { action = "delete", ids = { task.id } } })
      assert.are.equal(404, status)
      assert.are.equal("not_found", body.error.code)
      status, body = host:request("POST", "/api/tasks/bulk", { token = bob,
        body = { action = "update", all = true, changes = { title = "pwned" } } })
      assert.are.equal(200, status)
      assert.are.equal(0, body.matched)
      status, body = host:request("GET", "/api/tasks?tag=secret-tag", { token = bob })
      assert.are.equal(200, status)
      assert.are.same({}, body.items)
      status, body = host:request("GET", "/api/tags", { token = bob })
      assert.are.equal(200, status)
      for _, t in ipairs(body.items) do assert.are_not.equal("secret-tag", t.tag) end
      -- and nothing of alice's changed
      local got
      status, got = host:request("GET", url, { token = alice })
      assert.are.equal(200, status)
      assert.are.same(task, got)
    end)
  end)
end)
