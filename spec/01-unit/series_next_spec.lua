-- Recurring tasks without a database: when the next occurrence is due (tasks.series),
-- how reminders move, and the validation of the recurrence field (recurrence.input).
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path

local json = require "json"
local tz = require "tz"
local series = require "tasks.series"
local input = require "recurrence.input"

local function t(s) return (tz.parse_rfc3339(s)) end
local function utc(e) return tz.format(e, "UTC") end

local function task(rule, due, opts)
  opts = opts or {}
  return {
    due_at = due, completed_at = opts.completed_at, tz = opts.tz, occurrence_index = opts.index or 1,
    recurrence = { rule = rule, tz = opts.rtz, from = opts.from },
  }
end

describe("tasks.series.next_due", function()
  it("from=due: the next occurrence after the due time", function()
    local tk = task("FREQ=WEEKLY;BYDAY=MO,TH", "2026-05-04T09:00:00Z", { completed_at = "2026-05-04T08:00:00Z" })
    assert.are.equal("2026-05-07T09:00:00Z", utc(series.next_due(tk, t("2026-05-04T08:00:00Z"))))
  end)

  it("from=due, completed late: the first occurrence after the completion", function()
    local tk = task("FREQ=DAILY", "2026-05-01T09:00:00Z", { completed_at = "2026-05-10T12:00:00Z" })
    assert.are.equal("2026-05-11T09:00:00Z", utc(series.next_due(tk, 0)))
    tk.completed_at = "2026-05-10T08:59:59Z"
    assert.are.equal("2026-05-10T09:00:00Z", utc(series.next_due(tk, 0)))
  end)

  it("from=due keeps the local time across a DST change", function()
    local tk = task("FREQ=DAILY", "2026-03-28T09:00:00+01:00", { tz = "Europe/Berlin",
      completed_at = "2026-03-28T10:00:00+01:00" })
    assert.are.equal("2026-03-29T09:00:00+02:00", tz.format(series.next_due(tk, 0), "Europe/Berlin"))
  end)

  it("the recurrence zone wins over the task's, which wins over UTC", function()
    local tk = task("FREQ=DAILY;BYHOUR=9", "2026-05-04T07:00:00Z", { tz = "Europe/Paris", rtz = "America/New_York",
      completed_at = "2026-05-04T07:00:00Z" })
    assert.are.equal("2026-05-04T09:00:00-04:00", tz.format(series.next_due(tk, 0), "America/New_York"))
    tk.recurrence.tz = nil
    assert.are.equal("2026-05-05T09:00:00+02:00", tz.format(series.next_due(tk, 0), "Europe/Paris"))
  end)

  it("from=completion: the rule restarted on the completion day at the due's time", function()
    local tk = task("FREQ=DAILY;INTERVAL=3", "2026-05-01T09:00:00Z", { from = "completion",
      completed_at = "2026-05-10T18:30:00Z" })
    assert.are.equal("2026-05-13T09:00:00Z", utc(series.next_due(tk, 0)))
    tk.completed_at = "2026-05-10T07:00:00Z" -- before the time of day: still 3 days on
    assert.are.equal("2026-05-13T09:00:00Z", utc(series.next_due(tk, 0)))
  end)

  it("from=completion with an hourly rule counts from the completion minute", function()
    local tk = task("FREQ=HOURLY;INTERVAL=2", "2026-05-01T09:00:00Z", { from = "completion",
      completed_at = "2026-05-10T18:31:42Z" })
    assert.are.equal("2026-05-10T20:31:00Z", utc(series.next_due(tk, 0)))
  end)

  it("a skip (no completion time) uses now", function()
    local tk = task("FREQ=DAILY", "2026-05-01T09:00:00Z")
    assert.are.equal("2026-05-06T09:00:00Z", utc(series.next_due(tk, t("2026-05-05T10:00:00Z"))))
  end)

  it("COUNT counts the occurrences of the series", function()
    local tk = task("FREQ=DAILY;COUNT=3", "2026-05-01T09:00:00Z", { index = 2, completed_at = "2026-05-01T10:00:00Z" })
    assert.are.equal("2026-05-02T09:00:00Z", utc(series.next_due(tk, 0)))
    tk.occurrence_index = 3
    assert.are.equal("count", select(3, series.next_due(tk, 0)))
  end)

  it("UNTIL ends the series", function()
    local tk = task("FREQ=DAILY;UNTIL=20260502T090000Z", "2026-05-01T09:00:00Z",
      { completed_at = "2026-05-01T10:00:00Z" })
    assert.are.equal("2026-05-02T09:00:00Z", utc(series.next_due(tk, 0)))
    tk.due_at = "2026-05-02T09:00:00Z"
    assert.are.equal("ended", select(3, series.next_due(tk, 0)))
  end)

  it("answers why there is nothing to do", function()
    local none, msg, code = series.next_due({ due_at = "2026-05-01T09:00:00Z" }, 0)
    assert.is_nil(none)
    assert.is_string(msg)
    assert.are.equal("not_recurring", code)
    assert.are.equal("no_due", select(3, series.next_due(task("FREQ=DAILY", json.null), 0)))
    none, msg, code = series.next_due(task("FREQ=SOMETIMES", "2026-05-01T09:00:00Z"), 0)
    assert.is_nil(none)
    assert.matches("FREQ", msg)
    assert.are.equal("invalid_rule", code)
    assert.has_error(function() series.next_due(task("FREQ=DAILY", "2026-05-01T09:00:00Z"), 1.5) end)
  end)
end)

