--- What the RRULE and phrase fuzz drivers (rrule.lua, phrase.lua) share: one input is
-- up to six lines, `rule or phrase`, `start` (RFC 3339), `tz`, `count`, `from`
-- (due|completion), `completed_at` (RFC 3339); absent lines are absent parameters. It
-- goes through every path a client's rule takes, with the real modules:
--   1. the parser itself (recurrence.rrule.parse / recurrence.phrase) on any text, its
--      canonical text (which must parse back to itself) and its description;
--   2. GET /api/recurrence/preview (api.recurrence.preview, no database), which must
--      answer 200 or 422;
--   3. a task body with that recurrence (tasks.schema.task_input, as POST /api/tasks),
--      then, when accepted, the next occurrence the recurring-task consumer would create
--      (tasks.series.next_due, on the completion at `completed_at`) and its RFC 3339 text
--      (what tasks.spawn inserts).
-- @module fuzz_recurrence

local check = require "fuzz_check"
local tz = require "tz"
local rrule = require "recurrence.rrule"
local recurrence = require "recurrence"
local schema = require "tasks.schema"
local series = require "tasks.series"
local preview = require "api.recurrence.preview"

local M = {}

local function parser(kind, text)
  local r, err
  if kind == "rule" then
    r, err = rrule.parse(text)
    check.convention("rrule.parse", r, err)
    if not r then return end
    local canonical = rrule.to_string(r)
    local again, err2 = rrule.validate(canonical)
    check.that(again == canonical, "the canonical rule %q does not parse back to itself: %s", canonical,
      tostring(again or err2))
    check.convention("describe", recurrence.describe(r))
  else
    local rule
    rule, err = recurrence.parse_phrase(text)
    check.convention("parse_phrase", rule, err)
    if not rule then return end
    check.that(rrule.validate(rule) == rule, "phrase %q gave %q, which is not a canonical rule", text, rule)
    check.convention("describe", recurrence.describe(rule))
  end
end

local function task(kind, line)
  local body = { title = "fuzz", due_at = line[2], tz = line[3],
    recurrence = { [kind] = line[1], from = line[5] } }
  local fields, msg, code = schema.task_input(body, "create")
  check.convention("task_input", fields, msg, code)
  if not fields then return end
  check.encodes("the task's fields", fields)
  local rec = fields.recurrence
  check.encodes("the recurrence as presented", series.present(rec, fields.tz))
  local row = { due_at = fields.due_at, completed_at = line[6], recurrence = rec, tz = fields.tz,
    occurrence_index = 1 }
  local now = line[6] and tz.parse_rfc3339(line[6]) or tz.parse_rfc3339(fields.due_at)
  local nxt, nmsg, ncode = series.next_due(row, math.tointeger(now) or 0)
  check.convention("series.next_due", nxt, nmsg, ncode)
  if nxt then
    check.that(math.type(nxt) == "integer" and nxt <= recurrence.EPOCH_MAX, "next_due gave %s", tostring(nxt))
    tz.format(nxt, "UTC")
  end
end

--- Run one input; `kind` is "rule" or "phrase".
function M.run(kind, data)
  local line = check.lines(data)
  for i = 2, 6 do line[i] = check.opt(line[i]) end
  parser(kind, line[1])
  local query = { [kind] = line[1], start = line[2], tz = line[3], count = line[4] }
  check.response("GET /api/recurrence/preview", preview.preview({ query = query }))
  task(kind, line)
end

return M
