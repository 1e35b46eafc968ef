--- RFC 5545 recurrence rules as text: parse ("FREQ=WEEKLY;BYDAY=MO,TH"),
-- validate (every message names the part that is wrong) and print the canonical
-- form. Expansion is recurrence.rrule, which re-exports these functions.
-- @module recurrence.rrule_text

local cal = require "recurrence.calendar"

local days_from_civil, month_days = cal.days_from_civil, cal.month_days
local FREQ, WD, MONTH_MAX, MONTH_NAME = cal.FREQ, cal.WD, cal.MONTH_MAX, cal.MONTH_NAME
local YEARLY, MONTHLY, WEEKLY, DAILY = FREQ.YEARLY, FREQ.MONTHLY, FREQ.WEEKLY, FREQ.DAILY
local concat = table.concat
local tointeger = math.tointeger

local M = {}

---------------------------------------------------------------------------
-- Parsing and validation.

local function fail(fmt, ...)
  error({ msg = string.format(fmt, ...) }, 0)
end

local function parse_int(part, s, lo, hi, nonzero)
  if not s:match("^[+-]?%d+$") then fail("%s: '%s' is not an integer", part, s) end
  local v = tointeger(tonumber(s))
  if not v then fail("%s: '%s' is not an integer", part, s) end
  if nonzero and v == 0 then
    fail("%s: 0 is not allowed (use %d..%d or -%d..-1)", part, lo, hi, hi)
  end
  local a = nonzero and math.abs(v) or v
  if a < lo or a > hi then
    if nonzero then
      fail("%s: %d is out of range (use %d..%d or -%d..-1)", part, v, lo, hi, hi)
    end
    fail("%s: %d is out of range (use %d..%d)", part, v, lo, hi)
  end
  return v
end

