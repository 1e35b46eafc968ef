-- Task API validation without a database: tasks.schema, tasks.bulk, web.query helpers.
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path

local json = require "json"
local schema = require "tasks.schema"
local bulk = require "tasks.bulk"
local errors = require "web.errors"

describe("tasks.schema", function()
  describe("rfc3339", function()
    for _, s in ipairs({
      "2026-05-01T09:00:00Z", "2026-05-01T09:00:00+02:00", "2026-05-01t09:00:00z",
      "2026-05-01T09:00:00.123456-05:30", "2024-02-29T00:00:00Z", "0001-01-01T00:00:00Z",
      "9999-12-31T23:59:59Z",
    }) do
      it("accepts " .. s, function() assert.are.equal(s, schema.rfc3339(s)) end)
    end
    for _, s in ipairs({
      "2026-05-01T09:00:00", "2026-05-01", "2026-13-01T00:00:00Z", "2026-02-29T00:00:00Z",
      "2026-04-31T00:00:00Z", "2026-05-01T24:00:00Z", "2026-05-01T09:60:00Z", "2026-05-01T09:00:60Z",
      "2026-05-01T09:00:00+24:00", "2026-05-01T09:00:00+0200", "0000-01-01T00:00:00Z",
      " 2026-05-01T09:00:00Z", "2026-05-01T09:00:00Z; DROP TABLE tasks", "", "now",
    }) do
      it("refuses " .. string.format("%q", s), function() assert.is_nil(schema.rfc3339(s)) end)
    end
    it("refuses non-strings", function()
      assert.is_nil(schema.rfc3339(1714550400))
      assert.is_nil(schema.rfc3339({}))
    end)
  end)

  describe("time_of_day", function()
    it("normalises", function()
      assert.are.equal("14:00:00", schema.time_of_day("14:00"))
      assert.are.equal("00:00:59", schema.time_of_day("00:00:59"))
    end)
    it("refuses", function()
      for _, s in ipairs({ "24:00", "2 PM", "14", "14:60", "1:00", "14:00:00.5" }) do
        assert.is_nil(schema.time_of_day(s), s)
      end
    end)
  end)

  describe("lower", function()
    it("lower-cases the common alphabets", function()
      assert.are.equal("work", schema.lower("WoRK"))
      assert.are.equal("ärger", schema.lower("ÄRGER"))
      assert.are.equal("ÿ", schema.lower("Ÿ"))
      assert.are.equal("αβγ", schema.lower("ΑΒΓ"))
      assert.are.equal("привет", schema.lower("ПРИВЕТ"))
      assert.are.equal("東京", schema.lower("東京"))
    end)

    it("lower-cases ASCII alone and in mixed text the same way", function()
      assert.are.equal("az-09_@[`{~", schema.lower("AZ-09_@[`{~"))
      assert.are.equal("work ärger", schema.lower("WORK ÄRGER"))
      assert.are.equal("", schema.lower(""))
    end)
  end)

  describe("task_input", function()
    local function fails(body, mode)
      local out, msg, code, field = schema.task_input(body, mode or "create")
      assert.is_nil(out)
      assert.is_string(msg)
      assert.is_string(code) -- every failure has a code (nil, message, code, field)
      return field, code
    end

    it("cleans a full task", function()
      local out = assert(schema.task_input({
        title = "  Dentist ", description = "x", completed = false, priority = "medium",
        tags = { "A", "a", " b " }, due_at = "2026-05-01T09:00:00Z", tz = "UTC",
        recurrence = { rule = "FREQ=DAILY" }, reminders = json.array({ { before = "PT10M" } }),
      }, "create"))
      assert.are.equal("Dentist", out.title)
      assert.are.equal(2, out.priority)
      assert.are.same({ "a", "b" }, out.tags)
      assert.are.equal("UTC", out.tz)
    end)

    it("requires a title on create only", function()
      assert.are.equal("title", (fails({})))
      assert.are.same({}, schema.task_input({}, "patch"))
    end)

    it("names the field at fault", function()
      assert.are.equal("title", (fails({ title = string.rep("é", 201) })))
      assert.is_table(schema.task_input({ title = string.rep("é", 200) }, "create"))
      assert.are.equal("title", (fails({ title = "a\0b" })))
      assert.are.equal("title", (fails({ title = "bad \255" })))
      assert.are.equal("description", (fails({ title = "t", description = string.rep("x", 4001) })))
      assert.are.equal("priority", (fails({ title = "t", priority = "HIGH" })))
      assert.are.equal("tags", (fails({ title = "t", tags = { "a", 1 } })))
      assert.are.equal("tags", (fails({ title = "t", tags = { "a,b" } })))
      assert.are.equal("due_at", (fails({ title = "t", due_at = "tomorrow" })))
      assert.are.equal("tz", (fails({ title = "t", tz = "Not/AZone" })))
      assert.are.equal("recurrence", (fails({ title = "t", recurrence = json.array({ 1 }) })))
      assert.are.equal("recurrence", (fails({ title = "t", recurrence = { n = 1 / 0 } })))
      assert.are.equal("reminders", (fails({ title = "t", reminders = { a = 1 } })))
    end)

    it("refuses unknown and read-only fields", function()
      local field, code = fails({ title = "t", colour = "red" })
      assert.are.equal("colour", field)
      assert.are.equal("unknown_field", code)
      field, code = fails({ title = "t", created_at = "x" })
      assert.are.equal("created_at", field)
      assert.are.equal("read_only_field", code)
    end)

    it("accepts null where a field can be cleared", function()
      local out = assert(schema.task_input({ description = json.null, due_at = json.null, tz = json.null,
        recurrence = json.null, reminders = json.null }, "patch"))
      for _, k in ipairs({ "description", "due_at", "tz", "recurrence", "reminders" }) do
        assert.are.equal(json.null, out[k])
      end
      assert.are.equal("title", (fails({ title = json.null }, "patch")))
      assert.are.equal("tags", (fails({ tags = json.null }, "patch")))
    end)

    it("refuses a body that is not an object", function()
      local _, code = fails("text")
      assert.are.equal("invalid_body", code)
      fails(json.array({ 1, 2 }))
      fails(json.null)
    end)

    it("bounds nested JSON", function()
      local deep = {}
      local cur = deep
      for _ = 1, 20 do cur.a = {}; cur = cur.a end
      assert.are.equal("recurrence", (fails({ title = "t", recurrence = deep })))
      assert.are.equal("recurrence", (fails({ title = "t", recurrence = { s = string.rep("x", 20000) } })))
    end)
  end)

  describe("filter", function()
    local function f(q, l)
      return schema.filter(function(n) return q[n] end, function(n) return l and l[n] or {} end)
    end
    it("parses", function()
      local out = assert(f({ status = "pending", tags_mode = "all", overdue = "true", q = "milk" },
        { priority = { "high", "none" }, tag = { "Work" } }))
      assert.are.same({ 3, 0 }, out.priorities)
      assert.are.same({ "work" }, out.tags)
      assert.is_true(out.overdue)
      assert.are.equal("milk", out.q)
    end)
    it("ignores a blank q", function()
      assert.is_nil(assert(f({ q = "   " })).q)
    end)
    it("names the parameter at fault", function()
      assert.are.equal("status", select(4, f({ status = "open" })))
      assert.are.equal("priority", select(4, f({}, { priority = { "x" } })))
      assert.are.equal("tags_mode", select(4, f({ tags_mode = "none" })))
      assert.are.equal("due_before", select(4, f({ due_before = "x" })))
      assert.are.equal("overdue", select(4, f({ overdue = "maybe" })))
      assert.are.equal("q", select(4, f({ q = string.rep("q", 201) })))
    end)
  end)

  describe("list_options", function()
    local function req(query_all)
      local query = {}
      for k, v in pairs(query_all) do query[k] = v[1] end
      return { query = query, query_all = query_all }
    end
    it("has defaults", function()
      local o = assert(schema.list_options(req({})))
      assert.are.equal("created", o.sort)
      assert.are.equal("desc", o.order)
      assert.are.equal(50, o.limit)
    end)
    it("sorts by relevance with q", function()
      local o = assert(schema.list_options(req({ q = { "milk" } })))
      assert.are.equal("relevance", o.sort)
    end)
    it("refuses bad values", function()
      for _, c in ipairs({
        { { limit = { "0" } }, "limit" }, { { limit = { "201" } }, "limit" }, { { limit = { "abc" } }, "limit" },
        { { sort = { "x" } }, "sort" }, { { order = { "up" } }, "order" }, { { nope = { "1" } }, "nope" },
        { { sort = { "relevance" } }, "sort" }, { { q = { "\0" } }, "q" }, { { tag = { "\255" } }, "tag" },
      }) do
        local o, _, _, field = schema.list_options(req(c[1]))
        assert.is_nil(o)
        assert.are.equal(c[2], field)
      end
    end)
  end)
end)

