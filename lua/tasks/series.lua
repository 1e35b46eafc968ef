--- Recurring tasks, the pure part: how a task's `recurrence` is shown, and when the next
-- occurrence of a series is due. No I/O (the spawn itself is tasks.spawn).
--
-- A stored recurrence is `{rule = RRULE, tz = zone (optional), from = "due"|"completion"}`;
-- the zone defaults to the task's tz, else UTC. The occurrence that is completed is the
-- reference point:
--
-- * `from = "due"`: the first occurrence of the rule strictly after the current due time
--   and after the completion time; a late completion (after a holiday) gives the next
--   occurrence in the future, not a pile of overdue copies;
-- * `from = "completion"` (Todoist's "every!"): the rule restarted on the completion day
--   at the due's time of day (at the completion minute for HOURLY and MINUTELY rules),
--   and its first occurrence after that start.
--
-- COUNT counts the tasks of the series since the rule was set (`occurrence_index`, kept
-- by the database): the occurrence with index COUNT is the last. UNTIL is the engine's.
-- @module tasks.series

local json = require "json"
local recurrence = require "recurrence"
local tz = require "tz"

local M = {}

--- Where a series is counted from.
M.FROM = { due = true, completion = true }

-- Descriptions by rule text; bounded so that arbitrary rules cannot grow it forever.
local described, described_n = {}, 0

local function description(rule)
  local d = described[rule]
  if d then return d end
  local text = recurrence.describe(rule)
  if not text then return nil end
  if described_n >= 512 then described, described_n = {}, 0 end
  described[rule], described_n = text, described_n + 1
  return text
end

--- The zone a recurrence is evaluated in.
-- @tparam table rec the stored recurrence
-- @tparam[opt] string task_tz the task's zone
-- @treturn string
function M.zone(rec, task_tz)
  if type(rec.tz) == "string" then return rec.tz end
  if type(task_tz) == "string" then return task_tz end
  return "UTC"
end

--- The recurrence as the API shows it: the stored rule, the effective zone and `from`,
-- and `description` (English). Anything else (NULL, objects stored before rules were
-- checked) is returned as it is.
-- @param rec the stored value
-- @tparam[opt] string task_tz the task's zone
function M.present(rec, task_tz)
  if type(rec) ~= "table" or type(rec.rule) ~= "string" then return rec end
  return {
    rule = rec.rule,
    tz = M.zone(rec, task_tz),
    from = M.FROM[rec.from] and rec.from or "due",
    description = description(rec.rule),
  }
end

--- The stored form of a recurrence (what the API accepted: no description).
-- @tparam table rec
-- @treturn table
function M.stored(rec)
  return { rule = rec.rule, tz = rec.tz, from = rec.from }
end

local function epoch(s)
  if type(s) ~= "string" then return nil end
  local t = tz.parse_rfc3339(s)
  return t
end

--- When the occurrence after `task` is due.
-- @tparam table task a task row: `due_at`, `completed_at` (RFC 3339 strings), `recurrence`,
--   `tz`, `occurrence_index`
-- @tparam integer now epoch seconds: the completion time when the row has none (a skip)
-- @treturn[1] integer the next due time (epoch seconds)
-- @treturn[2] nil
-- @treturn[2] string why there is none, for a person
-- @treturn[2] string code: `not_recurring`, `no_due`, `count` (COUNT reached), `ended` (UNTIL,
--   or a rule without further occurrences), `out_of_range` (the next one would be after
--   year 9999: the series ends there), `invalid_rule` (the engine's message)
function M.next_due(task, now)
  if math.type(now) ~= "integer" then error("now must be an integer epoch", 2) end
  local rec = task.recurrence
  if type(rec) ~= "table" or type(rec.rule) ~= "string" then return nil, "the task does not recur", "not_recurring" end
  local due = epoch(task.due_at)
  if not due then return nil, "a recurring task needs a due_at", "no_due" end
  local r, err = recurrence.parse(rec.rule)
  if not r then return nil, err, "invalid_rule" end
  local index = math.tointeger(task.occurrence_index) or 1
  if r.count and index >= r.count then return nil, "the series reached its COUNT", "count" end
  -- The expansion starts at this occurrence: COUNT is ours (index), not the engine's.
  local open = {}
  for k, v in pairs(r) do open[k] = v end
  open.count = nil
  local zone = M.zone(rec, task.tz)
  local done = epoch(task.completed_at) or now
  local nxt
  if rec.from == "completion" then
    local start
    if r.freq == "HOURLY" or r.freq == "MINUTELY" then
      start = done - done % 60
    else
      local wall_done = tz.to_wall(done, zone)
      local wall_due = tz.to_wall(due, zone)
      start = tz.from_wall(wall_done - wall_done % 86400 + wall_due % 86400, zone)
    end
    nxt, err = recurrence.next_after(open, start, zone, start)
  else
    nxt, err = recurrence.next_after(open, due, zone, math.max(due, done))
  end
  if nxt and nxt > recurrence.EPOCH_MAX then
    return nil, "the next occurrence would fall after 9999-12-31T23:59:59Z, the end of the supported range",
      "out_of_range"
  end
  if nxt then return nxt end
  if err then return nil, err, "invalid_rule" end
  return nil, "the series has no further occurrence", "ended"
end

--- Reminders carried to the next occurrence: offsets (`{"before": ...}`) follow the new
-- due time as they are; an absolute reminder (`{"at": ...}`) named one instant of this
-- occurrence and is not copied (issue 15).
-- @param reminders the stored reminders (an array, or NULL)
-- @tparam integer delta seconds between the old and the new due time (unused: offsets
--   follow by themselves)
function M.shift_reminders(reminders, delta)
  local _ = delta
  if type(reminders) ~= "table" then return reminders end
  local out = {}
  for _, item in ipairs(reminders) do
    if not (type(item) == "table" and item.at ~= nil) then out[#out + 1] = item end
  end
  return json.array(out)
end

return M
