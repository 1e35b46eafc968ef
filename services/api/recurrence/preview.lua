--- GET /api/recurrence/preview: the next occurrences of a rule, for the UI to show
-- before a recurring task is saved.
--   ?rule=FREQ=WEEKLY;BYDAY=MO (or phrase=every monday)  required
--   &start=2026-05-04T09:00:00+02:00   the first due time (default: now, to the minute)
--   &tz=Europe/Paris                   the zone the rule is evaluated in (default UTC)
--   &count=N                           1..100 (default 10)
-- Answers `{rule, description, tz, start, occurrences = [RFC 3339 in tz]}`. As for a
-- task, `start` is listed only when it matches the rule. Every parameter is checked
-- (422 naming it). No database access.
-- @module api.recurrence.preview

local json = require "json"
local tz = require "tz"
local timer = require "timer"
local recurrence = require "recurrence"
local errors = require "web.errors"
local query = require "web.query"
local schema = require "tasks.schema"
local input = require "recurrence.input"

local M = {}

M.COUNT_DEFAULT, M.COUNT_MAX = 10, 100
M.PARAMS = { rule = true, phrase = true, start = true, tz = true, count = true }

-- Whether an instant, and its local time in `zone`, lie within the supported range (the
-- occurrences are written as local times, which RFC 3339 bounds to years 0001..9999).
local function in_range(t, zone)
  if t < recurrence.EPOCH_MIN or t > recurrence.EPOCH_MAX then return false end
  local wall = tz.to_wall(t, zone)
  return wall >= recurrence.EPOCH_MIN and wall <= recurrence.EPOCH_MAX
end

--- GET /api/recurrence/preview (authenticated by the manifest)
function M.preview(req)
  for _, name in ipairs(query.names(req)) do
    if not M.PARAMS[name] then
      return errors.invalid(name, "unknown query parameter " .. errors.printable(name)
        .. "; allowed: rule (or phrase), start, tz, count", "unknown_field")
    end
    local values = req.query_all and req.query_all[name] or { query.one(req, name) }
    if #values > 1 then return errors.invalid(name, name .. " must be given once") end
    local _, msg = schema.check_text(values[1], 0, 600)
    if msg then return errors.invalid(name, name .. " " .. msg) end
  end
  local function get(name)
    local v = query.one(req, name)
    if v == "" then return nil end
    return v
  end
  local rule, msg, code, part = input.rule(get("rule"), get("phrase"))
  if not rule then return errors.invalid(part, msg, code) end
  local zone = get("tz") or "UTC"
  if not input.valid_zone(zone) then
    return errors.invalid("tz", input.zone_problem("tz", zone) .. " (or leave it out: UTC)")
  end
  local start
  local s = get("start")
  if s then
    local ok, why = schema.rfc3339(s)
    start = ok and tz.parse_rfc3339(s)
    if why == "range" then
      return errors.invalid("start", "start must be within the supported range, " .. schema.RANGE_TEXT)
    end
    if not start then
      return errors.invalid("start", "start must be an RFC 3339 instant with an offset, like "
        .. "2026-05-04T09:00:00+02:00 (default: now)")
    end
  else
    start = math.floor(timer.now())
    start = start - start % 60
  end
  local count = M.COUNT_DEFAULT
  local c = get("count")
  if c then
    local digits = c:match("^%d+$")
    count = digits and #digits <= 3 and math.tointeger(tonumber(digits))
    if not count or count < 1 or count > M.COUNT_MAX then
      return errors.invalid("count", "count must be a whole number from 1 to " .. M.COUNT_MAX)
    end
  end
  if not in_range(start, zone) then
    return errors.invalid("start", "start in " .. zone .. " falls outside the supported range, "
      .. schema.RANGE_TEXT)
  end
  local list, err = recurrence.expand(rule, start, zone, count)
  if not list then return errors.invalid("rule", "rule cannot be expanded: " .. tostring(err)) end
  for _, t in ipairs(list) do
    if not in_range(t, zone) then
      return errors.invalid("count", "the occurrences leave the supported range (" .. schema.RANGE_TEXT
        .. ", also as local time in " .. zone .. "): ask for fewer (count) or start earlier")
    end
  end
  local out = {}
  for i, t in ipairs(list) do out[i] = tz.format(t, zone) end
  return 200, {
    rule = rule,
    description = recurrence.describe(rule),
    tz = zone,
    start = tz.format(start, zone),
    occurrences = json.array(out),
  }
end

return M
