--- Reminders of a task: the shape the API accepts (`{"at": RFC 3339}` or
-- `{"before": ISO 8601 duration}`, at most `MAX` per task) and the instants they name.
-- The task API validates with `check`; the notification bundle's scheduler computes
-- `instants` from the task carried by each task event. Pure Lua apart from `tz`.
-- @module reminders

local duration = require "reminders.duration"

local M = {}

--- At most this many reminders per task.
M.MAX = 10

--- The NOTIFY channel of schedule changes: a change to `reminder_schedule` due soon
-- notifies it so that every replica's scheduler recomputes its sleep.
M.CHANNEL = "todo_reminders"

--- A scheduler sleeps at most this long, so only rows due sooner need a NOTIFY.
M.MAX_SLEEP = tonumber(os.getenv("NOTIFY_MAX_SLEEP_SECONDS") or "") or 30

local function epoch_of(s)
  if type(s) ~= "string" then return nil end
  local tz = require "tz"
  local t, frac = tz.parse_rfc3339(s)
  if not t then return nil end
  return t + (frac or 0)
end
M.epoch_of = epoch_of

-- The supported range of instants (years 1 to 9999 in UTC, as for due_at): PostgreSQL's
-- timestamptz refuses year 0, so an instant outside it would fail the schedule's insert
-- and dead-letter the task's event.
local function in_range(t)
  local recurrence = require "recurrence"
  return t >= recurrence.EPOCH_MIN and t <= recurrence.EPOCH_MAX
end

--- The name of a reminder within its task (stable across edits of other fields).
-- @tparam table r a clean reminder
-- @treturn string `at:<instant as given>` or `before:<duration>`
function M.key(r)
  if r.at then return "at:" .. r.at end
  return "before:" .. r.before
end

--- Validate a reminders list as sent to the API.
-- @param list the decoded JSON value (an array; an empty object counts as empty array)
-- @param due the task's due time after the change: a string (an offset is fine), false or
--   json.null (there is none: an offset is refused), nil (not known here: the caller or
--   the database checks it, see `needs_due`)
-- @treturn[1] table clean reminders (`{at = s}` or `{before = s}` each)
-- @treturn[2] nil
-- @treturn[2] string the message
-- @treturn[2] string a code: `invalid_field`, or `reminder_needs_due` when an offset has
--   no due time
-- @treturn[2] string the field at fault (`reminders[2].before`)
function M.check(list, due)
  if type(list) ~= "table" then return nil, "reminders must be an array", "invalid_field", "reminders" end
  local n = #list
  for k in pairs(list) do
    if math.type(k) ~= "integer" or k < 1 or k > n then
      return nil, "reminders must be an array of {\"at\": ...} or {\"before\": ...} objects", "invalid_field",
        "reminders"
    end
  end
  if n > M.MAX then
    return nil, "a task may have at most " .. M.MAX .. " reminders (got " .. n .. ")", "invalid_field", "reminders"
  end
  local out, seen = {}, {}
  for i, r in ipairs(list) do
    local where = "reminders[" .. i .. "]"
    if type(r) ~= "table" or #r > 0 then
      return nil, where .. " must be an object {\"at\": RFC 3339} or {\"before\": ISO 8601 duration}",
        "invalid_field", where
    end
    local clean, count = nil, 0
    for k, v in pairs(r) do
      if k == "at" then
        local t = epoch_of(v)
        if not t then
          return nil, where .. ".at must be an RFC 3339 instant with an offset, like 2026-05-01T09:00:00+02:00",
            "invalid_field", where .. ".at"
        end
        if not in_range(t) then
          return nil, where .. ".at must be within the supported range, from 0001-01-01T00:00:00Z to "
            .. "9999-12-31T23:59:59Z", "invalid_field", where .. ".at"
        end
        clean, count = { at = v }, count + 1
      elseif k == "before" then
        local d, why = duration.parse(v)
        if not d then return nil, where .. ".before " .. why, "invalid_field", where .. ".before" end
        if due ~= nil and type(due) ~= "string" then
          return nil, where .. ".before needs a due time: set due_at, or use {\"at\": ...}",
            "reminder_needs_due", where .. ".before"
        end
        clean, count = { before = v }, count + 1
      else
        return nil, where .. " has an unknown field " .. require("web.errors").printable(k)
          .. "; a reminder is {\"at\": RFC 3339} or {\"before\": ISO 8601 duration}", "invalid_field", where
      end
    end
    if count ~= 1 then
      return nil, where .. " must have exactly one of \"at\" or \"before\"", "invalid_field", where
    end
    local key = M.key(clean)
    if not seen[key] then
      seen[key] = true
      out[#out + 1] = clean
    end
  end
  return out
end

--- Whether clean reminders include an offset (which needs a due time).
-- @tparam table list clean reminders
-- @treturn integer|nil the index of the first `before`, or nil
function M.needs_due(list)
  for i, r in ipairs(list) do
    if r.before then return i end
  end
  return nil
end

--- The first offset reminder whose instant leaves the supported range (an offset before
-- a due time early in year 1), for the API to refuse with 422.
-- @tparam table list clean reminders
-- @tparam string due the due time (RFC 3339)
-- @tparam[opt] string zone the task's zone (UTC when nil)
-- @treturn integer|nil the index of that reminder, or nil
function M.out_of_range(list, due, zone)
  local t = epoch_of(due)
  if not t then return nil end
  for i, r in ipairs(list) do
    local d = r.before and duration.parse(r.before)
    if d and not in_range(duration.shift(t, d, -1, zone)) then return i end
  end
  return nil
end

--- The instants a task's reminders name, skipping entries that are not valid reminders
-- and instants outside the supported range (an offset before a due time in year 1): the
-- schedule never fails on a bad stored value.
-- @tparam table task a task as in events (`due_at`, `tz`, `reminders`)
-- @treturn table array of `{key = string, at = epoch seconds}`
function M.instants(task)
  local out = {}
  local list = type(task) == "table" and task.reminders
  if type(list) ~= "table" then return out end
  local due = epoch_of(task.due_at)
  local zone = type(task.tz) == "string" and task.tz or nil
  if zone then
    local ok, tz = pcall(require, "tz")
    if not (ok and tz.valid(zone)) then zone = nil end
  end
  local seen = {}
  for i, r in ipairs(list) do
    if i > M.MAX then break end
    if type(r) == "table" then
      local at, key
      if r.at ~= nil then
        at = epoch_of(r.at)
        key = at and ("at:" .. r.at)
      elseif r.before ~= nil and due then
        local d = duration.parse(r.before)
        if d then
          at = duration.shift(due, d, -1, zone)
          key = "before:" .. r.before
        end
      end
      if at and in_range(at) and not seen[key] then
        seen[key] = true
        out[#out + 1] = { key = key, at = at }
      end
    end
  end
  return out
end

return M
