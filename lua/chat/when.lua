--- Dates and times in a chat message, read in the user's time zone: "tomorrow at 5pm",
-- "next friday", "in 2 hours", "on the 3rd", "tonight", "end of the month",
-- "dec 25", "2026-12-25", "at noon". Zone rules come from the host's `tz` primitive
-- (the system tz database); calendar arithmetic is done on day numbers in UTC, which
-- has no zone rules at all. Pure: the current time is an argument.
--
-- Conventions (the answers say what was understood, so a user sees them):
--   a date without a time is at 09:00; "morning" 09:00, "afternoon" 15:00, "evening"
--   19:00, "tonight"/"night" 20:00, "noon" 12:00, "midnight" 23:59, "end of the day/week/
--   month/year" 17:00 on that day;
--   a time without a date is today, or tomorrow when it has passed;
--   "friday", "on friday", "next friday" are the first Friday after today, "this friday"
--   may be today; "at 5" without am/pm is 17:00 (hours 1-6 read as afternoon);
--   "next week" is next Monday; "end of the week" is this week's Friday.
-- @module chat.when

local tz = require "tz"
local recurrence = require "recurrence"

local M = {}

local DAY = 86400

local WEEKDAYS = {
  monday = 1, mon = 1, tuesday = 2, tue = 2, tues = 2, wednesday = 3, wed = 3,
  thursday = 4, thu = 4, thur = 4, thurs = 4, friday = 5, fri = 5, saturday = 6, sat = 6,
  sunday = 7, sun = 7,
}
M.WEEKDAYS = WEEKDAYS
local MONTHS = {
  jan = 1, january = 1, feb = 2, february = 2, mar = 3, march = 3, apr = 4, april = 4,
  may = 5, jun = 6, june = 6, jul = 7, july = 7, aug = 8, august = 8, sep = 9, sept = 9,
  september = 9, oct = 10, october = 10, nov = 11, november = 11, dec = 12, december = 12,
}
local NUMBERS = {
  a = 1, an = 1, one = 1, two = 2, three = 3, four = 4, five = 5, six = 6, seven = 7,
  eight = 8, nine = 9, ten = 10, eleven = 11, twelve = 12, fifteen = 15, twenty = 20,
  thirty = 30, forty = 40, fortyfive = 45, couple = 2, few = 3,
}
M.NUMBERS = NUMBERS
local UNITS = {
  minute = 60, minutes = 60, hour = 3600, hours = 3600, day = "d", days = "d",
  week = "w", weeks = "w", month = "m", months = "m",
}
local PARTS = { morning = { 9, 0 }, afternoon = { 15, 0 }, evening = { 19, 0 }, night = { 20, 0 },
  tonight = { 20, 0 }, ["end"] = { 17, 0 } }
local PREPS = { on = true, at = true, by = true, due = true, ["@"] = true, ["for"] = true,
  before = true, around = true, from = true, to = true, ["until"] = true, till = true }

-- Day number (days since 1970-01-01) of a civil date; fields may overflow (mktime-like).
local function day_number(y, m, d)
  return tz.from_local(y, m, d, 0, 0, 0, "UTC") // DAY
end
M.day_number = day_number

--- Civil date of a day number: year, month, day, ISO weekday (1 = Monday).
function M.civil(dn)
  local y, m, d, _, _, _, wday = tz.to_local(dn * DAY, "UTC")
  return y, m, d, (wday + 5) % 7 + 1
end
local civil = M.civil

--- The clock a message is read against.
-- @tparam integer now epoch seconds
-- @tparam string zone IANA zone
-- @treturn table `{now, zone, today (day number), wd (ISO weekday), h, mi}`
function M.clock(now, zone)
  local y, m, d, h, mi = tz.to_local(now, zone)
  local today = day_number(y, m, d)
  local _, _, _, wd = civil(today)
  return { now = now, zone = zone, today = today, wd = wd, y = y, m = m, d = d, h = h, mi = mi }
end

--- The instant of a local date and time in the clock's zone.
function M.instant(clock, dn, h, mi)
  local y, m, d = civil(dn)
  return tz.from_local(y, m, d, h, mi, 0, clock.zone)
end

--- RFC 3339 text of an instant, with the zone's offset.
function M.format(clock, t) return tz.format(t, clock.zone) end

local EPOCH_MIN, EPOCH_MAX = recurrence.EPOCH_MIN, recurrence.EPOCH_MAX

