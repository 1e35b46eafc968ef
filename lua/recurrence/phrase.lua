--- Common English recurrence phrases into RRULE text: "every day",
-- "every weekday", "every other week", "every 2 weeks on mon and thu",
-- "every month on the 1st", "every last friday", "every 3rd wednesday",
-- "last friday of the month", "monthly on the first and third monday",
-- "the 4th thursday of november", "every year on 25 dec", "every 3 hours",
-- with "at 9:30", "until <date>" and "for N times". Only what the rule can say: no
-- DTSTART, no zone. The grammar is documented in docs/api.md ("Recurrence phrases").
-- @module recurrence.phrase

local rrule = require "recurrence.rrule"

local DAYS = {
  mo = "MO", mon = "MO", monday = "MO", tu = "TU", tue = "TU", tues = "TU", tuesday = "TU",
  we = "WE", wed = "WE", wednesday = "WE", th = "TH", thu = "TH", thur = "TH", thurs = "TH",
  thursday = "TH", fr = "FR", fri = "FR", friday = "FR", sa = "SA", sat = "SA",
  saturday = "SA", su = "SU", sun = "SU", sunday = "SU",
}
local MONTHS = {
  jan = 1, january = 1, feb = 2, february = 2, mar = 3, march = 3, apr = 4, april = 4,
  may = 5, jun = 6, june = 6, jul = 7, july = 7, aug = 8, august = 8, sep = 9, sept = 9,
  september = 9, oct = 10, october = 10, nov = 11, november = 11, dec = 12, december = 12,
}
local ORDINALS = {
  first = 1, ["1st"] = 1, second = 2, ["2nd"] = 2, third = 3, ["3rd"] = 3, fourth = 4,
  ["4th"] = 4, fifth = 5, ["5th"] = 5, last = -1,
}
local NUMBERS = { one = 1, two = 2, three = 3, four = 4, five = 5, six = 6, seven = 7,
  eight = 8, nine = 9, ten = 10, twelve = 12, fifteen = 15, twenty = 20, thirty = 30 }
local UNITS = {
  day = "DAILY", days = "DAILY", week = "WEEKLY", weeks = "WEEKLY", month = "MONTHLY",
  months = "MONTHLY", year = "YEARLY", years = "YEARLY", hour = "HOURLY", hours = "HOURLY",
  minute = "MINUTELY", minutes = "MINUTELY", min = "MINUTELY", mins = "MINUTELY",
}
local ADVERBS = { daily = "DAILY", weekly = "WEEKLY", monthly = "MONTHLY", yearly = "YEARLY",
  annually = "YEARLY", hourly = "HOURLY" }
local WEEKDAYS = "MO,TU,WE,TH,FR"