describe("tasks.bulk", function()
  local id = "0193a1b2-0000-4000-8000-00000000000A"
  it("parses each action", function()
    assert.are.same({ action = "complete", ids = { id:lower() } },
      bulk.parse({ action = "complete", ids = { id, id } }))
    local b = assert(bulk.parse({ action = "update", filter = { tag = { "A" } }, changes = { priority = "low" } }))
    assert.are.same({ "a" }, b.filter.tags)
    assert.are.same({ priority = 1 }, b.fields)
    b = assert(bulk.parse({ action = "reschedule", ids = { id }, time = "14:00", shift = { days = -1.0 }, tz = "UTC" }))
    assert.are.equal("14:00:00", b.time)
    assert.are.same({ days = -1, hours = 0, minutes = 0 }, b.shift)
    assert.are.equal(math.tointeger(-1), b.shift.days)
  end)
  it("names the field at fault", function()
    local cases = {
      { {}, "action" }, { { action = "nope", ids = { id } }, "action" },
      { { action = "delete" }, "ids" }, { { action = "delete", ids = {} }, "ids" },
      { { action = "delete", ids = { id }, filter = {} }, "ids" },
      { { action = "delete", filter = { x = 1 } }, "filter.x" },
      { { action = "delete", filter = { priority = { 1 } } }, "filter.priority" },
      { { action = "update", ids = { id }, changes = { title = "" } }, "changes.title" },
      { { action = "update", ids = { id }, changes = {} }, "changes" },
      { { action = "reschedule", ids = { id }, shift = { days = 0.5 } }, "shift.days" },
      { { action = "reschedule", ids = { id }, shift = { days = 0 / 0 } }, "shift.days" },
      { { action = "delete", ids = { id }, time = "14:00" }, "time" },
    }
    for i, c in ipairs(cases) do
      local out, _, _, field = bulk.parse(c[1])
      assert.is_nil(out, "case " .. i)
      assert.are.equal(c[2], field, "case " .. i)
    end
  end)
  it("answers not_found for ids that are not UUIDs", function()
    local _, _, code, field = bulk.parse({ action = "delete", ids = { "1; DROP TABLE tasks" } })
    assert.are.equal("ids", field)
    assert.are.equal("not_found", code)
  end)
end)

describe("web.errors", function()
  it("has one shape", function()
    local status, body, headers = errors.invalid("title", "title must not be empty")
    assert.are.equal(422, status)
    assert.are.same({ error = { code = "invalid_field", message = "title must not be empty", field = "title" } }, body)
    assert.is_nil(headers)
  end)
  it("challenges on 401", function()
    local status, body, headers = errors.unauthorized('expired "token"')
    assert.are.equal(401, status)
    assert.are.equal("unauthorized", body.error.code)
    assert.are.equal([[Bearer realm="todo", error="invalid_token", error_description="expired 'token'"]],
      headers["WWW-Authenticate"])
  end)
  it("makes echoed text printable", function()
    assert.are.equal("a?b", errors.printable("a\0b"))
    assert.are.equal("x??", errors.printable("x\255\254"))
    assert.are.equal(64, #errors.printable(string.rep("z", 100)))
  end)
end)
