--- Short English descriptions of recurrence rules ("every 2 weeks on Monday
-- and Thursday", "on the last Friday of every month").
-- @module recurrence.describe

local rrule = require "recurrence.rrule"

local concat = table.concat

local DAY = { MO = "Monday", TU = "Tuesday", WE = "Wednesday", TH = "Thursday",
  FR = "Friday", SA = "Saturday", SU = "Sunday" }
local DAY_ORDER = { MO = 1, TU = 2, WE = 3, TH = 4, FR = 5, SA = 6, SU = 7 }
local ORD = { "first", "second", "third", "fourth", "fifth" }
local UNIT = { YEARLY = "year", MONTHLY = "month", WEEKLY = "week", DAILY = "day",
  HOURLY = "hour", MINUTELY = "minute" }
local MONTH = rrule.MONTH_NAMES

local function list_and(items, word)
  word = word or "and"
  local n = #items
  if n == 0 then return "" end
  if n == 1 then return items[1] end
  return concat(items, ", ", 1, n - 1) .. " " .. word .. " " .. items[n]
end

local function ordinal_word(n)
  if n == -1 then return "last" end
  if n < -1 then return (ORD[-n] or (-n .. "th")) .. " to last" end
  return ORD[n] or (n .. "th")
end

local function suffix(n)
  local a = math.abs(n)
  local last2, last = a % 100, a % 10
  if last2 >= 11 and last2 <= 13 then return a .. "th" end
  if last == 1 then return a .. "st" end
  if last == 2 then return a .. "nd" end
  if last == 3 then return a .. "rd" end
  return a .. "th"
end

local function monthday(n)
  if n == -1 then return "last day" end
  if n < 0 then return suffix(-n) .. " to last day" end
  return suffix(n)
end

local function every(unit, n)
  if n == 1 then return "every " .. unit end
  return "every " .. n .. " " .. unit .. "s"
end

-- Plain weekdays as a set-like key ("MO,TU,WE,TH,FR"), in week order.
local function plain_days(r)
  if not r.byday then return nil end
  local days = {}
  for _, d in ipairs(r.byday) do
    if d.n then return nil end
    days[#days + 1] = d.day
  end
  table.sort(days, function(a, b) return DAY_ORDER[a] < DAY_ORDER[b] end)
  return days
end

local function day_names(days)
  local out = {}
  for i, d in ipairs(days) do out[i] = DAY[d] end
  return out
end

local function times(r)
  if not r.byhour and not r.byminute then return "" end
  if not r.byhour then
    local mins = {}
    for i, m in ipairs(r.byminute) do mins[i] = tostring(m) end
    return " at minute " .. list_and(mins)
  end
  local out = {}
  local hours = {}
  for i, h in ipairs(r.byhour) do hours[i] = h end
  table.sort(hours)
  local mins = r.byminute and { table.unpack(r.byminute) } or { 0 }
  table.sort(mins)
  for _, h in ipairs(hours) do
    for _, m in ipairs(mins) do out[#out + 1] = string.format("%d:%02d", h, m) end
  end
  return " at " .. list_and(out)
end

local function ending(r)
  if r.count then
    return r.count == 1 and ", once" or (", " .. r.count .. " times")
  end
  if r["until"] then
    local y, m, d, rest = r["until"]:match("^(%d%d%d%d)(%d%d)(%d%d)(.*)$")
    local s = ", until " .. y .. "-" .. m .. "-" .. d
    local h, mi, z = rest:match("^T(%d%d)(%d%d)%d%d(Z?)$")
    if h then s = s .. " " .. h .. ":" .. mi .. (z == "Z" and " UTC" or "") end
    return s
  end
  return ""
end

local function is_days(days, want)
  return days and concat(days, ",") == want
end

-- The main phrase, without times and ending.
local function body(r)
  local f, n = r.freq, r.interval
  local days = plain_days(r)
  local others = r.bymonth or r.byweekno or r.byyearday or r.bymonthday or r.bysetpos
  local ords = r.byday and not days

  if (f == "DAILY" or f == "WEEKLY") and n == 1 and not others then
    if is_days(days, "MO,TU,WE,TH,FR") then return "every weekday" end
    if is_days(days, "SA,SU") then return "every weekend" end
  end
  if (f == "WEEKLY" or f == "DAILY") and days and not others then
    if f == "WEEKLY" and n == 1 then return "every " .. list_and(day_names(days)) end
    return every(UNIT[f], n) .. " on " .. list_and(day_names(days))
  end

  if f == "MONTHLY" and not r.bymonth and not r.byyearday then
    local period = n == 1 and "every month" or ("every " .. n .. " months")
    if ords and not r.bymonthday and not r.bysetpos then
      local items = {}
      for _, d in ipairs(r.byday) do items[#items + 1] = ordinal_word(d.n) .. " " .. DAY[d.day] end
      return "on the " .. list_and(items) .. " of " .. period
    end
    if r.bymonthday and not r.byday and not r.bysetpos then
      local items = {}
      for i, d in ipairs(r.bymonthday) do items[i] = monthday(d) end
      return "on the " .. list_and(items) .. " of " .. period
    end
    if days and r.bysetpos and not r.bymonthday then
      local which
      if is_days(days, "MO,TU,WE,TH,FR") then
        which = "weekday"
      elseif is_days(days, "SA,SU") then
        which = "weekend day"
      elseif #days == 7 then
        which = "day"
      else
        which = list_and(day_names(days), "or")
      end
      local pos = {}
      for i, p in ipairs(r.bysetpos) do pos[i] = ordinal_word(p) end
      return "on the " .. list_and(pos) .. " " .. which .. " of " .. period
    end
  end

  if f == "YEARLY" and r.bymonth and #r.bymonth == 1 and not r.byweekno and not r.byyearday
      and not r.bysetpos then
    local mname = MONTH[r.bymonth[1]]
    local period = n == 1 and "every year" or ("every " .. n .. " years")
    if r.bymonthday and #r.bymonthday == 1 and r.bymonthday[1] > 0 and not r.byday then
      return period .. " on " .. mname .. " " .. r.bymonthday[1]
    end
    if ords and not r.bymonthday then
      local items = {}
      for _, d in ipairs(r.byday) do items[#items + 1] = ordinal_word(d.n) .. " " .. DAY[d.day] end
      return "on the " .. list_and(items) .. " of " .. mname .. " " .. period
    end
  end

  -- General form: the period, then each restriction in turn.
  local s = every(UNIT[f], n)
  if r.bymonth then
    local items = {}
    local ms = { table.unpack(r.bymonth) }
    table.sort(ms)
    for i, m in ipairs(ms) do items[i] = MONTH[m] end
    s = s .. " in " .. list_and(items)
  end
  if r.byweekno then
    local items = {}
    for i, w in ipairs(r.byweekno) do items[i] = w < 0 and ("the " .. ordinal_word(w) .. " week") or ("week " .. w) end
    s = s .. " in " .. list_and(items)
  end
  if r.byyearday then
    local items = {}
    for i, d in ipairs(r.byyearday) do items[i] = d < 0 and (ordinal_word(d) .. " day") or tostring(d) end
    s = s .. " on day " .. list_and(items) .. " of the year"
  end
  if r.bymonthday then
    local items = {}
    for i, d in ipairs(r.bymonthday) do items[i] = monthday(d) end
    s = s .. " on the " .. list_and(items)
  end
  if r.byday then
    local items = {}
    for _, d in ipairs(r.byday) do
      items[#items + 1] = d.n and (ordinal_word(d.n) .. " " .. DAY[d.day]) or DAY[d.day]
    end
    local joiner = r.bymonthday and ", if a " or (ords and " on the " or " on ")
    s = s .. joiner .. list_and(items, r.bymonthday and "or" or "and")
  end
  if r.bysetpos then
    local pos = {}
    for i, p in ipairs(r.bysetpos) do pos[i] = ordinal_word(p) end
    s = s .. ", only the " .. list_and(pos) .. " of each " .. UNIT[f]
  end
  return s
end

--- Describe a rule in a short English phrase.
-- @tparam string|table rule rule text or a rule from `recurrence.parse`
-- @treturn[1] string e.g. "every 2 weeks on Monday and Thursday"
-- @treturn[2] nil
-- @treturn[2] string what is wrong with the rule
local function describe(rule)
  local r = rule
  if type(rule) == "string" then
    local err
    r, err = rrule.parse(rule)
    if not r then return nil, err end
  elseif type(rule) ~= "table" or not rule.freq then
    error("rule must be a string or a parsed rule", 2)
  end
  return body(r) .. times(r) .. ending(r)
end

return describe
