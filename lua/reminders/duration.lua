--- ISO 8601 durations (`PT15M`, `P1D`, `P1DT2H`, `P2W`) for reminders and snoozes:
-- parsing with messages a user can act on, and subtracting/adding one to an instant.
-- Date parts (years, months, weeks, days) count on the wall clock of the task's zone, so
-- "one day before 09:00" is 09:00 the day before also across a daylight-saving change;
-- time parts (hours, minutes, seconds) are exact seconds. Pure Lua apart from `tz`.
-- @module reminders.duration

local M = {}

--- The longest duration accepted (in approximate seconds: a year of 366 days).
M.MAX_SECONDS = 366 * 86400

local DATE_UNITS = { Y = "years", M = "months", W = "weeks", D = "days" }
local TIME_UNITS = { H = "hours", M = "minutes", S = "seconds" }
local APPROX = { years = 366 * 86400, months = 31 * 86400, weeks = 7 * 86400, days = 86400,
  hours = 3600, minutes = 60, seconds = 1 }

local function parse_part(s, units, into, order)
  local last = 0
  local pos = 1
  while pos <= #s do
    local digits, unit, after = s:match("^(%d+)(%a)()", pos)
    if not digits then return nil end
    local name = units[unit]
    if not name or #digits > 6 then return nil end
    local rank = order:find(unit, 1, true)
    if rank <= last then return nil end -- each unit once, in order
    last = rank
    into[name] = tonumber(digits)
    pos = after
  end
  return true
end

--- Parse an ISO 8601 duration.
-- @tparam any s e.g. `"PT15M"`
-- @treturn[1] table `{years, months, weeks, days, hours, minutes, seconds, text}` (integers)
-- @treturn[2] nil
-- @treturn[2] string why, for a message (`"must be an ISO 8601 duration like PT15M or P1D"`)
function M.parse(s)
  local usage = "must be an ISO 8601 duration like PT15M, PT1H or P1D"
  if type(s) ~= "string" or #s > 40 then return nil, usage end
  local date, time = s:match("^P([^T]*)T(.+)$")
  if not date then date = s:match("^P([^T]*)$") end
  if not date then return nil, usage end
  if date == "" and (time == nil or time == "") then return nil, usage end
  local d = { years = 0, months = 0, weeks = 0, days = 0, hours = 0, minutes = 0, seconds = 0, text = s }
  if not parse_part(date, DATE_UNITS, d, "YMWD") then return nil, usage end
  if time and not parse_part(time, TIME_UNITS, d, "HMS") then return nil, usage end
  if M.approx_seconds(d) > M.MAX_SECONDS then return nil, "must be at most a year (P1Y)" end
  return d
end

--- Rough length in seconds (months of 31 days): for limits, not for scheduling.
function M.approx_seconds(d)
  local n = 0
  for name, secs in pairs(APPROX) do n = n + (d[name] or 0) * secs end
  return n
end

--- The instant `sign` * d away from `epoch` (sign -1: before, 1: after), date parts on
-- the wall clock of `zone` (UTC when nil), time parts exact.
-- @tparam number epoch seconds
-- @tparam table d from `parse`
-- @tparam integer sign -1 or 1
-- @tparam[opt] string zone IANA zone
-- @treturn integer epoch seconds
function M.shift(epoch, d, sign, zone)
  local t = math.floor(epoch)
  local frac = epoch - t
  if d.years ~= 0 or d.months ~= 0 or d.weeks ~= 0 or d.days ~= 0 then
    local tz = require "tz"
    zone = zone or "UTC"
    local y, mo, day, h, mi, s = tz.to_local(t, zone)
    local target_day = day + sign * (d.weeks * 7 + d.days)
    local target_month = mo + sign * (d.years * 12 + d.months)
    if d.years ~= 0 or d.months ~= 0 then
      -- a month shift keeps the day of month, clamped to the month's last day (Jan 31 - P1M
      -- -> Dec 31; Mar 31 - P1M -> Feb 28/29)
      local ny, nm = tz.to_local(tz.from_local(y, target_month, 1, 12, 0, 0, zone), zone)
      local last = select(3, tz.to_local(tz.from_local(ny, nm + 1, 0, 12, 0, 0, zone), zone))
      target_day = math.min(day, last) + sign * (d.weeks * 7 + d.days)
    end
    t = tz.from_local(y, target_month, target_day, h, mi, s, zone)
  end
  return t + sign * (d.hours * 3600 + d.minutes * 60 + d.seconds) + frac
end

return M