--- RFC 3339 text of a bound of a range of days (a list's due_after / due_before): kept
-- within the supported range, and in UTC where the zone's local time would leave years
-- 1..9999, which RFC 3339 cannot write ("what's due 9999-12-31" ends at 10000-01-01
-- 00:00 local; found by fuzz_chat: tz.format raised "time out of range").
function M.format_bound(clock, t)
  t = math.max(EPOCH_MIN, math.min(EPOCH_MAX, t))
  local wall = tz.to_wall(t, clock.zone)
  if wall < EPOCH_MIN or wall > EPOCH_MAX then return tz.format(t, "UTC") end
  return tz.format(t, clock.zone)
end

--- `YYYY-MM-DD` of a day number.
function M.date_text(dn)
  local y, m, d = civil(dn)
  return string.format("%04d-%02d-%02d", y, m, d)
end

local function ordinal_day(w)
  local n = w and (w:match("^(%d%d?)$") or w:match("^(%d%d?)[snrt][tdh]$"))
  n = n and tonumber(n)
  if n and n >= 1 and n <= 31 then return math.tointeger(n) end
  local words = { first = 1, second = 2, third = 3, fourth = 4, fifth = 5, sixth = 6,
    seventh = 7, eighth = 8, ninth = 9, tenth = 10 }
  return words[w]
end

local function last_day(y, m)
  local _, _, d = civil(day_number(y, m + 1, 1) - 1)
  return d
end

-- The next date on or after `from` that is day `d` of a month.
local function next_month_day(d, from)
  local y, m = civil(from)
  for k = 0, 12 do
    local mm = m + k
    local yy = y + (mm - 1) // 12
    mm = (mm - 1) % 12 + 1
    if d <= last_day(yy, mm) then
      local dn = day_number(yy, mm, d)
      if dn >= from then return dn end
    end
  end
  return nil
end

-- A time token: "5pm", "5:30pm", "17:00", "5:30"; returns h, mi, has_meridiem.
local function time_token(w, nextw)
  local h, mi, ap = w:match("^(%d%d?):(%d%d)([ap]?m?)$")
  if not h then
    h, ap = w:match("^(%d%d?)([ap]m)$")
    mi = "0"
  end
  local used = 1
  if not h and w:match("^%d%d?$") and (nextw == "am" or nextw == "pm") then h, mi, ap = w, "0", "" end
  if not h then return nil end
  if ap == "" and (nextw == "am" or nextw == "pm") then ap, used = nextw, 2 end
  h, mi = tonumber(h), tonumber(mi)
  if ap == "pm" and h < 12 then h = h + 12 elseif ap == "am" and h == 12 then h = 0 end
  if h > 23 or mi > 59 or (ap ~= "" and tonumber(w:match("^%d+")) > 12) then return nil end
  return math.tointeger(h), math.tointeger(mi), used, ap ~= ""
end

-- The reader: a cursor over tokens that collects date and time parts.
local R = {}
R.__index = R

function R:w(i) local t = self.toks[i] return t and not self.used[t] and t.w or nil end
function R:mark(i, j)
  for k = i, j do self.used[self.toks[k]] = true end
  if i < self.first then self.first = i end
  if j > self.last then self.last = j end
end

-- Each matcher looks at position i and returns the number of tokens it read (0: none).
function R:match_date(i)
  local c = self.clock
  local w, w1, w2 = self:w(i), self:w(i + 1), self:w(i + 2)
  if w == "today" then self.dn = c.today return 1 end
  if w == "tonight" then self.dn, self.part = c.today, "tonight" return 1 end
  if w == "tomorrow" or w == "tomorrows" then self.dn = c.today + 1 return 1 end
  if w == "yesterday" then self.dn = c.today - 1 return 1 end
  if w == "day" and w1 == "after" and w2 == "tomorrow" then
    self.dn = c.today + 2
    if self:w(i - 1) == "the" then self:mark(i - 1, i - 1) end
    return 3
  end
  if w == "eod" then self.dn, self.part = c.today, "end" return 1 end
  if w == "eom" then self.dn, self.part = day_number(c.y, c.m + 1, 1) - 1, "end" return 1 end
  if w == "end" and w1 == "of" then
    local k = i + 2
    if self:w(k) == "the" or self:w(k) == "this" then k = k + 1 end
    local unit = self:w(k)
    if unit == "day" then self.dn = c.today
    elseif unit == "week" then self.dn = c.today + (5 - c.wd) + (c.wd > 5 and 7 or 0)
    elseif unit == "month" then self.dn = day_number(c.y, c.m + 1, 1) - 1
    elseif unit == "year" then self.dn = day_number(c.y, 12, 31)
    else return 0 end
    self.part = "end"
    if self:w(i - 1) == "the" then self:mark(i - 1, i - 1) end
    return k - i + 1
  end
  local mod = nil
  local k = i
  if w == "next" or w == "this" or w == "coming" then mod, k = w, i + 1 end
  local wd = WEEKDAYS[self:w(k) or ""]
  if wd and (self:w(k) ~= "sun" and self:w(k) ~= "sat" and self:w(k) ~= "wed" or mod
    or PREPS[self:w(i - 1) or ""]) then
    local ahead = (wd - c.wd) % 7
    if ahead == 0 and mod ~= "this" then ahead = 7 end
    self.dn = c.today + ahead
    return k - i + 1
  end
  if mod and mod ~= "coming" then
    local unit = self:w(k)
    local y, m = c.y, c.m
    if unit == "week" then
      self.dn = c.today - (c.wd - 1) + (mod == "next" and 7 or 0)
      if self.dn < c.today then self.dn = c.today end
      self.span = mod == "next" and 7 or (c.today - (c.wd - 1) + 7 - self.dn)
      return 2
    elseif unit == "month" then
      self.dn = mod == "next" and day_number(y, m + 1, 1) or c.today
      self.span = (mod == "next" and day_number(y, m + 2, 1) or day_number(y, m + 1, 1)) - self.dn
      return 2
    elseif unit == "weekend" then
      self.dn = c.today + (6 - c.wd) % 7 + (mod == "next" and c.wd < 6 and 7 or 0)
      self.span = 2
      return 2
    elseif unit == "year" and mod == "next" then
      self.dn = day_number(y + 1, 1, 1)
      return 2
    end
  end
  if w == "weekend" and self:w(i - 1) == "the" then
    self.dn = c.today + (6 - c.wd) % 7
    self.span = 2
    self:mark(i - 1, i - 1)
    return 1
  end
  -- "in 2 hours", "in a week", "in a couple of days", "in half an hour"
  if w == "in" then
    local n, j = NUMBERS[w1 or ""] or tonumber(w1 or ""), i + 2
    if w1 == "half" and (w2 == "an" or w2 == "a") and self:w(i + 3) == "hour" then
      self.abs = c.now + 1800
      return 4
    end
    if (w1 == "a" or w1 == "the") and (w2 == "couple" or w2 == "few") then n, j = NUMBERS[w2], i + 3 end
    if self:w(j) == "of" then j = j + 1 end
    local unit = UNITS[self:w(j) or ""]
    if n and unit and n == math.floor(n) and n > 0 and n <= 1000 then
      n = math.tointeger(n)
      if type(unit) == "number" then self.abs = c.now + n * unit
      elseif unit == "d" then self.dn = c.today + n
      elseif unit == "w" then self.dn = c.today + 7 * n
      else
        local dd = math.min(c.d, last_day(c.y, c.m + n))
        self.dn = day_number(c.y, c.m + n, dd)
      end
      return j - i + 1
    end
    return 0
  end
  -- ISO date
  local y, m, d = (w or ""):match("^(%d%d%d%d)%-(%d%d)%-(%d%d)$")
  if y then
    y, m, d = tonumber(y), tonumber(m), tonumber(d)
    if m < 1 or m > 12 or d < 1 or d > last_day(y, m) then return 0 end
    self.dn = day_number(y, m, d)
    return 1
  end
  -- "dec 25", "december 25th", "25 dec", "25th of december", "the 3rd", "on the 3rd"
  local month, day, used = MONTHS[w or ""], nil, 0
  if month and (w1 or ""):match("^%d") then
    day = ordinal_day(w1)
    used = day and 2 or 0
  end
  if not day then
    month = nil
    local j = i
    if w == "the" then j = i + 1 end
    local dnum = ordinal_day(self:w(j))
    local after = self:w(j + 1)
    if dnum and (self:w(j) or ""):match("^%d") then
      if after == "of" and MONTHS[self:w(j + 2) or ""] then
        month, day, used = MONTHS[self:w(j + 2)], dnum, j + 2 - i + 1
      elseif MONTHS[after or ""] then
        month, day, used = MONTHS[after], dnum, j + 1 - i + 1
      elseif (w == "the" or self:w(i - 1) == "on" or self:w(i - 1) == "by")
        and (self:w(j)):match("%a") and after ~= "one" and after ~= "task" and after ~= "item" then
        local dn = next_month_day(dnum, c.today)
        if not dn then return 0 end
        self.dn = dn
        return j - i + 1
      end
    end
  end
  if month and day then
    local yy = c.y
    local year = self:w(i + used)
    if year and year:match("^%d%d%d%d$") then yy, used = tonumber(year), used + 1 end
    if day > last_day(yy, month) then return 0 end
    local dn = day_number(yy, month, day)
    if dn < c.today and not (year and year:match("^%d%d%d%d$")) then dn = day_number(yy + 1, month, day) end
    self.dn = dn
    return used
  end
  return 0
end

function R:match_time(i)
  local w, w1 = self:w(i), self:w(i + 1)
  if not w then return 0 end
  if w == "noon" or w == "midday" then self.h, self.mi = 12, 0 return 1 end
  if w == "midnight" then self.h, self.mi = 23, 59 return 1 end
  local h, mi, used, meridiem = time_token(w, w1)
  local prev = self:w(i - 1)
  if not h and w:match("^%d%d?$") then
    local n = tonumber(w)
    if w1 == "oclock" or ((prev == "at" or prev == "@" or prev == "by" or prev == "around") and n <= 23) then
      h, mi, used = math.tointeger(n), 0, w1 == "oclock" and 2 or 1
      if h >= 1 and h <= 6 then h = h + 12 end
    end
  end
  if not h then return 0 end
  if not meridiem and not w:find(":") and h >= 1 and h <= 6 then h = h + 12 end
  self.h, self.mi, self.meridiem = h, mi, meridiem or w:find(":") ~= nil
  return used
end

function R:match_part(i)
  local w = self:w(i)
  local part = PARTS[w or ""]
  if not part or w == "tonight" or w == "end" then return 0 end
  local prev = self.toks[i - 1] and self.toks[i - 1].w
  if prev == "this" and self:w(i - 1) then
    self.dn = self.dn or self.clock.today
    self.part = w
    self:mark(i - 1, i - 1)
    return 1
  end
  if prev == "the" and self.toks[i - 2] and self.toks[i - 2].w == "in" and self:w(i - 1) then
    self.part = w
    self:mark(i - 2, i - 1)
    return 1
  end
  if self.toks[i - 1] and self.used[self.toks[i - 1]] and (self.dn or self.h) then
    self.part = w
    return 1
  end
  return 0
end

--- Find the date and time parts in tokens not yet used, and mark the tokens read.
-- @tparam {table,...} toks tokens from chat.words
-- @tparam table used set of tokens already read by other slots (updated)
-- @tparam table clock from M.clock
-- @treturn table|nil `{dn?, h?, mi?, abs?, part?, span?, first, last}` or nil when none
function M.scan(toks, used, clock)
  local r = setmetatable({ toks = toks, used = used, clock = clock, first = math.huge, last = 0 }, R)
  local found = false
  for i = 1, #toks do
    if r:w(i) then
      for _, kind in ipairs { "match_date", "match_time", "match_part" } do
        local had = kind == "match_date" and (r.dn or r.abs) or kind == "match_time" and r.h
        if not had then
          local n = r[kind](r, i)
          if n > 0 then
            r:mark(i, i + n - 1)
            found = true
            local p = i - 1
            while p >= 1 and PREPS[r:w(p) or ""] and r:w(p) ~= "to" do
              r:mark(p, p)
              p = p - 1
            end
            if p >= 1 and r:w(p) == "to" and kind ~= "match_part" then
              r:mark(p, p)
              r.to = true
            end
            break
          end
        end
      end
    end
  end
  if not found then return nil end
  return { dn = r.dn, h = r.h, mi = r.mi, abs = r.abs, part = r.part, span = r.span,
    first = r.first, last = r.last, meridiem = r.meridiem, to = r.to }
end

--- The instant a scan result means.
-- @tparam table s from M.scan
-- @tparam table clock
-- @treturn integer epoch seconds
function M.resolve(s, clock)
  if s.abs then return s.abs end
  local h, mi = s.h, s.mi
  local part = s.part and PARTS[s.part]
  if h and part and s.part ~= "morning" and s.part ~= "end" and h < 12 and not s.meridiem then h = h + 12 end
  if h and part and s.part == "morning" and h >= 12 and h < 19 and not s.meridiem then h = h - 12 end
  if not h then
    if part then h, mi = part[1], part[2] else h, mi = 9, 0 end
  end
  if s.dn then return M.instant(clock, s.dn, h, mi) end
  local t = M.instant(clock, clock.today, h, mi)
  if t <= clock.now then t = M.instant(clock, clock.today + 1, h, mi) end
  return t
end

--- `HH:MM` of a scan result that names a time of day (nil otherwise).
function M.time_text(s)
  if s.h then return string.format("%02d:%02d", s.h, s.mi) end
  if s.part and not s.dn then
    local p = PARTS[s.part]
    return string.format("%02d:%02d", p[1], p[2])
  end
  return nil
end

return M
