-- The pieces of the offline assistant on their own: tool schemas, the quick-add parse
-- behind POST /api/parse, time-zone edge cases of the date reader, typo correction.
local tools = require "chat.tools"
local parse = require "chat.parse"
local words = require "chat.words"
local json = require "json"
local tz = require "tz"

local NOW = tz.parse_rfc3339("2026-12-04T10:00:00+01:00")

describe("chat.tools", function()
  it("lists the nine tools, each with a description and an object schema that encodes as JSON", function()
    local names = {}
    for _, t in ipairs(tools.list) do
      names[#names + 1] = t.name
      assert.is_string(t.description)
      assert.equal("object", t.input_schema.type)
      assert.is_table(t.input_schema.properties)
      assert.is_string(json.encode(t.input_schema))
    end
    assert.same({ "add_task", "list_tasks", "complete_task", "reopen_task", "delete_task", "update_task",
      "reschedule_tasks", "snooze_reminder", "plan_day" }, names)
  end)
  it("checks arguments: unknown tool, unknown argument, missing required, wrong type, enum", function()
    assert.is_true(tools.check("add_task", { title = "x", priority = "high" }))
    assert.same({ nil, "unknown tool nope" }, { tools.check("nope", {}) })
    assert.same({ nil, "unknown argument colour for add_task" },
      { tools.check("add_task", { title = "x", colour = 1 }) })
    assert.same({ nil, "title is required" }, { tools.check("add_task", {}) })
    assert.same({ nil, "title must be string" }, { tools.check("add_task", { title = 5 }) })
    assert.same({ nil, "priority must be one of none, low, medium, high" },
      { tools.check("add_task", { title = "x", priority = "p0" }) })
    assert.same({ nil, "priority items must be among none, low, medium, high" },
      { tools.check("list_tasks", { priority = { "huge" } }) })
    assert.is_true(tools.check("update_task", { id = "x", due_at = json.null }))
  end)
  it("the parser only produces calls the schemas accept", function()
    local set = require "spec.chat.eval_cases"
    local n = 0
    for _, case in ipairs(set.cases) do
      for _, turn in ipairs(case.turns or { { case[1] } }) do
        local r = parse.parse(turn[1], {}, set.now, set.tz, set.fixtures.default)
        for _, c in ipairs(r.calls or {}) do
          assert(tools.check(c.name, c.arguments))
          n = n + 1
        end
      end
    end
    assert.is_true(n > 200)
  end)
end)

describe("chat.parse.quick_add", function()
  it("reads the issue's example", function()
    local f = parse.quick_add("Pay rent every 1st at 9am p1 #home", NOW, "Europe/Berlin")
    assert.same({ title = "Pay rent", priority = "high", tags = { "home" },
      recurrence = "FREQ=MONTHLY;BYMONTHDAY=1;BYHOUR=9;BYMINUTE=0", due_at = "2027-01-01T09:00:00+01:00" }, f)
  end)
  it("refuses text without a title, empty text and invalid UTF-8", function()
    assert.same({ nil, "the text has no title, only a time, tags or a priority" },
      { parse.quick_add("tomorrow at 5pm #home", NOW, "Europe/Berlin") })
    assert.same({ nil, "the text is empty" }, { parse.quick_add("  ", NOW, "Europe/Berlin") })
    local f, err = parse.quick_add("\255x", NOW, "Europe/Berlin")
    assert.is_nil(f)
    assert.matches("UTF%-8", err)
  end)
end)

describe("dates across daylight-saving changes", function()
  it("moves a time in the spring-forward gap forward, like the tz primitive", function()
    local now = tz.parse_rfc3339("2027-03-27T12:00:00+01:00")
    local f = parse.quick_add("water plants tomorrow at 2:30am", now, "Europe/Berlin")
    assert.equal("2027-03-28T03:30:00+02:00", f.due_at)
  end)
  it("keeps wall-clock time for 'in 3 days' across the change, exact time for 'in 24 hours'", function()
    local now = tz.parse_rfc3339("2026-10-24T12:00:00+02:00")
    assert.equal("2026-10-27T09:00:00+01:00", parse.quick_add("x in 3 days", now, "Europe/Berlin").due_at)
    assert.equal("2026-10-25T11:00:00+01:00", parse.quick_add("x in 24 hours", now, "Europe/Berlin").due_at)
  end)
  it("reads 'today' in the user's zone, not UTC", function()
    -- 23:30 UTC on the 4th is already the 5th in Tokyo
    local now = tz.parse_rfc3339("2026-12-04T23:30:00Z")
    assert.equal("2026-12-05T17:00:00+09:00", parse.quick_add("x today at 5pm", now, "Asia/Tokyo").due_at)
    assert.equal("2026-12-05T17:00:00-05:00", parse.quick_add("x tomorrow at 5pm", now, "America/New_York").due_at)
  end)
end)

describe("chat.words", function()
  it("corrects typos of keywords only, and keeps the typed text", function()
    local t = words.tokens("delte the Grocries tomorow")
    assert.same({ "delete", "the", "grocries", "tomorrow" }, { t[1].w, t[2].w, t[3].w, t[4].w })
    assert.equal("Grocries", t[3].raw)
    assert.equal("love", words.correct("love"))
    assert.equal("list", words.correct("lsit"))
  end)
  it("keeps quoted text as one token", function()
    local t = words.tokens("rename it to 'Mom's birthday, part 2'")
    assert.equal("Mom's birthday, part 2", t[4].raw)
    assert.is_true(t[4].quoted)
  end)
end)

describe("tasks as the repository returns them", function()
  it("reads null fields (json.null) like absent ones: the whole set gives the same answers", function()
    local eval = require "spec.chat.eval"
    local set = require "spec.chat.eval_cases"
    local nulled = {}
    for name, tasks in pairs(set.fixtures) do
      nulled[name] = {}
      for i, t in ipairs(tasks) do
        local c = {}
        for k, v in pairs(t) do c[k] = v end
        for _, k in ipairs { "due_at", "reminders", "description", "recurrence" } do
          if c[k] == nil then c[k] = json.null end
        end
        nulled[name][i] = c
      end
    end
    local report = eval.run { cases = set.cases, fixtures = nulled, now = set.now, tz = set.tz }
    local plain = eval.run(set)
    assert.equal(plain.passed, report.passed, eval.format(report))
  end)
end)