local function split_list(part, value)
  if value == "" then fail("%s: empty value", part) end
  local items = {}
  for item in (value .. ","):gmatch("([^,]*),") do
    if item == "" then fail("%s: empty item in list", part) end
    items[#items + 1] = item
  end
  return items
end

-- Integer list with duplicates removed, in the order given.
local function int_list(part, value, lo, hi, nonzero)
  local out, seen = {}, {}
  for _, item in ipairs(split_list(part, value)) do
    local v = parse_int(part, item, lo, hi, nonzero)
    if not seen[v] then
      seen[v] = true
      out[#out + 1] = v
    end
  end
  return out
end

local function parse_until(value)
  local y, mo, d, rest = value:match("^(%d%d%d%d)(%d%d)(%d%d)(.*)$")
  if not y then fail("UNTIL: '%s' is not a date (YYYYMMDD) or date-time (YYYYMMDDTHHMMSSZ)", value) end
  y, mo, d = tointeger(tonumber(y)), tointeger(tonumber(mo)), tointeger(tonumber(d))
  if mo < 1 or mo > 12 then fail("UNTIL: month %d is out of range", mo) end
  if d < 1 or d > month_days(y, mo) then fail("UNTIL: day %d does not exist in %04d-%02d", d, y, mo) end
  local day = days_from_civil(y, mo, d)
  if rest == "" then
    return { kind = "date", wall = day * 86400 + 86399 }
  end
  local h, mi, s, z = rest:match("^T(%d%d)(%d%d)(%d%d)(Z?)$")
  if not h then fail("UNTIL: bad time part '%s' (expected THHMMSS or THHMMSSZ)", rest) end
  h, mi, s = tointeger(tonumber(h)), tointeger(tonumber(mi)), tointeger(tonumber(s))
  if h > 23 or mi > 59 or s > 59 then fail("UNTIL: time %s is out of range", rest:sub(2, 7)) end
  local secs = day * 86400 + h * 3600 + mi * 60 + s
  if z == "Z" then return { kind = "utc", epoch = secs } end
  return { kind = "local", wall = secs }
end

local function parse_byday(value)
  local out, seen = {}, {}
  for _, item in ipairs(split_list("BYDAY", value)) do
    local sign, num, day = item:match("^([+-]?)(%d*)(%u%u)$")
    if not sign or not WD[day] then
      fail("BYDAY: '%s' is not a weekday (MO..SU, optionally with an ordinal like 2TU or -1FR)", item)
    end
    local n
    if num ~= "" then
      n = tointeger(tonumber(num)) -- nil when too long for an integer
      if not n or n == 0 or n > 53 then fail("BYDAY: ordinal in '%s' must be 1..53 or -53..-1", item) end
      if sign == "-" then n = -n end
    elseif sign ~= "" then
      fail("BYDAY: '%s' has a sign but no number", item)
    end
    local key = (n or 0) * 10 + WD[day]
    if not seen[key] then
      seen[key] = true
      out[#out + 1] = { day = day, wd = WD[day], n = n }
    end
  end
  return out
end

local PARTS = {
  FREQ = function(r, v)
    if v == "SECONDLY" then fail("FREQ: SECONDLY is not supported (use MINUTELY or coarser)") end
    if not FREQ[v] then fail("FREQ: '%s' is not one of YEARLY, MONTHLY, WEEKLY, DAILY, HOURLY, MINUTELY", v) end
    r.freq = v
  end,
  INTERVAL = function(r, v) r.interval = parse_int("INTERVAL", v, 1, 100000) end,
  COUNT = function(r, v) r.count = parse_int("COUNT", v, 1, 1000000) end,
  UNTIL = function(r, v)
    r.until_ = parse_until(v)
    r["until"] = v
  end,
  BYSECOND = function(r, v) r.bysecond = int_list("BYSECOND", v, 0, 59) end,
  BYMINUTE = function(r, v) r.byminute = int_list("BYMINUTE", v, 0, 59) end,
  BYHOUR = function(r, v) r.byhour = int_list("BYHOUR", v, 0, 23) end,
  BYDAY = function(r, v) r.byday = parse_byday(v) end,
  BYMONTHDAY = function(r, v) r.bymonthday = int_list("BYMONTHDAY", v, 1, 31, true) end,
  BYYEARDAY = function(r, v) r.byyearday = int_list("BYYEARDAY", v, 1, 366, true) end,
  BYWEEKNO = function(r, v) r.byweekno = int_list("BYWEEKNO", v, 1, 53, true) end,
  BYMONTH = function(r, v) r.bymonth = int_list("BYMONTH", v, 1, 12) end,
  BYSETPOS = function(r, v) r.bysetpos = int_list("BYSETPOS", v, 1, 366, true) end,
  WKST = function(r, v)
    if not WD[v] then fail("WKST: '%s' is not a weekday (MO..SU)", v) end
    r.wkst = v
  end,
}

local function check_rule(r)
  if not r.freq then fail("FREQ: missing (every rule needs FREQ=...)") end
  local f = FREQ[r.freq]
  if r.count and r["until"] then fail("COUNT: cannot be combined with UNTIL") end
  if r.byday then
    for _, d in ipairs(r.byday) do
      if d.n then
        if f ~= MONTHLY and f ~= YEARLY then
          fail("BYDAY: ordinal day '%d%s' needs FREQ=MONTHLY or FREQ=YEARLY", d.n, d.day)
        end
        if f == YEARLY and r.byweekno then
          fail("BYDAY: ordinal day '%d%s' cannot be combined with BYWEEKNO", d.n, d.day)
        end
        if (f == MONTHLY or r.bymonth) and math.abs(d.n) > 5 then
          fail("BYDAY: a month has at most 5 of each weekday (got '%d%s')", d.n, d.day)
        end
      end
    end
  end
  if r.bymonthday and f == WEEKLY then fail("BYMONTHDAY: not allowed with FREQ=WEEKLY") end
  if r.byyearday and (f == MONTHLY or f == WEEKLY or f == DAILY) then
    fail("BYYEARDAY: not allowed with FREQ=%s", r.freq)
  end
  if r.byweekno and f ~= YEARLY then fail("BYWEEKNO: only allowed with FREQ=YEARLY") end
  if r.bysetpos and not (r.bysecond or r.byminute or r.byhour or r.byday or r.bymonthday
      or r.byyearday or r.byweekno or r.bymonth) then
    fail("BYSETPOS: needs another BY... part to select from")
  end
  -- Every day of a period expands to each BYHOUR x BYMINUTE x BYSECOND time: a 466-byte
  -- rule asking for all 86400 seconds of every day made one year's period 31 million
  -- times (a preview ran out of memory; found for the fuzz targets' CPU and memory check).
  local per_day = #(r.byhour or { 0 }) * #(r.byminute or { 0 }) * #(r.bysecond or { 0 })
  if per_day > M.TIMES_PER_DAY_MAX then
    fail("BYHOUR x BYMINUTE x BYSECOND: %d times a day, at most %d (once a minute)", per_day, M.TIMES_PER_DAY_MAX)
  end
  -- A month/day combination that can never happen would loop for 400 years.
  if r.bymonth and r.bymonthday and not r.byyearday and not r.byweekno then
    local possible = false
    for _, m in ipairs(r.bymonth) do
      for _, d in ipairs(r.bymonthday) do
        if math.abs(d) <= MONTH_MAX[m] then possible = true end
      end
    end
    if not possible then
      fail("BYMONTHDAY: day %d never occurs in %s", r.bymonthday[1], MONTH_NAME[r.bymonth[1]])
    end
  end
end

--- Most times of day a rule may list (the product of its BYHOUR, BYMINUTE and BYSECOND
-- counts): once a minute.
M.TIMES_PER_DAY_MAX = 1440

local ORDER = { "FREQ", "INTERVAL", "COUNT", "UNTIL", "BYMONTH", "BYWEEKNO", "BYYEARDAY",
  "BYMONTHDAY", "BYDAY", "BYHOUR", "BYMINUTE", "BYSECOND", "BYSETPOS", "WKST" }

--- Parse an RRULE ("FREQ=WEEKLY;BYDAY=MO,TH", an "RRULE:" prefix is allowed,
-- names are case-insensitive).
-- @tparam string s the rule text
-- @treturn[1] table the rule: `freq` ("DAILY", ...), `interval`, `count`,
--   `until` (the UNTIL text), `bymonth`, `byweekno`, `byyearday`, `bymonthday`,
--   `byhour`, `byminute`, `bysecond`, `bysetpos` (integer arrays), `byday`
--   (array of `{day = "TU", wd = 1, n = 2 or nil}`), `wkst` ("MO")
-- @treturn[2] nil
-- @treturn[2] string a message naming the part that is wrong
function M.parse(s)
  if type(s) ~= "string" then error("rule must be a string", 2) end
  local text = s:upper():match("^%s*(.-)%s*$"):gsub("^RRULE:", "")
  if text == "" then return nil, "empty rule" end
  local ok, res = pcall(function()
    local r = { interval = 1, wkst = "MO" }
    local seen = {}
    local parts = {}
    for part in (text .. ";"):gmatch("([^;]*);") do parts[#parts + 1] = part end
    if parts[#parts] == "" and #parts > 1 then parts[#parts] = nil end -- trailing ';'
    for _, part in ipairs(parts) do
      local name, value = part:match("^([%u]+)=(.*)$")
      if not name then fail("malformed part '%s' (expected NAME=VALUE)", part) end
      local handler = PARTS[name]
      if not handler then fail("%s: unknown rule part", name) end
      if seen[name] then fail("%s: given more than once", name) end
      seen[name] = true
      if value == "" then fail("%s: empty value", name) end
      handler(r, value)
    end
    check_rule(r)
    return r
  end)
  if ok then return res end
  if type(res) == "table" then return nil, res.msg end
  error(res, 0)
end

--- Canonical text of a parsed rule (parts in a fixed order, defaults omitted).
-- @tparam table r a rule from parse
-- @treturn string e.g. "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,TH"
function M.to_string(r)
  if type(r) ~= "table" or not r.freq then error("rule table expected", 2) end
  local out = {}
  for _, name in ipairs(ORDER) do
    local key = name:lower()
    local v = r[key]
    if name == "INTERVAL" and v == 1 then v = nil end
    if name == "WKST" and v == "MO" then v = nil end
    if v ~= nil then
      if name == "BYDAY" then
        local items = {}
        for i, d in ipairs(v) do items[i] = (d.n and tostring(d.n) or "") .. d.day end
        v = concat(items, ",")
      elseif type(v) == "table" then
        v = concat(v, ",")
      end
      out[#out + 1] = name .. "=" .. tostring(v)
    end
  end
  return concat(out, ";")
end

--- Check a rule.
-- @tparam string s the rule text
-- @treturn[1] string the canonical rule text
-- @treturn[2] nil
-- @treturn[2] string a message naming the part that is wrong
function M.validate(s)
  local r, err = M.parse(s)
  if not r then return nil, err end
  return M.to_string(r)
end

return M