describe("tasks.series.present and shift_reminders", function()
  it("shows the effective zone, from and a description", function()
    assert.are.same({ rule = "FREQ=DAILY", tz = "Europe/Paris", from = "due", description = "every day" },
      series.present({ rule = "FREQ=DAILY" }, "Europe/Paris"))
    assert.are.equal(json.null, series.present(json.null, "UTC"))
    assert.are.same({ freq = "daily" }, series.present({ freq = "daily" })) -- stored before rules were checked
  end)

  it("copies offset reminders and drops absolute ones", function()
    local got = series.shift_reminders({ { at = "2026-05-01T08:45:00Z" }, { before = "PT5M" } }, 86400)
    assert.are.same({ { before = "PT5M" } }, got)
    assert.are.equal(json.null, series.shift_reminders(json.null, 1))
    assert.is_true(json.is_array(series.shift_reminders({}, 1)))
  end)
end)

describe("recurrence.input.field", function()
  local function fails(v)
    local out, msg, code, field = input.field(v)
    assert.are.equal("invalid_field", code)
    assert.is_nil(out)
    assert.is_string(msg)
    return field, msg
  end

  it("cleans a rule, a phrase, a zone and from", function()
    assert.are.same({ rule = "FREQ=WEEKLY;BYDAY=MO", from = "due" }, input.field({ rule = " freq=weekly;byday=mo " }))
    assert.are.same({ rule = "FREQ=DAILY", from = "completion", tz = "Asia/Tokyo" },
      input.field({ phrase = "every day", from = "completion", tz = "Asia/Tokyo" }))
    assert.are.same({ rule = "FREQ=DAILY", from = "due" },
      input.field({ rule = "FREQ=DAILY", description = "every day", tz = json.null, from = json.null }))
    assert.are.equal(json.null, input.field(json.null))
  end)

  it("names the part at fault", function()
    assert.are.equal("recurrence", (fails("FREQ=DAILY")))
    assert.are.equal("recurrence", (fails(json.array({ "FREQ=DAILY" }))))
    assert.are.equal("recurrence.rule", (fails({})))
    assert.are.equal("recurrence.rule", (fails({ rule = "" })))
    assert.are.equal("recurrence.rule", (fails({ rule = string.rep("FREQ=DAILY;", 60) })))
    local field, msg = fails({ rule = "FREQ=DAILY;INTERVAL=0" })
    assert.are.equal("recurrence.rule", field)
    assert.matches("INTERVAL", msg)
    assert.are.equal("recurrence.rule", (fails({ rule = "FREQ=DAILY", phrase = "every day" })))
    assert.are.equal("recurrence.phrase", (fails({ phrase = "now and then" })))
    assert.are.equal("recurrence.phrase", (fails({ phrase = 3 })))
    assert.are.equal("recurrence.tz", (fails({ rule = "FREQ=DAILY", tz = "Not/AZone" })))
    assert.are.equal("recurrence.tz", (fails({ rule = "FREQ=DAILY", tz = "../../etc/passwd" })))
    assert.are.equal("recurrence.from", (fails({ rule = "FREQ=DAILY", from = "start" })))
    assert.are.equal("recurrence.interval", (fails({ rule = "FREQ=DAILY", interval = 2 })))
  end)
end)
