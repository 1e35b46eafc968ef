--- Calendar arithmetic of the recurrence engine (proleptic Gregorian, day
-- numbers since 1970-01-01) and the RFC 5545 names it shares between parsing
-- (recurrence.rrule_text) and expansion (recurrence.rrule): frequencies,
-- weekdays, month lengths and the per-year day masks.
-- @module recurrence.calendar

local M = {}

M.FREQ = { YEARLY = 1, MONTHLY = 2, WEEKLY = 3, DAILY = 4, HOURLY = 5, MINUTELY = 6 }
M.WD = { MO = 0, TU = 1, WE = 2, TH = 3, FR = 4, SA = 5, SU = 6 }
M.WDNAME = { [0] = "MO", "TU", "WE", "TH", "FR", "SA", "SU" }
local MONTH_MAX = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 }
M.MONTH_MAX = MONTH_MAX
M.MONTH_NAME = { "January", "February", "March", "April", "May", "June", "July",
  "August", "September", "October", "November", "December" }

--- Days since 1970-01-01 of a civil date.
-- @tparam integer y year
-- @tparam integer m month 1..12
-- @tparam integer d day of month
-- @treturn integer day number (1970-01-01 is 0, a Thursday)
local function days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = y // 400
  local yoe = y - era * 400
  local doy = (153 * ((m + 9) % 12) + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  return era * 146097 + doe - 719468
end

--- Civil date of a day number (inverse of days_from_civil).
-- @tparam integer z day number
-- @treturn integer year
-- @treturn integer month
-- @treturn integer day
local function civil_from_days(z)
  z = z + 719468
  local era = z // 146097
  local doe = z - era * 146097
  local yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
  local y = yoe + era * 400
  local doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
  local mp = (5 * doy + 2) // 153
  local d = doy - (153 * mp + 2) // 5 + 1
  local m = mp < 10 and mp + 3 or mp - 9
  if m <= 2 then y = y + 1 end
  return y, m, d
end

M.days_from_civil = days_from_civil
M.civil_from_days = civil_from_days

local function is_leap(y)
  return (y % 4 == 0 and y % 100 ~= 0) or y % 400 == 0
end

local function month_days(y, m)
  if m == 2 then return is_leap(y) and 29 or 28 end
  return MONTH_MAX[m]
end

-- Per year length (365/366): for each day of the year j (1-based, plus 7 days
-- of the next January for weeks that cross the year end) its month, day of
-- month and negative day of month; and where each month starts and ends.
local MASKS = {}
for _, leap in ipairs { false, true } do
  local mm, md, nmd, ms, me = {}, {}, {}, {}, {}
  local j = 0
  for m = 1, 12 do
    local dim = (m == 2) and (leap and 29 or 28) or MONTH_MAX[m]
    ms[m] = j + 1
    for d = 1, dim do
      j = j + 1
      mm[j], md[j], nmd[j] = m, d, d - dim - 1
    end
    me[m] = j
  end
  for d = 1, 7 do
    j = j + 1
    mm[j], md[j], nmd[j] = 1, d, d - 32
  end
  MASKS[leap] = { mm = mm, md = md, nmd = nmd, ms = ms, me = me }
end

M.is_leap = is_leap
M.month_days = month_days
M.MASKS = MASKS

return M