-- A small cursor over the words of the phrase.
local function words_of(text)
  local t = text:lower():gsub("[,&]", " and "):gsub("%s+", " ")
  local w = {}
  for word in t:gmatch("%S+") do
    if not (word == "and" and w[#w] == "and") then w[#w + 1] = word end
  end
  return w
end

local function fail(msg)
  error({ msg = msg }, 0)
end

-- Day of month from "1st", "25", "25th".
local function day_number(word)
  local n = word and (word:match("^(%d%d?)$") or word:match("^(%d%d?)[snrt][tdh]$"))
  n = n and tonumber(n)
  if n and n >= 1 and n <= 31 then return math.tointeger(n) end
  return nil
end

local Parser = {}
Parser.__index = Parser

function Parser:peek(k) return self.w[self.i + (k or 0)] end
function Parser:take() local v = self.w[self.i]; self.i = self.i + 1; return v end
function Parser:accept(word)
  if self.w[self.i] == word then self.i = self.i + 1 return true end
  return false
end

-- "mon and thu", "monday, wednesday and friday"
function Parser:day_list()
  local days = {}
  while DAYS[self:peek()] or (DAYS[(self:peek() or ""):gsub("s$", "")]) do
    local word = self:take()
    days[#days + 1] = DAYS[word] or DAYS[word:gsub("s$", "")]
    if not (self:peek() == "and" and self:peek(1) and DAYS[(self:peek(1)):gsub("s$", "")]) then break end
    self:take()
  end
  return #days > 0 and days or nil
end

-- "25 dec", "dec 25", "december 25th"; returns month, day.
function Parser:month_day()
  local a, b = self:peek(), self:peek(1)
  if day_number(a) and MONTHS[b] then
    self.i = self.i + 2
    return MONTHS[b], day_number(a)
  end
  if MONTHS[a] and day_number(b) then
    self.i = self.i + 2
    return MONTHS[a], day_number(b)
  end
  return nil
end

-- A date after "until": 2026-12-31, 31 dec 2026, dec 31 2026, december 31, 2026.
function Parser:date()
  local w = self:peek()
  if not w then fail("missing date after 'until'") end
  local y, m, d = w:match("^(%d%d%d%d)%-(%d%d?)%-(%d%d?)$")
  if y then
    self:take()
  else
    m, d = self:month_day()
    if not m then fail("cannot read the date after 'until' (use e.g. 2026-12-31 or 31 dec 2026)") end
    self:accept("and")
    y = self:take()
    if not (y and y:match("^%d%d%d%d$")) then fail("the date after 'until' needs a 4-digit year") end
  end
  return string.format("%04d%02d%02d", tonumber(y), tonumber(m), tonumber(d))
end

-- "9:30", "9am", "5:15pm", "17h"; returns hour, minute.
function Parser:time()
  local w = self:take()
  if not w then fail("missing time after 'at'") end
  local h, m, ap = w:match("^(%d%d?):(%d%d)([ap]?m?)$")
  if not h then
    h, ap = w:match("^(%d%d?)([ap]m)$")
    m = "0"
  end
  if not h and w:match("^%d%d?$") then
    h, m = w, "0"
    if self:peek() == "am" or self:peek() == "pm" then ap = self:take() end
  end
  if not h then fail("cannot read the time '" .. w .. "'") end
  h, m = tonumber(h), tonumber(m)
  if ap == "" and (self:peek() == "am" or self:peek() == "pm") then ap = self:take() end
  if ap == "pm" and h < 12 then h = h + 12 elseif ap == "am" and h == 12 then h = 0 end
  if h > 23 or m > 59 then fail("time '" .. w .. "' is out of range") end
  return math.tointeger(h), math.tointeger(m)
end

-- What follows "every": sets freq, interval and the day parts.
function Parser:head(r)
  local w = self:peek()
  if ADVERBS[w] then
    self:take()
    r.freq = ADVERBS[w]
    return
  end
  if w == "weekdays" then
    self:take()
    r.freq, r.byday = "WEEKLY", WEEKDAYS
    return
  end
  if not self:accept("every") and not self:accept("each") then
    local on = self:accept("on")
    local the = self:accept("the")
    if self:ordinal_ahead() then
      -- "last friday of the month", "the 4th thursday of november", "on the 1st weekday"
      r.interval = 1
      self:ordinal_day(r)
      r.freq = r.bymonth and "YEARLY" or "MONTHLY"
      return
    end
    if day_number(self:peek()) and (self:peek(1) == "of" or self:peek(1) == "and" or self:peek(1) == "day") then
      -- "the 1st of every month", "1st and 15th of the month", "the 25th of december"
      local days = {}
      repeat
        days[#days + 1] = day_number(self:take())
      until not (self:accept("and") and (self:accept("the") or true) and day_number(self:peek()))
      self:accept("day")
      r.interval, r.bymonthday = 1, table.concat(days, ",")
      self:of_month(r)
      r.freq = r.bymonth and "YEARLY" or "MONTHLY"
      return
    end
    if not (on or the) then
      fail("expected a phrase starting with 'every' (like 'every day') or with a day of the month "
        .. "(like 'last friday of the month')")
    end
    if the then self.i = self.i - 1 end
  end
  self:accept("the")
  w = self:peek()
  local n = 1
  if w == "other" then
    self:take()
    n = 2
  elseif w and (w:match("^%d+$") and not day_number(w) or w:match("^%d+$") and UNITS[self:peek(1)]) then
    local digits = self:take()
    n = math.tointeger(tonumber(digits))
    if not n then fail("'" .. digits .. "' is too large a number") end
  elseif NUMBERS[w] and UNITS[self:peek(1)] then
    self:take()
    n = NUMBERS[w]
  end
  r.interval = n
  w = self:peek()
  if UNITS[w] then
    self:take()
    r.freq = UNITS[w]
    return
  end
  if w == "weekday" or w == "workday" or (w == "business" and self:peek(1) == "day") then
    if n ~= 1 then fail("'every " .. n .. " weekdays' is not supported") end
    self:take()
    self:accept("day")
    r.freq, r.byday = "WEEKLY", WEEKDAYS
    return
  end
  if w == "weekend" then
    self:take()
    r.freq, r.byday = "WEEKLY", "SA,SU"
    return
  end
  if ORDINALS[w] then
    self:ordinal_day(r)
    r.freq = "MONTHLY"
    return
  end
  local days = self:day_list()
  if days then
    r.freq, r.byday = "WEEKLY", table.concat(days, ",")
    return
  end
  local m, d = self:month_day()
  if m then
    r.freq, r.bymonth, r.bymonthday = "YEARLY", m, d
    return
  end
  fail("cannot understand '" .. (w or "") .. "' after 'every'")
end

-- Whether "first monday", "last day", "2nd and 4th tuesday", "last weekday" follows.
function Parser:ordinal_ahead()
  local k = 0
  while ORDINALS[self:peek(k)] do
    k = k + 1
    if self:peek(k) == "and" and ORDINALS[self:peek(k + 1)] then k = k + 1 end
  end
  if k == 0 then return false end
  local w = self:peek(k) or ""
  return w == "day" or w == "weekday" or w == "workday" or DAYS[w] ~= nil or DAYS[w:gsub("s$", "")] ~= nil
end

-- "last friday", "3rd wednesday", "1st and 3rd monday", "first weekday", "last day",
-- then "of the month" / "of every month", or "of <month>" (sets bymonth: once a year).
function Parser:ordinal_day(r)
  local ns = { ORDINALS[self:take()] }
  while self:peek() == "and" and ORDINALS[self:peek(1)] do
    self:take()
    ns[#ns + 1] = ORDINALS[self:take()]
  end
  local function list(suffix)
    local out = {}
    for i, n in ipairs(ns) do out[i] = tostring(n) .. (suffix or "") end
    return table.concat(out, ",")
  end
  local w = self:peek()
  local day = w and (DAYS[w] or DAYS[w:gsub("s$", "")])
  if w == "day" then
    self:take()
    r.bymonthday = list()
  elseif w == "weekday" or w == "workday" then
    self:take()
    r.byday, r.bysetpos = WEEKDAYS, list()
  elseif day then
    self:take()
    r.byday = list(day)
  else
    fail("expected a weekday or 'day' after '" .. self.w[self.i - 1] .. "'")
  end
  self:of_month(r)
end

-- An optional "of the month" / "of every month", or "of <month>" (sets bymonth).
function Parser:of_month(r)
  if not self:accept("of") then return end
  self:accept("the")
  self:accept("every")
  self:accept("each")
  local month = MONTHS[self:peek()]
  if month then
    self:take()
    r.bymonth = month
  elseif not self:accept("month") then
    fail("expected 'month' or a month's name after 'of'")
  end
end

-- "on ...": days of the week, days of the month, a date in the year.
function Parser:on(r)
  self:accept("the")
  local w = self:peek()
  if self:ordinal_ahead() then
    if r.freq ~= "MONTHLY" and r.freq ~= "YEARLY" then r.freq = "MONTHLY" end
    self:ordinal_day(r)
    return
  end
  local days = self:day_list()
  if days then
    r.byday = table.concat(days, ",")
    if r.freq ~= "WEEKLY" and r.freq ~= "DAILY" then fail("weekdays need 'every week'") end
    return
  end
  local m, d = self:month_day()
  if m then
    r.bymonth, r.bymonthday = m, d
    if r.freq ~= "YEARLY" then fail("a date in the year needs 'every year'") end
    return
  end
  local mdays = {}
  while day_number(self:peek()) do
    mdays[#mdays + 1] = day_number(self:take())
    self:accept("and")
    self:accept("the")
  end
  if #mdays > 0 then
    if self:peek() == "day" then self:take() end
    if r.freq ~= "MONTHLY" then fail("days of the month need 'every month'") end
    r.bymonthday = table.concat(mdays, ",")
    return
  end
  fail("cannot understand '" .. (w or "") .. "' after 'on'")
end

local function to_rule(r)
  local parts = { "FREQ=" .. r.freq }
  if r.interval and r.interval ~= 1 then parts[#parts + 1] = "INTERVAL=" .. r.interval end
  if r.count then parts[#parts + 1] = "COUNT=" .. r.count end
  if r["until"] then parts[#parts + 1] = "UNTIL=" .. r["until"] end
  if r.bymonth then parts[#parts + 1] = "BYMONTH=" .. r.bymonth end
  if r.bymonthday then parts[#parts + 1] = "BYMONTHDAY=" .. r.bymonthday end
  if r.byday then parts[#parts + 1] = "BYDAY=" .. r.byday end
  if r.byhour then parts[#parts + 1] = "BYHOUR=" .. r.byhour end
  if r.byminute then parts[#parts + 1] = "BYMINUTE=" .. r.byminute end
  if r.bysetpos then parts[#parts + 1] = "BYSETPOS=" .. r.bysetpos end
  return table.concat(parts, ";")
end

--- Turn a common English phrase into an RRULE.
-- @tparam string text e.g. "every 2 weeks on mon and thu until 2026-12-31"
-- @treturn[1] string rule text, e.g. "FREQ=WEEKLY;INTERVAL=2;UNTIL=20261231;BYDAY=MO,TH"
-- @treturn[2] nil
-- @treturn[2] string what could not be understood
local function parse_phrase(text)
  if type(text) ~= "string" then error("phrase must be a string", 2) end
  local p = setmetatable({ w = words_of(text), i = 1 }, Parser)
  if #p.w == 0 then return nil, "empty phrase" end
  local ok, res = pcall(function()
    local r = {}
    p:head(r)
    while p:peek() do
      local w = p:take()
      if w == "on" then
        p:on(r)
      elseif w == "of" and r.freq == "MONTHLY" then
        p:accept("the")
        p:accept("every")
        p:accept("each")
        if not p:accept("month") then fail("expected 'month' after 'of'") end
      elseif w == "in" then
        local ms = {}
        while MONTHS[p:peek()] do
          ms[#ms + 1] = MONTHS[p:take()]
          p:accept("and")
        end
        if #ms == 0 then fail("expected a month after 'in'") end
        r.bymonth = table.concat(ms, ",")
      elseif w == "at" then
        local hs, ms = {}, {}
        repeat
          local h, m = p:time()
          hs[#hs + 1], ms[#ms + 1] = h, m
        until not (p:accept("and") and p:peek() and p:peek():match("^%d"))
        for i = 2, #ms do
          if ms[i] ~= ms[1] then fail("times with different minutes are not supported") end
        end
        r.byhour, r.byminute = table.concat(hs, ","), tostring(ms[1])
      elseif w == "until" or w == "till" then
        r["until"] = p:date()
      elseif w == "for" or (w:match("^%d+$") and (p:peek() == "times" or p:peek() == "time")) then
        local nword = w == "for" and p:take() or w
        local n = nword and (nword:match("^%d+$") and math.tointeger(tonumber(nword)) or NUMBERS[nword])
        if not n or not (p:accept("times") or p:accept("time") or p:accept("occurrences")) then
          fail("expected 'for N times'")
        end
        r.count = math.tointeger(n)
      elseif w == "once" then
        r.count = 1
      elseif w == "twice" then
        r.count = 2
      elseif w ~= "and" then
        fail("cannot understand '" .. w .. "'")
      end
    end
    if r.count and r["until"] then fail("give either 'until' or 'for N times', not both") end
    return to_rule(r)
  end)
  if not ok then
    if type(res) == "table" then return nil, res.msg end
    error(res, 0)
  end
  local canonical, err = rrule.validate(res)
  if not canonical then return nil, err end
  return canonical
end

return parse_phrase
